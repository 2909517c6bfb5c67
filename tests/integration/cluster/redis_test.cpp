// RedisConnection and RedisSubscriber against a real redis-server (testkit::TempRedis), on an
// EventLoop thread as the server runs them: replies as a caller sees them, binary safety,
// pipelining order, blocking commands, Pub/Sub, the memory bounds, and recovery after Redis is
// killed and restarted. Every wait polls a condition on the loop with a deadline.
#include "rtsync/server/cluster/redis.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "rtsync/core/event_loop.hpp"
#include "rtsync/testkit/temp_redis.hpp"

namespace rtsync::test {
namespace {

using namespace std::chrono_literals;
using server::cluster::parse_redis_url;
using server::cluster::RedisConnection;
using server::cluster::RedisEndpoint;
using server::cluster::RedisOptions;
using server::cluster::RedisReply;
using server::cluster::RedisSubscriber;
using Type = RedisReply::Type;

// What a state callback saw, in order.
struct StateEvent {
  bool up = false;
  std::string reason;
};

// A loop-confined object made and destroyed on the loop. Its methods are called inside
// loop.run_sync (get()); declare it after everything its callbacks use.
template <class T>
class OnLoop {
 public:
  template <class... Args>
  explicit OnLoop(core::EventLoop& loop, Args&&... args) : loop_(loop) {
    loop_.run_sync([&] { obj_ = std::make_unique<T>(std::forward<Args>(args)...); });
  }
  ~OnLoop() { reset(); }
  OnLoop(const OnLoop&) = delete;
  OnLoop& operator=(const OnLoop&) = delete;
  T& get() { return *obj_; }
  void reset() {
    loop_.run_sync([&] { obj_.reset(); });
  }

 private:
  core::EventLoop& loop_;
  std::unique_ptr<T> obj_;
};

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop.start();  // first: TearDown runs on the loop even when Redis failed to start
    auto r = testkit::TempRedis::start();
    ASSERT_TRUE(r.ok()) << r.error().describe();
    redis = std::move(r).value();
  }
  void TearDown() override {
    loop.stop();
    loop.join();
  }

  RedisOptions options() const {
    RedisOptions o;
    o.endpoint = parse_redis_url(redis->url()).value();
    o.connect_timeout = 1s;
    o.reconnect_delay = 50ms;  // recovery within the test's budget
    return o;
  }

  // Polls `pred` on the loop until it holds or `timeout` passes.
  bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      bool ok = false;
      loop.run_sync([&] { ok = pred(); });
      if (ok) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(2ms);
    }
  }

  // A started connection, once its link is up.
  std::unique_ptr<OnLoop<RedisConnection>> connect() {
    auto c = std::make_unique<OnLoop<RedisConnection>>(loop, loop.io_context(), loop.scheduler(),
                                                       options());
    loop.run_sync([&] { c->get().start(); });
    EXPECT_TRUE(eventually([&] { return c->get().connected(); })) << redis->log_tail();
    return c;
  }

  // Sends one command and waits for its outcome.
  Result<RedisReply> call(OnLoop<RedisConnection>& c, std::vector<std::string> args,
                          std::chrono::milliseconds timeout = 5s) {
    auto out = std::make_shared<std::optional<Result<RedisReply>>>();
    loop.run_sync([&] {
      c.get().command(std::move(args), [out](Result<RedisReply> r) { *out = std::move(r); });
    });
    if (!eventually([&] { return out->has_value(); }, timeout)) {
      return make_error(Errc::timeout, "no outcome for the command");
    }
    return std::move(**out);
  }

  core::EventLoop loop;
  std::unique_ptr<testkit::TempRedis> redis;
};

::testing::AssertionResult is_reply(const Result<RedisReply>& r, Type type,
                                    std::string_view str = {}) {
  if (!r) return ::testing::AssertionFailure() << "failed: " << r.error().describe();
  if (r->type != type) {
    return ::testing::AssertionFailure() << "type " << static_cast<int>(r->type) << " (\"" << r->str
                                         << "\"), expected " << static_cast<int>(type);
  }
  if (!str.empty() && r->str != str) {
    return ::testing::AssertionFailure() << "\"" << r->str << "\", expected \"" << str << "\"";
  }
  return ::testing::AssertionSuccess();
}

