// Resumable change streams end to end (docs/resume.md): a real PostgreSQL, the server on port 0,
// real websockets. A client that rejoins with the position of the last change it applied gets
// exactly the changes it missed — after a cut link, and after the server itself restarted on the
// same slot (the slot is held back to the history window, so the new server decodes it again) —
// authorized under row-level security, then live changes, none twice; a position of another
// epoch is answered with a gap.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "realtime_helpers.hpp"

namespace rtsync::testkit {
namespace {

using protocol::Message;

const std::string kAlice = "11111111-1111-1111-1111-111111111111";
const std::string kBob = "22222222-2222-2222-2222-222222222222";

void setup(TestStack& s) {
  auto r = s.sql(R"(
    create table public.notes (id int primary key, owner uuid not null, body text);
    alter table public.notes enable row level security;
    create policy own_notes on public.notes for select to authenticated using (owner = auth.uid());
    grant select on public.notes to authenticated;
    alter publication supabase_realtime add table public.notes;)");
  ASSERT_TRUE(r.ok()) << r.error().describe();
}

Result<void> insert(TestStack& s, int id, const std::string& owner) {
  return s.sql("insert into notes values (" + std::to_string(id) + ", '" + owner + "', 'n')");
}

json::object config(std::optional<json::value> resume = std::nullopt) {
  json::object c{{"broadcast", json::object{{"self", false}, {"ack", false}}},
                 {"presence", json::object{{"key", ""}}},
                 {"postgres_changes", json::array{binding("*", "notes")}}};
  if (resume) c["rtsync"] = json::object{{"resume", *resume}};
  return c;
}

struct Received {
  std::vector<std::int64_t> ids;
  std::optional<json::value> last;  // position of the last change
};

// postgres_changes on `topic` until `n` arrived (or `timeout`), then whatever else comes within
// `settle`.
Received receive(WsClient& c, const std::string& topic, std::size_t n,
                 std::chrono::milliseconds settle = 0ms, std::chrono::milliseconds timeout = 10s) {
  Received out;
  auto take = [&](std::chrono::milliseconds wait) {
    auto m = c.wait_for(
        [&](const Message& m) { return m.event == "postgres_changes" && m.topic == topic; }, wait);
    if (!m) return false;
    const auto& data = m->payload.at("data");
    out.ids.push_back(data.at("record").at("id").to_number<std::int64_t>());
    out.last = data.at("position");
    return true;
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.ids.size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !take(left)) break;
  }
  if (settle.count() > 0) {
    while (take(settle)) {
    }
  }
  return out;
}

// Joins `topic` as `key`; the reply's response (or null when the join failed).
json::value join(WsClient& c, const std::string& topic, const std::string& key,
                 std::optional<json::value> resume = std::nullopt) {
  auto reply = c.join(topic, config(std::move(resume)), key);
  if (!reply || reply->payload.at("status").as_string() != "ok") return nullptr;
  // Changes follow "Subscribed to PostgreSQL".
  auto sub = c.wait_for([](const Message& m) {
    return m.event == "system" && m.payload.at("message").as_string() == "Subscribed to PostgreSQL";
  });
  EXPECT_TRUE(sub);
  return reply->payload.at("response");
}

TEST(Resume, AResumeAfterACutLinkGetsExactlyTheMissedRowsItMaySee) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  setup(*s);
  const auto alice = s->key("authenticated", 1h, kAlice);
  auto a = connect(*s, s->anon_key());
  auto watcher = connect(*s, s->anon_key());  // tells when the server delivered everything
  ASSERT_TRUE(a && watcher);
  auto first = join(*a, "realtime:notes", alice);
  ASSERT_TRUE(first.is_object());
  const auto epoch = first.at("rtsync").at("epoch");
  EXPECT_EQ(first.at("rtsync").at("position").at("epoch"), epoch);
  ASSERT_TRUE(join(*watcher, "realtime:watch", alice).is_object());

  REQUIRE_OK(insert(*s, 1, kAlice));
  REQUIRE_OK(insert(*s, 2, kBob));
  auto got = receive(*a, "realtime:notes", 1);
  ASSERT_EQ(got.ids, (std::vector<std::int64_t>{1}));
  ASSERT_TRUE(got.last);
  EXPECT_EQ(got.last->at("epoch"), epoch);
  a->close();

