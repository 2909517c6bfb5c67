#include "rtsync/server/gotrue/gotrue_service.hpp"

#include <algorithm>
#include <chrono>

#include "rtsync/core/json.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/strings.hpp"
#include "rtsync/server/http/request_parsing.hpp"
#include "rtsync/server/pg/connection.hpp"

namespace rtsync::server::gotrue {
namespace {

using http::HttpRequest;
using http::HttpResponse;

std::shared_ptr<spdlog::logger> logger() {
  return log::get("GoTrue");
}

// A bcrypt hash of a throwaway password: unknown emails are checked against it so that they cost
// the same bcrypt as a wrong password.
constexpr const char* kDummyHash = "$2a$06$nFfvji2oQVAGqcvwNNZ0yuvVHn.dChkKhBG8d0aV2B5XP0P0vcz3e";

// The user as GoTrue returns it, built by PostgreSQL from a row `u` of auth.users.
constexpr const char* kUserJson = R"sql(json_build_object(
  'id', u.id, 'aud', u.aud, 'role', u.role, 'email', u.email,
  'email_confirmed_at', u.email_confirmed_at, 'phone', '', 'confirmed_at', u.email_confirmed_at,
  'last_sign_in_at', u.last_sign_in_at, 'app_metadata', u.raw_app_meta_data,
  'user_metadata', u.raw_user_meta_data, 'identities', '[]'::json, 'created_at', u.created_at,
  'updated_at', u.updated_at, 'is_anonymous', false)::text)sql";

// Opaque refresh tokens: 244 random bits from PostgreSQL's strong random source.
constexpr const char* kNewToken =
    "replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')";

std::string signup_sql() {
  return std::string(R"sql(
WITH u AS (
  INSERT INTO auth.users (email, encrypted_password, email_confirmed_at, last_sign_in_at,
                          raw_user_meta_data)
  VALUES (lower($1), auth.hash_password($2), now(), now(), coalesce($3::jsonb, '{}'))
  RETURNING *),
t AS (
  INSERT INTO auth.refresh_tokens (token, user_id, session_id)
  SELECT )sql") +
         kNewToken + R"sql(, u.id, gen_random_uuid() FROM u
  RETURNING token, session_id)
SELECT )sql" +
         kUserJson + R"sql(, t.token, t.session_id FROM u, t)sql";
}

// The bcrypt check runs in a materialized step for the one candidate row (or the dummy hash), so
// an unknown email costs what a wrong password costs.
std::string password_sql() {
  return std::string(R"sql(
WITH checked AS MATERIALIZED (
  SELECT c.id, auth.check_password($2, coalesce(c.encrypted_password, $3)) AS ok
    FROM (SELECT 1) one
    LEFT JOIN auth.users c ON c.email = lower($1)),
u AS (
  UPDATE auth.users SET last_sign_in_at = now(), updated_at = now()
   WHERE id = (SELECT id FROM checked WHERE ok AND id IS NOT NULL)
  RETURNING *),
t AS (
  INSERT INTO auth.refresh_tokens (token, user_id, session_id)
  SELECT )sql") +
         kNewToken + R"sql(, u.id, gen_random_uuid() FROM u
  RETURNING token, session_id)
SELECT )sql" +
         kUserJson + R"sql(, t.token, t.session_id FROM u, t)sql";
}

// Rotation: the presented token is revoked and its child issued, atomically. A token that was
// already revoked is either the parent of the session's active token — the client never got the
// answer that rotated it (a connection lost after the commit) — and then gets that active token
// again, as GoTrue does; or it is older, someone replayed it, and its whole session is revoked.
std::string refresh_sql() {
  return std::string(R"sql(
WITH old AS (
  UPDATE auth.refresh_tokens SET revoked = true, updated_at = now()
   WHERE token = $1 AND NOT revoked
  RETURNING user_id, session_id, token),
fresh AS (
  INSERT INTO auth.refresh_tokens (token, user_id, session_id, parent)
  SELECT )sql") +
         kNewToken + R"sql(, old.user_id, old.session_id, old.token FROM old
  RETURNING token, session_id, user_id),
again AS (
  SELECT c.token, c.session_id, c.user_id
    FROM auth.refresh_tokens p
    JOIN auth.refresh_tokens c ON c.parent = p.token AND c.session_id = p.session_id
   WHERE p.token = $1 AND p.revoked AND NOT c.revoked),
issued AS (SELECT * FROM fresh UNION ALL SELECT * FROM again),
reused AS (
  UPDATE auth.refresh_tokens r SET revoked = true, updated_at = now()
   WHERE NOT r.revoked AND NOT EXISTS (SELECT 1 FROM again)
     AND r.session_id IN (SELECT session_id FROM auth.refresh_tokens WHERE token = $1 AND revoked)
  RETURNING 1)
SELECT (SELECT )sql" +
         kUserJson + R"sql( FROM issued JOIN auth.users u ON u.id = issued.user_id),
       (SELECT token FROM issued), (SELECT session_id FROM issued),
       EXISTS (SELECT 1 FROM auth.refresh_tokens WHERE token = $1),
       (SELECT count(*) FROM reused))sql";
}

