#include "rtsync/client/rest/auth_client.hpp"

#include "rtsync/client/rest/postgrest_query.hpp"
#include "rtsync/client/rest/rest_client.hpp"

namespace rtsync::client::rest {
namespace {

// GoTrue answers a refused credential or token with 400/401/403/404 and a code naming it; those
// mean "not signed in" to the caller. Validation failures are the caller's input.
Error auth_error(const Error& http_error, int status, std::string_view code) {
  // The server could not or would not look at the request now — down, or its rate limiter (429,
  // error_code over_request_rate_limit): nothing was refused, a later try may pass.
  if (status >= 500 || status == 408 || status == 429) {
    return make_error(Errc::remote, http_error.message);
  }
  if (code == "weak_password" || code == "validation_failed" || code == "user_already_exists" ||
      code == "email_exists" || code == "bad_json" || code == "unsupported_grant_type" ||
      status == 422) {
    return make_error(Errc::invalid_argument, http_error.message);
  }
  return make_error(Errc::unauthorized, http_error.message);
}

// Converts an HTTP answer into JSON or an auth error.
Result<json::value> auth_json(Result<net::HttpResult> response) {
  if (!response) return response.error();
  const int status = response->status;
  std::string code;
  if (status >= 300) {
    if (auto body = core::parse_json(response->body); body && body->is_object()) {
      if (auto c = core::find_string(body.value(), "error_code")) {
        code = std::string(*c);
      } else if (auto c2 = core::find_string(body.value(), "code")) {
        code = std::string(*c2);
      }
    }
  }
  auto r = to_rest_result(std::move(response), false);
  if (!r) return status >= 300 ? auth_error(r.error(), status, code) : r.error();
  return std::move(r.value().data);
}

}  // namespace

Result<AuthTokens> parse_auth_tokens(const json::value& body) {
  auto access = core::find_string(body, "access_token");
  auto refresh = core::find_string(body, "refresh_token");
  auto expires_in = core::find_int(body, "expires_in");
  const json::value* user = core::find(body, "user");
  if (!access || !refresh || !expires_in || !user || !user->is_object()) {
    return make_error(Errc::invalid_frame,
                      "not a GoTrue session (access_token, refresh_token, "
                      "expires_in and user are required)");
  }
  AuthTokens t;
  t.access_token = std::string(*access);
  t.refresh_token = std::string(*refresh);
  t.token_type = std::string(core::find_string(body, "token_type").value_or("bearer"));
  t.expires_in = *expires_in;
  t.expires_at = core::find_int(body, "expires_at").value_or(0);
  t.user = *user;
  t.user_id = std::string(core::find_string(*user, "id").value_or(""));
  return t;
}

AuthClient::AuthClient(net::HttpClient& http, AuthClientOptions options)
    : http_(http), options_(std::move(options)) {}

net::Headers AuthClient::headers(std::string_view bearer) const {
  net::Headers h;
  h.emplace_back("apikey", options_.api_key);
  h.emplace_back("Authorization",
                 "Bearer " + std::string(bearer.empty() ? options_.api_key : bearer));
  h.emplace_back("X-Supabase-Api-Version", "2024-01-01");
  h.emplace_back("Content-Type", "application/json");
  return h;
}

void AuthClient::post_tokens(std::string target, json::object body, TokensCallback done) {
  http_.request("POST", std::move(target), headers({}), json::serialize(body),
                [done = std::move(done)](Result<net::HttpResult> r) {
                  auto body = auth_json(std::move(r));
                  if (!body) return done(body.error());
                  done(parse_auth_tokens(body.value()));
                });
}

void AuthClient::sign_up(std::string_view email, std::string_view password, TokensCallback done) {
  post_tokens(options_.prefix + "/signup", json::object{{"email", email}, {"password", password}},
              std::move(done));
}

void AuthClient::sign_in_with_password(std::string_view email, std::string_view password,
                                       TokensCallback done) {
  post_tokens(options_.prefix + "/token?grant_type=password",
              json::object{{"email", email}, {"password", password}}, std::move(done));
}

void AuthClient::refresh(std::string_view refresh_token, TokensCallback done) {
  post_tokens(options_.prefix + "/token?grant_type=refresh_token",
              json::object{{"refresh_token", refresh_token}}, std::move(done));
}

void AuthClient::get_user(std::string_view access_token,
                          std::function<void(Result<json::value>)> done) {
  http_.request(
      "GET", options_.prefix + "/user", headers(access_token), {},
      [done = std::move(done)](Result<net::HttpResult> r) { done(auth_json(std::move(r))); });
}

void AuthClient::sign_out(std::string_view access_token, std::function<void(Result<void>)> done,
                          std::string_view scope) {
  http_.request("POST", options_.prefix + "/logout?scope=" + PostgrestQuery::encode(scope),
                headers(access_token), {}, [done = std::move(done)](Result<net::HttpResult> r) {
                  auto body = auth_json(std::move(r));
                  if (!body) return done(body.error());
                  done(Result<void>());
                });
}

}  // namespace rtsync::client::rest