TEST(RedisUrl, ParsesGoodUrlsAndExplainsBadOnes) {
  struct Good {
    std::string_view url;
    std::string host;
    std::uint16_t port;
  };
  for (const auto& g : {Good{"redis://127.0.0.1:6380", "127.0.0.1", 6380},
                        Good{"redis://cache.internal", "cache.internal", 6379},
                        Good{"redis://cache-1.example.com:7000/", "cache-1.example.com", 7000},
                        Good{"redis://h:65535/0", "h", 65535}, Good{"redis://h/", "h", 6379},
                        Good{"redis://[::1]:7001", "::1", 7001}, Good{"REDIS://H:1", "H", 1}}) {
    auto r = parse_redis_url(g.url);
    ASSERT_TRUE(r.ok()) << g.url << ": " << r.error().describe();
    EXPECT_EQ(r->host, g.host) << g.url;
    EXPECT_EQ(r->port, g.port) << g.url;
    // to_string reads back as the same endpoint.
    auto again = parse_redis_url(server::cluster::to_string(*r));
    ASSERT_TRUE(again.ok()) << server::cluster::to_string(*r);
    EXPECT_EQ(again->host, r->host);
    EXPECT_EQ(again->port, r->port);
  }
  EXPECT_EQ(server::cluster::to_string(RedisEndpoint{"10.0.0.5", 6390}), "redis://10.0.0.5:6390");
  EXPECT_EQ(server::cluster::to_string(RedisEndpoint{"::1", 7001}), "redis://[::1]:7001");

  struct Bad {
    std::string_view url;
    std::string_view says;  // part of the message
  };
  for (const auto& b :
       {Bad{"", "expected redis://"}, Bad{"http://h:6379", "expected redis://"},
        Bad{"cache:6379", "expected redis://"}, Bad{"rediss://h:6380", "TLS"},
        Bad{"redis://", "host is missing"}, Bad{"redis://:6379", "host is missing"},
        Bad{"redis://h:", "port"}, Bad{"redis://h:0", "port"}, Bad{"redis://h:65536", "port"},
        Bad{"redis://h:12a", "port"}, Bad{"redis://h:123456", "port"},
        Bad{"redis://h/1", "database 0"}, Bad{"redis://h:6379/0/x", "database 0"},
        Bad{"redis://user:pw@h:6379", "credentials"}, Bad{"redis://h:6379?timeout=1", "query"},
        Bad{"redis://::1:6379", "brackets"}, Bad{"redis://[::1:6379", "']'"},
        Bad{"redis://[::1]6379", "':PORT'"}, Bad{"redis://a b:1", "invalid"}}) {
    auto r = parse_redis_url(b.url);
    ASSERT_FALSE(r.ok()) << "accepted " << b.url;
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << b.url;
    EXPECT_NE(r.error().message.find(b.says), std::string::npos)
        << b.url << ": " << r.error().message;
    EXPECT_NE(r.error().message.find("invalid Redis URL"), std::string::npos) << b.url;
  }
}

TEST_F(RedisTest, SetThenGetRoundTrips) {
  auto c = connect();
  EXPECT_TRUE(is_reply(call(*c, {"SET", "greeting", "hello"}), Type::status, "OK"));
  EXPECT_TRUE(is_reply(call(*c, {"GET", "greeting"}), Type::string, "hello"));
  EXPECT_TRUE(is_reply(call(*c, {"GET", "never-set"}), Type::nil));
  auto n = call(*c, {"EXISTS", "greeting", "never-set"});
  ASSERT_TRUE(is_reply(n, Type::integer));
  EXPECT_EQ(n->integer, 1);
  loop.run_sync([&] {
    EXPECT_GT(c->get().bytes_sent(), 0u);
    EXPECT_GT(c->get().bytes_received(), 0u);
    EXPECT_EQ(c->get().pending(), 0u);
    EXPECT_EQ(c->get().connects(), 1u);
  });
}

