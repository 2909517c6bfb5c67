#include "rtsync/protocol/frame_reader.hpp"

#include "json_text.hpp"
#include "rtsync/protocol/postgres_changes.hpp"

#if RTSYNC_HAVE_SIMDJSON
#include <simdjson.h>

#include <charconv>
#include <cmath>
#endif

namespace rtsync::protocol {

#if RTSYNC_HAVE_SIMDJSON

namespace {

namespace dom = simdjson::dom;
using Type = dom::element_type;

// Deeper frames go to the DOM path (whose own limit is kMaxJsonDepth), so the recursion below
// is bounded and the two paths never disagree about the limit.
constexpr std::size_t kMaxDepth = 64;
static_assert(kMaxDepth < detail::kMaxJsonDepth);

std::string_view as_view(dom::element e) {
  return e.get_string().value_unsafe();
}

// By value: ranging over `e.get_object().value_unsafe()` directly would dangle (it refers into a
// temporary simdjson_result).
dom::object as_object(dom::element e) {
  return e.get_object().value_unsafe();
}
dom::array as_array(dom::element e) {
  return e.get_array().value_unsafe();
}

// A double both parsers read identically (see the header): shortest form ≤ 15 significant
// digits and decimal exponent in [-4, 15]. Zeros decline: Boost.JSON 1.81 reads 0e400 as NaN,
// and the text behind a zero double cannot be told apart here.
bool exact_double(double d) {
  if (!std::isfinite(d) || d == 0) return false;
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  if (r.ec != std::errc()) return false;
  const std::string_view s(buf, static_cast<std::size_t>(r.ptr - buf));
  const auto e = s.find('e');
  if (e == std::string_view::npos) return false;
  int digits = 0;
  for (std::size_t i = 0; i < e; ++i)
    digits += s[i] >= '0' && s[i] <= '9';
  int exponent = 0;
  const char* first = s.data() + e + 1;
  if (*first == '+') ++first;
  std::from_chars(first, s.data() + s.size(), exponent);
  return digits <= 15 && exponent >= -4 && exponent <= 15;
}

// Builds `e` as a Boost.JSON value in `sp`, as Boost.JSON's parser would have built it from the
// same text (duplicate keys: the last value wins, at the first key's position). False: decline.
bool build(dom::element e, const json::storage_ptr& sp, json::value& out) {
  switch (e.type()) {
    case Type::OBJECT: {
      const dom::object o = as_object(e);
      auto& obj = out.emplace_object();
      obj.reserve(o.size());
      for (auto field : o) {
        json::value v(sp);
        if (!build(field.value, sp, v)) return false;
        obj.insert_or_assign(json::string_view(field.key.data(), field.key.size()), std::move(v));
      }
      return true;
    }
    case Type::ARRAY: {
      const dom::array a = as_array(e);
      auto& arr = out.emplace_array();
      arr.reserve(a.size());
      for (auto item : a) {
        arr.emplace_back(nullptr);
        if (!build(item, sp, arr.back())) return false;
      }
      return true;
    }
    case Type::STRING: {
      const auto s = as_view(e);
      out.emplace_string().assign(json::string_view(s.data(), s.size()));
      return true;
    }
    case Type::INT64:
      out = e.get_int64().value_unsafe();
      return true;
    case Type::UINT64:
      out = e.get_uint64().value_unsafe();
      return true;
    case Type::DOUBLE: {
      const double d = e.get_double().value_unsafe();
      if (!exact_double(d)) return false;
      out = d;
      return true;
    }
    case Type::BOOL:
      out = e.get_bool().value_unsafe();
      return true;
    case Type::NULL_VALUE:
      out = nullptr;
      return true;
  }
  return false;
}

// Types whose string values convert_value changes (it passes every non-string value through).
bool converts_strings(std::string_view type) {
  if (!type.empty() && type.front() == '_') return true;
  for (std::string_view t : {"bool", "float4", "float8", "int2", "int4", "int8", "numeric", "oid",
                             "json", "jsonb", "timestamp"}) {
    if (type == t) return true;
  }
  return false;
}

struct ColumnView {
  std::string_view name;
  std::string_view type;
};

// Reads `key` of an object into `slot`; a second occurrence declines (the DOM path keeps the
// last one, and this reader does not try to replicate which one matters).
bool take_once(std::optional<dom::element>& slot, dom::element value) {
  if (slot) return false;
  slot = value;
  return true;
}

}  // namespace

struct FrameReader::Impl {
  dom::parser parser;
  bool allocated = false;
  std::size_t text_size = 0;
  std::optional<dom::element> payload;

  // change()
  std::vector<std::int64_t> ids;
  std::string_view type;
  std::optional<dom::element> schema, table, commit_timestamp, record, old_record, errors;
  std::vector<ColumnView> columns;
  bool change_ok = false;