struct AuthFailure {
  int status;
  std::string error_code;
  std::string message;
};

bool valid_email(std::string_view e) {
  if (e.size() < 3 || e.size() > 255) return false;
  const std::size_t at = e.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= e.size() ||
      e.find('@', at + 1) != std::string_view::npos)
    return false;
  for (char c : e) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '<' || c == '>' || c == ',')
      return false;
  }
  return e.find('.', at) != std::string_view::npos;
}

std::int64_t unix_seconds(core::WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

struct GoTrueService::Call {
  HttpRequest req;
  std::function<void(HttpResponse)> done;
  json::value body;  // a JSON object (find_* take a value: keep one, not a converted copy)
  bool new_error_shape = false;  // X-Supabase-Api-Version >= 2024-01-01

  void reply(HttpResponse r) {
    r.headers.emplace_back("X-Supabase-Api-Version", "2024-01-01");
    auto cb = std::move(done);
    done = nullptr;
    if (cb) cb(std::move(r));
  }
  void fail(const AuthFailure& f, json::object extra = {}) {
    json::object o;
    if (new_error_shape) {
      o["code"] = f.error_code;
      o["message"] = f.message;
    } else {
      o["code"] = f.status;
      o["error_code"] = f.error_code;
      o["msg"] = f.message;
    }
    for (auto& kv : extra)
      o[kv.key()] = kv.value();
    if (f.status >= 500) {
      logger()->warn("{} {} → {} {}", req.method, req.target, f.status, f.message);
    } else {
      logger()->debug("{} {} → {} {}", req.method, req.target, f.status, f.message);
    }
    reply(http::make_response(f.status, json::serialize(o)));
  }
  void db_error(const Error& e) {
    logger()->warn("{} {}: database error: {}", req.method, req.target, e.describe());
    fail(AuthFailure{500, "unexpected_failure", "Database error"});
  }
};

GoTrueService::GoTrueService(std::shared_ptr<pg::DbPool> pool, core::Scheduler& clock,
                             GoTrueOptions options)
    : pool_(std::move(pool)),
      clock_(clock),
      options_(std::move(options)),
      verifier_(options_.jwt_secret, options_.keys),
      alive_(std::make_shared<bool>(true)) {}

GoTrueService::~GoTrueService() = default;

void GoTrueService::run(std::vector<pg::Statement> batch, pg::AsyncConnection::BatchCallback done,
                        pg::Retry retry) {
  // Results are read from the back of the batch, so the setting goes in front of it.
  if (options_.statement_timeout.count() > 0) {
    static const std::string kTimeout = "SELECT set_config('statement_timeout', $1, true)";
    batch.insert(
        batch.begin(),
        pg::Statement{kTimeout, {std::to_string(options_.statement_timeout.count())}, {}, true});
  }
  pool_->execute(std::move(batch), std::move(done), retry);
}

bool GoTrueService::matches(std::string_view path) const {
  const std::string_view p = options_.prefix;
  return path == p ||
         (path.size() > p.size() && path.substr(0, p.size()) == p && path[p.size()] == '/');
}

void GoTrueService::handle(HttpRequest request, std::function<void(HttpResponse)> done) {
  if (request.method == "OPTIONS") return done(http::preflight_response());
  auto call = std::make_shared<Call>();
  call->req = std::move(request);
  call->done = std::move(done);
  const std::string_view version = call->req.header("x-supabase-api-version");
  call->new_error_shape = version.size() == 10 && version >= "2024-01-01";

  std::string_view route = std::string_view(call->req.target).substr(options_.prefix.size());
  while (route.size() > 1 && route.back() == '/')
    route.remove_suffix(1);
  const std::string& method = call->req.method;

  if (method == "POST" && (route == "/signup" || route == "/token")) {
    if (call->req.body.size() > 64 * 1024) {
      return call->fail(AuthFailure{413, "request_too_large", "Request body too large"});
    }
    auto parsed = core::parse_json(call->req.body.empty() ? "{}" : call->req.body);
    if (!parsed || !parsed.value().is_object()) {
      return call->fail(AuthFailure{400, "bad_json", "Could not parse request body as JSON"});
    }
    call->body = std::move(parsed).value();
  }

  if (route == "/signup" && method == "POST") return signup(call);
  if (route == "/token" && method == "POST") {
    std::string grant;
    if (auto pairs = http::split_query(call->req.query)) {
      for (auto& [k, v] : pairs.value()) {
        if (k == "grant_type") grant = v;
      }
    }
    if (grant == "password") return password_grant(call);
    if (grant == "refresh_token") return refresh_grant(call);
    return call->fail(AuthFailure{400, "unsupported_grant_type",
                                  "unsupported_grant_type: use password or refresh_token"});
  }
  if (route == "/user" && method == "GET") return get_user(call);
  if (route == "/logout" && method == "POST") return logout(call);
  if (route == "/.well-known/jwks.json" && method == "GET") {
    json::array keys;
    if (options_.signing_key) keys.push_back(options_.signing_key->public_jwk());
    auto response = http::make_response(200, json::serialize(json::object{{"keys", keys}}));
    // Verifiers cache the set; a rotation is picked up within ten minutes.
    response.headers.emplace_back("Cache-Control", "public, max-age=600");
    return call->reply(std::move(response));
  }
  if (route == "/health" && method == "GET") {
    return call->reply(http::make_response(
        200, R"({"version":"rtsync","name":"GoTrue","description":"rtsync auth subset"})"));
  }
  if (route == "/settings" && method == "GET") {
    return call->reply(http::make_response(
        200, R"({"external":{"email":true,"phone":false},"disable_signup":false,)"
             R"("mailer_autoconfirm":true,"phone_autoconfirm":false,"sms_provider":""})"));
  }
  return call->fail(
      AuthFailure{404, "not_found", "Not found: " + method + " " + std::string(route)});
}

void GoTrueService::signup(std::shared_ptr<Call> call) {
  const auto email = core::find_string(call->body, "email");
  const auto password = core::find_string(call->body, "password");
  if (!email || !valid_email(*email)) {
    return call->fail(
        AuthFailure{400, "validation_failed", "Unable to validate email address: invalid format"});
  }
  if (!password || password->empty()) {
    return call->fail(AuthFailure{422, "validation_failed", "Signup requires a valid password"});
  }
  if (password->size() > 72) {  // bcrypt reads 72 bytes; more would be silently ignored
    return call->fail(
        AuthFailure{422, "validation_failed", "Password cannot be longer than 72 characters"});
  }
  if (password->size() < options_.min_password_length) {
    json::object extra;
    extra["weak_password"] = json::object{{"reasons", json::array{"length"}}};
    return call->fail(
        AuthFailure{422, "weak_password",
                    "Password should be at least " + std::to_string(options_.min_password_length) +
                        " characters."},
        std::move(extra));
  }
  pg::Param meta;
  if (const auto* data = core::find_object(call->body, "data")) meta = json::serialize(*data);
  std::vector<pg::Statement> batch;
  batch.push_back(
      pg::Statement{signup_sql(), {std::string(*email), std::string(*password), meta}, {}, true});
  run(std::move(batch),
      [this, call, weak = std::weak_ptr<bool>(alive_)](Result<std::vector<pg::PgResult>> r) {
        if (weak.expired()) return;
        if (!r) {
          if (pg::sqlstate_of(r.error()) == "23505") {
            return call->fail(AuthFailure{422, "user_already_exists", "User already registered"});
          }
          return call->db_error(r.error());
        }
        const pg::PgResult& res = r.value().back();
        if (res.rows() != 1) return call->db_error(make_error(Errc::internal, "signup: no row"));
        ++sign_ins_;
        reply_session(*call, res.value(0, 0), std::string(res.value(0, 1)),
                      std::string(res.value(0, 2)));
      });
}

void GoTrueService::password_grant(std::shared_ptr<Call> call) {
  const auto email = core::find_string(call->body, "email");
  const auto password = core::find_string(call->body, "password");
  if (!email || !password || email->empty() || password->empty()) {
    return call->fail(AuthFailure{400, "validation_failed", "missing email or phone"});
  }
  std::vector<pg::Statement> batch;
  batch.push_back(
      pg::Statement{password_sql(),
                    {std::string(*email), std::string(*password), std::string(kDummyHash)},
                    {},
                    true});
  run(std::move(batch),
      [this, call, weak = std::weak_ptr<bool>(alive_)](Result<std::vector<pg::PgResult>> r) {
        if (weak.expired()) return;
        if (!r) return call->db_error(r.error());
        const pg::PgResult& res = r.value().back();
        if (res.rows() != 1) {
          return call->fail(AuthFailure{400, "invalid_credentials", "Invalid login credentials"});
        }
        ++sign_ins_;
        reply_session(*call, res.value(0, 0), std::string(res.value(0, 1)),
                      std::string(res.value(0, 2)));
      });
}

void GoTrueService::refresh_grant(std::shared_ptr<Call> call) {
  const auto token = core::find_string(call->body, "refresh_token");
  if (!token || token->empty()) {
    return call->fail(AuthFailure{400, "validation_failed", "refresh_token required"});
  }
  std::vector<pg::Statement> batch;
  batch.push_back(pg::Statement{refresh_sql(), {std::string(*token)}, {}, true});
  run(std::move(batch),
      [this, call, weak = std::weak_ptr<bool>(alive_)](Result<std::vector<pg::PgResult>> r) {
        if (weak.expired()) return;
        if (!r) return call->db_error(r.error());
        const pg::PgResult& res = r.value().back();
        if (res.rows() != 1) return call->db_error(make_error(Errc::internal, "refresh: no row"));
        if (res.is_null(0, 1)) {
          const bool known = res.value(0, 3) == "t";
          if (!known) {
            return call->fail(AuthFailure{400, "refresh_token_not_found",
                                          "Invalid Refresh Token: Refresh Token Not Found"});
          }
          if (res.value(0, 4) != "0") {
            logger()->warn("refresh token reused: session revoked ({} tokens)", res.value(0, 4));
          }
          return call->fail(AuthFailure{400, "refresh_token_already_used",
                                        "Invalid Refresh Token: Already Used"});
        }
        ++refreshes_;
        reply_session(*call, res.value(0, 0), std::string(res.value(0, 1)),
                      std::string(res.value(0, 2)));
      });
}

void GoTrueService::reply_session(Call& call, std::string_view user_json, std::string refresh_token,
                                  std::string session_id) {
  auto user = core::parse_json(user_json);
  if (!user || !user.value().is_object()) {
    return call.db_error(make_error(Errc::internal, "user row is not JSON"));
  }
  const json::object& u = user.value().get_object();
  const std::int64_t now = unix_seconds(clock_.wall_now());
  const std::int64_t ttl = options_.access_token_ttl.count();
  json::object claims;
  claims["aud"] = "authenticated";
  claims["exp"] = now + ttl;
  claims["iat"] = now;
  claims["iss"] = options_.issuer;
  claims["sub"] = u.at("id");
  claims["email"] = u.at("email");
  claims["phone"] = "";
  claims["app_metadata"] = u.at("app_metadata");
  claims["user_metadata"] = u.at("user_metadata");
  claims["role"] = "authenticated";
  claims["aal"] = "aal1";
  claims["amr"] = json::array{json::object{{"method", "password"}, {"timestamp", now}}};
  claims["session_id"] = session_id;
  claims["is_anonymous"] = false;

  json::object session;
  session["access_token"] = options_.signing_key ? auth::sign_es256(claims, *options_.signing_key)
                                                 : auth::sign_hs256(claims, options_.jwt_secret);
  session["token_type"] = "bearer";
  session["expires_in"] = ttl;
  session["expires_at"] = now + ttl;
  session["refresh_token"] = std::move(refresh_token);
  session["user"] = std::move(user.value());
  call.reply(http::make_response(200, json::serialize(session)));
}

namespace {

// The verified claims of the request's bearer token, or the GoTrue failure to answer.
std::variant<auth::VerifiedJwt, AuthFailure> bearer_claims(const HttpRequest& req,
                                                           const auth::JwtVerifier& verifier,
                                                           core::WallTime now) {
  const auto token = core::bearer_token(req.header("authorization"));
  if (!token) {
    return AuthFailure{401, "no_authorization", "This endpoint requires a valid Bearer token"};
  }
  auto v = verifier.verify(*token, now);
  if (!v.ok()) {
    return AuthFailure{403, "bad_jwt",
                       "invalid JWT: unable to parse or verify signature, " + v.error().message};
  }
  const json::value* sub = v.value().claims.if_contains("sub");
  if (!sub || !sub->is_string() || sub->get_string().empty()) {
    return AuthFailure{403, "bad_jwt", "invalid claim: missing sub claim"};
  }
  return std::move(v.value());
}

}  // namespace

void GoTrueService::get_user(std::shared_ptr<Call> call) {
  auto claims = bearer_claims(call->req, verifier_, clock_.wall_now());
  if (auto* f = std::get_if<AuthFailure>(&claims)) return call->fail(*f);
  const auto& jwt = std::get<auth::VerifiedJwt>(claims);
  std::string sub(jwt.claims.at("sub").get_string());
  std::vector<pg::Statement> batch;
  // The cast happens in SQL only for a well-formed uuid: a malformed sub is "no such user".
  batch.push_back(pg::Statement{
      std::string("SELECT ") + kUserJson + " FROM auth.users u WHERE u.id::text = lower($1)",
      {std::move(sub)},
      {}});
  run(
      std::move(batch),
      [call, weak = std::weak_ptr<bool>(alive_)](Result<std::vector<pg::PgResult>> r) {
        if (weak.expired()) return;
        if (!r) return call->db_error(r.error());
        const pg::PgResult& res = r.value().back();
        if (res.rows() != 1) {
          return call->fail(
              AuthFailure{403, "user_not_found", "User from sub claim in JWT does not exist"});
        }
        call->reply(http::make_response(200, std::string(res.value(0, 0))));
      },
      pg::Retry::idempotent);  // a read
}

void GoTrueService::logout(std::shared_ptr<Call> call) {
  auto claims = bearer_claims(call->req, verifier_, clock_.wall_now());
  if (auto* f = std::get_if<AuthFailure>(&claims)) return call->fail(*f);
  const auto& jwt = std::get<auth::VerifiedJwt>(claims);
  std::string scope = "global";
  if (auto pairs = http::split_query(call->req.query)) {
    for (auto& [k, v] : pairs.value()) {
      if (k == "scope") scope = v;
    }
  }
  if (scope != "global" && scope != "local" && scope != "others") {
    return call->fail(
        AuthFailure{400, "validation_failed", "Unsupported logout scope \"" + scope + "\""});
  }
  const std::string sub(jwt.claims.at("sub").get_string());
  const json::value* sid = jwt.claims.if_contains("session_id");
  const std::string session(sid && sid->is_string() ? std::string_view(sid->get_string()) : "");
  std::string sql =
      "UPDATE auth.refresh_tokens SET revoked = true, updated_at = now() "
      "WHERE NOT revoked AND user_id::text = lower($1)";
  if (scope == "local") sql += " AND session_id::text = $2";
  if (scope == "others") sql += " AND session_id::text <> $2";
  std::vector<pg::Statement> batch;
  batch.push_back(pg::Statement{
      std::move(sql),
      scope == "global" ? std::vector<pg::Param>{sub} : std::vector<pg::Param>{sub, session},
      {}});
  run(std::move(batch),
      [call, weak = std::weak_ptr<bool>(alive_)](Result<std::vector<pg::PgResult>> r) {
        if (weak.expired()) return;
        if (!r) return call->db_error(r.error());
        call->reply(http::make_response(204, ""));
      });
}

}  // namespace rtsync::server::gotrue
