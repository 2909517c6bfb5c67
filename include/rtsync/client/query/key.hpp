// Query keys: JSON arrays identified by TanStack Query's hash (`hashKey`), matched by its
// `partialMatchKey` rules.
//
// Hash. The text TanStack Query's `hashKey` produces: `JSON.stringify` of the key with every object
// rebuilt from its sorted keys, so `[{"b":2,"a":1}]` and `[{"a":1,"b":2}]` both hash to
// `[{"a":1,"b":2}]`. Members print in JavaScript's property order: names that are array indices
// ("0" … "4294967294", no leading zero) first in numeric order, then the others in
// `Array.prototype.sort` order (UTF-16 code units): `{"10":1,"2":2,"a":3}` hashes to
// `{"2":2,"10":1,"a":3}`. Numbers print as JavaScript prints them (1.0 → `1`, 1e21 → `1e+21`,
// 0.1 → `0.1`, -0 → `0`); strings escape `"`, `\` and control characters as JSON.stringify does
// (\b \f \n \r \t, others as lowercase \u00xx) and keep every other byte. One deviation, outside
// what JavaScript can express: integers beyond ±2^53 print exactly. The printer is
// core::canonical_json (rtsync/core/json.hpp), which the server uses too.
// tests/conformance/query_key_conformance_test.cpp compares these hashes with @tanstack/query-core.
//
// Normalisation. A key is stored with its numbers normalised (uint64 ≤ INT64_MAX and integral
// doubles within ±2^53 become int64; -0 becomes 0), so `["p",1]` and `["p",1.0]` are one key, as
// in JavaScript where they are one number.
//
// Matching (`partial_match(a, b)`: does key `a` match filter `b`?). Arrays match as a prefix (b no
// longer than a, every element of b matching the element of a at the same position, recursively);
// objects match as a subset (every member of b present in a and matching, extra members of a
// allowed); numbers compare by value whatever their representation; any other pair compares by
// kind and value; a kind mismatch (null vs object, array vs object, "1" vs 1) is false. Exact
// matching compares hashes.
//
// Bad input. `QueryKey::make` / `parse` reject a value that is not an array, or that contains NaN
// or ±infinity (JSON has no such numbers; JSON.stringify would print them as null and silently
// merge keys), with Errc::invalid_argument naming the offending position. The literal constructor
// (`QueryKey{"tasks", 1}`) cannot receive a non-array; a non-finite number in it is replaced by
// null — JSON.stringify's outcome — and logged ("[QueryCache] query key …") so the mistake shows.
//
// Thread safety: QueryKey is an immutable value; copies share one representation and may be read
// from any thread.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::client::query {

// partialMatchKey(a, b): true when `a` matches the (partial) filter `b`. See the header comment.
bool partial_match(const json::value& a, const json::value& b);

// Splits the canonical text of an array (as produced by core::canonical_json) into the canonical
// texts of its elements, without parsing. Returns an empty vector for "[]"; behaviour is undefined
// for text that is not canonical.
std::vector<std::string_view> split_canonical_array(std::string_view canonical);

// A query key: a JSON array with its canonical hash (core::canonical_json), immutable and cheap
// to copy (shared). Thread safety: immutable; safe to share across threads.
class QueryKey {
 public:
  // The empty key `[]` (matches every query as a partial filter).
  QueryKey();
  // A literal key: `QueryKey{"tasks", "paginated", project_id, 1, 50}`.
  QueryKey(std::initializer_list<json::value_ref> elements);  // NOLINT: literal keys read naturally
  // From an array; a non-finite number anywhere in it becomes null and is logged (see header).
  explicit QueryKey(json::array elements);

  // Checked construction: a JSON array without non-finite numbers.
  static Result<QueryKey> make(const json::value& key);
  // Parses JSON text, then as make().
  static Result<QueryKey> parse(std::string_view text);

  // The normalised elements.
  const json::array& elements() const noexcept { return rep_->elements; }
  // The canonical hash, e.g. `["tasks","paginated","p1",1,50]`.
  const std::string& hash() const noexcept { return rep_->hash; }
  // Element count, emptiness, element `i` (unchecked), and the key as a JSON array.
  std::size_t size() const noexcept { return rep_->elements.size(); }
  bool empty() const noexcept { return rep_->elements.empty(); }
  const json::value& operator[](std::size_t i) const { return rep_->elements[i]; }
  json::value to_json() const { return json::value(rep_->elements); }

  // partial_match(elements(), filter.elements()).
  bool matches(const QueryKey& filter) const;

  // Same hash: the same query.
  friend bool operator==(const QueryKey& a, const QueryKey& b) noexcept {
    return a.rep_ == b.rep_ || a.rep_->hash == b.rep_->hash;
  }

 private:
  struct Rep {
    json::array elements;
    std::string hash;
  };
  explicit QueryKey(std::shared_ptr<const Rep> rep) : rep_(std::move(rep)) {}
  static std::shared_ptr<const Rep> build(json::array elements);

  std::shared_ptr<const Rep> rep_;
};

}  // namespace rtsync::client::query
