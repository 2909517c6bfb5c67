// Bulk writes against the realtime server (issue: one user's bulk write disconnected everyone):
// a huge transaction and a REST PATCH of many rows neither disconnect subscribers that read at a
// normal pace nor take memory that grows with the transaction; past the per-transaction limit a
// subscriber gets one "Too many changes" message instead of the rest.
#include <regex>

#include "realtime_helpers.hpp"

namespace rtsync::testkit {
namespace {

using protocol::Message;

constexpr const char* kAlice = "11111111-1111-1111-1111-111111111111";
constexpr const char* kBob = "22222222-2222-2222-2222-222222222222";

// A metric's value in the Prometheus text (-1 when absent).
double metric(const std::string& text, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\n" + name + " ([0-9.e+]+)"))) return -1;
  return std::stod(m[1]);
}

struct Received {
  std::size_t changes = 0;
  std::vector<json::value> signals;  // system messages other than the subscribe notices
};

// Reads everything for `topic` until nothing arrives for `quiet` — or, with `until_signal`,
// until the "Too many changes" signal that ends a huge transaction's delivery arrived (bounded by
// `patience`: a loaded machine authorizes a part of 40,000 images in seconds, not milliseconds),
// and then for `quiet` more, so that anything after the signal is still seen.
Received read_all(WsClient& c, const std::string& topic, std::chrono::milliseconds quiet,
                  bool until_signal = false,
                  std::chrono::milliseconds patience = std::chrono::seconds(60)) {
  Received r;
  const auto deadline = std::chrono::steady_clock::now() + patience;
  auto take = [&](std::chrono::milliseconds wait) {
    auto m = c.next(wait);
    if (!m) return false;
    if (m->topic != topic) return true;
    if (m->event == "postgres_changes") ++r.changes;
    if (m->event == "system" &&
        core::find_string(m->payload, "message").value_or("") == "Too many changes") {
      r.signals.push_back(m->payload);
    }
    return true;
  };
  while (until_signal && r.signals.empty() && std::chrono::steady_clock::now() < deadline &&
         !c.closed()) {
    take(std::chrono::milliseconds(500));
  }
  while (take(quiet)) {
  }
  return r;
}

class BulkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StackOptions o;
    // Far below the transactions below.
    o.configure = [](server::ServerOptions& so) { so.stream_memory_bytes = 4u << 20; };
    auto s = TestStack::start(o);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    stack = std::move(s.value());
    auto r = stack->sql(R"(
      create table public.bulk (id serial primary key, owner uuid not null, pad text);
      alter table public.bulk replica identity full;
      alter table public.bulk enable row level security;
      create policy own on public.bulk for all to authenticated
        using (owner = auth.uid()) with check (owner = auth.uid());
      grant select, insert, update on public.bulk to authenticated;
      grant usage on sequence public.bulk_id_seq to authenticated;
      alter publication supabase_realtime add table public.bulk;)");
    ASSERT_TRUE(r.ok()) << r.error().describe();
    for (const char* who : {kAlice, kBob}) {
      auto c = WsClient::connect_key(stack->port(), stack->anon_key());
      ASSERT_TRUE(c.ok()) << c.error().describe();
      c.value()->set_read_limit(64u << 20);
      ASSERT_TRUE(c.value()->join_pg("realtime:bulk", json::array{binding("*", "bulk")},
                                     stack->key("authenticated", std::chrono::hours(1), who)));
      clients.push_back(std::move(c.value()));
    }
  }

  // Bob's own single write still arrives: his socket and the stream both work. It commits after
  // the bulk write, so it waits its turn behind the rest of that transaction (authorized and
  // suppressed part by part): a generous bound, then nothing else.
  void expect_bob_still_served() {
    ASSERT_TRUE(stack->sql(std::string("insert into bulk (owner) values ('") + kBob + "');").ok());
    auto got = changes(*clients[1], "realtime:bulk", 1, std::chrono::seconds(60));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].data.record->at("owner"), json::value(kBob));
    auto rest = read_all(*clients[1], "realtime:bulk", std::chrono::milliseconds(500));
    EXPECT_EQ(rest.changes, 0u);
    EXPECT_TRUE(rest.signals.empty());
    EXPECT_FALSE(clients[1]->closed());
  }

  void expect_memory_bounded() {
    const auto text = stack->server().metrics_text();
    const double peak = metric(text, "rtsync_stream_held_bytes_peak");
    // The limit, plus at most the part that crossed it (1 MiB of change messages).
    EXPECT_GT(peak, 0);
    EXPECT_LE(peak, double((4u << 20) + (1u << 20))) << text;
    EXPECT_EQ(drops_in(text, "slow_consumer"), 0u) << text;
  }

  std::unique_ptr<TestStack> stack;
  std::vector<std::unique_ptr<WsClient>> clients;  // alice, bob
};

TEST_F(BulkTest, AHugeTransactionDisconnectsNobodyAndEndsInOneSignal) {
  ASSERT_TRUE(stack
                  ->sql(std::string("insert into bulk (owner, pad) select '") + kAlice +
                        "', repeat('x', 64) from generate_series(1, 200000);")
                  .ok());
  auto alice = read_all(*clients[0], "realtime:bulk", std::chrono::milliseconds(1000), true);
  // The first 1000 changes, then one signal for the table instead of the other 199,000.
  EXPECT_EQ(alice.changes, 1000u);
  ASSERT_EQ(alice.signals.size(), 1u);
  EXPECT_EQ(json::serialize(alice.signals[0]),
            R"({"extension":"postgres_changes","status":"ok","message":"Too many changes",)"
            R"("channel":"bulk","schema":"public","table":"bulk","limit":1000})");
  EXPECT_FALSE(clients[0]->closed());
  // Bob may see none of it: no change, and no signal either.
  auto bob = read_all(*clients[1], "realtime:bulk", std::chrono::milliseconds(200));
  EXPECT_EQ(bob.changes, 0u);
  EXPECT_TRUE(bob.signals.empty());
  expect_bob_still_served();
  expect_memory_bounded();
}

TEST_F(BulkTest, ARestPatchOfFortyThousandOwnRowsDisconnectsNobody) {
  ASSERT_TRUE(stack
                  ->sql(std::string("insert into bulk (owner) select '") + kAlice +
                        "' from generate_series(1, 40000);")
                  .ok());
  auto first = read_all(*clients[0], "realtime:bulk", std::chrono::milliseconds(1000), true);
  EXPECT_EQ(first.changes, 1000u);
  EXPECT_EQ(first.signals.size(), 1u);
  // Alice, an ordinary user, updates every one of her rows through /rest/v1.
  auto patch = http_request(
      stack->port(), "PATCH", std::string("/rest/v1/bulk?owner=eq.") + kAlice,
      R"({"pad":"patched"})",
      {{"apikey", stack->anon_key()},
       {"Authorization", "Bearer " + stack->key("authenticated", std::chrono::hours(1), kAlice)},
       {"Content-Type", "application/json"}});
  ASSERT_TRUE(patch.ok()) << patch.error().describe();
  ASSERT_LT(patch.value().status, 300u) << patch.value().body;
  auto alice = read_all(*clients[0], "realtime:bulk", std::chrono::milliseconds(1000), true);
  EXPECT_EQ(alice.changes, 1000u);
  EXPECT_EQ(alice.signals.size(), 1u);
  EXPECT_FALSE(clients[0]->closed());
  expect_bob_still_served();
  expect_memory_bounded();
}

}  // namespace
}  // namespace rtsync::testkit
