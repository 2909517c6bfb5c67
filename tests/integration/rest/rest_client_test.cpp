// The client's REST layer over real HTTP against the real services: the PostgREST query builder,
// RestClient results and errors, AuthClient's GoTrue calls, keep-alive and its retry, deadlines and
// cancellation, and AuthSession driven by the AuthClient refresher.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "client_fixture.hpp"
#include "integration/test_ca.hpp"
#include "rtsync/client/rest/postgrest_query.hpp"
#include "rtsync/client/session_binding.hpp"
#include "rtsync/client/sync/auth_session.hpp"

namespace rtsync::test {

using rtsync::testing::TestCa;
namespace {

using client::rest::AuthTokens;
using client::rest::PostgrestQuery;
using client::rest::RestResult;
using net::HttpResult;

TEST(PostgrestQueryTest, BuildsTheTargetPostgrestJsWould) {
  PostgrestQuery q("tasks");
  q.select("id,status")
      .eq("project_id", "p 1")
      .in("status", {"Queued", "In Progress", "a,b"})
      .is_null("output_location")
      .not_("attempts", "in", "(1,2)")
      .order("created_at", false)
      .order("id", true, false)
      .range(50, 99)
      .count_exact();
  EXPECT_EQ(q.target(),
            "/rest/v1/tasks?select=id%2Cstatus&project_id=eq.p%201"
            "&status=in.%28Queued%2CIn%20Progress%2C%22a%2Cb%22%29&output_location=is.null"
            "&attempts=not.in.%281%2C2%29&order=created_at.desc%2Cid.asc.nullslast"
            "&offset=50&limit=50");
  EXPECT_TRUE(q.counted());
  EXPECT_EQ(PostgrestQuery::list({"x\"y", " lead", "", "plain"}), R"(("x\"y"," lead","",plain))");
  EXPECT_EQ(PostgrestQuery("t").target(), "/rest/v1/t?select=%2A");
}

class RestClientTest : public ClientStack {};

TEST_F(RestClientTest, SelectWithFiltersOrderRangeAndCount) {
  seed();
  rest->set_access_token(mint("authenticated", kUserA));
  PostgrestQuery q("tasks");
  q.select("id,status")
      .eq("project_id", std::string(kProjectA))
      .in("status", {"Queued", "In Progress"})
      .order("created_at", false)
      .range(5, 9)
      .count_exact();
  auto r = wait<RestResult>([&](auto cb) { rest->select(q, cb); });
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(r->count, 24);
  ASSERT_TRUE(r->data.is_array());
  auto expected = query(
      "SELECT id FROM tasks WHERE project_id = $1 AND status IN ('Queued', "
      "'In Progress') ORDER BY created_at DESC LIMIT 5 OFFSET 5",
      {std::string(kProjectA)});
  ASSERT_EQ(r->data.as_array().size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(r->data.as_array()[i].at("id").as_string(), expected.value(i, 0));
  }

  auto head = wait<RestResult>([&](auto cb) {
    rest->head(PostgrestQuery("tasks").eq("status", "Failed").count_exact(), cb);
  });
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->count, 12);
  EXPECT_TRUE(head->data.is_null());

  auto single = wait<RestResult>([&](auto cb) {
    rest->select(
        PostgrestQuery("projects").select("name").eq("id", std::string(kProjectA)).single(), cb);
  });
  ASSERT_TRUE(single.ok()) << single.error().describe();
  EXPECT_EQ(single->data.at("name").as_string(), "A");
}

TEST_F(RestClientTest, WritesAndRpc) {
  seed();
  rest->set_access_token(mint("authenticated", kUserA));
  auto ins = wait<RestResult>([&](auto cb) {
    rest->insert(
        "tasks",
        json::array{
            json::object{
                {"task_type", "c1"}, {"params", json::object{}}, {"project_id", kProjectA}},
            json::object{
                {"task_type", "c2"}, {"params", json::object{}}, {"project_id", kProjectA}}},
        cb, true, "id,task_type");
  });
  ASSERT_TRUE(ins.ok()) << ins.error().describe();
  EXPECT_EQ(ins->status, 201);
  ASSERT_EQ(ins->data.as_array().size(), 2u);

  auto upd = wait<RestResult>([&](auto cb) {
    rest->update(PostgrestQuery("tasks").in("task_type", {"c1", "c2"}),
                 json::object{{"status", "Complete"}}, cb);
  });
  ASSERT_TRUE(upd.ok()) << upd.error().describe();
  EXPECT_EQ(upd->data.as_array().size(), 2u);
  EXPECT_EQ(
      scalar("SELECT count(*) FROM tasks WHERE task_type IN ('c1','c2') AND status = 'Complete'"),
      "2");

  auto del = wait<RestResult>(
      [&](auto cb) { rest->remove(PostgrestQuery("tasks").eq("task_type", "c1"), cb); });
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->data.as_array().size(), 1u);

  auto counts = wait<RestResult>([&](auto cb) {
    rest->rpc("task_status_counts", json::object{{"p_project_id", kProjectA}}, cb);
  });
  ASSERT_TRUE(counts.ok()) << counts.error().describe();
  EXPECT_EQ(counts->data.at("complete").as_int64(),
            std::stoll(scalar("SELECT count(*) FROM tasks WHERE project_id = $1 AND status = "
                              "'Complete'",
                              {std::string(kProjectA)})));
}

