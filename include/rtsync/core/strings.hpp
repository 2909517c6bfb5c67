// Text helpers every layer shares: ASCII case-insensitive comparison, HTTP whitespace trimming,
// bearer-token extraction and percent-encoding. One definition each, so that a header name, an
// `Authorization` value or a query string is read the same way by the client, the REST layer and
// the realtime server.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rtsync::core {

/// ASCII lowercase of `c`; other bytes unchanged.
constexpr char to_lower_ascii(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// True when `a` and `b` are equal ignoring ASCII case (header names, tokens such as
/// "websocket", "Bearer"); bytes outside ASCII compare exactly.
bool iequals(std::string_view a, std::string_view b) noexcept;

/// True when `s` starts with `prefix`, ignoring ASCII case.
bool istarts_with(std::string_view s, std::string_view prefix) noexcept;

/// `s` without leading and trailing spaces and tabs (HTTP's optional whitespace).
std::string_view trim_blanks(std::string_view s) noexcept;

/// The token of an `Authorization: Bearer <token>` value: the scheme matched case-insensitively,
/// the token trimmed of blanks. nullopt for another scheme or an empty token.
std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept;

/// Percent-encodes every byte except RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~),
/// with uppercase hex digits: a value safe in a path segment or a query component.
std::string percent_encode(std::string_view text);

/// Decodes `%XX` escapes (either case), and `+` as a space when `plus_is_space` (form and query
/// encoding). nullopt when a `%` is not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space = false);

}  // namespace rtsync::core
