#include "http_util.hpp"

namespace rtsync::server::rest {

HttpService::~HttpService() = default;

std::string_view HttpRequest::header(std::string_view lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string_view() : std::string_view(it->second);
}

std::string_view HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (detail::iequals(k, name)) return v;
  }
  return {};
}

namespace detail {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

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

HttpResponse make_response(int status, std::string body, std::string_view content_type) {
  HttpResponse r;
  r.status = status;
  if (!body.empty() || status != 204) r.headers.emplace_back("Content-Type", content_type);
  r.headers.emplace_back("Access-Control-Allow-Origin", "*");
  r.headers.emplace_back("Access-Control-Expose-Headers", "Content-Range, Content-Location");
  r.body = std::move(body);
  return r;
}

HttpResponse preflight_response() {
  HttpResponse r;
  r.status = 200;
  r.headers = {
      {"Access-Control-Allow-Origin", "*"},
      {"Access-Control-Allow-Methods", "GET, HEAD, POST, PATCH, DELETE, OPTIONS"},
      {"Access-Control-Allow-Headers",
       "Authorization, apikey, Content-Type, Prefer, Range, Range-Unit, Accept-Profile, "
       "Content-Profile, X-Client-Info, X-Supabase-Api-Version"},
      {"Access-Control-Max-Age", "86400"},
  };
  return r;
}

}  // namespace detail
}  // namespace rtsync::server::rest
