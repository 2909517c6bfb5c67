// Who else is watching: the presences of the project channel turned into the pane's viewers, the
// joins and leaves between two states, the header note and the --json presence line.
#include "view/viewers.hpp"

#include <gtest/gtest.h>

#include "view/json_lines.hpp"
#include "view/pane_render.hpp"

namespace rtsync::app::view {
namespace {

json::object presence(std::string ref, std::string session, std::string name, std::string since) {
  return json::object{{"presence_ref", ref},      {"user_id", "u-1"}, {"name", name},
                      {"client", "rtsync watch"}, {"since", since},   {"session", session}};
}

TEST(Viewers, EveryPresenceButOursOrderedBySince) {
  PresenceEntries state;
  // Two sessions of the same user (one key, two presences), one of them ours, and another user.
  state["u-1"] = {presence("r1", "mine", "alice", "2025-11-19T00:00:01.000Z"),
                  presence("r2", "phone", "alice", "2025-11-19T00:00:03.000Z")};
  state["u-2"] = {json::object{{"presence_ref", "r3"},
                               {"name", "bob"},
                               {"since", "2025-11-19T00:00:02.000Z"},
                               {"session", "bobs"}}};
  // A presence of another client that tracks none of our fields.
  state["x"] = {json::object{{"presence_ref", "r4"}}};
  const auto others = other_viewers(state, "mine");
  ASSERT_EQ(others.size(), 3u);
  EXPECT_EQ(others[0].session, "r4");  // no since, no session: its presence_ref; sorts first
  EXPECT_EQ(others[0].user_id, "x");   // the key
  EXPECT_EQ(others[1].name, "bob");
  EXPECT_EQ(others[1].user_id, "u-2");
  EXPECT_EQ(others[2].session, "phone");
  EXPECT_EQ(others[2].client, "rtsync watch");
  EXPECT_EQ(other_viewers(state, "").size(), 4u);
  EXPECT_TRUE(other_viewers({}, "mine").empty());
}

TEST(Viewers, ChangesAreJoinsAndLeavesBySession) {
  const Viewer a{"s1", "u1", "alice", "", ""}, b{"s2", "u2", "bob", "", ""},
      c{"s3", "u1", "alice", "", ""};
  auto ch = viewer_change({a, b}, {b, c});
  ASSERT_EQ(ch.joins.size(), 1u);
  EXPECT_EQ(ch.joins[0].session, "s3");
  ASSERT_EQ(ch.leaves.size(), 1u);
  EXPECT_EQ(ch.leaves[0].session, "s1");
  EXPECT_TRUE(viewer_change({a, b}, {b, a}).empty());
}

TEST(Viewers, HeaderShowsHowManyOthersWatch) {
  EXPECT_EQ(watchers_text(std::nullopt), "");
  EXPECT_EQ(watchers_text(0), "no one else watching");
  EXPECT_EQ(watchers_text(1), "1 other watching");
  EXPECT_EQ(watchers_text(3), "3 others watching");
  PaneModel m;
  m.project_name = "Neon Rain";
  m.project_count = 2;
  m.badge = Badge::connected;
  EXPECT_EQ(render(m, 80, 5)[0].rfind("Neon Rain (1/2)   ", 0), 0u) << render(m, 80, 5)[0];
  m.watchers = 1;
  const auto line = render(m, 80, 5)[0];
  EXPECT_EQ(line.rfind("Neon Rain (1/2) · 1 other watching ", 0), 0u) << line;
  EXPECT_TRUE(line.ends_with("● Connected")) << line;
}

TEST(Viewers, PresenceLineListsViewersJoinsAndLeaves) {
  const Viewer a{"s1", "u1", "alice", "rtsync watch", "2025-11-19T00:00:01.000Z"};
  const Viewer b{"s2", "u2", "bob", "headless", "2025-11-19T00:00:02.000Z"};
  const std::string va = R"j({"name":"alice","user_id":"u1","client":"rtsync watch",)j"
                         R"j("since":"2025-11-19T00:00:01.000Z","session":"s1"})j";
  const std::string vb = R"j({"name":"bob","user_id":"u2","client":"headless",)j"
                         R"j("since":"2025-11-19T00:00:02.000Z","session":"s2"})j";
  EXPECT_EQ(
      presence_line(std::string("p1"), {a, b}, ViewerChange{{b}, {}}, "2025-11-19T00:22:40.877Z"),
      R"j({"type":"presence","project_id":"p1","count":2,"viewers":[)j" + va + "," + vb +
          R"j(],"joins":[)j" + vb + R"j(],"leaves":[],"at":"2025-11-19T00:22:40.877Z"})j");
  const auto empty = json::parse(presence_line(std::nullopt, {}, ViewerChange{{}, {a}}, "t"));
  EXPECT_TRUE(empty.at("project_id").is_null());
  EXPECT_EQ(empty.at("count"), 0);
  EXPECT_EQ(empty.at("leaves").at(0).at("session"), "s1");
}

}  // namespace
}  // namespace rtsync::app::view