TEST_F(RedisTest, KeysAndValuesAreBinarySafe) {
  auto c = connect();
  const std::string key("k\0\r\n", 4);
  const std::string small("a\0b\r\n\0c", 7);
  EXPECT_TRUE(is_reply(call(*c, {"SET", key, small}), Type::status, "OK"));
  auto got = call(*c, {"GET", key});
  ASSERT_TRUE(is_reply(got, Type::string));
  EXPECT_EQ(got->str, small);

  std::string big(std::size_t{1} << 20, '\0');  // 1 MiB of every byte value, "\r\n" included
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>((i * 131 + i / 256) & 0xff);
  EXPECT_TRUE(is_reply(call(*c, {"SET", "big", big}), Type::status, "OK"));
  auto len = call(*c, {"STRLEN", "big"});
  ASSERT_TRUE(is_reply(len, Type::integer));
  EXPECT_EQ(len->integer, 1 << 20);
  auto back = call(*c, {"GET", "big"});
  ASSERT_TRUE(is_reply(back, Type::string));
  EXPECT_TRUE(back->str == big) << "the 1 MiB value came back different (" << back->str.size()
                                << " bytes)";
}

TEST_F(RedisTest, ErrorRepliesAreValuesAndTheLinkCarriesOn) {
  auto c = connect();
  ASSERT_TRUE(is_reply(call(*c, {"SET", "word", "not-a-number"}), Type::status, "OK"));
  auto incr = call(*c, {"INCR", "word"});
  ASSERT_TRUE(incr.ok()) << incr.error().describe();
  EXPECT_TRUE(incr->is_error());
  EXPECT_EQ(incr->str.rfind("ERR", 0), 0u) << incr->str;
  auto wrong = call(*c, {"LPUSH", "word", "x"});
  ASSERT_TRUE(is_reply(wrong, Type::error));
  EXPECT_EQ(wrong->str.rfind("WRONGTYPE", 0), 0u) << wrong->str;
  auto unknown = call(*c, {"NO-SUCH-COMMAND", "x"});
  ASSERT_TRUE(is_reply(unknown, Type::error));
  EXPECT_NE(unknown->str.find("unknown command"), std::string::npos) << unknown->str;
  EXPECT_TRUE(is_reply(call(*c, {"PING"}), Type::status, "PONG"));
  loop.run_sync([&] { EXPECT_TRUE(c->get().connected()); });
}

TEST_F(RedisTest, PipelinedCommandsAreAnsweredInOrder) {
  auto c = connect();
  std::vector<long long> seen;
  std::vector<std::string> failures;
  loop.run_sync([&] {
    for (int i = 0; i < 1000; ++i) {
      c->get().command({"INCR", "counter"}, [&](Result<RedisReply> r) {
        if (!r || r->type != Type::integer) {
          failures.push_back(r ? r->str : r.error().describe());
          return;
        }
        seen.push_back(r->integer);
      });
    }
    // All queued before any reply can have been read.
    EXPECT_EQ(c->get().pending(), 1000u);
  });
  ASSERT_TRUE(eventually([&] { return seen.size() + failures.size() == 1000; }));
  loop.run_sync([&] {
    EXPECT_TRUE(failures.empty()) << failures.front();
    for (std::size_t i = 0; i < seen.size(); ++i)
      ASSERT_EQ(seen[i], static_cast<long long>(i + 1)) << "reply " << i;
    EXPECT_EQ(c->get().pending(), 0u);
  });
}

TEST_F(RedisTest, XreadBlockOnASecondConnectionReceivesTheEntry) {
  auto writer = connect();
  auto reader = connect();
  auto read = std::make_shared<std::optional<Result<RedisReply>>>();
  loop.run_sync([&] {
    reader->get().command({"XREAD", "COUNT", "10", "BLOCK", "5000", "STREAMS", "events", "$"},
                          [read](Result<RedisReply> r) { *read = std::move(r); });
  });
  // Only once Redis holds the XREAD is "$" (entries after now) sure to include the XADD.
  bool blocked = false;
  for (const auto deadline = std::chrono::steady_clock::now() + 5s;
       !blocked && std::chrono::steady_clock::now() < deadline;) {
    auto info = call(*writer, {"INFO", "clients"});
    blocked = info.ok() && info->str.find("blocked_clients:1") != std::string::npos;
  }
  ASSERT_TRUE(blocked) << "Redis never held the XREAD";
  loop.run_sync([&] { EXPECT_FALSE(read->has_value()); });
  auto id = call(*writer, {"XADD", "events", "*", "kind", "insert", "row", std::string("7\0x", 3)});
  ASSERT_TRUE(is_reply(id, Type::string));
  ASSERT_TRUE(eventually([&] { return read->has_value(); }));
  const Result<RedisReply>& r = **read;
  // [[stream, [[id, [field, value, …]]]]]
  ASSERT_TRUE(is_reply(r, Type::array));
  ASSERT_EQ(r->elements.size(), 1u);
  const RedisReply& stream = r->elements[0];
  ASSERT_EQ(stream.elements.size(), 2u);
  EXPECT_EQ(stream.elements[0].str, "events");
  ASSERT_EQ(stream.elements[1].elements.size(), 1u);
  const RedisReply& entry = stream.elements[1].elements[0];
  ASSERT_EQ(entry.elements.size(), 2u);
  EXPECT_EQ(entry.elements[0].str, id->str);
  const RedisReply& fields = entry.elements[1];
  ASSERT_EQ(fields.elements.size(), 4u);
  EXPECT_EQ(fields.elements[0].str, "kind");
  EXPECT_EQ(fields.elements[1].str, "insert");
  EXPECT_EQ(fields.elements[2].str, "row");
  EXPECT_EQ(fields.elements[3].str, std::string("7\0x", 3));
}

