// FrameReader's parsed postgres_changes frame, as the change views read it (change_view.hpp).
// Internal to the protocol library; only compiled with simdjson.
#pragma once

#if RTSYNC_HAVE_SIMDJSON

#include <simdjson.h>

#include <cstring>
#include <deque>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include "rtsync/protocol/change_view.hpp"

#if defined(__GNUC__)
#define RTSYNC_FLATTEN __attribute__((flatten))
#else
#define RTSYNC_FLATTEN
#endif

namespace rtsync::protocol::detail {

namespace dom = simdjson::dom;

struct ColumnView {
  std::string_view name;
  std::string_view type;
};

// Builds `e` as a Boost.JSON value in `sp` (duplicate keys: the last value wins, at the first
// key's position, as Boost.JSON's parser does). With `exact_doubles_only`, false for a double the
// two parsers might read differently (see frame_reader.hpp); otherwise always true.
bool build_value(dom::element e, const json::storage_ptr& sp, json::value& out,
                 bool exact_doubles_only);

struct TapeChange {
  static_assert(std::is_trivially_copyable_v<dom::element>);
  static_assert(sizeof(dom::element) <= sizeof(JsonView::tape_));

  std::string_view schema, table, type;
  std::optional<std::string_view> commit_timestamp;
  std::optional<dom::element> record, old_record, errors;
  std::optional<dom::element> columns_array;  // data.columns when it is an array
  // The well-formed entries of `columns_array` ({name, type} strings; the last of a repeated
  // key), read on first use. Other entries carry no type and are skipped, as convert_record's
  // caller parse_change_event skips them.
  const std::vector<ColumnView>& column_list() const;
  // The type of the first well-formed entry named `column`.
  std::optional<std::string_view> column_type(std::string_view column) const;
  // Calls f(name, type) per well-formed entry until f returns false.
  template <class F>
  void for_each_column(F&& f) const;
  mutable std::vector<ColumnView> columns;
  mutable bool columns_read = false;
  // Values converted on access (a string of a converting column), kept until the next frame,
  // each once: `converted_at` maps the raw element (its bytes) to its converted value.
  mutable std::deque<json::value> converted;
  struct Converted {
    unsigned char element[sizeof(dom::element)];
    const json::value* value;
  };
  mutable std::vector<Converted> converted_at;

  static JsonView wrap(dom::element e) noexcept {
    JsonView v;
    std::memcpy(v.tape_, &e, sizeof e);
    v.rep_ = JsonView::Rep::tape;
    return v;
  }
  static dom::element unwrap(const JsonView& v) noexcept {
    dom::element e;
    std::memcpy(&e, v.tape_, sizeof e);
    return e;
  }
  static bool is_tape(const JsonView& v) noexcept { return v.rep_ == JsonView::Rep::tape; }

  RowView row(const std::optional<dom::element>& rec, bool wanted) const noexcept {
    RowView r;
    if (!wanted || !rec || rec->type() != dom::element_type::OBJECT) return r;
    r.tape_ = this;
    r.record_ = wrap(*rec);
    return r;
  }

  // The value of `column` in the client shape: converted when the value is a string of a
  // converting column type (stored in `converted`), the raw element otherwise.
  JsonView cell(std::string_view column, dom::element value) const;

  void reset() {
    converted.clear();
    converted_at.clear();
    columns.clear();
    columns_read = false;
    columns_array.reset();
  }
};

}  // namespace rtsync::protocol::detail

#endif
