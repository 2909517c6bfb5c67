// The postgres_changes filter grammar (docs/protocol.md §3.4), the portable single-condition
// form: `column=op.value` with op ∈ {eq, neq, lt, lte, gt, gte, in}; `in` takes a parenthesised
// list `in.(a,b,"c,d")` of at most 100 values, double quotes allowing commas, backslash escapes.
//
// Evaluation follows Postgres comparison of the column's type: numbers compare numerically, text
// as text (byte order, like the C collation), booleans as booleans; a null column value never
// matches (SQL three-valued logic), nor does a value that cannot be read as the column's type.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::protocol {

enum class FilterOp { eq, neq, lt, lte, gt, gte, in };

std::string_view to_string(FilterOp op) noexcept;

inline constexpr std::size_t kMaxInValues = 100;

struct Filter {
  std::string column;
  FilterOp op = FilterOp::eq;
  std::vector<std::string> values;  // one value, or the `in` list

  friend bool operator==(const Filter&, const Filter&) = default;
};

// Errors (invalid_filter, with a message saying what): missing '=', empty column, unknown
// operator, missing '.', `in` without parentheses, unterminated quote, more than 100 values.
// Details: the column is everything before the first '='; a single value is taken verbatim
// (dots, commas, quotes included; may be empty). `in` items are bare (trimmed of surrounding
// white space like a Postgres array literal, never empty, no unescaped quote) or double-quoted
// (anything, backslash escapes the next character); `in.()` is the empty list. Only the single
// condition form is understood (no `not.`, no AND-ed lists).
Result<Filter> parse_filter(std::string_view text);
// Prints the canonical form; parse_filter(print_filter(f)) == f. Values that contain a comma,
// parenthesis, quote, backslash or surrounding space (or are empty) are quoted inside `in`
// lists. A non-`in` filter prints its first value only.
std::string print_filter(const Filter& f);

// Comparison type of a column, from its pg typname.
enum class ValueKind { number, text, boolean };
ValueKind value_kind(std::string_view typname);

// True iff row[column] satisfies the filter. `kind` says how to compare; if nullopt it is
// inferred from the JSON value (number → number, bool → boolean, else text). A missing column is
// false. Numbers (JSON numbers or numeric text, incl. NaN/±Infinity in Postgres order) compare as
// exact decimals — int8 beyond 2^53 and long numerics included; text compares bytewise (typed
// values compared as text use their JSON text); booleans read Postgres literals (t/true/yes/on/1,
// f/false/no/off/0, any case) with false < true. An `in` element that cannot be read as the kind
// is skipped. Thread safety: pure.
bool filter_matches(const Filter& f, const json::object& row,
                    std::optional<ValueKind> kind = std::nullopt);

}  // namespace rtsync::protocol
