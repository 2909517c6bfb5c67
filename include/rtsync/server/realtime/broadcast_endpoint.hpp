// Realtime's REST broadcast API, served through the HTTP seam (rtsync/server/http/http_service.hpp)
// like /rest/v1 and /auth/v1, so the listener carries no realtime protocol logic:
//   POST /realtime/v1/api/broadcast, /api/broadcast        batch: {"messages":[{topic, event,
//                                                           payload (object), private?, id?}]}
//   POST …/api/broadcast/<topic>/events/<event>[?private=true]   one message; the body is the
//                                                           payload (JSON, else a JSON string)
// Answers: 202 (empty) once every message went to the Hub; 401 {"message":"Unauthorized"} unless
// the caller's token (`Authorization: Bearer`, else the `apikey` header or query parameter)
// verifies with role service_role or authenticated; 405 for a method other than POST; 404 for a
// malformed single-message path; 422 for a batch without messages or with a bad one, or with a
// payload above RealtimeLimits::max_broadcast_payload_bytes (413 for a single message). Private
// topics need realtime.messages policies this server does not evaluate yet: only service_role may
// write to them; other callers' private messages are skipped (still 202, as the reference).
//
// Thread safety: confined to the Hub's loop thread, like the Hub.
#pragma once

#include <functional>
#include <string_view>

#include "rtsync/server/http/http_service.hpp"
#include "rtsync/server/realtime/hub.hpp"

namespace rtsync::server::realtime {

class BroadcastEndpoint final : public http::HttpService {
 public:
  explicit BroadcastEndpoint(Hub& hub) : hub_(hub) {}

  bool matches(std::string_view path) const override;
  void handle(http::HttpRequest request, std::function<void(http::HttpResponse)> done) override;

 private:
  Hub& hub_;
};

}  // namespace rtsync::server::realtime
