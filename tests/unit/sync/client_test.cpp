// client::Client, the entry point, on virtual time: the realtime transport replaced by the
// in-memory fake (through ClientOptions::wrap_transport), the HTTP client built but never used.
#include "rtsync/client/client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "manager_fixture.hpp"
#include "query_helpers.hpp"
#include "rtsync/client/sync/names.hpp"
#include "rtsync/client/transport/names.hpp"

namespace rtsync::client::sync::testing {
namespace {

using query::QueryKey;

// {"sub":"user-9","exp":4102444800}
constexpr std::string_view kToken = "e30.eyJzdWIiOiJ1c2VyLTkiLCJleHAiOjQxMDI0NDQ4MDB9.sig";

class ClientEntry : public ::testing::Test {
 protected:
  ClientOptions options() {
    ClientOptions o;
    o.url = "http://127.0.0.1:54321/";
    o.anon_key = "anon";
    o.binding.channel_prefix = "notes:";
    o.binding.scope_name = "bookId";
    o.binding.changes = {{"*", "public", "notes", "book_id", "notes:changed"}};
    o.binding.invalidations = {{"notes:changed", {QueryKey{"notes"}}}};
    o.wrap_transport = [this](std::unique_ptr<Transport>) {
      auto t = std::make_unique<FakeTransport>();
      fake = t.get();
      peer = std::make_unique<FakeRealtimePeer>(*fake);
      return std::unique_ptr<Transport>(std::move(t));
    };
    return o;
  }

  std::unique_ptr<Client> make(ClientOptions o) {
    auto c = Client::create(io, clock, std::move(o));
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
    return c.ok() ? std::move(c.value()) : nullptr;
  }

  ManualScheduler clock;
  boost::asio::io_context io;  // never run: no HTTP request is made
  FakeTransport* fake = nullptr;
  std::unique_ptr<FakeRealtimePeer> peer;
  FetchLog fetches{clock};
  MountedQueries queries;
};

TEST_F(ClientEntry, CreateRefusesMissingOrUnusableSettings) {
  auto o = options();
  o.url.clear();
  auto c = Client::create(io, clock, o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::invalid_argument);
  o = options();
  o.anon_key.clear();
  EXPECT_EQ(Client::create(io, clock, o).error().code, Errc::invalid_argument);
  o = options();
  o.url = "ftp://example.com";
  EXPECT_EQ(Client::create(io, clock, o).error().code, Errc::invalid_argument);
}

TEST_F(ClientEntry, SharedSettingsReachEveryPartFromOneField) {
  auto o = options();
  o.max_frame_bytes = 4096;
  o.push_timeout = seconds(3);
  auto db = make(o);
  ASSERT_TRUE(db);
  EXPECT_EQ(db->realtime().options().max_frame_bytes, 4096u);
  EXPECT_EQ(db->realtime().options().push_timeout, seconds(3));
  EXPECT_EQ(db->realtime().options().api_key, "anon");
  EXPECT_EQ(db->options().url, "http://127.0.0.1:54321");  // trailing slash removed once
  EXPECT_EQ(db->realtime().endpoint_url().rfind("ws://127.0.0.1:54321/realtime/v1/websocket?", 0),
            0u);
  // A message over the one limit closes the connection (1009) instead of reaching a channel.
  db->connect();
  peer->accept();
  ASSERT_TRUE(db->realtime().is_connected());
  fake->receive_text(std::string(5000, ' '));
  EXPECT_FALSE(db->realtime().is_connected());
  EXPECT_EQ(db->realtime().counters().oversized_frames, 1u);
}

// The reconnect schedule is a client option: the default (0.5 s doubling to 2 s) and a slower one
// reach the socket, and the socket waits by it after a drop.
TEST_F(ClientEntry, ReconnectBackoffReachesTheSocket) {
  auto defaults = make(options());
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->realtime().options().reconnect_backoff.base, milliseconds(500));
  EXPECT_EQ(defaults->realtime().options().reconnect_backoff.cap, seconds(2));
  defaults.reset();
  auto o = options();
  o.reconnect_backoff = core::ExponentialBackoff{seconds(10), seconds(10)};
  auto slow = make(o);
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->realtime().options().reconnect_backoff.cap, seconds(10));
  slow->connect();
  peer->accept();
  // The client's jitter is random: over 20 drops, some wait lies beyond the default 2 s cap (each
  // draw does with probability 0.8), none beyond 10 s.
  core::Duration longest{};
  for (int i = 0; i < 20; ++i) {
    peer->drop();
    const auto wait = clock.time_until(rtsync::client::timers::SocketReconnect);
    ASSERT_TRUE(wait);
    EXPECT_LE(*wait, seconds(10));
    longest = std::max(longest, *wait);
    clock.advance(*wait);
    peer->accept();
    ASSERT_TRUE(slow->realtime().is_connected());
  }
  EXPECT_GT(longest, seconds(2));
}