TEST_F(RestClientTest, HttpErrorsBecomeErrorValues) {
  seed();
  auto missing_table = wait<RestResult>([&](auto cb) { rest->select(PostgrestQuery("nope"), cb); });
  ASSERT_FALSE(missing_table.ok());
  EXPECT_EQ(missing_table.error().code, Errc::not_found);
  EXPECT_NE(missing_table.error().message.find("HTTP 404 PGRST205"), std::string::npos)
      << missing_table.error().message;

  rest->set_access_token(mint("authenticated", kUserA, std::chrono::seconds(-30)));
  auto expired = wait<RestResult>([&](auto cb) { rest->select(PostgrestQuery("tasks"), cb); });
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, Errc::unauthorized);
  EXPECT_NE(expired.error().message.find("JWT expired"), std::string::npos);

  rest->set_access_token(mint("authenticated", kUserB));
  auto forbidden = wait<RestResult>([&](auto cb) {
    rest->insert(
        "tasks",
        json::object{{"task_type", "x"}, {"params", json::object{}}, {"project_id", kProjectA}},
        cb);
  });
  ASSERT_FALSE(forbidden.ok());
  EXPECT_EQ(forbidden.error().code, Errc::unauthorized);
  EXPECT_NE(forbidden.error().message.find("HTTP 403 42501"), std::string::npos);

  auto bad = wait<RestResult>(
      [&](auto cb) { rest->select(PostgrestQuery("tasks").eq("id", "not-a-uuid"), cb); });
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::remote);
  EXPECT_NE(bad.error().message.find("HTTP 400 22P02"), std::string::npos);
}

TEST_F(RestClientTest, AuthClientFlow) {
  auto up =
      wait<AuthTokens>([&](auto cb) { auth->sign_up("client@example.com", "pass-word", cb); });
  ASSERT_TRUE(up.ok()) << up.error().describe();
  EXPECT_FALSE(up->user_id.empty());
  EXPECT_EQ(up->expires_in, 3600);

  auto again =
      wait<AuthTokens>([&](auto cb) { auth->sign_up("client@example.com", "pass-word", cb); });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::invalid_argument);

  auto wrong = wait<AuthTokens>(
      [&](auto cb) { auth->sign_in_with_password("client@example.com", "nope-nope", cb); });
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, Errc::unauthorized);
  EXPECT_NE(wrong.error().message.find("invalid_credentials"), std::string::npos);

  auto in = wait<AuthTokens>(
      [&](auto cb) { auth->sign_in_with_password("client@example.com", "pass-word", cb); });
  ASSERT_TRUE(in.ok()) << in.error().describe();
  EXPECT_EQ(in->user_id, up->user_id);

  auto user = wait<json::value>([&](auto cb) { auth->get_user(in->access_token, cb); });
  ASSERT_TRUE(user.ok()) << user.error().describe();
  EXPECT_EQ(user->at("email").as_string(), "client@example.com");

  auto refreshed = wait<AuthTokens>([&](auto cb) { auth->refresh(in->refresh_token, cb); });
  ASSERT_TRUE(refreshed.ok());
  // The same token again (as after a lost answer) gets the token issued in its place, as GoTrue.
  auto retried = wait<AuthTokens>([&](auto cb) { auth->refresh(in->refresh_token, cb); });
  ASSERT_TRUE(retried.ok()) << retried.error().describe();
  EXPECT_EQ(retried->refresh_token, refreshed->refresh_token);
  auto next = wait<AuthTokens>([&](auto cb) { auth->refresh(refreshed->refresh_token, cb); });
  ASSERT_TRUE(next.ok());
  // Two rotations behind, it is a replay.
  auto reused = wait<AuthTokens>([&](auto cb) { auth->refresh(in->refresh_token, cb); });
  ASSERT_FALSE(reused.ok());
  EXPECT_EQ(reused.error().code, Errc::unauthorized);

  auto out = wait<void>([&](auto cb) { auth->sign_out(up->access_token, cb); });
  ASSERT_TRUE(out.ok()) << out.error().describe();
  EXPECT_EQ(scalar("SELECT count(*) FROM auth.refresh_tokens WHERE NOT revoked"), "0");
}

