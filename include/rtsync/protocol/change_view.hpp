// Read-only views of one postgres_changes event in the client shape realtime-js hands to its
// callbacks, {schema, table, commit_timestamp, eventType, new, old, errors}, without building it.
//
// A view reads either straight from the parsed frame (FrameReader: the fast path, no DOM, no
// copies) or from a Boost.JSON client-shape object (the DOM path). Both give the same answers:
// `new` and `old` values are converted by column type as realtime-js's convertChangeData does
// (protocol::convert_value), on access. One difference: a view of a parsed frame reads numbers
// correctly rounded, as JSON.parse does, where the DOM path (Boost.JSON 1.81, for frames the
// reader declines) may be an ulp off for numbers written with more than 15 significant digits and
// reads 0e400 as NaN.
//
// Lifetime: a view refers into its source and never extends it. A view handed to a callback —
// and every copy of it, and every view reached from it — is valid only during that callback: the
// parser and the values converted on access are reused for the next frame, and a view kept
// beyond reads freed or reused memory. Call to_object() / to_value() to keep data. Views are a
// few words, cheap to pass by value within the callback.
//
// Thread safety: none; use a view on the thread that received it. Converting a value on access
// writes into the source's per-frame storage, so even reads of one view are not concurrent-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

#include "rtsync/core/json.hpp"

namespace rtsync::protocol {

namespace detail {
struct TapeChange;  // FrameReader's parsed frame (src/protocol/tape_change.hpp)
}  // namespace detail

struct StreamPosition;  // rtsync/protocol/stream_position.hpp

enum class JsonKind : std::uint8_t { null, boolean, int64, uint64, number, string, array, object };

// One JSON value of a change, read-only.
class JsonView {
 public:
  // A null value.
  JsonView() noexcept = default;
  // A view of `value` (must outlive the view).
  explicit JsonView(const json::value& value) noexcept : dom_(&value), rep_(Rep::dom) {}
  explicit JsonView(json::value&&) = delete;  // would dangle at once

  JsonKind kind() const noexcept;
  bool is_null() const noexcept { return kind() == JsonKind::null; }
  bool is_string() const noexcept { return kind() == JsonKind::string; }
  bool is_object() const noexcept { return kind() == JsonKind::object; }
  bool is_array() const noexcept { return kind() == JsonKind::array; }

  // nullopt when the value is not of that kind. as_int64 accepts int64 and uint64 values that
  // fit; as_double any number.
  std::optional<bool> as_bool() const noexcept;
  std::optional<std::int64_t> as_int64() const noexcept;
  std::optional<double> as_double() const noexcept;
  // Unescaped UTF-8; valid as long as the view.
  std::optional<std::string_view> as_string() const noexcept;

  // Object member `key` (the last one when the text repeats it); nullopt when absent or not an
  // object.
  std::optional<JsonView> find(std::string_view key) const noexcept;
  // Array item `index`; nullopt when out of range or not an array.
  std::optional<JsonView> at(std::size_t index) const noexcept;
  // Members of an object / items of an array; 0 for scalars.
  std::size_t size() const noexcept;

  // Visits members in text order (a repeated key once per occurrence) / items in order.
  template <class F>
  void for_each_member(F&& f) const;
  template <class F>
  void for_each_item(F&& f) const;

  // A Boost.JSON copy.
  json::value to_value(json::storage_ptr sp = {}) const;

 private:
  friend struct detail::TapeChange;
  using MemberFn = void (*)(void* ctx, std::string_view key, JsonView value);
  using ItemFn = void (*)(void* ctx, JsonView value);
  void visit_members(void* ctx, MemberFn fn) const;
  void visit_items(void* ctx, ItemFn fn) const;

