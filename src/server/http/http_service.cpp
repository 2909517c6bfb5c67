#include "rtsync/server/http/http_service.hpp"

namespace rtsync::server::http {

HttpService::~HttpService() = default;

std::string_view HttpRequest::header(std::string_view lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string_view() : std::string_view(it->second);
}

std::string_view HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
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

}  // namespace rtsync::server::http
