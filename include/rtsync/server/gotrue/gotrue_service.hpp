// /auth/v1: the GoTrue-compatible subset @supabase/auth-js and rtsync's AuthClient use.
//
//   POST /signup                           {email, password[, data]} → a session (users are
//                                          confirmed at once on this server)
//   POST /token?grant_type=password        {email, password} → a session
//   POST /token?grant_type=refresh_token   {refresh_token} → a session; the token used is revoked
//                                          (rotation); presenting a revoked token again revokes
//                                          its whole session (reuse detection)
//   GET  /user                             Bearer access token → the user
//   POST /logout?scope=global|local|others Bearer access token → 204, refresh tokens revoked
//   GET  /health, GET /settings
//   GET  /.well-known/jwks.json            the public keys access tokens are signed with
//                                          ({"keys":[]} while tokens are HS256)
//
// Sessions are GoTrue's shape: {access_token, token_type:"bearer", expires_in, expires_at,
// refresh_token, user}. Access tokens are HS256 (ES256 with `signing_key`, the header naming its
// kid) with sub, role "authenticated", aud
// "authenticated", session_id, email, exp = now + access_token_ttl (time from the injected
// Scheduler's wall clock). Passwords are bcrypt (pgcrypto) in auth.users; a wrong password and an
// unknown email get the same answer after the same work (one bcrypt either way).
//
// Errors: GoTrue's JSON — {"code":"<error_code>","message":…} when the request carries
// X-Supabase-Api-Version ≥ 2024-01-01 (auth-js does), else
// {"code":<status>,"error_code":…,"msg":…}.
//
// Thread safety: confined to the io_context thread of its DbPool and Scheduler.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/http/http_service.hpp"
#include "rtsync/server/pg/db_pool.hpp"

namespace rtsync::server::gotrue {

struct GoTrueOptions {
  std::string prefix = "/auth/v1";
  std::string jwt_secret;  // the project's HS256 secret (the same one the realtime server checks)
  // Sign access tokens ES256 with this key instead of HS256 (nullptr: HS256).
  std::shared_ptr<const auth::EcSigningKey> signing_key;
  // Keys Bearer tokens are also verified with (RS256/ES256), as the realtime server does.
  std::shared_ptr<const auth::KeyRing> keys;
  std::chrono::seconds access_token_ttl{3600};
  std::string issuer = "rtsync";  // the `iss` claim
  std::size_t min_password_length = 6;
  // Each request's transaction runs with this statement_timeout (as RestOptions's): a statement
  // still running then — typically one waiting on a row lock — is cancelled and the request
  // answered 500, so no request holds a pool connection for long. Zero leaves the role's own.
  std::chrono::milliseconds statement_timeout{8000};
};

class GoTrueService final : public http::HttpService {
 public:
  GoTrueService(std::shared_ptr<pg::DbPool> pool, core::Scheduler& clock, GoTrueOptions options);
  ~GoTrueService() override;

  bool matches(std::string_view path) const override;
  void handle(http::HttpRequest request, std::function<void(http::HttpResponse)> done) override;

  std::uint64_t sign_ins() const noexcept { return sign_ins_; }
  std::uint64_t refreshes() const noexcept { return refreshes_; }

 private:
  struct Call;
  void signup(std::shared_ptr<Call> call);
  void password_grant(std::shared_ptr<Call> call);
  void refresh_grant(std::shared_ptr<Call> call);
  void get_user(std::shared_ptr<Call> call);
  void logout(std::shared_ptr<Call> call);
  // pool_->execute under options_.statement_timeout.
  void run(std::vector<pg::Statement> batch, pg::AsyncConnection::BatchCallback done,
           pg::Retry retry = pg::Retry::if_not_committed);
  // Builds the session answer from a row (user json, refresh token, session id).
  void reply_session(Call& call, std::string_view user_json, std::string refresh_token,
                     std::string session_id);

  std::shared_ptr<pg::DbPool> pool_;
  core::Scheduler& clock_;
  GoTrueOptions options_;
  auth::JwtVerifier verifier_;
  std::uint64_t sign_ins_ = 0;
  std::uint64_t refreshes_ = 0;
  std::shared_ptr<bool> alive_;
};

}  // namespace rtsync::server::gotrue