TEST_F(RestClientTest, KeepAliveReusesConnectionsAndRetriesAClosedOne) {
  seed();
  rest->set_access_token(mint("authenticated", kUserA));
  for (int i = 0; i < 20; ++i) {
    auto r = wait<RestResult>([&](auto cb) { rest->select(PostgrestQuery("projects"), cb); });
    ASSERT_TRUE(r.ok()) << r.error().describe();
  }
  EXPECT_EQ(http->connects(), 1u);  // sequential requests share one keep-alive connection

  // Twelve at once: at most max_connections (4) are opened, the rest queue.
  int done = 0;
  for (int i = 0; i < 12; ++i) {
    rest->select(PostgrestQuery("tasks").limit(1), [&](Result<RestResult> r) {
      EXPECT_TRUE(r.ok());
      ++done;
    });
  }
  ASSERT_TRUE(loop.run_until([&] { return done == 12; }));
  EXPECT_LE(http->connects(), 4u);

  // The server drops its idle keep-alive connections; the next request retries on a new one.
  host->drop_connections();
  const auto before = http->connects();
  auto r = wait<RestResult>([&](auto cb) { rest->select(PostgrestQuery("projects"), cb); });
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(http->connects(), before + 1);
}

// A service that never answers, for deadlines and cancellation.
class SilentService : public server::http::HttpService {
 public:
  bool matches(std::string_view path) const override { return path.rfind("/silent", 0) == 0; }
  void handle(server::http::HttpRequest,
              std::function<void(server::http::HttpResponse)> done) override {
    parked.push_back(std::move(done));
  }
  std::vector<std::function<void(server::http::HttpResponse)>> parked;
};

TEST_F(RestClientTest, DeadlineAndCancel) {
  SilentService silent;
  ServiceHost silent_host(loop.io, {&silent});
  ASSERT_TRUE(silent_host.listen(0).ok());
  net::HttpClientOptions o;
  o.base_url = silent_host.url();
  o.timeout = std::chrono::milliseconds(300);
  auto h = net::HttpClient::create(loop.io, loop.sched, o);
  ASSERT_TRUE(h.ok());
  auto& client = *h.value();

  const auto t0 = std::chrono::steady_clock::now();
  auto timed_out = wait<HttpResult>([&](auto cb) { client.request("GET", "/silent", {}, {}, cb); });
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.error().code, Errc::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(300));

  std::optional<Result<HttpResult>> cancelled;
  const auto id = client.request("GET", "/silent", {}, {},
                                 [&](Result<HttpResult> r) { cancelled.emplace(std::move(r)); });
  ASSERT_TRUE(loop.run_until([&] { return silent.parked.size() == 2; }));
  client.cancel(id);
  EXPECT_FALSE(cancelled.has_value());  // delivered on a later loop turn, never inside cancel()
  ASSERT_TRUE(loop.run_until([&] { return cancelled.has_value(); }));
  EXPECT_EQ(cancelled->error().code, Errc::cancelled);

  EXPECT_FALSE(net::HttpClient::create(loop.io, loop.sched, {"ftp://x"}).ok());
  EXPECT_FALSE(net::HttpClient::create(loop.io, loop.sched, {"not a url"}).ok());

  // A closed port is an io error, not a hang.
  net::HttpClientOptions closed;
  closed.base_url = "http://127.0.0.1:1";
  auto c2 = net::HttpClient::create(loop.io, loop.sched, closed);
  ASSERT_TRUE(c2.ok());
  int answers = 0;
  auto counted = c2.value()->on_response([&](int) { ++answers; });
  auto refused = wait<HttpResult>([&](auto cb) { c2.value()->request("GET", "/", {}, {}, cb); });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::io);
  EXPECT_EQ(answers, 0) << "no answer, no response listener";
}

