#include "client_commands.hpp"

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "demo_env.hpp"
#include "pane_session.hpp"
#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/migrate/migrations.hpp"
#include "rtsync/testkit/temp_cluster.hpp"
#include "stop_signal.hpp"
#include "task_client.hpp"
#include "tui.hpp"
#include "worker.hpp"

namespace rtsync::app {
namespace {

Result<protocol::Vsn> vsn_from(std::string_view text) {
  if (text == "1" || text == "1.0.0") return protocol::Vsn::v1;
  if (text == "2" || text == "2.0.0") return protocol::Vsn::v2;
  return make_error(Errc::invalid_argument, "--vsn must be 1 or 2");
}

core::Duration seconds(double s) {
  return std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(s));
}

// One JSON object per line on stdout, flushed at once. A closed stdout stops the command.
PaneSession::LineSink stdout_sink(StopSignal& stop) {
  return [&stop](const std::string& line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) stop.request("stdout closed");
  };
}

struct PaneRun {
  bool json = false;
  int page_size = 20;
  double duration = 0;
  std::string log_file;
  // Runs on the loop once the session exists (extra diagnostics).
  std::function<void(TaskClient&, std::vector<core::Subscription>&)> on_ready;
};

struct PaneOutcome {
  std::uint64_t lines = 0;
  std::uint64_t events = 0;
  int code = 0;
};

PaneOutcome run_pane(core::EventLoop& loop, TaskClient& stack, StopSignal& stop,
                     const PaneRun& run) {
  PaneOutcome out;
  std::unique_ptr<PaneSession> session;
  std::vector<core::Subscription> subs;
  core::Timer duration;
  loop.run_sync([&] {
    PaneSessionOptions po;
    po.page_size = run.page_size;
    session = std::make_unique<PaneSession>(stack, po,
                                            run.json ? stdout_sink(stop) : PaneSession::LineSink{});
    if (run.on_ready) run.on_ready(stack, subs);
    if (run.duration > 0) {
      duration = stack.scheduler().schedule(seconds(run.duration), timers::Worker,
                                            [&stop] { stop.request("duration"); });
    }
  });
  if (run.json) {
    stop.wait();
  } else {
    TuiOptions to;
    to.log_file = run.log_file;
    out.code = run_tui(loop, *session, stop, to);
  }
  loop.run_sync([&] {
    duration.cancel();
    out.lines = session->lines_emitted();
    out.events = stack.manager().events_received();
    subs.clear();
    session.reset();
  });
  return out;
}

void note(std::string_view text) {
  std::cerr << "[demo] " << text << std::endl;
}

}  // namespace

// ---- watch ------------------------------------------------------------------------------------

void add_watch_options(CLI::App& sub, WatchArgs& a) {
  sub.add_option("--url", a.url, "project URL: http(s)://host[:port] (rtsync server or Supabase)")
      ->envname("RTSYNC_URL")
      ->required();
  sub.add_option("--rest-url", a.rest_url,
                 "base URL of /rest/v1 and /auth/v1 when they are served apart from realtime");
  sub.add_option("--anon-key", a.anon_key, "the project's anon key")
      ->envname("RTSYNC_ANON_KEY")
      ->required();
  sub.add_option("--email", a.email, "sign in with this email (password grant)")
      ->envname("RTSYNC_EMAIL");
  sub.add_option("--password", a.password, "password for --email")->envname("RTSYNC_PASSWORD");
  sub.add_option("--token", a.token, "a user access token (JWT) instead of --email/--password")
      ->envname("RTSYNC_TOKEN");
  sub.add_option("--refresh-token", a.refresh_token, "refresh token for --token (enables refresh)");
  sub.add_option("--project", a.project, "project id to open (default: the first project)");
  sub.add_flag("--json", a.json, "no screen: one JSON object per line on stdout");
  sub.add_option("--page-size", a.page_size, "tasks per page")->capture_default_str();
  sub.add_option("--vsn", a.vsn, "realtime protocol version: 1 or 2")->capture_default_str();
  sub.add_option("--source", a.source,
                 "task events from `changes` (postgres_changes on public.tasks) or `broadcast` "
                 "(Broadcast from Database: the project's private topic, db/0006)")
      ->check(CLI::IsMember({"changes", "broadcast"}))
      ->capture_default_str();
  sub.add_option("--duration", a.duration, "stop after this many seconds (0: run until stopped)")
      ->capture_default_str();
  sub.add_option("--drop-seconds", a.drop_seconds, "how long `k` keeps realtime down")
      ->capture_default_str();
  sub.add_option(
         "--coalesce-ms", a.coalesce_ms,
         "invalidation bursts: the first event refetches at once, later ones within this "
         "window merge into one trailing refetch per query (smaller: fresher, more requests)")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  sub.add_option("--log-file", a.log_file, "log lines go here while the screen is up");
  sub.add_flag("--insecure", a.insecure, "do not verify TLS certificates");
  sub.add_option("--ca-file", a.ca_file, "extra trusted CA certificates (PEM)");
  sub.add_flag("!--no-presence", a.presence,
               "do not show yourself to the project's other viewers (and do not see them)");
  sub.add_option("--viewer-name", a.viewer_name,
                 "the name the project's other viewers see (default: your email before the @)");
}