  std::optional<FrameHead> read(Vsn vsn, std::string_view text);
  std::optional<FrameHead> read_v1(dom::element root);
  std::optional<FrameHead> read_v2(dom::element root);
  bool change();
  bool record_shape(dom::element record, const json::storage_ptr& sp, json::object& out) const;
};

namespace {

// A ref: string or null (both paths accept exactly these).
bool read_ref(dom::element e, std::optional<std::string_view>& out) {
  if (e.is_null()) {
    out.reset();
    return true;
  }
  if (e.type() != Type::STRING) return false;
  out = as_view(e);
  return true;
}

}  // namespace

std::optional<FrameHead> FrameReader::Impl::read(Vsn vsn, std::string_view text) {
  payload.reset();
  change_ok = false;
  if (!allocated) {
    if (parser.allocate(std::max<std::size_t>(text.size(), 64 * 1024), kMaxDepth)) return {};
    allocated = true;
  }
  text_size = text.size();
  dom::element root;
  // realloc_if_needed: the text is copied into the parser's padded buffer (simdjson reads past
  // the end of its input in blocks).
  if (parser.parse(text.data(), text.size(), true).get(root)) return {};
  return vsn == Vsn::v1 ? read_v1(root) : read_v2(root);
}

std::optional<FrameHead> FrameReader::Impl::read_v2(dom::element root) {
  if (root.type() != Type::ARRAY) return {};
  const dom::array a = as_array(root);
  dom::element items[5];
  std::size_t n = 0;
  for (auto item : a) {
    if (n == 5) break;
    items[n++] = item;
  }
  if (n < 5) return {};
  FrameHead head;
  if (!read_ref(items[0], head.join_ref) || !read_ref(items[1], head.ref)) return {};
  if (items[2].type() != Type::STRING || items[3].type() != Type::STRING) return {};
  if (items[4].type() != Type::OBJECT) return {};
  head.topic = as_view(items[2]);
  head.event = as_view(items[3]);
  payload = items[4];
  return head;
}

std::optional<FrameHead> FrameReader::Impl::read_v1(dom::element root) {
  if (root.type() != Type::OBJECT) return {};
  std::optional<dom::element> topic, event, body, ref, join_ref;
  const dom::object fields = as_object(root);
  for (auto field : fields) {
    const std::string_view key = field.key;
    std::optional<dom::element>* slot = key == "topic"      ? &topic
                                        : key == "event"    ? &event
                                        : key == "payload"  ? &body
                                        : key == "ref"      ? &ref
                                        : key == "join_ref" ? &join_ref
                                                            : nullptr;
    if (slot && !take_once(*slot, field.value)) return {};
  }
  if (!topic || !event || !body || !ref) return {};
  FrameHead head;
  if (!read_ref(*ref, head.ref)) return {};
  if (join_ref && !read_ref(*join_ref, head.join_ref)) return {};
  if (topic->type() != Type::STRING || event->type() != Type::STRING) return {};
  if (body->type() != Type::OBJECT) return {};
  head.topic = as_view(*topic);
  head.event = as_view(*event);
  payload = *body;
  return head;
}

bool FrameReader::Impl::change() {
  change_ok = false;
  if (!payload) return false;
  std::optional<dom::element> ids_e, data_e;
  const dom::object fields = as_object(*payload);
  for (auto field : fields) {
    const std::string_view key = field.key;
    if (key == "ids" && !take_once(ids_e, field.value)) return false;
    if (key == "data" && !take_once(data_e, field.value)) return false;
  }
  if (!ids_e || ids_e->type() != Type::ARRAY) return false;
  if (!data_e || data_e->type() != Type::OBJECT) return false;
  ids.clear();
  const dom::array id_items = as_array(*ids_e);
  for (auto id : id_items) {
    if (id.type() == Type::INT64) {
      ids.push_back(id.get_int64().value_unsafe());
    } else if (id.type() == Type::UINT64 &&
               id.get_uint64().value_unsafe() <= static_cast<std::uint64_t>(INT64_MAX)) {
      ids.push_back(static_cast<std::int64_t>(id.get_uint64().value_unsafe()));
    } else {
      return false;  // doubles that are integral: the DOM path decides
    }
  }
  schema.reset();
  table.reset();
  commit_timestamp.reset();
  record.reset();
  old_record.reset();
  errors.reset();
  std::optional<dom::element> type_e, columns_e;
  const dom::object data_fields = as_object(*data_e);
  for (auto field : data_fields) {
    const std::string_view key = field.key;
    std::optional<dom::element>* slot = key == "schema"             ? &schema
                                        : key == "table"            ? &table
                                        : key == "type"             ? &type_e
                                        : key == "commit_timestamp" ? &commit_timestamp
                                        : key == "columns"          ? &columns_e
                                        : key == "record"           ? &record
                                        : key == "old_record"       ? &old_record
                                        : key == "errors"           ? &errors
                                                                    : nullptr;
    if (slot && !take_once(*slot, field.value)) return false;
  }
  auto is = [](const std::optional<dom::element>& e, Type t) { return e && e->type() == t; };
  auto null_or = [](const std::optional<dom::element>& e, Type t) {
    return !e || e->type() == Type::NULL_VALUE || e->type() == t;
  };
  if (!is(schema, Type::STRING) || !is(table, Type::STRING) || !is(type_e, Type::STRING)) {
    return false;
  }
  if (!null_or(commit_timestamp, Type::STRING) || !null_or(columns_e, Type::ARRAY) ||
      !null_or(record, Type::OBJECT) || !null_or(old_record, Type::OBJECT) ||
      !null_or(errors, Type::ARRAY)) {
    return false;
  }
  type = as_view(*type_e);
  columns.clear();
  if (is(columns_e, Type::ARRAY)) {
    const dom::array column_items = as_array(*columns_e);
    for (auto c : column_items) {
      if (c.type() != Type::OBJECT) return false;
      std::optional<dom::element> name, ctype;
      const dom::object column_fields = as_object(c);
      for (auto field : column_fields) {
        const std::string_view key = field.key;
        if (key == "name" && !take_once(name, field.value)) return false;
        if (key == "type" && !take_once(ctype, field.value)) return false;
      }
      if (!is(name, Type::STRING) || !is(ctype, Type::STRING)) return false;
      columns.push_back({as_view(*name), as_view(*ctype)});
    }
  }
  change_ok = true;
  return true;
}

// convert_record(columns, record) built straight from the text.
bool FrameReader::Impl::record_shape(dom::element rec, const json::storage_ptr& sp,
                                     json::object& out) const {
  const dom::object o = as_object(rec);
  out.reserve(o.size());
  for (auto field : o) {
    const json::string_view key(field.key.data(), field.key.size());
    json::value v(sp);
    // convert_value changes only strings, so only they need their column.
    const ColumnView* column = nullptr;
    if (field.value.type() == Type::STRING) {
      for (const auto& c : columns) {
        if (c.name == field.key) {
          column = &c;
          break;
        }
      }
    }
    if (column && !column->type.empty() && converts_strings(column->type)) {
      const auto s = as_view(field.value);
      v = convert_value(column->type, json::value(json::string_view(s.data(), s.size()), sp));
    } else if (!build(field.value, sp, v)) {
      return false;
    }
    out.insert_or_assign(key, std::move(v));
  }
  return true;
}

FrameReader::FrameReader() : impl_(std::make_unique<Impl>()) {}
FrameReader::~FrameReader() = default;

bool FrameReader::available() noexcept {
  return true;
}

std::optional<FrameHead> FrameReader::read(Vsn vsn, std::string_view text) {
  return impl_->read(vsn, text);
}

std::optional<ChangeHead> FrameReader::change() {
  if (!impl_->change()) return std::nullopt;
  return ChangeHead{impl_->ids, impl_->type};
}

std::optional<json::object> FrameReader::client_shape() {
  auto& m = *impl_;
  if (!m.change_ok) return std::nullopt;
  auto sp = detail::make_frame_arena(m.text_size);
  json::object o(sp);
  o.reserve(7);
  auto string_value = [&](dom::element e) {
    const auto s = as_view(e);
    return json::value(json::string_view(s.data(), s.size()), sp);
  };
  o.emplace("schema", string_value(*m.schema));
  o.emplace("table", string_value(*m.table));
  if (m.commit_timestamp && m.commit_timestamp->type() == Type::STRING) {
    o.emplace("commit_timestamp", string_value(*m.commit_timestamp));
  } else {
    o.emplace("commit_timestamp", nullptr);
  }
  o.emplace("eventType", json::string_view(m.type.data(), m.type.size()));
  const bool has_new = m.type == "INSERT" || m.type == "UPDATE";
  const bool has_old = m.type == "UPDATE" || m.type == "DELETE";
  auto record_value = [&](bool wanted, const std::optional<dom::element>& rec, json::object& out) {
    if (!wanted || !rec || rec->type() != Type::OBJECT) return true;
    return m.record_shape(*rec, sp, out);
  };
  json::object new_record(sp), old_record(sp);
  if (!record_value(has_new, m.record, new_record)) return std::nullopt;
  if (!record_value(has_old, m.old_record, old_record)) return std::nullopt;
  o.emplace("new", std::move(new_record));
  o.emplace("old", std::move(old_record));
  json::value errors(sp);
  if (m.errors && !build(*m.errors, sp, errors)) return std::nullopt;
  o.emplace("errors", std::move(errors));
  return o;
}

#else  // !RTSYNC_HAVE_SIMDJSON

struct FrameReader::Impl {};

FrameReader::FrameReader() = default;
FrameReader::~FrameReader() = default;

bool FrameReader::available() noexcept {
  return false;
}

std::optional<FrameHead> FrameReader::read(Vsn, std::string_view) {
  return std::nullopt;
}

std::optional<ChangeHead> FrameReader::change() {
  return std::nullopt;
}

std::optional<json::object> FrameReader::client_shape() {
  return std::nullopt;
}

#endif

}  // namespace rtsync::protocol