// Every response, whatever its status, tells the response listeners the origin answered — before
// the request's own callback. The client's session uses it: a token refresh that failed because
// nothing answered runs as soon as anything answers, instead of at its 5 s retry.
TEST_F(RestClientTest, AnHttpAnswerRunsARefreshThatReachedNothingAtOnce) {
  auto in =
      wait<AuthTokens>([&](auto cb) { auth->sign_up("answer@example.com", "pass-word", cb); });
  ASSERT_TRUE(in.ok()) << in.error().describe();
  bool offline = true;
  auto gotrue = client::auth_refresher(*auth, loop.sched);
  client::sync::AuthSession session(
      loop.sched, [&](const client::sync::Session& s, client::sync::RefreshDone done) {
        if (offline) return done(make_error(Errc::io, "connecting: network is unreachable"));
        gotrue(s, std::move(done));
      });
  std::vector<int> statuses;
  auto answered = http->on_response([&](int status) {
    statuses.push_back(status);
    session.network_answered();
  });
  session.sign_in(client::to_session(in.value(), loop.sched.wall_now()));
  session.refresh_now();
  EXPECT_EQ(session.refresh_failures(), 1u);
  ASSERT_TRUE(session.early_retry_armed());
  ASSERT_TRUE(session.next_refresh_at());
  EXPECT_GT(*session.next_refresh_at() - loop.sched.now(), std::chrono::seconds(4));  // real time

  // Back online: an unauthenticated query's answer (401 is an answer too) starts the refresh.
  offline = false;
  bool refreshing_when_answered = false;
  auto r = wait<HttpResult>([&](auto cb) {
    http->request("GET", "/rest/v1/projects?select=id", {{"Authorization", "Bearer nonsense"}}, {},
                  [&, cb](Result<HttpResult> h) {
                    refreshing_when_answered = session.refreshing();
                    cb(std::move(h));
                  });
  });
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->status, 401);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0], r->status);
  EXPECT_TRUE(refreshing_when_answered) << "the listener runs before the request's callback";
  ASSERT_TRUE(loop.run_until([&] { return session.refreshes() == 1; }));
  EXPECT_NE(session.get_session()->refresh_token, in->refresh_token);
  EXPECT_FALSE(session.early_retry_armed());
  // The refresh's own answer (200) reached the listener too, and changed nothing.
  EXPECT_EQ(statuses.back(), 200);
  EXPECT_EQ(session.refreshes(), 1u);
}

TEST_F(RestClientTest, HttpsVerifiesTheCertificate) {
  seed();
  TestCa ca;
  ASSERT_TRUE(ca.ok()) << "openssl failed; see " << ca.file("openssl.log");
  ServiceHost tls_host(loop.io, {rest_service.get()});
  ASSERT_TRUE(tls_host.listen(0, ca.file("server.pem"), ca.file("server.key")).ok());
  ASSERT_EQ(tls_host.url().substr(0, 8), "https://");

  auto fetch_projects = [&](net::HttpClientOptions o) -> Result<RestResult> {
    auto h = net::HttpClient::create(loop.io, loop.sched, std::move(o));
    if (!h) return h.error();
    client::rest::RestClient r(*h.value(), client::rest::RestClientOptions{anon_key});
    r.set_access_token(mint("authenticated", kUserA));
    return wait<RestResult>(
        [&](auto cb) { r.select(PostgrestQuery("projects").select("name"), cb); });
  };
  net::HttpClientOptions o;
  o.base_url = tls_host.url();
  o.ca_file = ca.file("ca.pem");
  auto ok = fetch_projects(o);
  ASSERT_TRUE(ok.ok()) << ok.error().describe();
  EXPECT_EQ(ok->data.as_array().size(), 2u);

  // Without the test CA the certificate is refused.
  net::HttpClientOptions untrusted;
  untrusted.base_url = tls_host.url();
  auto refused = fetch_projects(untrusted);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::io);
  EXPECT_NE(refused.error().message.find("TLS handshake"), std::string::npos);

  // A certificate from the trusted CA but for another name is refused too…
  ServiceHost other(loop.io, {rest_service.get()});
  ASSERT_TRUE(other.listen(0, ca.file("other.pem"), ca.file("other.key")).ok());
  net::HttpClientOptions wrong_name;
  wrong_name.base_url = other.url();
  wrong_name.ca_file = ca.file("ca.pem");
  EXPECT_FALSE(fetch_projects(wrong_name).ok());
  // …unless verification is off.
  wrong_name.verify_peer = false;
  EXPECT_TRUE(fetch_projects(wrong_name).ok());
}