  REQUIRE_OK(insert(*s, 3, kAlice));
  REQUIRE_OK(insert(*s, 4, kBob));
  REQUIRE_OK(insert(*s, 5, kAlice));
  ASSERT_EQ(receive(*watcher, "realtime:watch", 3).ids, (std::vector<std::int64_t>{1, 3, 5}));

  auto b = connect(*s, s->anon_key());
  ASSERT_TRUE(b);
  auto resumed = join(*b, "realtime:notes", alice, *got.last);
  ASSERT_TRUE(resumed.is_object());
  EXPECT_EQ(json::serialize(resumed.at("rtsync").at("resume")),
            R"({"status":"resumed","replayed":2})");
  // Bob's row 4 is not replayed to Alice; row 1 (hers already) not again.
  auto replayed = receive(*b, "realtime:notes", 2);
  EXPECT_EQ(replayed.ids, (std::vector<std::int64_t>{3, 5}));
  REQUIRE_OK(insert(*s, 6, kAlice));
  EXPECT_EQ(receive(*b, "realtime:notes", 1, 1000ms).ids, (std::vector<std::int64_t>{6}));

  // Bob resuming from the same position sees his own rows only.
  auto bob = connect(*s, s->anon_key());
  ASSERT_TRUE(bob);
  auto bob_reply = join(*bob, "realtime:notes", s->key("authenticated", 1h, kBob), *got.last);
  ASSERT_TRUE(bob_reply.is_object());
  EXPECT_EQ(json::serialize(bob_reply.at("rtsync").at("resume")),
            R"({"status":"resumed","replayed":2})");
  EXPECT_EQ(receive(*bob, "realtime:notes", 2, 1000ms).ids, (std::vector<std::int64_t>{2, 4}));

  auto metrics = s->server().metrics_text();
  EXPECT_NE(metrics.find(R"(rtsync_resumes_total{outcome="resumed"} 2)"), std::string::npos)
      << metrics;
}

TEST(Resume, AfterAServerRestartTheRowsCommittedBeforeAndWhileItWasDownAreReplayedOnce) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  setup(*s);
  const auto alice = s->key("authenticated", 1h, kAlice);
  auto a = connect(*s, s->anon_key());
  ASSERT_TRUE(a);
  auto first = join(*a, "realtime:notes", alice);
  ASSERT_TRUE(first.is_object());
  REQUIRE_OK(insert(*s, 1, kAlice));
  auto got = receive(*a, "realtime:notes", 1);
  ASSERT_EQ(got.ids, (std::vector<std::int64_t>{1}));
  // Row 2 reaches the server (and this socket) but the client never applied it: its position
  // stays at row 1.
  REQUIRE_OK(insert(*s, 2, kAlice));
  ASSERT_EQ(receive(*a, "realtime:notes", 1).ids, (std::vector<std::int64_t>{2}));

  s->server().stop();
  REQUIRE_OK(insert(*s, 3, kAlice));
  REQUIRE_OK(insert(*s, 4, kBob));
  REQUIRE_OK(insert(*s, 5, kAlice));
  REQUIRE_OK(s->restart_server());

  auto b = connect(*s, s->anon_key());
  ASSERT_TRUE(b);
  auto resumed = join(*b, "realtime:notes", alice, *got.last);
  ASSERT_TRUE(resumed.is_object());
  EXPECT_EQ(resumed.at("rtsync").at("epoch"), first.at("rtsync").at("epoch"));
  // The new server decoded its window again (rows 1-5, committed before it started: history, no
  // one's live change); the reply waited for that catch-up, so all three are replayed.
  EXPECT_EQ(json::serialize(resumed.at("rtsync").at("resume")),
            R"({"status":"resumed","replayed":3})");
  REQUIRE_OK(insert(*s, 6, kAlice));
  EXPECT_EQ(receive(*b, "realtime:notes", 4, 1500ms).ids, (std::vector<std::int64_t>{2, 3, 5, 6}));
  // A fresh join after the restart sees none of the window.
  auto fresh = connect(*s, s->anon_key());
  ASSERT_TRUE(fresh);
  ASSERT_TRUE(join(*fresh, "realtime:notes", alice).is_object());
  REQUIRE_OK(insert(*s, 7, kAlice));
  EXPECT_EQ(receive(*fresh, "realtime:notes", 1, 1000ms).ids, (std::vector<std::int64_t>{7}));
}

