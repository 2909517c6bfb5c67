#include "rtsync/client/session_binding.hpp"

namespace rtsync::client {

sync::Session to_session(const rest::AuthTokens& tokens, core::WallTime now) {
  sync::Session s;
  s.access_token = tokens.access_token;
  s.refresh_token = tokens.refresh_token;
  s.user_id = tokens.user_id;
  if (tokens.expires_at > 0) {
    s.expires_at = core::WallTime{std::chrono::seconds(tokens.expires_at)};
  } else if (tokens.expires_in > 0) {
    s.expires_at = now + std::chrono::seconds(tokens.expires_in);
  }
  return s;
}

sync::Refresher auth_refresher(rest::AuthClient& auth, core::Scheduler& scheduler) {
  return [&auth, &scheduler](const sync::Session& current, sync::RefreshDone done) {
    auth.refresh(current.refresh_token,
                 [&scheduler, done = std::move(done)](Result<rest::AuthTokens> r) {
                   if (!r) return done(r.error());
                   done(to_session(r.value(), scheduler.wall_now()));
                 });
  };
}

core::Subscription bind_rest_token(sync::AuthSession& session, rest::RestClient& rest) {
  if (const auto& s = session.get_session()) rest.set_access_token(s->access_token);
  return session.on_token([&rest](const std::string& token) { rest.set_access_token(token); });
}

}  // namespace rtsync::client