int run_watch_command(const WatchArgs& a) {
  StopSignal stop;
  SignalWatcher signals(stop);
  std::signal(SIGPIPE, SIG_IGN);
  auto vsn = vsn_from(a.vsn);
  if (!vsn.ok()) {
    std::cerr << "rtsync watch: " << vsn.error().message << "\n";
    return 2;
  }
  TaskClientOptions o;
  o.url = a.url;
  o.rest_url = a.rest_url;
  o.anon_key = a.anon_key;
  o.email = a.email;
  o.password = a.password;
  o.access_token = a.token;
  o.refresh_token = a.refresh_token;
  o.project = a.project;
  o.vsn = vsn.value();
  auto source = client::domain::parse_task_source(a.source);
  if (!source.ok()) {
    std::cerr << "rtsync watch: --source: " << source.error().message << "\n";
    return 2;
  }
  o.source = source.value();
  o.drop_for = seconds(a.drop_seconds);
  o.coalesce_window = std::chrono::milliseconds(a.coalesce_ms);
  o.verify_peer = !a.insecure;
  o.ca_file = a.ca_file;
  o.presence = a.presence;
  o.viewer_name = a.viewer_name;

  core::EventLoop loop;
  loop.start();
  auto stack = TaskClient::start(loop, o);
  if (!stack.ok()) {
    std::cerr << "rtsync watch: " << stack.error().message << "\n";
    loop.stop();
    loop.join();
    return stack.error().code == Errc::invalid_argument ? 2 : 1;
  }
  PaneRun run;
  run.json = a.json;
  run.page_size = a.page_size;
  run.duration = a.duration;
  run.log_file = a.log_file;
  const PaneOutcome outcome = run_pane(loop, *stack.value(), stop, run);
  stack.value().reset();
  loop.stop();
  loop.join();
  return outcome.code;
}

// ---- demo -------------------------------------------------------------------------------------