// A replay longer than the socket's whole send queue (here 64 frames) is written as the client
// reads it: every missed change once, in commit order, no gap; the other user's rows committed
// in the same window are not among them, and are his alone when he resumes.
TEST(Resume, AReplayLongerThanTheSocketsQueueArrivesWholeAndOnlyTheSubscribersOwnRows) {
  StackOptions o;
  o.limits.max_queued_frames = 64;
  auto s = start_stack(std::move(o));
  ASSERT_TRUE(s);
  setup(*s);
  const auto alice = s->key("authenticated", 1h, kAlice);
  auto a = connect(*s, s->anon_key());
  auto watcher = connect(*s, s->anon_key());
  ASSERT_TRUE(a && watcher);
  ASSERT_TRUE(join(*a, "realtime:notes", alice).is_object());
  ASSERT_TRUE(join(*watcher, "realtime:watch", alice).is_object());
  REQUIRE_OK(insert(*s, 1, kAlice));
  auto got = receive(*a, "realtime:notes", 1);
  ASSERT_EQ(got.ids, (std::vector<std::int64_t>{1}));
  ASSERT_TRUE(got.last);
  a->close();

  // 30 transactions of 10 rows of each user (a live transaction stays within the queue).
  constexpr int kTxns = 30;
  std::vector<std::int64_t> alices{1}, bobs;
  for (int t = 0; t < kTxns; ++t) {
    const int first = 100 + t * 20;
    REQUIRE_OK(s->sql("insert into notes select g, case when g % 2 = 0 then '" + kAlice +
                      "'::uuid else '" + kBob + "'::uuid end, 'n' from generate_series(" +
                      std::to_string(first) + ", " + std::to_string(first + 19) + ") g"));
    for (int g = first; g < first + 20; ++g)
      (g % 2 == 0 ? alices : bobs).push_back(g);
  }
  ASSERT_EQ(receive(*watcher, "realtime:watch", alices.size()).ids, alices);
  const std::vector<std::int64_t> missed(alices.begin() + 1, alices.end());

  auto b = connect(*s, s->anon_key());
  ASSERT_TRUE(b);
  auto resumed = join(*b, "realtime:notes", alice, *got.last);
  ASSERT_TRUE(resumed.is_object());
  EXPECT_EQ(json::serialize(resumed.at("rtsync").at("resume")),
            R"({"status":"resumed","replayed":)" + std::to_string(missed.size()) + "}");
  EXPECT_EQ(receive(*b, "realtime:notes", missed.size()).ids, missed);
  REQUIRE_OK(insert(*s, 10'000, kAlice));
  EXPECT_EQ(receive(*b, "realtime:notes", 1, 1000ms).ids, (std::vector<std::int64_t>{10'000}));
  EXPECT_FALSE(b->closed());

  // Bob resuming from the same position: his rows, none of Alice's.
  auto bob = connect(*s, s->anon_key());
  ASSERT_TRUE(bob);
  auto bob_reply = join(*bob, "realtime:notes", s->key("authenticated", 1h, kBob), *got.last);
  ASSERT_TRUE(bob_reply.is_object());
  EXPECT_EQ(json::serialize(bob_reply.at("rtsync").at("resume")),
            R"({"status":"resumed","replayed":)" + std::to_string(bobs.size()) + "}");
  EXPECT_EQ(receive(*bob, "realtime:notes", bobs.size(), 1000ms).ids, bobs);

  auto metrics = s->server().metrics_text();
  EXPECT_NE(metrics.find(R"(rtsync_resumes_total{outcome="resumed"} 2)"), std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find(R"(rtsync_drops_total{reason="slow_consumer"})"), std::string::npos)
      << metrics;
}

TEST(Resume, APositionOfAnotherEpochIsAGapAndLiveChangesFollow) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  setup(*s);
  const auto alice = s->key("authenticated", 1h, kAlice);
  auto a = connect(*s, s->anon_key());
  ASSERT_TRUE(a);
  auto reply = join(*a, "realtime:notes", alice,
                    json::object{{"epoch", "0000000000000000"}, {"lsn", "0/1"}, {"index", 1}});
  ASSERT_TRUE(reply.is_object());
  EXPECT_EQ(json::serialize(reply.at("rtsync").at("resume")),
            R"({"status":"gap","reason":"position of another epoch","replayed":0})");
  REQUIRE_OK(insert(*s, 1, kAlice));
  EXPECT_EQ(receive(*a, "realtime:notes", 1, 500ms).ids, (std::vector<std::int64_t>{1}));
}

}  // namespace
}  // namespace rtsync::testkit
