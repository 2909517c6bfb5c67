#include "rtsync/protocol/frame_reader.hpp"

#include <cstring>

#include "json_text.hpp"
#include "rtsync/protocol/postgres_changes.hpp"
#include "tape_change.hpp"

#if RTSYNC_HAVE_SIMDJSON
#include <simdjson.h>
#endif

namespace rtsync::protocol {

#if RTSYNC_HAVE_SIMDJSON

namespace {

namespace dom = simdjson::dom;
using Type = dom::element_type;
using detail::build_value;

// Deeper frames go to the DOM path (whose own limit is kMaxJsonDepth), so the recursion below
// is bounded and the two paths never disagree about the limit.
constexpr std::size_t kMaxDepth = 64;
static_assert(kMaxDepth < detail::kMaxJsonDepth);
static_assert(FrameReader::kPadding >= simdjson::SIMDJSON_PADDING);

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

// Reads `key` of an object into `slot`; a second occurrence declines (the DOM path keeps the
// last one, and this reader does not try to replicate which one matters).
bool take_once(std::optional<dom::element>& slot, dom::element value) {
  if (slot) return false;
  slot = value;
  return true;
}

enum class DataKey {
  other,
  schema,
  table,
  type,
  commit_timestamp,
  columns,
  record,
  old_record,
  errors,
  position
};

template <class Word>
Word load(const char* p) {
  Word w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// `k` is the literal: two overlapping word compares (the literal's words are constants). Plain
// string_view == called memcmp for each of the ten keys of every change, and a byte loop was
// slower still.
template <std::size_t N>
bool is(std::string_view k, const char (&literal)[N]) {
  constexpr std::size_t n = N - 1;
  static_assert(n >= 2 && n <= 16);
  if (k.size() != n) return false;
  const char* p = k.data();
  if constexpr (n >= 8) {
    return load<std::uint64_t>(p) == load<std::uint64_t>(literal) &&
           load<std::uint64_t>(p + n - 8) == load<std::uint64_t>(literal + n - 8);
  } else if constexpr (n >= 4) {
    return load<std::uint32_t>(p) == load<std::uint32_t>(literal) &&
           load<std::uint32_t>(p + n - 4) == load<std::uint32_t>(literal + n - 4);
  } else {
    return load<std::uint16_t>(p) == load<std::uint16_t>(literal) && p[n - 1] == literal[n - 1];
  }
}

// The keys of a postgres_changes `data` object, told apart by length first: one fixed-size
// comparison per key instead of a chain of them (this runs for every key of every change).
DataKey data_key(std::string_view k) {
  switch (k.size()) {
    case 4:
      return is(k, "type") ? DataKey::type : DataKey::other;
    case 5:
      return is(k, "table") ? DataKey::table : DataKey::other;
    case 6:
      if (is(k, "schema")) return DataKey::schema;
      if (is(k, "record")) return DataKey::record;
      if (is(k, "errors")) return DataKey::errors;
      return DataKey::other;
    case 7:
      return is(k, "columns") ? DataKey::columns : DataKey::other;
    case 8:
      return is(k, "position") ? DataKey::position : DataKey::other;
    case 10:
      return is(k, "old_record") ? DataKey::old_record : DataKey::other;
    case 16:
      return is(k, "commit_timestamp") ? DataKey::commit_timestamp : DataKey::other;
    default:
      return DataKey::other;
  }
}

}  // namespace

struct FrameReader::Impl {
  dom::parser parser;
  bool allocated = false;
  std::size_t text_size = 0;
  std::optional<dom::element> payload;

  // change()
  std::vector<std::int64_t> ids;
  detail::TapeChange tape;
  std::optional<dom::element> position;  // data.position (rtsync), when present
  bool change_ok = false;