TEST_F(RestClientTest, AuthSessionRefreshesThroughTheAuthClientAndSignsOutWhenRefused) {
  auto in =
      wait<AuthTokens>([&](auto cb) { auth->sign_up("session@example.com", "pass-word", cb); });
  ASSERT_TRUE(in.ok());
  client::sync::AuthSession session(loop.sched, client::auth_refresher(*auth, loop.sched));
  auto binding = client::bind_rest_token(session, *rest);
  std::vector<std::string> events;
  auto sub =
      session.on_auth_state_change([&](client::sync::AuthEvent e, const client::sync::Session*) {
        events.emplace_back(client::sync::to_string(e));
      });
  session.sign_in(client::to_session(in.value(), loop.sched.wall_now()));
  EXPECT_EQ(rest->access_token(), in->access_token);
  // Refresh is planned refresh_margin (60 s) before the token's expiry (1 h).
  ASSERT_TRUE(session.next_refresh_at());
  const auto lead = *session.next_refresh_at() - loop.sched.now();
  EXPECT_GT(lead, std::chrono::minutes(58));
  EXPECT_LE(lead, std::chrono::minutes(59));

  session.refresh_now();
  ASSERT_TRUE(loop.run_until([&] { return session.refreshes() == 1; }));
  ASSERT_TRUE(session.get_session());
  EXPECT_NE(session.get_session()->refresh_token, in->refresh_token);
  EXPECT_EQ(rest->access_token(), session.get_session()->access_token);
  auto mine = wait<RestResult>([&](auto cb) { rest->select(PostgrestQuery("projects"), cb); });
  EXPECT_TRUE(mine.ok());

  // The server revokes every session; the next refresh is refused and the session ends.
  auto out = wait<void>([&](auto cb) { auth->sign_out(session.get_session()->access_token, cb); });
  ASSERT_TRUE(out.ok());
  session.refresh_now();
  ASSERT_TRUE(loop.run_until([&] { return !session.get_session().has_value(); }));
  EXPECT_EQ(session.refresh_failures(), 1u);
  EXPECT_EQ(events, (std::vector<std::string>{"SIGNED_IN", "TOKEN_REFRESHED", "SIGNED_OUT"}));
  EXPECT_EQ(rest->access_token(), "");
}

// GoTrue's rate limiter in front of /auth/v1/token: while `limited`, a refresh gets the 429 a
// hosted project answers (error_code over_request_rate_limit) — the request never reached the
// session, so the refresh token is still good.
class TokenRateLimit final : public server::http::HttpService {
 public:
  bool limited = false;
  int refused = 0;
  bool matches(std::string_view path) const override { return limited && path == "/auth/v1/token"; }
  void handle(server::http::HttpRequest,
              std::function<void(server::http::HttpResponse)> done) override {
    ++refused;
    done(server::http::make_response(
        429,
        R"({"code":429,"error_code":"over_request_rate_limit","msg":"Request rate limit reached"})"));
  }
};

TEST_F(RestClientTest, ARateLimitedRefreshIsRetriedAndDoesNotSignOut) {
  TokenRateLimit gate;
  ServiceHost limited_host(loop.io, {&gate, rest_service.get(), auth_service.get()});
  ASSERT_TRUE(limited_host.listen(0).ok());
  auto o = client_options();
  o.base_url = limited_host.url();
  make_client(o);
  auto in =
      wait<AuthTokens>([&](auto cb) { auth->sign_up("limited@example.com", "pass-word", cb); });
  ASSERT_TRUE(in.ok()) << in.error().describe();

  gate.limited = true;
  auto refused = wait<AuthTokens>([&](auto cb) { auth->refresh(in->refresh_token, cb); });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::remote) << refused.error().describe();
  EXPECT_NE(refused.error().message.find("Request rate limit reached"), std::string::npos)
      << refused.error().message;

  client::sync::AuthSession session(loop.sched, client::auth_refresher(*auth, loop.sched));
  std::vector<std::string> events;
  auto sub =
      session.on_auth_state_change([&](client::sync::AuthEvent e, const client::sync::Session*) {
        events.emplace_back(client::sync::to_string(e));
      });
  session.sign_in(client::to_session(in.value(), loop.sched.wall_now()));
  session.refresh_now();
  ASSERT_TRUE(loop.run_until([&] { return session.refresh_failures() == 1; }));
  EXPECT_EQ(gate.refused, 2);
  ASSERT_TRUE(session.get_session()) << "a rate-limited refresh signed the user out";
  EXPECT_EQ(session.get_session()->refresh_token, in->refresh_token);
  ASSERT_TRUE(session.next_refresh_at());  // the retry is planned
  EXPECT_LE(*session.next_refresh_at() - loop.sched.now(), std::chrono::seconds(5));

  // The limiter lets it through again: the same refresh token still works.
  gate.limited = false;
  session.refresh_now();
  ASSERT_TRUE(loop.run_until([&] { return session.refreshes() == 1; }));
  EXPECT_EQ(events, (std::vector<std::string>{"SIGNED_IN", "TOKEN_REFRESHED"}));
}

}  // namespace
}  // namespace rtsync::test
