#include "rtsync/server/http/request_parsing.hpp"

namespace rtsync::server::http {

std::optional<std::string> request_token(const HttpRequest& request) {
  std::string_view auth = request.header("authorization");
  while (!auth.empty() && auth.front() == ' ')
    auth.remove_prefix(1);
  if (auth.size() > 7 && iequals(auth.substr(0, 7), "bearer ")) {
    std::string_view t = auth.substr(7);
    while (!t.empty() && t.front() == ' ')
      t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ')
      t.remove_suffix(1);
    if (!t.empty()) return std::string(t);
  }
  std::string_view key = request.header("apikey");
  if (!key.empty()) return std::string(key);
  return std::nullopt;
}

std::optional<std::string> url_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex(text[i + 1]);
      const int lo = hex(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
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
