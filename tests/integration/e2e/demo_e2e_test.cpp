// `rtsync demo` end to end, in process: the demo's environment and worker, the client stack and
// the task pane session in --json mode, against a real PostgreSQL and the real server.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "e2e_world.hpp"
#include "pane_queries.hpp"
#include "rtsync/server/server.hpp"

namespace rtsync::e2e {
namespace {

std::string str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// The worker's changes to the selected project, as (task id, status).
std::set<std::pair<std::string, std::string>> project_changes(World& w) {
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& c : w.worker().changes())
    if (c.project_id == w.project_id()) out.emplace(c.task_id, c.status);
  return out;
}

// (task id, status) of every event line received from `source`.
std::set<std::pair<std::string, std::string>> received_changes(
    World& w, std::string_view source = "postgres_changes") {
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& e : w.objects("event"))
    if (str(e, "source") == source) out.emplace(str(e, "task_id"), str(e, "status"));
  return out;
}

std::vector<std::pair<std::string, std::string>> missing(
    const std::set<std::pair<std::string, std::string>>& want,
    const std::set<std::pair<std::string, std::string>>& got) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& c : want)
    if (!got.count(c)) out.push_back(c);
  return out;
}

bool waits_for_every_event(World& w, std::chrono::milliseconds timeout) {
  const auto want = project_changes(w);
  for (int i = 0; i < static_cast<int>(timeout / 100ms); ++i) {
    if (missing(want, received_changes(w)).empty()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return missing(want, received_changes(w)).empty();
}

// The missing changes, each with what did arrive for that task.
std::string describe(World& w, const std::vector<std::pair<std::string, std::string>>& m) {
  std::string s = std::to_string(m.size()) + " missing:";
  const auto events = w.objects("event");
  std::size_t inserts = 0, anonymous = 0;
  for (const auto& e : events) {
    if (str(e, "name") == "realtime:task-new") ++inserts;
    if (str(e, "task_id").empty()) ++anonymous;
  }
  std::size_t created = 0;
  for (const auto& c : w.worker().changes())
    if (c.project_id == w.project_id() && c.status == "Queued") ++created;
  s += " (task-new events " + std::to_string(inserts) + " for " + std::to_string(created) +
       " tasks created; events without a task id " + std::to_string(anonymous) + ")";
  if (auto* srv = w.env().server()) {
    // Where the server lost them: decoded from the slot but not delivered → authorization/routing.
    std::istringstream metrics(srv->metrics_text());
    std::string line;
    while (std::getline(metrics, line))
      if (line.starts_with("rtsync_changes_decoded_total") ||
          line.starts_with("rtsync_deliveries_total") || line.starts_with("rtsync_drops_total"))
        s += "\n  server " + line;
  }
  s +=
      "\n  socket: " + w.on_loop([&] { return json::serialize(w.stack().socket().diagnostics()); });
  for (std::size_t i = 0; i < m.size() && i < 5; ++i) {
    s += "\n  (" + m[i].first + ", " + m[i].second + "); received for it:";
    for (const auto& e : events)
      if (str(e, "task_id") == m[i].first)
        s += " " + str(e, "source") + ":" + str(e, "status") + "@" + str(e, "at");
    for (const auto& c : w.worker().changes())
      if (c.task_id == m[i].first) {
        s += "\n    worker: " + c.status + " at " + c.updated_at + " in transaction " +
             std::to_string(c.transaction) + " with";
        for (const auto& other : w.worker().changes())
          if (other.transaction == c.transaction && other.task_id != c.task_id)
            s += " " + other.task_id.substr(0, 8) + ":" + other.status +
                 (other.project_id == w.project_id() ? "" : "(other project)");
      }
  }
  return s;
}

// `--source broadcast`: the same contract through Broadcast from Database (db/0006's trigger, the
// project's private topic, which its policy lets the demo user read as the project's owner):
// every change of the selected project arrives as an event, none of another project, and the
// cache converges to the database.
TEST(DemoE2E, BroadcastSourceDeliversEveryChangeOfTheProjectAndNoOther) {
  WorldOptions o;
  o.source = client::domain::TaskSource::broadcast;
  auto world = World::create(o);
  ASSERT_TRUE(world.ok()) << world.error().describe();
  World& w = *world.value();
  std::this_thread::sleep_for(10s);
  w.worker().stop();
  ASSERT_GT(w.worker().stats().created, 10u);
  const auto want = project_changes(w);
  for (int i = 0; i < 100 && !missing(want, received_changes(w, "broadcast")).empty(); ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(missing(want, received_changes(w, "broadcast")).empty())
      << describe(w, missing(want, received_changes(w, "broadcast")));
  EXPECT_TRUE(received_changes(w, "postgres_changes").empty());
  std::set<std::string> other_tasks;
  for (const auto& c : w.worker().changes())
    if (c.project_id != w.project_id()) other_tasks.insert(c.task_id);
  ASSERT_FALSE(other_tasks.empty()) << "the worker should also change the other project";
  for (const auto& e : w.objects("event")) {
    EXPECT_EQ(str(e, "project_id"), w.project_id());
    EXPECT_FALSE(other_tasks.count(str(e, "task_id"))) << "an event of another project";
  }
  EXPECT_EQ(w.wait_cache_equals_db(15s), "");
  if (auto* srv = w.env().server()) {
    const auto metrics = srv->metrics_text();
    EXPECT_NE(metrics.find("rtsync_db_broadcast_deliveries_total"), std::string::npos);
  }
}

json::array tasks_key(World& w) {
  return w.on_loop([&] { return w.pane().tasks()->observer().options().key.elements(); });
}

TEST(DemoE2E, JsonStreamForTwentySecondsEndsWithTheCacheEqualToTheDatabase) {
  auto world = World::create();
  ASSERT_TRUE(world.ok()) << world.error().describe();
  World& w = *world.value();
  ASSERT_TRUE(w.wait_until([&] { return w.stack().provider().state().is_connected; }, 20s))
      << "the task pane never showed Connected";

  std::this_thread::sleep_for(20s);
  w.worker().stop();
  const auto stats = w.worker().stats();
  ASSERT_GT(stats.created, 30u) << "the worker should create ~3 tasks/s";
  ASSERT_GT(stats.completed + stats.failed + stats.cancelled, 10u);

  // Every change the worker made to the project reached the client as an event…
  EXPECT_TRUE(waits_for_every_event(w, 10s))
      << describe(w, missing(project_changes(w), received_changes(w)));
  // …and the cached task list converged to exactly what the database holds.
  EXPECT_EQ(w.wait_cache_equals_db(15s), "");
  // Every task the worker created for the project is in the client's cache.
  const auto cached = w.cached_tasks();
  ASSERT_TRUE(cached);
  std::set<std::string> cached_ids;
  for (const auto& row : *cached)
    cached_ids.insert(std::get<0>(row));
  std::size_t created_here = 0;
  for (const auto& c : w.worker().changes()) {
    if (c.project_id != w.project_id() || c.status != "Queued") continue;
    ++created_here;
    EXPECT_TRUE(cached_ids.count(c.task_id)) << "task " << c.task_id << " not in the cache";
  }
  EXPECT_GT(created_here, 5u);

  // The line stream: parseable objects of the documented types.
  const auto lines = w.lines();
  ASSERT_FALSE(lines.empty());
  std::map<std::string, int> types;
  for (const auto& l : lines) {
    EXPECT_EQ(l.find('\n'), std::string::npos);
    auto v = core::parse_json(l);
    ASSERT_TRUE(v.ok() && v.value().is_object()) << l;
    types[str(v.value().as_object(), "type")]++;
  }
  for (const auto& [type, n] : types)
    EXPECT_TRUE(type == "connection" || type == "event" || type == "query" || type == "polling" ||
                type == "presence")
        << type;
  // Nobody else has the project open: one presence line, when the channel's state arrived.
  const auto presence = w.objects("presence");
  ASSERT_EQ(presence.size(), 1u);
  EXPECT_EQ(presence[0].at("count"), 0);
  const auto connections = w.objects("connection");
  ASSERT_FALSE(connections.empty());
  EXPECT_EQ(str(connections.back(), "state"), "connected");
  EXPECT_TRUE(connections.back().at("error").is_null());
  const json::array key = tasks_key(w);
  bool success = false;
  for (const auto& q : w.objects("query"))
    if (q.at("key") == json::value(key) && str(q, "status") == "success") success = true;
  EXPECT_TRUE(success) << "no successful query line for the tasks page";
  // With events arriving, the task list polls every 30 s (the freshness table's first row).
  bool polling30 = false;
  for (const auto& p : w.objects("polling"))
    if (p.at("key") == json::value(key) && p.at("interval_ms").to_number<std::int64_t>() == 30000)
      polling30 = true;
  EXPECT_TRUE(polling30);
  EXPECT_GT(types["event"], 20);
}

TEST(DemoE2E, ServerKilledAndRestartedFiveSecondsLater) {
  WorldOptions o;
  o.server_binary = RTSYNC_E2E_BINARY;  // a real process, killed with SIGKILL
  auto world = World::create(o);
  ASSERT_TRUE(world.ok()) << world.error().describe();
  World& w = *world.value();
  ASSERT_TRUE(w.wait_until([&] { return w.stack().provider().state().is_connected; }, 20s));
  std::this_thread::sleep_for(3s);
  const auto gap_fills = w.on_loop([&] { return w.stack().provider().stats().gap_fills; });
  const auto resumes = w.on_loop([&] { return w.stack().provider().stats().resumes; });

  w.env().stop_server(/*kill=*/true);
  // error: the badge leaves Connected with a reason…
  ASSERT_TRUE(w.wait_until(
      [&] {
        const auto& s = w.stack().provider().state();
        return !s.is_connected && s.error.has_value();
      },
      15s))
      << "the connection never went into error";
  // …and the task list falls back to polling every 5 s.
  ASSERT_TRUE(w.wait_until(
      [&] { return w.pane().tasks()->config().refetch_interval == std::chrono::seconds(5); }, 10s));
  bool error_line = false;
  for (const auto& c : w.objects("connection"))
    if (str(c, "state") == "error" && !str(c, "error").empty()) error_line = true;
  EXPECT_TRUE(error_line);
  bool polling5 = false;
  const json::array key = tasks_key(w);
  for (const auto& p : w.objects("polling"))
    if (p.at("key") == json::value(key) && p.at("interval_ms").to_number<std::int64_t>() == 5000)
      polling5 = true;
  EXPECT_TRUE(polling5);

  std::this_thread::sleep_for(5s);
  auto restarted = w.env().start_server();
  ASSERT_TRUE(restarted.ok()) << restarted.error().describe();
  // Reconnect: the socket's own backoff, then the channel rejoins…
  ASSERT_TRUE(w.wait_until([&] { return w.stack().provider().state().is_connected; }, 45s))
      << "no reconnect after the server came back";
  // …and the rejoin either fills the gap by invalidating the six families, or the server resumed
  // the stream (docs/resume.md: it replays what was missed, nothing to refetch). Either way the
  // --json stream says which, in one `resume` line.
  const auto fills_after = w.on_loop([&] { return w.stack().provider().stats().gap_fills; });
  const auto resumes_after = w.on_loop([&] { return w.stack().provider().stats().resumes; });
  EXPECT_TRUE(fills_after > gap_fills || resumes_after > resumes)
      << "gap fills " << gap_fills << " → " << fills_after << ", resumes " << resumes << " → "
      << resumes_after;
  const auto resume_lines = w.objects("resume");
  ASSERT_FALSE(resume_lines.empty());
  for (const auto& r : resume_lines) {
    EXPECT_EQ(str(r, "topic").rfind("realtime:task-updates:", 0), 0u) << json::serialize(r);
    EXPECT_TRUE(r.at("gap").is_bool());
    EXPECT_TRUE(r.at("replayed").is_int64());
    EXPECT_TRUE(r.at("from").is_null() || r.at("from").is_object());
    EXPECT_FALSE(str(r, "at").empty());
  }
  EXPECT_GT(w.on_loop([&] { return w.pane().tasks()->config().refetch_interval; }),
            std::chrono::seconds(5));

  std::this_thread::sleep_for(2s);
  w.worker().stop();
  EXPECT_EQ(w.wait_cache_equals_db(15s), "");
}

TEST(DemoE2E, AccessTokenExpiresMidRunAndTheChannelContinues) {
  WorldOptions o;
  o.access_token_ttl = 15s;  // short-lived tokens, refreshed 5 s before they expire
  o.refresh_margin = 5s;
  auto world = World::create(o);
  ASSERT_TRUE(world.ok()) << world.error().describe();
  World& w = *world.value();
  const auto ttl = w.on_loop([&] {
    const auto& s = w.stack().session().get_session();
    return s && s->expires_at ? *s->expires_at - w.stack().scheduler().wall_now()
                              : core::WallTime::duration::max();
  });
  // The server was asked for 15 s tokens: a longer one means the option did not reach it.
  ASSERT_LE(ttl, std::chrono::seconds(15));
  ASSERT_TRUE(w.wait_until([&] { return w.stack().provider().state().is_connected; }, 20s));
  const std::string first_token =
      w.on_loop([&] { return w.stack().session().get_session()->access_token; });

  std::this_thread::sleep_for(27s);  // two refreshes (at ~10 s and ~20 s), the first token expired
  EXPECT_GE(w.on_loop([&] { return w.stack().session().refreshes(); }), 2u);
  const auto [session_token, socket_token] = w.on_loop([&] {
    return std::make_pair(w.stack().session().get_session()->access_token,
                          w.stack().socket().access_token().value_or(""));
  });
  EXPECT_NE(session_token, first_token);
  EXPECT_EQ(socket_token, session_token) << "set_auth did not follow the refresh";
  // The channel never left SUBSCRIBED.
  const auto connections = w.objects("connection");
  ASSERT_FALSE(connections.empty());
  bool seen_connected = false;
  for (const auto& c : connections) {
    if (str(c, "state") == "connected")
      seen_connected = true;
    else if (seen_connected)
      ADD_FAILURE() << "connection went " << json::serialize(c);
  }
  EXPECT_TRUE(seen_connected);
  EXPECT_TRUE(w.on_loop([&] { return w.stack().provider().state().is_connected; }));

  w.worker().stop();
  EXPECT_TRUE(waits_for_every_event(w, 10s))
      << describe(w, missing(project_changes(w), received_changes(w)));
  EXPECT_EQ(w.wait_cache_equals_db(15s), "");
}

}  // namespace
}  // namespace rtsync::e2e
