#include "test_stack.hpp"

#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/testkit/migrated_cluster.hpp"

namespace rtsync::testkit {

Result<std::unique_ptr<TestStack>> TestStack::start(StackOptions options) {
  std::unique_ptr<TestStack> s(new TestStack());
  s->options_ = std::move(options);
  testkit::TempClusterOptions po;
  if (s->options_.migrated) po = testkit::with_migrations();
  po.extra_config = s->options_.pg_config;
  auto pg = testkit::TempCluster::create(po);
  if (!pg.ok()) return pg.error();
  s->pg_ = std::move(pg.value());
  if (auto r = s->start_server(); !r.ok()) return r.error();
  return s;
}

Result<void> TestStack::start_server() {
  server::ServerOptions o;
  o.db = pg_->conninfo();
  o.listen = "127.0.0.1:0";
  o.jwt_secret = std::string(kTestSecret);
  o.jwt_leeway = options_.jwt_leeway;
  o.limits = options_.limits;
  if (options_.configure) options_.configure(o);
  server_ = std::make_unique<server::Server>(o);
  if (auto r = server_->start(); !r.ok()) return r.error();
  if (!server_->wait_healthy(std::chrono::seconds(20))) {
    return make_error(Errc::timeout, "server not healthy within 20 s");
  }
  return {};
}

Result<void> TestStack::restart_server() {
  server_->stop();
  server_.reset();
  return start_server();
}

TestStack::~TestStack() {
  if (server_) server_->stop();
  server_.reset();
  pg_.reset();
}

Result<void> TestStack::sql(const std::string& script) {
  auto conn = server::pg::Connection::open(pg_->conninfo());
  if (!conn.ok()) return conn.error();
  auto r = conn.value().exec_script(script);
  if (!r.ok()) return r.error();
  return {};
}

Result<std::string> TestStack::sql_value(const std::string& query) {
  auto conn = server::pg::Connection::open(pg_->conninfo());
  if (!conn.ok()) return conn.error();
  auto r = conn.value().exec(query);
  if (!r.ok()) return r.error();
  if (r.value().rows() < 1) return make_error(Errc::not_found, "no rows");
  return std::string(r.value().value(0, 0));
}

std::string TestStack::key(std::string role, std::chrono::seconds ttl, std::string sub) const {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  json::object claims{{"role", role}, {"exp", now + ttl.count()}, {"iss", "rtsync-test"}};
  if (!sub.empty()) claims["sub"] = sub;
  return server::auth::sign_hs256(claims, kTestSecret);
}

}  // namespace rtsync::testkit
