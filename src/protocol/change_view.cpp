#include "rtsync/protocol/change_view.hpp"

#include "json_text.hpp"
#include "rtsync/protocol/postgres_changes.hpp"
#include "tape_change.hpp"

#if RTSYNC_HAVE_SIMDJSON
#include <charconv>
#include <cmath>
#endif

namespace rtsync::protocol {

namespace {

const json::value& null_value() {
  static const json::value v;
  return v;
}

const json::object& empty_object() {
  static const json::object o;
  return o;
}

using detail::sv;

// Keys are short: comparing in line beats a memcmp call per candidate of the same length.
inline bool same_key(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

std::string_view string_field(const json::object& o, std::string_view key) {
  if (const auto* v = o.if_contains(key); v && v->is_string()) return sv(v->get_string());
  return {};
}

}  // namespace

#if RTSYNC_HAVE_SIMDJSON

namespace detail {

namespace {

using Type = dom::element_type;

std::string_view as_view(dom::element e) {
  return e.get_string().value_unsafe();
}

// A double both parsers read identically: shortest form ≤ 15 significant digits and decimal
// exponent in [-4, 15]. Zeros decline: Boost.JSON 1.81 reads 0e400 as NaN, and the text behind a
// zero double cannot be told apart here.
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

}  // namespace

bool build_value(dom::element e, const json::storage_ptr& sp, json::value& out,
                 bool exact_doubles_only) {
  switch (e.type()) {
    case Type::OBJECT: {
      const dom::object o = e.get_object().value_unsafe();
      auto& obj = out.emplace_object();
      obj.reserve(o.size());
      for (auto field : o) {
        json::value v(sp);
        if (!build_value(field.value, sp, v, exact_doubles_only)) return false;
        obj.insert_or_assign(json::string_view(field.key.data(), field.key.size()), std::move(v));
      }
      return true;
    }
    case Type::ARRAY: {
      const dom::array a = e.get_array().value_unsafe();
      auto& arr = out.emplace_array();
      arr.reserve(a.size());
      for (auto item : a) {
        arr.emplace_back(nullptr);
        if (!build_value(item, sp, arr.back(), exact_doubles_only)) return false;
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
      if (exact_doubles_only && !exact_double(d)) return false;
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

template <class F>
void TapeChange::for_each_column(F&& f) const {
  if (!columns_array) return;
  const dom::array items = columns_array->get_array().value_unsafe();
  for (auto c : items) {
    if (c.type() != Type::OBJECT) continue;
    std::optional<dom::element> name, type;
    const dom::object fields = c.get_object().value_unsafe();
    for (auto field : fields) {
      // Only "name" and "type" matter (the last of a repeated one): compare them as four bytes.
      if (field.key.size() != 4) continue;
      if (std::memcmp(field.key.data(), "name", 4) == 0) name = field.value;
      if (std::memcmp(field.key.data(), "type", 4) == 0) type = field.value;
    }
    if (!name || name->type() != Type::STRING || !type || type->type() != Type::STRING) continue;
    if (!f(as_view(*name), as_view(*type))) return;
  }
}

const std::vector<ColumnView>& TapeChange::column_list() const {
  if (columns_read) return columns;
  columns_read = true;
  for_each_column([&](std::string_view name, std::string_view type) {
    columns.push_back({name, type});
    return true;
  });
  return columns;
}

std::optional<std::string_view> TapeChange::column_type(std::string_view column) const {
  if (columns_read) {
    for (const auto& c : columns) {
      if (same_key(c.name, column)) return c.type;
    }
    return std::nullopt;
  }
  // One lookup need not read the whole list: the first well-formed entry with that name, as in
  // the list (and in convert_record's search of parse_change_event's list).
  std::optional<std::string_view> found;
  for_each_column([&](std::string_view name, std::string_view type) {
    if (!same_key(name, column)) return true;
    found = type;
    return false;
  });
  return found;
}

RTSYNC_FLATTEN JsonView TapeChange::cell(std::string_view column, dom::element value) const {
  // convert_value changes only strings, so only they need their column.
  if (value.type() != Type::STRING) return wrap(value);
  const auto type = column_type(column);
  if (!type || type->empty() || !converts_strings(*type)) return wrap(value);
  // Asked again (find, for_each, to_object, another binding): the same converted value.
  Converted entry{};
  std::memcpy(entry.element, &value, sizeof value);
  for (const auto& done : converted_at) {
    if (std::memcmp(done.element, entry.element, sizeof entry.element) == 0) {
      return JsonView(*done.value);
    }
  }
  const auto s = as_view(value);
  converted.push_back(convert_value(*type, json::value(json::string_view(s.data(), s.size()))));
  entry.value = &converted.back();
  converted_at.push_back(entry);
  return JsonView(converted.back());
}

}  // namespace detail

using detail::TapeChange;
using Type = simdjson::dom::element_type;

#endif  // RTSYNC_HAVE_SIMDJSON

// ---- JsonView ----------------------------------------------------------------------------------

JsonKind JsonView::kind() const noexcept {
  if (rep_ == Rep::dom) {
    switch (dom_->kind()) {
      case json::kind::null:
        return JsonKind::null;
      case json::kind::bool_:
        return JsonKind::boolean;
      case json::kind::int64:
        return JsonKind::int64;
      case json::kind::uint64:
        return JsonKind::uint64;
      case json::kind::double_:
        return JsonKind::number;
      case json::kind::string:
        return JsonKind::string;
      case json::kind::array:
        return JsonKind::array;
      case json::kind::object:
        return JsonKind::object;
    }
  }
#if RTSYNC_HAVE_SIMDJSON
  if (rep_ == Rep::tape) {
    switch (TapeChange::unwrap(*this).type()) {
      case Type::NULL_VALUE:
        return JsonKind::null;
      case Type::BOOL:
        return JsonKind::boolean;
      case Type::INT64:
        return JsonKind::int64;
      case Type::UINT64:
        return JsonKind::uint64;
      case Type::DOUBLE:
        return JsonKind::number;
      case Type::STRING:
        return JsonKind::string;
      case Type::ARRAY:
        return JsonKind::array;
      case Type::OBJECT:
        return JsonKind::object;
    }
  }
#endif
  return JsonKind::null;
}

std::optional<bool> JsonView::as_bool() const noexcept {
  if (rep_ == Rep::dom) {
    if (const auto* b = dom_->if_bool()) return *b;
    return std::nullopt;
  }
#if RTSYNC_HAVE_SIMDJSON
  if (rep_ == Rep::tape) {
    const auto e = TapeChange::unwrap(*this);
    if (e.type() == Type::BOOL) return e.get_bool().value_unsafe();
  }
#endif
  return std::nullopt;
}

std::optional<std::int64_t> JsonView::as_int64() const noexcept {
  switch (kind()) {
    case JsonKind::int64:
      if (rep_ == Rep::dom) return dom_->get_int64();
#if RTSYNC_HAVE_SIMDJSON
      return TapeChange::unwrap(*this).get_int64().value_unsafe();
#endif
      break;
    case JsonKind::uint64: {
      std::uint64_t u = 0;
      if (rep_ == Rep::dom) u = dom_->get_uint64();
#if RTSYNC_HAVE_SIMDJSON
      if (rep_ == Rep::tape) u = TapeChange::unwrap(*this).get_uint64().value_unsafe();
#endif
      if (u <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(u);
      break;
    }
    default:
      break;
  }
  return std::nullopt;
}

std::optional<double> JsonView::as_double() const noexcept {
  if (rep_ == Rep::dom) {
    if (dom_->is_number()) return dom_->to_number<double>();
    return std::nullopt;
  }
#if RTSYNC_HAVE_SIMDJSON
  if (rep_ == Rep::tape) {
    const auto e = TapeChange::unwrap(*this);
    switch (e.type()) {
      case Type::INT64:
        return static_cast<double>(e.get_int64().value_unsafe());
      case Type::UINT64:
        return static_cast<double>(e.get_uint64().value_unsafe());
      case Type::DOUBLE:
        return e.get_double().value_unsafe();
      default:
        break;
    }
  }
#endif
  return std::nullopt;
}

std::optional<std::string_view> JsonView::as_string() const noexcept {
  if (rep_ == Rep::dom) {
    if (const auto* s = dom_->if_string()) return sv(*s);
    return std::nullopt;
  }
#if RTSYNC_HAVE_SIMDJSON
  if (rep_ == Rep::tape) {
    const auto e = TapeChange::unwrap(*this);
    if (e.type() == Type::STRING) return e.get_string().value_unsafe();
  }
#endif
  return std::nullopt;
}

RTSYNC_FLATTEN std::optional<JsonView> JsonView::find(std::string_view key) const noexcept {
  if (rep_ == Rep::dom) {
    // Boost.JSON keeps one value per key (the last one written).
    if (const auto* o = dom_->if_object()) {
      if (const auto* v = o->if_contains(key)) return JsonView(*v);
    }
    return std::nullopt;
  }
#if RTSYNC_HAVE_SIMDJSON
  if (rep_ == Rep::tape) {
    const auto e = TapeChange::unwrap(*this);
    if (e.type() != Type::OBJECT) return std::nullopt;
    const simdjson::dom::object o = e.get_object().value_unsafe();
    // The match is kept as a bare element and wrapped once: assigning the optional<JsonView> in
    // the loop left it in pieces (byte and 16-byte stores) that the return then reloaded whole,
    // a store-forwarding stall that was a quarter of this function's time.
    simdjson::dom::element found;
    bool have = false;
    for (auto field : o) {
      if (same_key(field.key, key)) {
        found = field.value;
        have = true;
      }
    }
    if (!have) return std::nullopt;
    return TapeChange::wrap(found);
  }
#endif
  return std::nullopt;
}

std::optional<JsonView> JsonView::at(std::size_t index) const noexcept {
  if (rep_ == Rep::dom) {
    if (const auto* a = dom_->if_array(); a && index < a->size()) return JsonView((*a)[index]);
    return std::nullopt;
  }
#if RTSYNC_HAVE_SIMDJSON
  if (rep_ == Rep::tape) {
    const auto e = TapeChange::unwrap(*this);
    if (e.type() != Type::ARRAY) return std::nullopt;
    const simdjson::dom::array a = e.get_array().value_unsafe();
    for (auto item : a) {
      if (index-- == 0) return TapeChange::wrap(item);
    }
  }
#endif
  return std::nullopt;
}

std::size_t JsonView::size() const noexcept {
  if (rep_ == Rep::dom) {
    if (const auto* o = dom_->if_object()) return o->size();
    if (const auto* a = dom_->if_array()) return a->size();
    return 0;
  }
#if RTSYNC_HAVE_SIMDJSON
  if (rep_ == Rep::tape) {
    const auto e = TapeChange::unwrap(*this);
    std::size_t n = 0;
    // size() saturates at 0xFFFFFF; counting is exact.
    // Named, not ranged over directly: value_unsafe() of a temporary result would dangle.
    if (e.type() == Type::OBJECT) {
      const simdjson::dom::object o = e.get_object().value_unsafe();
      for ([[maybe_unused]] auto field : o)
        ++n;
    } else if (e.type() == Type::ARRAY) {
      const simdjson::dom::array a = e.get_array().value_unsafe();
      for ([[maybe_unused]] auto item : a)
        ++n;
    }
    return n;
  }
#endif
  return 0;
}

void JsonView::visit_members(void* ctx, MemberFn fn) const {
  if (rep_ == Rep::dom) {
    if (const auto* o = dom_->if_object()) {
      for (const auto& kv : *o)
        fn(ctx, std::string_view(kv.key().data(), kv.key().size()), JsonView(kv.value()));
    }
    return;
  }
#if RTSYNC_HAVE_SIMDJSON
  if (rep_ == Rep::tape) {
    const auto e = TapeChange::unwrap(*this);
    if (e.type() != Type::OBJECT) return;
    const simdjson::dom::object o = e.get_object().value_unsafe();
    for (auto field : o)
      fn(ctx, field.key, TapeChange::wrap(field.value));
  }
#endif
}

void JsonView::visit_items(void* ctx, ItemFn fn) const {
  if (rep_ == Rep::dom) {
    if (const auto* a = dom_->if_array()) {
      for (const auto& item : *a)
        fn(ctx, JsonView(item));
    }
    return;
  }
#if RTSYNC_HAVE_SIMDJSON
  if (rep_ == Rep::tape) {
    const auto e = TapeChange::unwrap(*this);
    if (e.type() != Type::ARRAY) return;
    const simdjson::dom::array a = e.get_array().value_unsafe();
    for (auto item : a)
      fn(ctx, TapeChange::wrap(item));
  }
#endif
}

json::value JsonView::to_value(json::storage_ptr sp) const {
  if (rep_ == Rep::dom) return json::value(*dom_, std::move(sp));
  json::value out(sp);
#if RTSYNC_HAVE_SIMDJSON
  if (rep_ == Rep::tape) detail::build_value(TapeChange::unwrap(*this), sp, out, false);
#endif
  return out;
}

// ---- RowView -----------------------------------------------------------------------------------

std::size_t RowView::size() const noexcept {
  if (dom_) return dom_->size();
  return record_.size();
}

std::optional<JsonView> RowView::find(std::string_view column) const {
  if (dom_) {
    if (const auto* v = dom_->if_contains(column)) return JsonView(*v);
    return std::nullopt;
  }
#if RTSYNC_HAVE_SIMDJSON
  if (tape_) {
    auto raw = record_.find(column);
    if (!raw) return std::nullopt;
    return tape_->cell(column, TapeChange::unwrap(*raw));
  }
#endif
  return std::nullopt;
}

void RowView::visit(void* ctx, ColumnFn fn) const {
  if (dom_) {
    for (const auto& kv : *dom_)
      fn(ctx, std::string_view(kv.key().data(), kv.key().size()), JsonView(kv.value()));
    return;
  }
#if RTSYNC_HAVE_SIMDJSON
  if (tape_) {
    // Every string cell looks its column up: read the list once instead of scanning per cell.
    (void)tape_->column_list();
    const simdjson::dom::object o = TapeChange::unwrap(record_).get_object().value_unsafe();
    for (auto field : o)
      fn(ctx, field.key, tape_->cell(field.key, field.value));
  }
#endif
}

json::object RowView::to_object(json::storage_ptr sp) const {
  json::object out(sp);
  out.reserve(size());
  for_each([&](std::string_view column, JsonView value) {
    out.insert_or_assign(column, value.to_value(sp));
  });
  return out;
}

// ---- ChangeView --------------------------------------------------------------------------------

ChangeView::ChangeView(const json::object& client_shape) noexcept : dom_(&client_shape) {}

std::string_view ChangeView::schema() const noexcept {
#if RTSYNC_HAVE_SIMDJSON
  if (tape_) return tape_->schema;
#endif
  return string_field(*dom_, "schema");
}

std::string_view ChangeView::table() const noexcept {
#if RTSYNC_HAVE_SIMDJSON
  if (tape_) return tape_->table;
#endif
  return string_field(*dom_, "table");
}

std::string_view ChangeView::event_type() const noexcept {
#if RTSYNC_HAVE_SIMDJSON
  if (tape_) return tape_->type;
#endif
  return string_field(*dom_, "eventType");
}

std::optional<std::string_view> ChangeView::commit_timestamp() const noexcept {
#if RTSYNC_HAVE_SIMDJSON
  if (tape_) return tape_->commit_timestamp;
#endif
  if (const auto* v = dom_->if_contains("commit_timestamp"); v && v->is_string()) {
    return sv(v->get_string());
  }
  return std::nullopt;
}

RowView ChangeView::new_record() const {
#if RTSYNC_HAVE_SIMDJSON
  if (tape_) return tape_->row(tape_->record, tape_->type == "INSERT" || tape_->type == "UPDATE");
#endif
  if (const auto* v = dom_->if_contains("new"); v && v->is_object())
    return RowView(v->get_object());
  return RowView(empty_object());
}

RowView ChangeView::old_record() const {
#if RTSYNC_HAVE_SIMDJSON
  if (tape_) {
    return tape_->row(tape_->old_record, tape_->type == "UPDATE" || tape_->type == "DELETE");
  }
#endif
  if (const auto* v = dom_->if_contains("old"); v && v->is_object())
    return RowView(v->get_object());
  return RowView(empty_object());
}

JsonView ChangeView::errors() const {
#if RTSYNC_HAVE_SIMDJSON
  if (tape_) return tape_->errors ? TapeChange::wrap(*tape_->errors) : JsonView(null_value());
#endif
  if (const auto* v = dom_->if_contains("errors")) return JsonView(*v);
  return JsonView(null_value());
}

json::object ChangeView::to_object(json::storage_ptr sp) const {
  if (dom_) return json::object(*dom_, std::move(sp));
  json::object o(sp);
  o.reserve(7);
  o.emplace("schema", schema());
  o.emplace("table", table());
  if (auto ts = commit_timestamp()) {
    o.emplace("commit_timestamp", *ts);
  } else {
    o.emplace("commit_timestamp", nullptr);
  }
  o.emplace("eventType", event_type());
  o.emplace("new", new_record().to_object(sp));
  o.emplace("old", old_record().to_object(sp));
  o.emplace("errors", errors().to_value(sp));
  return o;
}

}  // namespace rtsync::protocol
