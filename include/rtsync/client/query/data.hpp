// Query data: an immutable JSON value whose arrays and objects are shared nodes, so that
// TanStack's structural sharing (`replaceEqualDeep`) becomes pointer identity in C++.
//
// Representation. `Data` holds null, bool, a number (int64 / uint64 / double, kept as given) or a
// string inline, or a `NodePtr` (shared_ptr<const Node>) for an array or an object. Nodes are never
// modified after construction, so a subtree can be shared by any number of values, queries and
// observers, and read from any thread.
//
// Identity. `same(a, b)` is JavaScript's `===` on the stored value: containers are the same node,
// scalars and strings are equal. Observers compare results with `same`, so "unchanged" is one
// pointer comparison however big the data is. `operator==` is deep equality (numbers by value:
// 1 == 1.0; NaN equals nothing, as in JavaScript).
//
// Structural sharing (`share`, `replace_equal_deep`). Given the previous data and the new value,
// every array or object of the new value that is deeply equal to the one at the same place in the
// previous data is replaced by the previous node; only changed branches and their ancestors are
// new. If everything is equal, the previous value itself is returned. Arrays compare by index,
// objects by key (member order of the new value is kept; a reordered but equal object keeps the old
// node, as replaceEqualDeep does). Recursion stops at depth 500: deeper values are taken as given.
//
// Objects keep member order and hold unique keys (from_json keeps Boost.JSON's); `find` is a linear
// scan — query data objects are small rows.
//
// Thread safety: immutable values; safe to share across threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "rtsync/core/json.hpp"

namespace rtsync::client::query {

class Node;
// A shared, immutable array or object.
using NodePtr = std::shared_ptr<const Node>;

// An immutable JSON value whose arrays and objects are shared nodes (see the file comment).
class Data {
 public:
  using Array = std::vector<Data>;              // the elements of an array
  using Member = std::pair<std::string, Data>;  // one member of an object
  using Object = std::vector<Member>;           // an object's members, in order

  // Scalars: null (the default), bool, integers (kept as int64 / uint64), double, string.
  Data() noexcept : v_(nullptr) {}
  Data(std::nullptr_t) noexcept : v_(nullptr) {}                              // NOLINT
  Data(bool b) noexcept : v_(b) {}                                            // NOLINT
  Data(int i) noexcept : v_(static_cast<std::int64_t>(i)) {}                  // NOLINT
  Data(long i) noexcept : v_(static_cast<std::int64_t>(i)) {}                 // NOLINT
  Data(long long i) noexcept : v_(static_cast<std::int64_t>(i)) {}            // NOLINT
  Data(unsigned u) noexcept : v_(static_cast<std::int64_t>(u)) {}             // NOLINT
  Data(unsigned long u) noexcept : v_(static_cast<std::uint64_t>(u)) {}       // NOLINT
  Data(unsigned long long u) noexcept : v_(static_cast<std::uint64_t>(u)) {}  // NOLINT
  Data(double d) noexcept : v_(d) {}                                          // NOLINT
  Data(std::string s) noexcept : v_(std::move(s)) {}                          // NOLINT
  Data(std::string_view s) : v_(std::string(s)) {}                            // NOLINT
  Data(const char* s) : v_(std::string(s)) {}                                 // NOLINT
  // An existing array or object node (shared, not copied).
  explicit Data(NodePtr node);

  // A new array / object node; from_json converts a Boost.JSON value (member order kept) and
  // to_json converts back.
  static Data array(Array items);
  static Data object(Object members);
  static Data from_json(const json::value& v);
  json::value to_json() const;
  // Compact JSON text (member order kept).
  std::string dump() const;

  // The JSON kind (int64, uint64 and double as stored), and tests for each kind.
  json::kind kind() const noexcept;
  bool is_null() const noexcept { return v_.index() == 0; }
  bool is_bool() const noexcept { return v_.index() == 1; }
  bool is_number() const noexcept { return v_.index() >= 2 && v_.index() <= 4; }
  bool is_string() const noexcept { return v_.index() == 5; }
  bool is_array() const noexcept;
  bool is_object() const noexcept;

  // Accessors return a neutral value (false, 0, "", nullptr) on a kind mismatch.
  bool as_bool() const noexcept;
  std::int64_t as_int64() const noexcept;  // doubles truncate, uint64 beyond int64 saturate
  double as_double() const noexcept;
  std::string_view as_string() const noexcept;
  const Array* if_array() const noexcept;
  const Object* if_object() const noexcept;
  // Object member by key, array element by index; nullptr when absent or of another kind.
  const Data* find(std::string_view key) const noexcept;
  const Data* at(std::size_t index) const noexcept;
  // Elements or members; 0 for scalars.
  std::size_t size() const noexcept;

  // The container node (identity), or nullptr for a scalar.
  const Node* node() const noexcept;
  const NodePtr* node_ptr() const noexcept { return std::get_if<NodePtr>(&v_); }

  // JavaScript `===` (see header).
  friend bool same(const Data& a, const Data& b) noexcept;
  // Deep equality.
  friend bool operator==(const Data& a, const Data& b) noexcept;

 private:
  std::variant<std::nullptr_t, bool, std::int64_t, std::uint64_t, double, std::string, NodePtr> v_;
};

// An immutable array or object. Thread safety: immutable; safe to share across threads.
class Node {
 public:
  // An array node / an object node.
  explicit Node(Data::Array items) : v_(std::move(items)) {}
  explicit Node(Data::Object members) : v_(std::move(members)) {}
  // Its kind, and its elements or members (nullptr for the other kind).
  bool is_array() const noexcept { return v_.index() == 0; }
  bool is_object() const noexcept { return v_.index() == 1; }
  const Data::Array* items() const noexcept { return std::get_if<0>(&v_); }
  const Data::Object* members() const noexcept { return std::get_if<1>(&v_); }

 private:
  std::variant<Data::Array, Data::Object> v_;
};

// Structural sharing of a new JSON value against the previous data (nullptr = none): builds the
// new Data, reusing every node of `prev` that is deeply equal to its counterpart (see header).
Data share(const Data* prev, const json::value& next);
// The same for a new Data value (e.g. from a set_query_data updater).
Data replace_equal_deep(const Data& prev, const Data& next);

}  // namespace rtsync::client::query
