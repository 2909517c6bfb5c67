// Realtime's REST broadcast API, served through the HTTP seam (rtsync/server/http/http_service.hpp)
// like /rest/v1 and /auth/v1, so the listener carries no realtime protocol logic:
//   POST /realtime/v1/api/broadcast, /api/broadcast        batch: {"messages":[{topic, event,
//                                                           payload (object), private?, id?}]}
//   POST …/api/broadcast/<topic>/events/<event>[?private=true]   one message; the body is the
//                                                           payload (JSON, else a JSON string)
// Answers: 202 (empty) once every message went to the Hub or was skipped; 401
// {"message":"Unauthorized"} unless the caller's token (`Authorization: Bearer`, else the `apikey`
// header or query parameter) verifies with role service_role or authenticated; 405 for a method
// other than POST; 404 for a malformed single-message path; 422 for a batch without messages or
// with a bad one, or with a payload above RealtimeLimits::max_broadcast_payload_bytes (413 for a
// single message). Public messages go out at once. A private message (`"private": true`, or
// `?private=true`) goes out only if the caller's token may INSERT into realtime.messages for its
// topic (extension 'broadcast'), asked of the Hub's ChannelAuthorizer once per topic of the
// request; the others, and all of them when the check fails or there is no authorizer, are
// skipped silently (still 202, as Supabase Realtime; counted as rtsync_channel_auth_refusals_total
// reason `rest_write`, or `database`). The answer waits for those checks.
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
