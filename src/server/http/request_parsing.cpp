#include "rtsync/server/http/request_parsing.hpp"

#include "rtsync/core/strings.hpp"

namespace rtsync::server::http {

std::optional<std::string> request_token(const HttpRequest& request) {
  if (auto token = core::bearer_token(request.header("authorization"))) return std::string(*token);
  std::string_view key = request.header("apikey");
  if (!key.empty()) return std::string(key);
  return std::nullopt;
}

std::optional<std::string> url_decode(std::string_view text, bool plus_is_space) {
  return core::percent_decode(text, plus_is_space);
}

std::optional<std::vector<std::pair<std::string, std::string>>> split_query(
    std::string_view raw, std::string_view* bad_part) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t start = 0;
  while (start <= raw.size()) {
    std::size_t end = raw.find('&', start);
    if (end == std::string_view::npos) end = raw.size();
    std::string_view part = raw.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;
    const std::size_t eq = part.find('=');
    auto key = url_decode(part.substr(0, eq));
    auto value =
        url_decode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
    if (!key || !value) {
      if (bad_part) *bad_part = part;
      return std::nullopt;
    }
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

std::optional<std::string> query_param(const HttpRequest& request, std::string_view key) {
  auto pairs = split_query(request.query);
  if (!pairs) return std::nullopt;
  for (auto& [k, v] : *pairs) {
    if (k == key) return std::move(v);
  }
  return std::nullopt;
}

}  // namespace rtsync::server::http
