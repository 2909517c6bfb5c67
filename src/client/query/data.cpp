#include "rtsync/client/query/data.hpp"

#include <cmath>
#include <limits>

#include "number.hpp"

namespace rtsync::client::query {

namespace {

constexpr int kMaxDepth = 500;  // replaceEqualDeep's recursion limit

// Numbers of Data and json::value in one comparable shape.
struct Num {
  bool is_double = false;
  bool is_u = false;
  double d = 0;
  std::uint64_t u = 0;
  std::int64_t i = 0;
};

std::optional<Num> num_of(const json::value& v) {
  if (v.is_int64()) return Num{false, false, 0, 0, v.get_int64()};
  if (v.is_uint64()) return Num{false, true, 0, v.get_uint64(), 0};
  if (v.is_double()) return Num{true, false, v.get_double(), 0, 0};
  return std::nullopt;
}

bool num_equal(const Num& a, const Num& b) {
  return detail::number_equal_raw(a.is_double, a.d, a.is_u, a.u, a.i, b.is_double, b.d, b.is_u, b.u,
                                  b.i);
}

}  // namespace

// ---- Data -----------------------------------------------------------------------------------

Data::Data(NodePtr node) : v_(std::move(node)) {
  if (!std::get<NodePtr>(v_)) v_ = nullptr;
}

Data Data::array(Array items) {
  return Data(std::make_shared<const Node>(std::move(items)));
}
Data Data::object(Object members) {
  return Data(std::make_shared<const Node>(std::move(members)));
}

Data Data::from_json(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return Data();
    case json::kind::bool_:
      return Data(v.get_bool());
    case json::kind::int64:
      return Data(static_cast<long long>(v.get_int64()));
    case json::kind::uint64:
      return Data(static_cast<unsigned long long>(v.get_uint64()));
    case json::kind::double_:
      return Data(v.get_double());
    case json::kind::string:
      return Data(std::string(v.get_string()));
    case json::kind::array: {
      Array items;
      items.reserve(v.get_array().size());
      for (const auto& e : v.get_array())
        items.push_back(from_json(e));
      return array(std::move(items));
    }
    case json::kind::object: {
      Object members;
      members.reserve(v.get_object().size());
      for (const auto& m : v.get_object()) {
        members.emplace_back(std::string(m.key()), from_json(m.value()));
      }
      return object(std::move(members));
    }
  }
  return Data();
}

json::value Data::to_json() const {
  switch (v_.index()) {
    case 0:
      return nullptr;
    case 1:
      return std::get<1>(v_);
    case 2:
      return std::get<2>(v_);
    case 3:
      return std::get<3>(v_);
    case 4:
      return std::get<4>(v_);
    case 5:
      return json::string(std::get<5>(v_));
    default:
      break;
  }
  const Node& n = *std::get<NodePtr>(v_);
  if (const auto* items = n.items()) {
    json::array out;
    out.reserve(items->size());
    for (const auto& e : *items)
      out.push_back(e.to_json());
    return out;
  }
  json::object out;
  out.reserve(n.members()->size());
  for (const auto& [k, e] : *n.members())
    out.insert_or_assign(k, e.to_json());
  return out;
}

std::string Data::dump() const {
  return json::serialize(to_json());
}

json::kind Data::kind() const noexcept {
  switch (v_.index()) {
    case 0:
      return json::kind::null;
    case 1:
      return json::kind::bool_;
    case 2:
      return json::kind::int64;
    case 3:
      return json::kind::uint64;
    case 4:
      return json::kind::double_;
    case 5:
      return json::kind::string;
    default:
      return std::get<NodePtr>(v_)->is_array() ? json::kind::array : json::kind::object;
  }
}

bool Data::is_array() const noexcept {
  const auto* n = std::get_if<NodePtr>(&v_);
  return n && (*n)->is_array();
}
bool Data::is_object() const noexcept {
  const auto* n = std::get_if<NodePtr>(&v_);
  return n && (*n)->is_object();
}

bool Data::as_bool() const noexcept {
  const auto* b = std::get_if<bool>(&v_);
  return b && *b;
}

std::int64_t Data::as_int64() const noexcept {
  switch (v_.index()) {
    case 2:
      return std::get<2>(v_);
    case 3: {
      const auto u = std::get<3>(v_);
      return u > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(u);
    }
    case 4: {
      const double d = std::get<4>(v_);
      if (!std::isfinite(d)) return 0;
      if (d >= 9.2e18) return INT64_MAX;
      if (d <= -9.2e18) return INT64_MIN;
      return static_cast<std::int64_t>(d);
    }
    default:
      return 0;
  }
}