  // A Boost.JSON value, or an element of a simdjson tape (a trivially copyable
  // simdjson::dom::element, stored as bytes to keep simdjson out of headers), or nothing (null).
  enum class Rep : std::uint8_t { none, dom, tape };
  const json::value* dom_ = nullptr;
  alignas(8) unsigned char tape_[16] = {};
  Rep rep_ = Rep::none;
};

// `new` or `old` of a change: columns with their values converted by column type.
class RowView {
 public:
  // A view of a client-shape row, already converted (must outlive the view).
  explicit RowView(const json::object& row) noexcept : dom_(&row) {}
  explicit RowView(json::object&&) = delete;  // would dangle at once

  bool empty() const noexcept { return size() == 0; }
  // Columns in the row (a key the frame's text repeats counts each time, as for_each visits it).
  std::size_t size() const noexcept;
  // The converted value of `column` (the last one when the text repeats it), nullopt if absent.
  std::optional<JsonView> find(std::string_view column) const;
  // Visits (column, converted value) in order; a key the text repeats is visited each time.
  template <class F>
  void for_each(F&& f) const;
  // The row as realtime-js hands it over (convert_record).
  json::object to_object(json::storage_ptr sp = {}) const;

 private:
  friend struct detail::TapeChange;
  RowView() noexcept = default;
  using ColumnFn = void (*)(void* ctx, std::string_view column, JsonView value);
  void visit(void* ctx, ColumnFn fn) const;

  const json::object* dom_ = nullptr;
  const detail::TapeChange* tape_ = nullptr;  // with `record_`, when reading a parsed frame
  JsonView record_;                           // the raw record object (tape), or none
};

// One change, as the callback receives it.
class ChangeView {
 public:
  // A view of a client-shape object (to_client_shape's result; must outlive the view).
  explicit ChangeView(const json::object& client_shape) noexcept;
  explicit ChangeView(json::object&&) = delete;  // would dangle at once
  // A view of FrameReader's current frame (FrameReader::view()).
  explicit ChangeView(const detail::TapeChange& tape) noexcept : tape_(&tape) {}

  std::string_view schema() const noexcept;
  std::string_view table() const noexcept;
  std::string_view event_type() const noexcept;  // INSERT | UPDATE | DELETE (or as the server sent)
  std::optional<std::string_view> commit_timestamp() const noexcept;
  // `new` for INSERT/UPDATE, `old` for UPDATE/DELETE; empty otherwise or when absent.
  RowView new_record() const;
  RowView old_record() const;
  // null or an array of strings.
  JsonView errors() const;

  // The whole client shape as a Boost.JSON object — exactly what to_client_shape() builds.
  json::object to_object(json::storage_ptr sp = {}) const;

  // The change's stream position (payload.data.position, docs/resume.md) when the receiver read
  // one and attached it (RealtimeChannel does); null otherwise, e.g. from Supabase, which sends
  // none. Not part of the client shape. Valid as long as the view.
  const StreamPosition* position() const noexcept { return position_; }
  // A copy of this view carrying `position` (which must outlive the copy).
  ChangeView with_position(const StreamPosition* position) const noexcept {
    ChangeView v = *this;
    v.position_ = position;
    return v;
  }

 private:
  const json::object* dom_ = nullptr;
  const detail::TapeChange* tape_ = nullptr;
  const StreamPosition* position_ = nullptr;
};

// ---- templates ---------------------------------------------------------------------------------

template <class F>
void JsonView::for_each_member(F&& f) const {
  visit_members(const_cast<void*>(static_cast<const void*>(&f)),
                [](void* ctx, std::string_view key, JsonView value) {
                  (*static_cast<std::remove_reference_t<F>*>(ctx))(key, value);
                });
}

template <class F>
void JsonView::for_each_item(F&& f) const {
  visit_items(const_cast<void*>(static_cast<const void*>(&f)), [](void* ctx, JsonView value) {
    (*static_cast<std::remove_reference_t<F>*>(ctx))(value);
  });
}

template <class F>
void RowView::for_each(F&& f) const {
  visit(const_cast<void*>(static_cast<const void*>(&f)),
        [](void* ctx, std::string_view column, JsonView value) {
          (*static_cast<std::remove_reference_t<F>*>(ctx))(column, value);
        });
}

}  // namespace rtsync::protocol