TEST_F(RedisTest, SubscriberReceivesPublishedMessages) {
  std::vector<StateEvent> states;
  std::vector<std::pair<std::string, std::string>> messages;
  OnLoop<RedisSubscriber> sub(loop, loop.io_context(), loop.scheduler(), options(),
                              std::vector<std::string>{"news", "alerts", "news"});
  loop.run_sync([&] {
    sub.get().set_on_state([&](bool up, const std::string& reason) {
      states.push_back({up, reason});
    });
    sub.get().set_on_message([&](std::string_view channel, std::string_view payload) {
      messages.emplace_back(std::string(channel), std::string(payload));
    });
    sub.get().start();
  });
  ASSERT_TRUE(eventually([&] { return sub.get().subscribed(); })) << redis->log_tail();
  loop.run_sync([&] {
    ASSERT_EQ(states.size(), 1u);
    EXPECT_TRUE(states[0].up);
  });

  auto c = connect();
  const std::string payload("{\"id\":1}\0tail", 13);
  auto receivers = call(*c, {"PUBLISH", "news", payload});
  ASSERT_TRUE(is_reply(receivers, Type::integer));
  EXPECT_EQ(receivers->integer, 1);
  auto none = call(*c, {"PUBLISH", "elsewhere", "x"});
  ASSERT_TRUE(is_reply(none, Type::integer));
  EXPECT_EQ(none->integer, 0);
  ASSERT_TRUE(is_reply(call(*c, {"PUBLISH", "alerts", "a1"}), Type::integer));
  ASSERT_TRUE(eventually([&] { return messages.size() >= 2; }));
  loop.run_sync([&] {
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[0].first, "news");
    EXPECT_EQ(messages[0].second, payload);
    EXPECT_EQ(messages[1].first, "alerts");
    EXPECT_EQ(messages[1].second, "a1");
    EXPECT_EQ(sub.get().messages(), 2u);
    EXPECT_EQ(states.size(), 1u);
  });
}

TEST_F(RedisTest, CommandsFailWhenNotConnectedAndStopCancelsPendingOnes) {
  std::optional<Result<RedisReply>> early;
  std::optional<Result<RedisReply>> blocked;
  std::optional<Result<RedisReply>> dropped;
  OnLoop<RedisConnection> c(loop, loop.io_context(), loop.scheduler(), options());
  // Before start(): fails at once with Errc::io, but never from inside command().
  loop.run_sync([&] {
    c.get().command({"PING"}, [&](Result<RedisReply> r) { early = std::move(r); });
    EXPECT_FALSE(early.has_value());
  });
  ASSERT_TRUE(eventually([&] { return early.has_value(); }));
  ASSERT_FALSE(early->ok());
  EXPECT_EQ(early->error().code, Errc::io) << early->error().message;

  loop.run_sync([&] { c.get().start(); });
  ASSERT_TRUE(eventually([&] { return c.get().connected(); }));
  // A command Redis holds (BLPOP on an empty list) is cancelled by stop(), posted.
  loop.run_sync([&] {
    c.get().command({"BLPOP", "empty-list", "10"},
                    [&](Result<RedisReply> r) { blocked = std::move(r); });
    c.get().stop();
    EXPECT_FALSE(blocked.has_value());
    EXPECT_FALSE(c.get().connected());
  });
  ASSERT_TRUE(eventually([&] { return blocked.has_value(); }));
  ASSERT_FALSE(blocked->ok());
  EXPECT_EQ(blocked->error().code, Errc::cancelled) << blocked->error().message;

  // start() after stop() connects again; destruction drops an unanswered command's callback.
  loop.run_sync([&] { c.get().start(); });
  ASSERT_TRUE(eventually([&] { return c.get().connected(); }));
  loop.run_sync([&] {
    c.get().command({"BLPOP", "empty-list", "10"},
                    [&](Result<RedisReply> r) { dropped = std::move(r); });
  });
  c.reset();
  // A round trip on another connection lets anything the destroyed one had posted run first.
  auto other = connect();
  EXPECT_TRUE(is_reply(call(*other, {"PING"}), Type::status, "PONG"));
  loop.run_sync([&] { EXPECT_FALSE(dropped.has_value()); });
}