double Data::as_double() const noexcept {
  switch (v_.index()) {
    case 2:
      return static_cast<double>(std::get<2>(v_));
    case 3:
      return static_cast<double>(std::get<3>(v_));
    case 4:
      return std::get<4>(v_);
    default:
      return 0;
  }
}

std::string_view Data::as_string() const noexcept {
  const auto* s = std::get_if<std::string>(&v_);
  return s ? std::string_view(*s) : std::string_view();
}

const Data::Array* Data::if_array() const noexcept {
  const auto* n = std::get_if<NodePtr>(&v_);
  return n ? (*n)->items() : nullptr;
}

const Data::Object* Data::if_object() const noexcept {
  const auto* n = std::get_if<NodePtr>(&v_);
  return n ? (*n)->members() : nullptr;
}

const Data* Data::find(std::string_view key) const noexcept {
  const auto* members = if_object();
  if (!members) return nullptr;
  for (const auto& m : *members) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

const Data* Data::at(std::size_t index) const noexcept {
  const auto* items = if_array();
  if (!items || index >= items->size()) return nullptr;
  return &(*items)[index];
}

std::size_t Data::size() const noexcept {
  if (const auto* a = if_array()) return a->size();
  if (const auto* o = if_object()) return o->size();
  return 0;
}

const Node* Data::node() const noexcept {
  const auto* n = std::get_if<NodePtr>(&v_);
  return n ? n->get() : nullptr;
}

namespace {

std::optional<Num> num_of(const Data& d) {
  switch (d.kind()) {
    case json::kind::int64:
      return Num{false, false, 0, 0, d.as_int64()};
    case json::kind::uint64: {
      json::value v = d.to_json();
      return Num{false, true, 0, v.get_uint64(), 0};
    }
    case json::kind::double_:
      return Num{true, false, d.as_double(), 0, 0};
    default:
      return std::nullopt;
  }
}

bool scalar_equal(const Data& a, const Data& b) {
  if (a.is_number() || b.is_number()) {
    auto x = num_of(a);
    auto y = num_of(b);
    return x && y && num_equal(*x, *y);
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case json::kind::null:
      return true;
    case json::kind::bool_:
      return a.as_bool() == b.as_bool();
    case json::kind::string:
      return a.as_string() == b.as_string();
    default:
      return false;
  }
}

bool scalar_equal_json(const Data& a, const json::value& b) {
  if (a.is_number() || detail::is_number(b)) {
    auto x = num_of(a);
    auto y = num_of(b);
    return x && y && num_equal(*x, *y);
  }
  switch (a.kind()) {
    case json::kind::null:
      return b.is_null();
    case json::kind::bool_:
      return b.is_bool() && a.as_bool() == b.get_bool();
    case json::kind::string:
      return b.is_string() && a.as_string() == std::string_view(b.get_string());
    default:
      return false;
  }
}

const Data* find_member(const Data::Object& members, std::size_t hint, std::string_view key) {
  if (hint < members.size() && members[hint].first == key) return &members[hint].second;
  for (const auto& m : members) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

// nullopt: `next` is deeply equal to `prev` (keep prev). Otherwise the new, shared value.
std::optional<Data> share_json(const Data& prev, const json::value& next, int depth) {
  if (depth > kMaxDepth) return Data::from_json(next);
  if (next.is_array()) {
    const auto* pa = prev.if_array();
    if (!pa) return Data::from_json(next);
    const auto& na = next.get_array();
    Data::Array out;
    bool building = false;
    auto start = [&](std::size_t upto) {
      building = true;
      out.reserve(na.size());
      for (std::size_t j = 0; j < upto; ++j)
        out.push_back((*pa)[j]);
    };
    if (pa->size() != na.size()) start(0);
    for (std::size_t i = 0; i < na.size(); ++i) {
      std::optional<Data> child =
          i < pa->size() ? share_json((*pa)[i], na[i], depth + 1) : Data::from_json(na[i]);
      if (child && !building) start(i);
      if (building) out.push_back(child ? std::move(*child) : (*pa)[i]);
    }
    if (!building) return std::nullopt;
    return Data::array(std::move(out));
  }
  if (next.is_object()) {
    const auto* po = prev.if_object();
    if (!po) return Data::from_json(next);
    const auto& no = next.get_object();
    Data::Object out;
    bool building = false;
    auto start = [&](std::size_t upto) {
      building = true;
      out.reserve(no.size());
      std::size_t j = 0;
      for (auto it = no.begin(); j < upto; ++it, ++j) {
        out.emplace_back(std::string(it->key()), *find_member(*po, j, it->key()));
      }
    };
    if (po->size() != no.size()) start(0);
    std::size_t i = 0;
    for (const auto& m : no) {
      const Data* pc = find_member(*po, i, m.key());
      std::optional<Data> child =
          pc ? share_json(*pc, m.value(), depth + 1) : Data::from_json(m.value());
      if (child && !building) start(i);
      if (building) out.emplace_back(std::string(m.key()), child ? std::move(*child) : *pc);
      ++i;
    }
    if (!building) return std::nullopt;
    return Data::object(std::move(out));
  }
  if (prev.node() == nullptr && scalar_equal_json(prev, next)) return std::nullopt;
  return Data::from_json(next);
}

std::optional<Data> share_data(const Data& prev, const Data& next, int depth) {
  if (same(prev, next)) return std::nullopt;
  if (depth > kMaxDepth) return next;
  if (const auto* na = next.if_array()) {
    const auto* pa = prev.if_array();
    if (!pa) return next;
    Data::Array out;
    bool building = false;
    auto start = [&](std::size_t upto) {
      building = true;
      out.reserve(na->size());
      for (std::size_t j = 0; j < upto; ++j)
        out.push_back((*pa)[j]);
    };
    if (pa->size() != na->size()) start(0);
    bool next_whole = true;  // every child of next kept as is (so next itself can be returned)
    for (std::size_t i = 0; i < na->size(); ++i) {
      std::optional<Data> child = i < pa->size() ? share_data((*pa)[i], (*na)[i], depth + 1)
                                                 : std::optional<Data>((*na)[i]);
      if (child && !same(*child, (*na)[i])) next_whole = false;
      if (!child) next_whole = false;
      if (child && !building) start(i);
      if (building) out.push_back(child ? std::move(*child) : (*pa)[i]);
    }
    if (!building) return std::nullopt;
    if (next_whole) return next;  // nothing of prev reused: keep next's node
    return Data::array(std::move(out));
  }
  if (const auto* no = next.if_object()) {
    const auto* po = prev.if_object();
    if (!po) return next;
    Data::Object out;
    bool building = false;
    auto start = [&](std::size_t upto) {
      building = true;
      out.reserve(no->size());
      for (std::size_t j = 0; j < upto; ++j) {
        out.emplace_back((*no)[j].first, *find_member(*po, j, (*no)[j].first));
      }
    };
    if (po->size() != no->size()) start(0);
    bool next_whole = true;
    for (std::size_t i = 0; i < no->size(); ++i) {
      const auto& [key, value] = (*no)[i];
      const Data* pc = find_member(*po, i, key);
      std::optional<Data> child =
          pc ? share_data(*pc, value, depth + 1) : std::optional<Data>(value);
      if (!child || !same(*child, value)) next_whole = false;
      if (child && !building) start(i);
      if (building) out.emplace_back(key, child ? std::move(*child) : *pc);
    }
    if (!building) return std::nullopt;
    if (next_whole) return next;
    return Data::object(std::move(out));
  }
  if (prev.node() == nullptr && scalar_equal(prev, next)) return std::nullopt;
  return next;
}

}  // namespace

bool same(const Data& a, const Data& b) noexcept {
  if (a.v_.index() != b.v_.index()) return false;
  switch (a.v_.index()) {
    case 0:
      return true;
    case 1:
      return std::get<1>(a.v_) == std::get<1>(b.v_);
    case 2:
      return std::get<2>(a.v_) == std::get<2>(b.v_);
    case 3:
      return std::get<3>(a.v_) == std::get<3>(b.v_);
    case 4:
      return std::get<4>(a.v_) == std::get<4>(b.v_);
    case 5:
      return std::get<5>(a.v_) == std::get<5>(b.v_);
    default:
      return std::get<NodePtr>(a.v_) == std::get<NodePtr>(b.v_);
  }
}

bool operator==(const Data& a, const Data& b) noexcept {
  if (a.node() && a.node() == b.node()) return true;
  if (const auto* x = a.if_array()) {
    const auto* y = b.if_array();
    if (!y || x->size() != y->size()) return false;
    for (std::size_t i = 0; i < x->size(); ++i) {
      if (!((*x)[i] == (*y)[i])) return false;
    }
    return true;
  }
  if (const auto* x = a.if_object()) {
    const auto* y = b.if_object();
    if (!y || x->size() != y->size()) return false;
    std::size_t i = 0;
    for (const auto& [k, v] : *x) {
      const Data* other = find_member(*y, i++, k);
      if (!other || !(v == *other)) return false;
    }
    return true;
  }
  if (b.node()) return false;
  return scalar_equal(a, b);
}

Data share(const Data* prev, const json::value& next) {
  if (!prev) return Data::from_json(next);
  auto changed = share_json(*prev, next, 0);
  return changed ? std::move(*changed) : *prev;
}

Data replace_equal_deep(const Data& prev, const Data& next) {
  auto changed = share_data(prev, next, 0);
  return changed ? std::move(*changed) : prev;
}

}  // namespace rtsync::client::query