void add_demo_options(CLI::App& sub, DemoArgs& a) {
  sub.add_flag("--no-tui,--json", a.no_tui, "no screen: the --json line stream on stdout");
  sub.add_option("--duration", a.duration, "stop after this many seconds (0: run until stopped)")
      ->capture_default_str();
  sub.add_option("--rate", a.rate, "new tasks per second")->capture_default_str();
  sub.add_option("--seed", a.seed, "worker random seed (0: random)");
  sub.add_option("--page-size", a.page_size, "tasks per page")->capture_default_str();
  sub.add_option("--access-token-ttl", a.access_token_ttl,
                 "lifetime of the demo user's access tokens, seconds")
      ->capture_default_str();
  sub.add_option("--drop-seconds", a.drop_seconds, "how long `k` keeps realtime down")
      ->capture_default_str();
  sub.add_option(
         "--coalesce-ms", a.coalesce_ms,
         "invalidation bursts: the first event refetches at once, later ones within this "
         "window merge into one trailing refetch per query (smaller: fresher, more requests)")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  sub.add_option("--log-file", a.log_file, "log lines go here while the screen is up");
  sub.add_option("--nodes", a.nodes,
                 "run a cluster: a throwaway Redis and this many server nodes (docs/scaling.md); "
                 "the pane shows its node and `k` moves realtime to the next one")
      ->check(CLI::Range(1, 9))
      ->capture_default_str();
  sub.add_flag("!--no-viewer", a.viewer,
               "do not start the second, headless viewer the pane shows as watching");

  sub.add_option("--source", a.source,
                 "task events from `changes` (postgres_changes on public.tasks) or `broadcast` "
                 "(Broadcast from Database: the project's private topic, db/0006)")
      ->check(CLI::IsMember({"changes", "broadcast"}))
      ->capture_default_str();
}

int run_demo_command(const DemoArgs& a) {
  StopSignal stop;
  SignalWatcher signals(stop);
  std::signal(SIGPIPE, SIG_IGN);
  if (a.rate < 0 || a.page_size <= 0 || a.duration < 0) {
    std::cerr << "rtsync demo: --rate, --page-size and --duration must be positive\n";
    return 2;
  }
  auto source = client::domain::parse_task_source(a.source);
  if (!source.ok()) {
    std::cerr << "rtsync demo: --source: " << source.error().message << "\n";
    return 2;
  }

  DemoEnvironmentOptions eo;
  eo.access_token_ttl = std::chrono::seconds(a.access_token_ttl);
  eo.nodes = a.nodes;
  auto env = DemoEnvironment::create(eo, [](std::string_view step) { note(step); });
  if (!env.ok()) {
    std::cerr << "rtsync demo: " << env.error().message << "\n";
    return 1;
  }
  DemoEnvironment& world = *env.value();
  const std::string folder = world.cluster().folder();
  note("PostgreSQL 15 in " + folder + " (port " + std::to_string(world.cluster().port()) + ")");
  note("server " + world.http_url() + ", demo user " + world.user().email);
  if (a.nodes > 1) {
    std::string all;
    for (const auto& n : world.node_addresses())
      all += (all.empty() ? "" : ", ") + n;
    note(std::to_string(a.nodes) + " cluster nodes on one Redis: " + all);
  }

  int code = 0;
  WorkerOptions wo = world.worker_options();
  wo.rate = a.rate;
  wo.seed = a.seed != 0 ? a.seed : std::random_device{}();
  Worker worker(wo);
  if (!stop.requested()) {
    if (auto r = worker.start(); !r.ok()) {
      std::cerr << "rtsync demo: worker: " << r.error().message << "\n";
      code = 1;
    } else {
      std::ostringstream rate;
      rate << a.rate;
      note("worker: " + rate.str() + " new tasks/s over " +
           std::to_string(world.projects().size()) + " projects");
    }
  }

  // Someone else watching: a second session of the demo user (the schema's row-level security
  // lets only a project's owner read it, so another user could not open the project), headless,
  // on the first project — the one the pane opens with.
  core::EventLoop viewer_loop;
  std::unique_ptr<TaskClient> viewer;
  if (code == 0 && a.viewer && !stop.requested()) {
    viewer_loop.start();
    TaskClientOptions vo;
    vo.url = world.http_url();
    vo.anon_key = world.anon_key();
    vo.email = world.user().email;
    vo.password = world.user().password;
    vo.viewer_name = "demo viewer";
    vo.viewer_client = "rtsync demo (headless viewer)";
    auto v = TaskClient::start(viewer_loop, vo);
    if (!v.ok()) {
      // The pane works without it; say why there is no one to see.
      note("second viewer: " + v.error().message);
    } else {
      viewer = std::move(v.value());
      note("second viewer: " + world.user().email + " in another session, on " +
           world.projects().front().name);
    }
  }

  PaneOutcome outcome;
  if (code == 0 && !stop.requested()) {
    core::EventLoop loop;
    loop.start();
    TaskClientOptions co;
    co.url = world.http_url();
    co.anon_key = world.anon_key();
    co.email = world.user().email;
    co.password = world.user().password;
    co.drop_for = seconds(a.drop_seconds);
    co.coalesce_window = std::chrono::milliseconds(a.coalesce_ms);
    co.source = source.value();
    if (a.nodes > 1) co.realtime_nodes = world.node_addresses();
    auto stack = TaskClient::start(loop, co);
    if (!stack.ok()) {
      std::cerr << "rtsync demo: client: " << stack.error().message << "\n";
      code = 1;
    } else {
      PaneRun run;
      run.json = a.no_tui;
      run.page_size = a.page_size;
      run.duration = a.duration;
      run.log_file = a.log_file;
      run.on_ready = [&](TaskClient& s, std::vector<core::Subscription>& subs) {
        subs.push_back(s.diagnostics().add("worker", [&worker] { return worker.diagnostics(); }));
        subs.push_back(s.diagnostics().add("demo", [&world, folder] {
          return json::value(json::object{
              {"server", world.http_url()}, {"postgres", folder}, {"user", world.user().email}});
        }));
      };
      outcome = run_pane(loop, *stack.value(), stop, run);
      code = outcome.code;
      stack.value().reset();
    }
    loop.stop();
    loop.join();
  }
  viewer.reset();  // on its running loop: its channel leaves, its presence with it
  viewer_loop.stop();
  viewer_loop.join();
  worker.stop();
  if (a.no_tui) {
    json::object summary{
        {"type", "summary"},
        {"reason", stop.reason()},
        {"worker", worker.diagnostics()},
        {"client", json::object{{"events", outcome.events}, {"lines", outcome.lines}}}};
    std::cout << json::serialize(summary) << std::endl;
  }
  note("stopping (" + (stop.reason().empty() ? std::string("error") : stop.reason()) +
       "): server, PostgreSQL, " + folder);
  env.value().reset();
  note("stopped; nothing left behind");
  return code;
}