  std::optional<FrameHead> read(Vsn vsn, std::string_view text, bool padded);
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

std::optional<FrameHead> FrameReader::Impl::read(Vsn vsn, std::string_view text, bool padded) {
  payload.reset();
  change_ok = false;
  if (!allocated) {
    if (parser.allocate(std::max<std::size_t>(text.size(), 64 * 1024), kMaxDepth)) return {};
    allocated = true;
  }
  text_size = text.size();
  dom::element root;
  // simdjson reads past the end of its input in blocks: unless the caller's buffer has the room
  // (padded), realloc_if_needed copies the text into the parser's padded buffer first. In place
  // saves that copy and its cache footprint, ~4 % of the client's time per change frame.
  if (parser.parse(text.data(), text.size(), !padded).get(root)) return {};
  return vsn == Vsn::v1 ? read_v1(root) : read_v2(root);
}

// Every return names `out`, so it is built in the caller's slot (NRVO): returning a local
// FrameHead, or nullopt from some branches, made GCC assemble the result on the stack and copy
// its 88 bytes with `rep movs` right after storing them, a stall that cost more than the rest of
// the function.
RTSYNC_FLATTEN std::optional<FrameHead> FrameReader::Impl::read_v2(dom::element root) {
  std::optional<FrameHead> out;
  if (root.type() != Type::ARRAY) return out;
  const dom::array a = as_array(root);
  dom::element items[5];
  std::size_t n = 0;
  for (auto item : a) {
    if (n == 5) break;
    items[n++] = item;
  }
  if (n < 5 || items[2].type() != Type::STRING || items[3].type() != Type::STRING ||
      items[4].type() != Type::OBJECT) {
    return out;
  }
  FrameHead& head = out.emplace();
  if (!read_ref(items[0], head.join_ref) || !read_ref(items[1], head.ref)) {
    out.reset();
    return out;
  }
  head.topic = as_view(items[2]);
  head.event = as_view(items[3]);
  payload = items[4];
  return out;
}

std::optional<FrameHead> FrameReader::Impl::read_v1(dom::element root) {
  std::optional<FrameHead> out;  // returned by name only, as in read_v2
  if (root.type() != Type::OBJECT) return out;
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
    if (slot && !take_once(*slot, field.value)) return out;
  }
  if (!topic || !event || !body || !ref || topic->type() != Type::STRING ||
      event->type() != Type::STRING || body->type() != Type::OBJECT) {
    return out;
  }
  FrameHead& head = out.emplace();
  if (!read_ref(*ref, head.ref) || (join_ref && !read_ref(*join_ref, head.join_ref))) {
    out.reset();
    return out;
  }
  head.topic = as_view(*topic);
  head.event = as_view(*event);
  payload = *body;
  return out;
}

// Flattened: simdjson's DOM accessors (get_string, get_object, iteration) are plain `inline`
// and GCC leaves them out of line; this runs for every change.
RTSYNC_FLATTEN bool FrameReader::Impl::change() {
  change_ok = false;
  if (!payload) return false;
  std::optional<dom::element> ids_e, data_e;
  const dom::object fields = as_object(*payload);
  for (auto field : fields) {
    const std::string_view key = field.key;
    if (is(key, "ids") && !take_once(ids_e, field.value)) return false;
    if (is(key, "data") && !take_once(data_e, field.value)) return false;
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
  auto& t = tape;
  t.reset();
  std::optional<dom::element> schema, table, type_e, commit_timestamp, columns_e, record,
      old_record, errors, position_e;
  const dom::object data_fields = as_object(*data_e);
  for (auto field : data_fields) {
    std::optional<dom::element>* slot = nullptr;
    switch (data_key(field.key)) {
      case DataKey::schema:
        slot = &schema;
        break;
      case DataKey::table:
        slot = &table;
        break;
      case DataKey::type:
        slot = &type_e;
        break;
      case DataKey::commit_timestamp:
        slot = &commit_timestamp;
        break;
      case DataKey::columns:
        slot = &columns_e;
        break;
      case DataKey::record:
        slot = &record;
        break;
      case DataKey::old_record:
        slot = &old_record;
        break;
      case DataKey::errors:
        slot = &errors;
        break;
      case DataKey::position:
        slot = &position_e;
        break;
      case DataKey::other:
        continue;
    }
    if (!take_once(*slot, field.value)) return false;
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
  // Read on first need (a string cell's conversion, or a copy): a callback that reads no string
  // cell never pays for the column list.
  t.columns_array = is(columns_e, Type::ARRAY) ? columns_e : std::nullopt;
  t.schema = as_view(*schema);
  t.table = as_view(*table);
  t.type = as_view(*type_e);
  t.commit_timestamp.reset();
  if (is(commit_timestamp, Type::STRING)) t.commit_timestamp = as_view(*commit_timestamp);
  t.record = record;
  t.old_record = old_record;
  t.errors = is(errors, Type::ARRAY) ? errors : std::nullopt;
  position = position_e;
  change_ok = true;
  return true;
}

// convert_record(columns, record) built straight from the text.
bool FrameReader::Impl::record_shape(dom::element rec, const json::storage_ptr& sp,
                                     json::object& out) const {
  const dom::object o = as_object(rec);
  out.reserve(o.size());
  (void)tape.column_list();  // read once: every string cell below looks its column up
  for (auto field : o) {
    const json::string_view key(field.key.data(), field.key.size());
    json::value v(sp);
    // convert_value changes only strings, so only they need their column.
    std::optional<std::string_view> type;
    if (field.value.type() == Type::STRING) type = tape.column_type(field.key);
    if (type && !type->empty() && converts_strings(*type)) {
      const auto s = as_view(field.value);
      v = convert_value(*type, json::value(json::string_view(s.data(), s.size()), sp));
    } else if (!build_value(field.value, sp, v, true)) {
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

std::optional<FrameHead> FrameReader::read(Vsn vsn, std::string_view text, bool padded) {
  return impl_->read(vsn, text, padded);
}

std::optional<ChangeHead> FrameReader::change() {
  if (!impl_->change()) return std::nullopt;
  JsonView position;
  if (impl_->position) position = detail::TapeChange::wrap(*impl_->position);
  return ChangeHead{impl_->ids, impl_->tape.type, position};
}

std::optional<ChangeView> FrameReader::view() const {
  if (!impl_->change_ok) return std::nullopt;
  return ChangeView(impl_->tape);
}

std::optional<json::object> FrameReader::client_shape() {
  auto& m = *impl_;
  if (!m.change_ok) return std::nullopt;
  auto sp = detail::make_frame_arena(m.text_size);
  json::object o(sp);
  o.reserve(7);
  const auto& t = m.tape;
  o.emplace("schema", json::string_view(t.schema.data(), t.schema.size()));
  o.emplace("table", json::string_view(t.table.data(), t.table.size()));
  if (t.commit_timestamp) {
    o.emplace("commit_timestamp",
              json::string_view(t.commit_timestamp->data(), t.commit_timestamp->size()));
  } else {
    o.emplace("commit_timestamp", nullptr);
  }
  o.emplace("eventType", json::string_view(t.type.data(), t.type.size()));
  const bool has_new = t.type == "INSERT" || t.type == "UPDATE";
  const bool has_old = t.type == "UPDATE" || t.type == "DELETE";
  auto record_value = [&](bool wanted, const std::optional<dom::element>& rec, json::object& out) {
    if (!wanted || !rec || rec->type() != Type::OBJECT) return true;
    return m.record_shape(*rec, sp, out);
  };
  json::object new_record(sp), old_record(sp);
  if (!record_value(has_new, t.record, new_record)) return std::nullopt;
  if (!record_value(has_old, t.old_record, old_record)) return std::nullopt;
  o.emplace("new", std::move(new_record));
  o.emplace("old", std::move(old_record));
  json::value errors(sp);
  if (t.errors && !build_value(*t.errors, sp, errors, true)) return std::nullopt;
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

std::optional<FrameHead> FrameReader::read(Vsn, std::string_view, bool) {
  return std::nullopt;
}

std::optional<ChangeHead> FrameReader::change() {
  return std::nullopt;
}

std::optional<json::object> FrameReader::client_shape() {
  return std::nullopt;
}

std::optional<ChangeView> FrameReader::view() const {
  return std::nullopt;
}

#endif

}  // namespace rtsync::protocol
