// AuthClient — GoTrue calls (/auth/v1, as rtsync's server and Supabase serve them): password
// sign-up and sign-in, refresh-token grant, current user, sign-out.
//
// Errors: GoTrue's refusals (wrong credentials, unknown/used refresh token, bad or expired access
// token) are Errc::unauthorized with GoTrue's message ("HTTP 400 invalid_credentials: Invalid
// login credentials"); validation failures (weak password, bad email, existing user) are
// Errc::invalid_argument; 5xx, 408 and 429 (the rate limiter: over_request_rate_limit) answers are
// Errc::remote; transport failures keep HttpClient's codes.
// So a refresh that fails with Errc::unauthorized means "this session is over" (AuthSession signs
// out), anything else "try again later".
//
// Thread safety: as HttpClient — one io_context thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/net/http_client.hpp"

namespace rtsync::client::rest {

// A GoTrue session.
struct AuthTokens {
  std::string access_token;     // the JWT to send as Bearer / realtime access_token
  std::string refresh_token;    // single-use token for the next refresh
  std::string token_type;       // "bearer"
  std::int64_t expires_in = 0;  // seconds
  std::int64_t expires_at = 0;  // Unix seconds
  std::string user_id;          // user.id
  json::value user;             // GoTrue's user object
};

// Parses GoTrue's session JSON. Errc::invalid_frame when a field is missing.
Result<AuthTokens> parse_auth_tokens(const json::value& body);

// Settings of an AuthClient.
struct AuthClientOptions {
  std::string api_key;              // the project's anon key, sent as `apikey`
  std::string prefix = "/auth/v1";  // path of the GoTrue API under the HttpClient's base URL
};

// GoTrue requests over an HttpClient (errors and thread safety: the file comment). Each call
// reports once through its callback.
class AuthClient {
 public:
  // Receives the new session or the error.
  using TokensCallback = std::function<void(Result<AuthTokens>)>;

  // `http` must outlive the AuthClient.
  AuthClient(net::HttpClient& http, AuthClientOptions options);

  // POST /signup: creates the user and signs in.
  void sign_up(std::string_view email, std::string_view password, TokensCallback done);
  // POST /token?grant_type=password.
  void sign_in_with_password(std::string_view email, std::string_view password,
                             TokensCallback done);
  // POST /token?grant_type=refresh_token: a new session; the old refresh token is used up.
  void refresh(std::string_view refresh_token, TokensCallback done);
  // GET /user: the user the access token belongs to.
  void get_user(std::string_view access_token, std::function<void(Result<json::value>)> done);
  // scope: "global" (every session of the user), "local" (this one), "others".
  void sign_out(std::string_view access_token, std::function<void(Result<void>)> done,
                std::string_view scope = "global");

 private:
  void post_tokens(std::string target, json::object body, TokensCallback done);
  net::Headers headers(std::string_view bearer) const;

  net::HttpClient& http_;
  AuthClientOptions options_;
};

}  // namespace rtsync::client::rest
