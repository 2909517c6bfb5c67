#include "demo_env.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <csignal>
#include <future>
#include <random>

#include "rtsync/client/rest/auth_client.hpp"
#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/net/http_client.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/migrate/migrations.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/server/server.hpp"
#include "rtsync/testkit/migrated_cluster.hpp"
#include "rtsync/testkit/temp_cluster.hpp"
#include "rtsync/testkit/temp_redis.hpp"

namespace rtsync::app {
namespace {

Error step(std::string_view what, const Error& e) {
  return make_error(e.code, std::string(what) + ": " + e.message);
}

constexpr std::string_view kProjectNames[] = {"Lighthouse Shorts", "Neon Rain", "Paper Boats",
                                              "Snow Fox"};

}  // namespace

std::string random_hex(std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string s;
  s.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    s.push_back(kHex[rd() % 16]);
  return s;
}

Result<std::unique_ptr<DemoEnvironment>> DemoEnvironment::create(DemoEnvironmentOptions options,
                                                                 const Progress& progress) {
  auto say = [&](std::string_view s) {
    if (progress) progress(s);
  };
  std::unique_ptr<DemoEnvironment> env(new DemoEnvironment());
  if (options.jwt_secret.empty()) options.jwt_secret = random_hex(48);
  if (options.password.empty()) options.password = random_hex(16);
  env->options_ = std::move(options);

  say("starting a throwaway PostgreSQL (initdb in a temporary folder)");
  // From the migrated template when an earlier demo or test left one: the migrate step below then
  // finds every version applied.
  testkit::TempClusterOptions po = testkit::with_migrations();
  po.parent_dir = env->options_.pg_parent_dir;
  auto cluster = testkit::TempCluster::create(po);
  if (!cluster.ok()) {
    // A missing binary's message names the package to install (postgresql-15).
    return step("PostgreSQL", cluster.error());
  }
  env->cluster_ = std::move(cluster.value());

  say("applying the demo schema (migrate)");
  if (auto r = server::migrate::run_migrations(env->cluster_->conninfo()); !r.ok()) {
    return step("migrate", r.error());
  }

  if (env->options_.nodes > 1) {
    say("starting a throwaway Redis for " + std::to_string(env->options_.nodes) + " nodes");
    auto redis = testkit::TempRedis::start();
    if (!redis.ok()) return step("Redis", redis.error());
    env->redis_ = std::move(redis.value());
  }
  say("starting the server");
  if (auto r = env->start_server(); !r.ok()) return r.error();
  for (int n = 2; n <= env->options_.nodes; ++n) {
    auto o = env->server_options(n);
    o.listen = "127.0.0.1:0";
    auto srv = std::make_unique<server::Server>(o);
    if (auto r = srv->start(); !r.ok()) return step("node " + std::to_string(n), r.error());
    env->more_nodes_.push_back(std::move(srv));
  }

  env->anon_key_ = env->mint("anon", std::chrono::hours(24));
  env->service_key_ = env->mint("service_role", std::chrono::hours(24));

  say("signing up the demo user");
  if (auto r = env->sign_up(); !r.ok()) return step("sign-up", r.error());
  say("creating two projects with shots");
  if (auto r = env->seed_projects(); !r.ok()) return step("projects", r.error());
  return env;
}

DemoEnvironment::~DemoEnvironment() {
  for (auto& n : more_nodes_)
    n->stop();
  more_nodes_.clear();
  stop_server();
  if (cluster_) (void)cluster_->destroy();
  cluster_.reset();
}

std::string DemoEnvironment::conninfo() const {
  return cluster_->conninfo();
}

std::vector<std::string> DemoEnvironment::node_addresses() const {
  std::vector<std::string> out{"127.0.0.1:" + std::to_string(port_)};
  for (const auto& n : more_nodes_)
    out.push_back("127.0.0.1:" + std::to_string(n->port()));
  return out;
}

server::ServerOptions DemoEnvironment::server_options(int node) const {
  server::ServerOptions o;
  o.db = cluster_->conninfo();
  // The first start picks a free port; restarts reuse it so clients find the server again.
  o.listen = "127.0.0.1:" + std::to_string(port_);
  o.jwt_secret = options_.jwt_secret;
  o.access_token_ttl = options_.access_token_ttl;
  if (redis_) {
    o.cluster = redis_->url();
    o.node_id = "node" + std::to_string(node);
  }
  return o;
}

std::string DemoEnvironment::http_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

std::string DemoEnvironment::mint(std::string_view role, std::chrono::seconds ttl,
                                  std::string_view sub) const {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  json::object claims{{"role", role}, {"exp", now + ttl.count()}, {"iat", now}, {"iss", "rtsync"}};
  if (!sub.empty()) {
    claims["sub"] = sub;
    claims["aud"] = "authenticated";
  }
  return server::auth::sign_hs256(claims, options_.jwt_secret);
}

void DemoEnvironment::stop_server(bool kill) {
  if (child_pid_ > 0) {
    ::kill(child_pid_, kill ? SIGKILL : SIGTERM);
    int status = 0;
    ::waitpid(child_pid_, &status, 0);
    child_pid_ = 0;
  }
  if (!server_) return;
  server_->stop();
  server_.reset();
}

// `<binary> server …` with stdout on a pipe; its "listening on" line gives the port. The child
// dies with this process (PR_SET_PDEATHSIG) so a crashed test leaves no server behind.
Result<void> DemoEnvironment::start_child() {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return make_error(Errc::io, "pipe failed");
  std::vector<std::string> argv = {options_.server_binary,
                                   "server",
                                   "--db",
                                   cluster_->conninfo(),
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port_),
                                   "--jwt-secret",
                                   options_.jwt_secret,
                                   "--access-token-ttl",
                                   std::to_string(options_.access_token_ttl.count())};
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return make_error(Errc::io, "fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    // The command's SignalWatcher blocked these in the parent; the server waits for them itself.
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    ::dup2(out[1], 1);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  child_pid_ = pid;
  // Read until the "listening on http://127.0.0.1:<port>" line (bounded by the child's start-up).
  std::string text;
  char buf[512];
  pollfd pfd{out[0], POLLIN, 0};
  for (int waited = 0; waited < 30000 && text.find('\n') == std::string::npos;) {
    const int r = ::poll(&pfd, 1, 200);
    waited += 200;
    if (r <= 0) continue;
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  const auto at = text.find("listening on http://127.0.0.1:");
  if (at == std::string::npos) {
    stop_server(true);
    return make_error(Errc::io, "server process did not start: " + text);
  }
  port_ = static_cast<std::uint16_t>(
      std::stoi(text.substr(at + std::string_view("listening on http://127.0.0.1:").size())));
  return {};
}

Result<void> DemoEnvironment::start_server() {
  if (server_running()) return {};
  if (!options_.server_binary.empty()) return start_child();
  auto srv = std::make_unique<server::Server>(server_options(1));
  if (auto r = srv->start(); !r.ok()) return step("server", r.error());
  if (!srv->wait_healthy(std::chrono::seconds(20))) {
    srv->stop();
    return make_error(Errc::timeout, "server: not healthy within 20 s");
  }
  port_ = srv->port();
  server_ = std::move(srv);
  return {};
}

Result<void> DemoEnvironment::sign_up() {
  user_.email = options_.email;
  user_.password = options_.password;
  core::EventLoop loop;
  loop.start();
  std::promise<Result<client::rest::AuthTokens>> done;
  auto future = done.get_future();
  std::unique_ptr<net::HttpClient> http;
  std::unique_ptr<client::rest::AuthClient> auth;
  loop.run_sync([&] {
    net::HttpClientOptions ho;
    ho.base_url = http_url();
    auto h = net::HttpClient::create(loop.io_context(), loop.scheduler(), ho);
    if (!h.ok()) {
      done.set_value(h.error());
      return;
    }
    http = std::move(h.value());
    auth = std::make_unique<client::rest::AuthClient>(
        *http, client::rest::AuthClientOptions{anon_key_, "/auth/v1"});
    auth->sign_up(user_.email, user_.password,
                  [&](Result<client::rest::AuthTokens> r) { done.set_value(std::move(r)); });
  });
  auto result = future.get();
  loop.run_sync([&] {
    auth.reset();
    http.reset();
  });
  loop.stop();
  loop.join();
  if (!result.ok()) return result.error();
  user_.id = result->user_id;
  if (user_.id.empty())
    return make_error(Errc::invalid_frame, "sign-up answered without a user id");
  return {};
}

Result<void> DemoEnvironment::seed_projects() {
  auto conn = server::pg::Connection::open(cluster_->conninfo());
  if (!conn.ok()) return conn.error();
  auto& c = conn.value();
  if (auto r = c.exec("SET ROLE service_role"); !r.ok()) return r.error();
  for (int p = 0; p < options_.projects; ++p) {
    const std::string name(kProjectNames[static_cast<std::size_t>(p) % std::size(kProjectNames)]);
    auto row = c.exec(
        "INSERT INTO public.projects (name, user_id, aspect_ratio) VALUES ($1, $2, '16:9') "
        "RETURNING id",
        {name, user_.id});
    if (!row.ok()) return row.error();
    WorkerProject project{std::string(row->value(0, 0)), name, {}};
    for (int s = 0; s < options_.shots_per_project; ++s) {
      auto shot = c.exec(
          "INSERT INTO public.shots (name, project_id, position) VALUES ($1, $2, $3::int) "
          "RETURNING id",
          {"Shot " + std::to_string(s + 1), project.id, std::to_string(s + 1)});
      if (!shot.ok()) return shot.error();
      project.shot_ids.emplace_back(shot->value(0, 0));
    }
    projects_.push_back(std::move(project));
  }
  return {};
}

WorkerOptions DemoEnvironment::worker_options() const {
  WorkerOptions w;
  w.conninfo = cluster_->conninfo();
  w.http_url = http_url();
  w.service_key = service_key_;
  w.projects = projects_;
  return w;
}

}  // namespace rtsync::app