TEST_F(ClientEntry, TokenSignInWatchAndStayLive) {
  auto db = make(options());
  ASSERT_TRUE(db);
  EXPECT_EQ(db->sign_in_with_token("").error().code, Errc::invalid_argument);
  ASSERT_TRUE(db->sign_in_with_token(std::string(kToken)).ok());
  ASSERT_TRUE(db->session().get_session().has_value());
  EXPECT_EQ(db->session().get_session()->user_id, "user-9");
  EXPECT_EQ(db->realtime().access_token(), kToken);
  EXPECT_EQ(db->rest().access_token(), kToken);

  const QueryKey notes{"notes", "b1"};
  queries.mount(db->queries(), notes, fetches.fn());
  clock.run_ready();
  EXPECT_EQ(fetches.count(notes), 1u);

  db->connect();
  db->watch("b1");
  peer->accept();
  EXPECT_TRUE(db->live());
  ASSERT_EQ(peer->joins().size(), 1u);
  EXPECT_EQ(peer->joins()[0].topic, "realtime:notes:b1");
  EXPECT_EQ(peer->joins()[0].access_token, kToken);
  ASSERT_EQ(peer->joins()[0].acks.size(), 1u);
  EXPECT_EQ(peer->joins()[0].acks[0].spec.filter, "book_id=eq.b1");
  clock.advance(seconds(1));  // the gap fill's refetch
  fetches.clear();

  peer->send_change("realtime:notes:b1", "UPDATE", json::object{{"id", "n1"}}, {}, "notes");
  clock.run_ready();
  EXPECT_EQ(fetches.count(notes), 1u);  // the change refetched the observed query

  const auto snap = db->snapshot();
  for (const char* part : {"socket", "cache", "realtime", "realtimeStatus", "provider", "freshness",
                           "smartPolling", "auth", "reconnectScheduler"})
    EXPECT_TRUE(snap.contains(part)) << part;
  EXPECT_EQ(snap.at("realtimeStatus").at("bookId").as_string(), "b1");

  db->unwatch();
  EXPECT_FALSE(db->live());
  peer->pump();
  ASSERT_EQ(peer->leaves().size(), 1u);
  EXPECT_EQ(peer->leaves()[0], "realtime:notes:b1");
  db->sign_out();
  EXPECT_FALSE(db->realtime().access_token().has_value());
  EXPECT_EQ(db->rest().access_token(), "");
}

TEST_F(ClientEntry, DestroyLeavesTheChannelAndStopsEveryTimer) {
  auto db = make(options());
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->sign_in_with_token(std::string(kToken)).ok());
  db->connect();
  db->watch("b1");
  peer->accept();
  ASSERT_TRUE(db->live());
  db.reset();
  std::size_t pending = 0;
  for (auto id :
       {timers::JoinGuard, timers::HealRetry, timers::ReconnectDebounce, timers::DegradedWatch,
        timers::TokenRefresh, timers::SignedInDelay, timers::FreshnessAging,
        client::timers::SocketReconnect, client::timers::Heartbeat})
    pending += clock.pending_count(id);
  EXPECT_EQ(pending, 0u);
}

}  // namespace
}  // namespace rtsync::client::sync::testing