// ---- token, migrate ---------------------------------------------------------------------------

void add_token_options(CLI::App& sub, TokenArgs& a) {
  sub.add_option("--secret", a.secret, "the HS256 secret (the server's --jwt-secret)")
      ->envname("RTSYNC_JWT_SECRET")
      ->required();
  sub.add_option("--role", a.role, "role claim: anon | authenticated | service_role")
      ->capture_default_str();
  sub.add_option("--sub", a.sub, "subject (user id) claim");
  sub.add_option("--email", a.email, "email claim");
  sub.add_option("--ttl", a.ttl, "seconds until it expires")->capture_default_str();
}

int run_token_command(const TokenArgs& a) {
  if (a.ttl <= 0) {
    std::cerr << "rtsync token: --ttl must be positive\n";
    return 2;
  }
  core::EventLoop loop;  // not started: only its scheduler's wall clock
  const auto now = loop.scheduler().wall_ms() / 1000;
  json::object claims{{"role", a.role}, {"iat", now}, {"exp", now + a.ttl}, {"iss", "rtsync"}};
  if (!a.sub.empty()) claims["sub"] = a.sub;
  if (!a.email.empty()) claims["email"] = a.email;
  if (a.role == "authenticated") claims["aud"] = "authenticated";
  std::cout << server::auth::sign_hs256(claims, a.secret) << std::endl;
  return 0;
}

void add_migrate_options(CLI::App& sub, MigrateArgs& a) {
  sub.add_option("--db", a.db, "PostgreSQL: libpq conninfo or postgres:// URL")
      ->envname("RTSYNC_DB")
      ->required();
}

int run_migrate_command(const MigrateArgs& a) {
  if (rtsync::log::level() > spdlog::level::info) rtsync::log::set_level(spdlog::level::info);
  if (auto r = server::migrate::run_migrations(a.db); !r.ok()) {
    std::cerr << "rtsync migrate: " << r.error().message << "\n";
    return 1;
  }
  return 0;
}

}  // namespace rtsync::app