TEST_F(RedisTest, KillAndRestartAreRecoveredByThemselves) {
  std::vector<StateEvent> conn_states;
  std::vector<StateEvent> sub_states;
  std::vector<std::string> messages;
  std::optional<Result<RedisReply>> in_flight;
  OnLoop<RedisConnection> c(loop, loop.io_context(), loop.scheduler(), options());
  OnLoop<RedisSubscriber> sub(loop, loop.io_context(), loop.scheduler(), options(),
                              std::vector<std::string>{"news"});
  loop.run_sync([&] {
    c.get().set_on_state([&](bool up, const std::string& reason) {
      conn_states.push_back({up, reason});
    });
    sub.get().set_on_state([&](bool up, const std::string& reason) {
      sub_states.push_back({up, reason});
    });
    sub.get().set_on_message(
        [&](std::string_view, std::string_view payload) { messages.emplace_back(payload); });
    c.get().start();
    sub.get().start();
  });
  ASSERT_TRUE(eventually([&] { return c.get().connected() && sub.get().subscribed(); }));
  auto set = std::make_shared<std::optional<Result<RedisReply>>>();
  loop.run_sync([&] {
    c.get().command({"SET", "before", "1"}, [set](Result<RedisReply> r) { *set = std::move(r); });
    // Held by Redis until it dies.
    c.get().command({"BLPOP", "empty-list", "30"},
                    [&](Result<RedisReply> r) { in_flight = std::move(r); });
  });
  ASSERT_TRUE(eventually([&] { return set->has_value(); }));
  ASSERT_TRUE(is_reply(**set, Type::status, "OK"));

  redis->kill();
  ASSERT_TRUE(eventually(
      [&] { return in_flight.has_value() && conn_states.size() >= 2 && sub_states.size() >= 2; }));
  loop.run_sync([&] {
    ASSERT_FALSE(in_flight->ok());
    EXPECT_EQ(in_flight->error().code, Errc::io) << in_flight->error().message;
    EXPECT_TRUE(conn_states[0].up);
    EXPECT_FALSE(conn_states[1].up);
    EXPECT_FALSE(conn_states[1].reason.empty());
    EXPECT_FALSE(sub_states[1].up);
    EXPECT_FALSE(sub_states[1].reason.empty());
    EXPECT_FALSE(c.get().connected());
    EXPECT_FALSE(sub.get().subscribed());
  });
  auto down = call(c, {"GET", "before"});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, Errc::io) << down.error().message;

  auto restarted = redis->restart();
  ASSERT_TRUE(restarted.ok()) << restarted.error().describe();
  ASSERT_TRUE(eventually([&] { return c.get().connected() && sub.get().subscribed(); }))
      << redis->log_tail();
  loop.run_sync([&] {
    ASSERT_EQ(conn_states.size(), 3u);
    EXPECT_TRUE(conn_states[2].up);
    ASSERT_EQ(sub_states.size(), 3u);
    EXPECT_TRUE(sub_states[2].up);
    EXPECT_EQ(c.get().connects(), 2u);
  });
  // A new server without persistence: the old key is gone, and the link works again.
  EXPECT_TRUE(is_reply(call(c, {"GET", "before"}), Type::nil));
  EXPECT_TRUE(is_reply(call(c, {"SET", "after", "2"}), Type::status, "OK"));
  EXPECT_TRUE(is_reply(call(c, {"GET", "after"}), Type::string, "2"));
  // The subscriber subscribed again on the new link.
  auto receivers = call(c, {"PUBLISH", "news", "after restart"});
  ASSERT_TRUE(is_reply(receivers, Type::integer));
  EXPECT_EQ(receivers->integer, 1);
  ASSERT_TRUE(eventually([&] { return !messages.empty(); }));
  loop.run_sync([&] { EXPECT_EQ(messages, std::vector<std::string>{"after restart"}); });
}

