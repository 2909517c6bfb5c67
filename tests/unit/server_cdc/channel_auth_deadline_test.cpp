// PgChannelAuthorizer's answer deadline on virtual time: a "PostgreSQL" that accepts the TCP
// connection and then says nothing (a hung server, a black-holed network) must not hold a private
// join. No real PostgreSQL: a listener on loopback that never answers stands in for it.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <optional>

#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/server/cdc/names.hpp"
#include "rtsync/server/cdc/pg_channel_authorizer.hpp"

namespace rtsync::server::cdc {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

struct SilentServer {
  asio::io_context& io;
  asio::ip::tcp::acceptor acceptor;
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> accepted;

  explicit SilentServer(asio::io_context& io)
      : io(io), acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    accept();
  }
  void accept() {
    auto s = std::make_unique<asio::ip::tcp::socket>(io);
    auto* raw = s.get();
    acceptor.async_accept(
        *raw, [this, s = std::move(s)](const boost::system::error_code& ec) mutable {
          if (ec) return;
          accepted.push_back(std::move(s));  // held open, never read, never answered
          accept();
        });
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
};

TEST(ChannelAuthDeadline, AHungDatabaseIsAnsweredUnavailableExactlyAtTheDeadline) {
  asio::io_context io;
  core::ManualScheduler sched;
  SilentServer pg(io);
  PgChannelAuthorizerOptions o;
  o.conninfo = "host=127.0.0.1 port=" + std::to_string(pg.port()) + " user=u dbname=d";
  o.connections = 1;
  o.answer_timeout = 5s;
  PgChannelAuthorizer authorizer(io, sched, o);

  std::optional<ChannelAuthResult> answer;
  int answers = 0;
  const AuthClass who{"authenticated", R"({"role":"authenticated","sub":"x"})"};
  authorizer.check(ChannelCheck{who, "room", true, false, false}, [&](ChannelAuthResult r) {
    answer = std::move(r);
    ++answers;
  });
  // The connection is opened and the startup packet sent; the "server" keeps quiet.
  for (int i = 0; i < 200 && pg.accepted.empty(); ++i)
    io.run_one_for(10ms);
  ASSERT_EQ(pg.accepted.size(), 1u);
  io.poll();
  EXPECT_TRUE(sched.pending(timers::ChannelAuthDeadline));

  sched.advance(5s - 1ms);
  io.poll();
  EXPECT_FALSE(answer.has_value());
  sched.advance(1ms);
  ASSERT_TRUE(answer.has_value());
  ASSERT_FALSE(answer->ok());
  EXPECT_EQ(answer->error().failure, ChannelAuthFailure::unavailable);
  EXPECT_EQ(authorizer.failures(), 1u);

  // A second, identical check is not glued to the timed-out one: it gets its own deadline.
  std::optional<ChannelAuthResult> second;
  authorizer.check(ChannelCheck{who, "room", true, false, false},
                   [&](ChannelAuthResult r) { second = std::move(r); });
  io.poll();
  EXPECT_EQ(authorizer.coalesced(), 0u);
  sched.advance(5s);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->error().failure, ChannelAuthFailure::unavailable);
  EXPECT_EQ(answers, 1);  // the first caller is answered once, never again
}

TEST(ChannelAuthDeadline, AChecklessQuestionAndAForeignRoleAreAnsweredOnTheNextTurn) {
  asio::io_context io;
  core::ManualScheduler sched;
  PgChannelAuthorizerOptions o;
  o.conninfo = "host=127.0.0.1 port=1 user=u dbname=d";
  PgChannelAuthorizer authorizer(io, sched, o);
  std::optional<ChannelAuthResult> nothing, foreign;
  authorizer.check(ChannelCheck{AuthClass{"anon", "{}"}, "room", false, false, false},
                   [&](ChannelAuthResult r) { nothing = std::move(r); });
  authorizer.check(ChannelCheck{AuthClass{"supabase_admin", "{}"}, "room", true, true, true},
                   [&](ChannelAuthResult r) { foreign = std::move(r); });
  // Never inside check(): the caller's state is settled before its callback runs.
  EXPECT_FALSE(nothing.has_value());
  EXPECT_FALSE(foreign.has_value());
  sched.run_ready();
  ASSERT_TRUE(nothing && nothing->ok());
  EXPECT_EQ(nothing->value(), ChannelRights{});
  ASSERT_TRUE(foreign && !foreign->ok());
  EXPECT_EQ(foreign->error().failure, ChannelAuthFailure::policy_error);
  EXPECT_EQ(authorizer.probes(), 0u);
}

}  // namespace
}  // namespace rtsync::server::cdc
