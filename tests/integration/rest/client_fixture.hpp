// A migrated PostgreSQL with /rest/v1 and /auth/v1 served over real HTTP (ServiceHost), and the
// client side (HttpClient, RestClient, AuthClient) on the same test-driven loop.
#pragma once

#include "rest_fixture.hpp"
#include "rtsync/client/rest/auth_client.hpp"
#include "rtsync/client/rest/rest_client.hpp"
#include "rtsync/net/http_client.hpp"
#include "rtsync/server/gotrue/gotrue_service.hpp"
#include "rtsync/server/pg/db_pool.hpp"
#include "rtsync/server/rest/rest_service.hpp"
#include "service_host.hpp"

namespace rtsync::test {

class ClientStack : public MigratedPg {
 protected:
  void SetUp() override {
    MigratedPg::SetUp();
    if (HasFatalFailure()) return;
    pool = std::make_shared<server::pg::DbPool>(loop.io, conninfo(), 4);
    rest_service = std::make_unique<server::rest::RestService>(
        pool, server::auth::JwtVerifier(std::string(kJwtSecret)), loop.sched);
    server::gotrue::GoTrueOptions go;
    go.jwt_secret = std::string(kJwtSecret);
    go.access_token_ttl = std::chrono::seconds(3600);
    auth_service = std::make_unique<server::gotrue::GoTrueService>(pool, loop.sched, go);
    host = std::make_unique<ServiceHost>(
        loop.io, std::vector<server::http::HttpService*>{rest_service.get(), auth_service.get()});
    auto port = host->listen(0);
    ASSERT_TRUE(port.ok()) << port.error().describe();
    make_client(client_options());
  }

  void TearDown() override {
    rest.reset();
    auth.reset();
    http.reset();
    host.reset();
  }

  virtual net::HttpClientOptions client_options() {
    net::HttpClientOptions o;
    o.base_url = host->url();
    o.timeout = std::chrono::seconds(10);
    return o;
  }

  void make_client(net::HttpClientOptions o) {
    rest.reset();
    auth.reset();
    auto h = net::HttpClient::create(loop.io, loop.sched, std::move(o));
    ASSERT_TRUE(h.ok()) << h.error().describe();
    http = std::move(h).value();
    anon_key = mint("anon", std::nullopt);
    rest = std::make_unique<client::rest::RestClient>(*http,
                                                      client::rest::RestClientOptions{anon_key});
    auth = std::make_unique<client::rest::AuthClient>(*http,
                                                      client::rest::AuthClientOptions{anon_key});
  }

  // Runs an async call to completion on the loop.
  template <class T, class Start>
  Result<T> wait(Start&& start) {
    std::optional<Result<T>> out;
    start([&out](Result<T> r) { out.emplace(std::move(r)); });
    if (!loop.run_until([&] { return out.has_value(); })) {
      return make_error(Errc::timeout, "no answer within the test deadline");
    }
    return std::move(*out);
  }

  TestLoop loop;
  std::shared_ptr<server::pg::DbPool> pool;
  std::unique_ptr<server::rest::RestService> rest_service;
  std::unique_ptr<server::gotrue::GoTrueService> auth_service;
  std::unique_ptr<ServiceHost> host;
  std::unique_ptr<net::HttpClient> http;
  std::unique_ptr<client::rest::RestClient> rest;
  std::unique_ptr<client::rest::AuthClient> auth;
  std::string anon_key;
};

}  // namespace rtsync::test
