// Reading what the services behind the HTTP listener share: the caller's token and the query
// string. Pure functions over http::HttpRequest (http_service.hpp).
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rtsync/server/http/http_service.hpp"

namespace rtsync::server::http {

// The token of `Authorization: Bearer <token>` (scheme case-insensitive, blanks trimmed), else
// the `apikey` header (as Supabase's gateway accepts), else nullopt.
std::optional<std::string> request_token(const HttpRequest& request);

// application/x-www-form-urlencoded decoding ('+' is a space unless `plus_is_space` is false).
// nullopt on a bad %-escape.
std::optional<std::string> url_decode(std::string_view text, bool plus_is_space = true);

// Splits `a=1&b=2` into decoded (key, value) pairs in order; empty parts are skipped. nullopt
// when a part has a bad %-escape; `bad_part`, when given, then receives that part (as written).
std::optional<std::vector<std::pair<std::string, std::string>>> split_query(
    std::string_view raw, std::string_view* bad_part = nullptr);

// The first query parameter named `key`, decoded; nullopt when absent or undecodable.
std::optional<std::string> query_param(const HttpRequest& request, std::string_view key);

}  // namespace rtsync::server::http