TEST_F(RedisTest, AReplyOverTheLimitResetsTheLinkWhichComesBack) {
  EXPECT_EQ(RedisOptions{}.max_reply_bytes, std::size_t{64} << 20);
  constexpr std::size_t kLimit = 1 << 20;  // lowered, so that sanitizer builds stay quick
  std::vector<StateEvent> states;
  auto opts = options();
  opts.max_reply_bytes = kLimit;
  OnLoop<RedisConnection> c(loop, loop.io_context(), loop.scheduler(), opts);
  loop.run_sync([&] {
    c.get().set_on_state([&](bool up, const std::string& reason) {
      states.push_back({up, reason});
    });
    c.get().start();
  });
  ASSERT_TRUE(eventually([&] { return c.get().connected(); }));
  // Values made by Redis itself (SETRANGE pads with zero bytes).
  auto make = [&](const std::string& key, std::size_t size) {
    ASSERT_TRUE(is_reply(call(c, {"SETRANGE", key, std::to_string(size - 1), "x"}), Type::integer));
  };
  make("under", kLimit - 64);
  make("over", kLimit + 1);
  make("far-over", 8 * kLimit);

  auto under = call(c, {"GET", "under"});
  ASSERT_TRUE(is_reply(under, Type::string));
  EXPECT_EQ(under->str.size(), kLimit - 64);

  auto over = call(c, {"GET", "over"});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, Errc::io) << over.error().message;
  ASSERT_TRUE(eventually([&] { return c.get().connected() && states.size() >= 3; }));
  loop.run_sync([&] {
    EXPECT_FALSE(states[1].up);
    EXPECT_NE(states[1].reason.find("exceeded the limit"), std::string::npos) << states[1].reason;
    EXPECT_TRUE(states[2].up);
  });

  // A reply far over the limit is refused while it arrives, not once it is all buffered.
  std::uint64_t before = 0;
  loop.run_sync([&] { before = c.get().bytes_received(); });
  auto far = call(c, {"GET", "far-over"});
  ASSERT_FALSE(far.ok());
  EXPECT_EQ(far.error().code, Errc::io) << far.error().message;
  loop.run_sync([&] { EXPECT_LT(c.get().bytes_received() - before, 2 * kLimit); });
  ASSERT_TRUE(eventually([&] { return c.get().connected(); }));
  auto len = call(c, {"STRLEN", "far-over"});
  ASSERT_TRUE(is_reply(len, Type::integer));
  EXPECT_EQ(len->integer, static_cast<long long>(8 * kLimit));
}

TEST_F(RedisTest, TooManyPendingCommandsAreRefused) {
  EXPECT_EQ(RedisOptions{}.max_pending_commands, 100'000u);
  constexpr std::size_t kLimit = 1000;
  auto opts = options();
  opts.max_pending_commands = kLimit;
  OnLoop<RedisConnection> c(loop, loop.io_context(), loop.scheduler(), opts);
  loop.run_sync([&] { c.get().start(); });
  ASSERT_TRUE(eventually([&] { return c.get().connected(); }));
  std::size_t ok = 0;
  std::vector<Error> errors;
  loop.run_sync([&] {
    for (std::size_t i = 0; i <= kLimit; ++i) {
      c.get().command({"PING"}, [&](Result<RedisReply> r) {
        if (r.ok() && r->str == "PONG") {
          ++ok;
        } else if (!r.ok()) {
          errors.push_back(r.error());
        }
      });
    }
  });
  ASSERT_TRUE(eventually([&] { return ok + errors.size() == kLimit + 1; }));
  loop.run_sync([&] {
    EXPECT_EQ(ok, kLimit);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].code, Errc::too_large) << errors[0].message;
    EXPECT_TRUE(c.get().connected());
    EXPECT_EQ(c.get().pending(), 0u);
  });
  // Room again once the replies are in.
  EXPECT_TRUE(is_reply(call(c, {"PING"}), Type::status, "PONG"));
}

}  // namespace
}  // namespace rtsync::test
