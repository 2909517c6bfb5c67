// Small HTTP helpers shared by the REST and auth services (internal).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "rtsync/server/rest/http_service.hpp"

namespace rtsync::server::rest::detail {

bool iequals(std::string_view a, std::string_view b) noexcept;

// The token of `Authorization: Bearer <token>`, else the `apikey` header (as Supabase's gateway
// accepts), else nullopt.
std::optional<std::string> request_token(const HttpRequest& request);

// A response with a body and its Content-Type, plus the CORS headers browsers need.
HttpResponse make_response(int status, std::string body,
                           std::string_view content_type = "application/json; charset=utf-8");
// The answer to a CORS preflight (OPTIONS).
HttpResponse preflight_response();

}  // namespace rtsync::server::rest::detail
