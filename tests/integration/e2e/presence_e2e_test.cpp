// Who else is watching, end to end: the task pane (in process, --json lines captured) against the
// real server and PostgreSQL; a second client signs in as the same demo user (the schema lets only
// a project's owner read it) and opens the same project, then goes away. The pane's header, its
// diagnostics and its `presence` lines show it arrive and leave; a viewer of the other project
// never shows up.
#include <gtest/gtest.h>

#include <thread>

#include "e2e_world.hpp"
#include "view/pane_render.hpp"

namespace rtsync::e2e {
namespace {

// A headless viewer: its own loop and client stack, no pane.
struct Viewer {
  core::EventLoop loop;
  std::unique_ptr<app::TaskClient> stack;
  ~Viewer() {
    stack.reset();
    loop.stop();
    loop.join();
  }
};

std::unique_ptr<Viewer> start_viewer(World& w, const std::string& name,
                                     const std::string& project) {
  auto v = std::make_unique<Viewer>();
  v->loop.start();
  app::TaskClientOptions o;
  o.url = w.env().http_url();
  o.anon_key = w.env().anon_key();
  o.email = w.env().user().email;
  o.password = w.env().user().password;
  o.project = project;
  o.viewer_name = name;
  o.viewer_client = "e2e viewer";
  auto s = app::TaskClient::start(v->loop, o);
  if (!s.ok()) {
    ADD_FAILURE() << s.error().describe();
    return nullptr;
  }
  v->stack = std::move(s.value());
  return v;
}

// The names of the viewers / joins / leaves of a presence line.
std::vector<std::string> names(const json::object& line, std::string_view field) {
  std::vector<std::string> out;
  for (const auto& v : line.at(field).as_array())
    out.emplace_back(v.at("name").as_string());
  return out;
}

TEST(PresenceE2E, TheHeaderAndJsonShowAnotherViewerArriveAndLeave) {
  WorldOptions wo;
  wo.start_worker = false;
  auto world = World::create(wo);
  ASSERT_TRUE(world.ok()) << world.error().describe();
  World& w = *world.value();
  const std::string other_project = w.env().projects().at(1).id;
  auto header = [&] {
    return w.on_loop(
        [&] { return app::view::render(w.pane().model(w.pane().initial_state()), 160, 10).at(0); });
  };
  auto last_presence = [&]() -> std::optional<json::object> {
    auto lines = w.objects("presence");
    if (lines.empty()) return std::nullopt;
    return lines.back();
  };

  // Alone: the first presence state gives a line with nobody else.
  ASSERT_TRUE(w.wait_until([&] { return w.stack().presence_synced(); }, 20s));
  ASSERT_TRUE(last_presence()) << "no presence line";
  EXPECT_EQ(last_presence()->at("count"), 0);
  EXPECT_EQ(last_presence()->at("project_id"), json::value(w.project_id()));
  EXPECT_NE(header().find("no one else watching"), std::string::npos) << header();

  // Someone on the other project: tracked there (its own channel state holds it), never here.
  auto elsewhere = start_viewer(w, "elsewhere", other_project);
  ASSERT_TRUE(elsewhere);
  const auto own_session = elsewhere->stack->presence_session();
  bool tracked = false;
  for (int i = 0; i < 200 && !tracked; ++i) {
    elsewhere->loop.run_sync([&] {
      for (const auto& [key, ps] : elsewhere->stack->manager().presence_state())
        for (const auto& p : ps)
          tracked =
              tracked || (p.contains("session") && p.at("session") == json::value(own_session));
    });
    if (!tracked) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(tracked) << "the other project's viewer never saw its own presence";

  // A second session of the same user opens the same project.
  const std::size_t before = w.objects("presence").size();
  auto second = start_viewer(w, "second", w.project_id());
  ASSERT_TRUE(second);
  ASSERT_TRUE(w.wait_until([&] { return w.objects("presence").size() > before; }, 20s));
  auto joined = *last_presence();
  EXPECT_EQ(joined.at("count"), 1) << json::serialize(joined);
  EXPECT_EQ(names(joined, "viewers"), std::vector<std::string>{"second"});
  EXPECT_EQ(names(joined, "joins"), std::vector<std::string>{"second"});
  EXPECT_TRUE(joined.at("leaves").as_array().empty());
  const auto& v = joined.at("viewers").at(0);
  EXPECT_EQ(v.at("client"), "e2e viewer");
  EXPECT_EQ(v.at("user_id"), json::value(w.env().user().id));
  EXPECT_EQ(v.at("session"), json::value(second->stack->presence_session()));
  EXPECT_NE(v.at("session"), json::value(w.stack().presence_session()));  // ours is never listed
  EXPECT_NE(header().find("1 other watching"), std::string::npos) << header();
  // The diagnostics view lists them by name.
  const auto diagnostics = w.on_loop([&] {
    auto state = w.pane().initial_state();
    state.mode = app::view::Mode::diagnostics;
    return w.pane().model(state).diagnostics;
  });
  bool listed = false;
  for (const auto& line : diagnostics)
    listed = listed || line.find(R"("name": "second")") != std::string::npos;
  EXPECT_TRUE(listed) << "the diagnostics view does not name the other viewer";

  // It goes away (leaves the channel as the client is destroyed): a leave.
  const std::size_t with_second = w.objects("presence").size();
  second.reset();
  ASSERT_TRUE(w.wait_until([&] { return w.objects("presence").size() > with_second; }, 20s));
  auto left = *last_presence();
  EXPECT_EQ(left.at("count"), 0) << json::serialize(left);
  EXPECT_EQ(names(left, "leaves"), std::vector<std::string>{"second"});
  EXPECT_TRUE(left.at("joins").as_array().empty());
  EXPECT_NE(header().find("no one else watching"), std::string::npos) << header();
  // The other project's viewer was never among this project's viewers.
  for (const auto& line : w.objects("presence"))
    for (const auto& n : names(line, "viewers"))
      EXPECT_NE(n, "elsewhere");
}

}  // namespace
}  // namespace rtsync::e2e
