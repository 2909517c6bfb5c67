#include "rtsync/server/cluster/redis.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cctype>
#include <deque>

#include "redis_link.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/server/cluster/names.hpp"

namespace rtsync::server::cluster {

namespace asio = boost::asio;

// ---- URLs ------------------------------------------------------------------------------------

namespace {

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

bool valid_host_char(char c, bool bracketed) {
  const auto u = static_cast<unsigned char>(c);
  if (std::isalnum(u) || c == '-' || c == '.' || c == '_') return true;
  // An IPv6 address (with an optional zone, "fe80::1%eth0").
  return bracketed && (c == ':' || c == '%');
}

}  // namespace

Result<RedisEndpoint> parse_redis_url(std::string_view url) {
  auto bad = [url](std::string_view why) {
    return make_error(Errc::invalid_argument,
                      fmt::format("invalid Redis URL \"{}\": {}", url, why));
  };
  constexpr std::string_view kScheme = "redis://";
  if (starts_with_nocase(url, "rediss://")) {
    return bad("TLS (rediss://) is not supported; use redis://HOST[:PORT]");
  }
  if (!starts_with_nocase(url, kScheme)) return bad("expected redis://HOST[:PORT]");
  std::string_view rest = url.substr(kScheme.size());

  // The path names the database; only 0 (the one a cluster of rtsync servers shares) is allowed.
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view path = rest.substr(slash);
    if (path != "/" && path != "/0") {
      return bad(fmt::format("only database 0 is supported (\"/\" or \"/0\"), not \"{}\"", path));
    }
    rest = rest.substr(0, slash);
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad("a query or fragment is not supported");
  }
  if (rest.find('@') != std::string_view::npos) {
    return bad("credentials (user:password@) are not supported");
  }

  RedisEndpoint out;
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  bool bracketed = false;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 address is missing its ']'");
    host = rest.substr(1, close - 1);
    bracketed = true;
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("expected ':PORT' after the ']'");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    const auto colon = rest.find(':');
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      has_port = true;
      if (port.find(':') != std::string_view::npos) {
        return bad("an IPv6 address must be in brackets (redis://[::1]:6379)");
      }
    }
  }
  if (host.empty()) return bad("the host is missing");
  for (const char c : host) {
    if (!valid_host_char(c, bracketed)) {
      return bad(fmt::format("the host contains an invalid character (0x{:02x})",
                             static_cast<unsigned char>(c)));
    }
  }
  out.host = std::string(host);
  if (has_port) {
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      return bad("the port must be a number from 1 to 65535");
    }
    const int value = std::stoi(std::string(port));
    if (value < 1 || value > 65535) return bad("the port must be a number from 1 to 65535");
    out.port = static_cast<std::uint16_t>(value);
  }
  return out;
}

std::string to_string(const RedisEndpoint& endpoint) {
  if (endpoint.host.find(':') != std::string::npos) {
    return fmt::format("redis://[{}]:{}", endpoint.host, endpoint.port);
  }
  return fmt::format("redis://{}:{}", endpoint.host, endpoint.port);
}

// ---- RedisConnection -------------------------------------------------------------------------

struct RedisConnection::Impl final : detail::RedisLink {
  Impl(asio::io_context& io, core::Scheduler& scheduler, RedisOptions options)
      : RedisLink(io, scheduler, std::move(options), "connection") {}

  std::deque<Callback> waiting;  // one per command sent, in order
  StateCallback on_state;
  bool destroyed = false;

  std::shared_ptr<Impl> self() { return std::static_pointer_cast<Impl>(shared_from_this()); }

  // Calls `callbacks` with `error` on a later turn of the loop (never from inside the public call
  // that failed them), unless the RedisConnection is gone by then.
  void post_failure(std::deque<Callback> callbacks, Error error) {
    if (callbacks.empty()) return;
    asio::post(io(), [self = self(), callbacks = std::move(callbacks),
                      error = std::move(error)]() mutable {
      for (auto& cb : callbacks) {
        if (self->destroyed) return;
        if (cb) cb(error);
      }
    });
  }
  void post_failure(Callback cb, Error error) {
    std::deque<Callback> one;
    one.push_back(std::move(cb));
    post_failure(std::move(one), std::move(error));
  }

  void on_link_up() override {
    if (on_state && !destroyed) on_state(true, "");
  }

  void on_link_down(const std::string& reason, bool was_up) override {
    auto failed = std::move(waiting);
    waiting.clear();
    if (was_up && on_state && !destroyed) on_state(false, reason);
    const Error error = make_error(
        Errc::io,
        "Redis link lost before the reply (the command may or may not have run): " + reason);
    for (auto& cb : failed) {
      if (destroyed) return;
      if (cb) cb(error);
    }
  }

  void on_link_reply(RedisReply reply) override {
    if (waiting.empty()) {
      // Nothing asked for it: the replies and commands no longer line up.
      reset_link("Redis sent a reply no command was waiting for");
      return;
    }
    auto cb = std::move(waiting.front());
    waiting.pop_front();
    if (cb && !destroyed) cb(std::move(reply));
  }
};

RedisConnection::RedisConnection(asio::io_context& io, core::Scheduler& scheduler,
                                 RedisOptions options)
    : impl_(std::make_shared<Impl>(io, scheduler, std::move(options))) {}

RedisConnection::~RedisConnection() {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler());
  // Pending handlers keep the Impl alive until they see the closed link; nothing of the user's
  // runs again. The callback running right now, if any, was moved out of `waiting` first.
  impl_->destroyed = true;
  impl_->stop_link();
  impl_->waiting.clear();
}

void RedisConnection::start() {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler());
  impl_->start_link();
}

void RedisConnection::stop() {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler());
  impl_->stop_link();
  auto failed = std::move(impl_->waiting);
  impl_->waiting.clear();
  impl_->post_failure(std::move(failed),
                      make_error(Errc::cancelled, "the Redis connection was stopped"));
}

void RedisConnection::command(std::vector<std::string> args, Callback done) {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler());
  if (!impl_->link_up()) {
    return impl_->post_failure(
        std::move(done),
        make_error(Errc::io, "not connected to Redis at " + to_string(impl_->options().endpoint)));
  }
  if (impl_->waiting.size() >= impl_->options().max_pending_commands) {
    return impl_->post_failure(
        std::move(done),
        make_error(Errc::too_large, fmt::format("{} Redis commands are already waiting for replies",
                                                impl_->waiting.size())));
  }
  auto encoded = detail::encode_command(args);
  if (!encoded) return impl_->post_failure(std::move(done), std::move(encoded).error());
  impl_->waiting.push_back(std::move(done));
  impl_->send_raw(*encoded);
}

bool RedisConnection::connected() const noexcept {
  return impl_->link_up();
}

void RedisConnection::set_on_state(StateCallback cb) {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler());
  impl_->on_state = std::move(cb);
}

std::uint64_t RedisConnection::bytes_sent() const noexcept {
  return impl_->bytes_sent();
}
std::uint64_t RedisConnection::bytes_received() const noexcept {
  return impl_->bytes_received();
}
std::size_t RedisConnection::pending() const noexcept {
  return impl_->waiting.size();
}
std::uint64_t RedisConnection::connects() const noexcept {
  return impl_->connects();
}

// ---- RedisSubscriber -------------------------------------------------------------------------

struct RedisSubscriber::Impl final : detail::RedisLink {
  Impl(asio::io_context& io, core::Scheduler& scheduler, RedisOptions options,
       std::vector<std::string> channel_list)
      : RedisLink(io, scheduler, std::move(options), "subscriber") {
    for (auto& c : channel_list) {
      if (std::find(channels.begin(), channels.end(), c) == channels.end()) {
        channels.push_back(std::move(c));
      }
    }
    if (!channels.empty()) {
      std::vector<std::string> args{"SUBSCRIBE"};
      args.insert(args.end(), channels.begin(), channels.end());
      // Only an empty argument list fails to encode, and this one has a name.
      subscribe_command = detail::encode_command(args).value_or(std::string());
    }
  }

  std::vector<std::string> channels;  // distinct, in the order given
  std::string subscribe_command;      // encoded once, sent on every link
  std::size_t confirmed = 0;          // SUBSCRIBE confirmations on this link
  bool subscribed = false;
  std::uint64_t messages = 0;
  MessageCallback on_message;
  StateCallback on_state;
  bool destroyed = false;

  void became_subscribed() {
    subscribed = true;
    log::get(loggers::kRedis)
        ->debug("subscribed to {} Redis channel{}", channels.size(),
                channels.size() == 1 ? "" : "s");
    if (on_state && !destroyed) on_state(true, "");
  }

  void on_link_up() override {
    confirmed = 0;
    subscribed = false;
    if (channels.empty()) return became_subscribed();
    send_raw(subscribe_command);
  }

  void on_link_down(const std::string& reason, bool) override {
    const bool was_subscribed = subscribed;
    subscribed = false;
    confirmed = 0;
    if (was_subscribed && on_state && !destroyed) on_state(false, reason);
  }

  void on_link_reply(RedisReply reply) override {
    if (reply.is_error()) return reset_link("Redis refused SUBSCRIBE: " + reply.str);
    // RESP2 Pub/Sub pushes: ["message", channel, payload], ["subscribe", channel, count].
    if (reply.type != RedisReply::Type::array || reply.elements.size() < 3 ||
        reply.elements[0].type != RedisReply::Type::string) {
      return reset_link("unexpected reply on the Pub/Sub connection");
    }
    const std::string& kind = reply.elements[0].str;
    if (kind == "message") {
      ++messages;
      if (on_message && !destroyed) on_message(reply.elements[1].str, reply.elements[2].str);
    } else if (kind == "subscribe") {
      // Redis confirms each channel of the SUBSCRIBE separately.
      if (!subscribed && ++confirmed >= channels.size()) became_subscribed();
    }
    // Anything else ("unsubscribe" …) is not asked for and needs nothing.
  }
};

RedisSubscriber::RedisSubscriber(asio::io_context& io, core::Scheduler& scheduler,
                                 RedisOptions options, std::vector<std::string> channels)
    : impl_(std::make_shared<Impl>(io, scheduler, std::move(options), std::move(channels))) {}

RedisSubscriber::~RedisSubscriber() {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler());
  impl_->destroyed = true;
  impl_->stop_link();
}

void RedisSubscriber::set_on_message(MessageCallback cb) {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler());
  impl_->on_message = std::move(cb);
}

void RedisSubscriber::set_on_state(StateCallback cb) {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler());
  impl_->on_state = std::move(cb);
}

void RedisSubscriber::start() {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler());
  impl_->start_link();
}

void RedisSubscriber::stop() {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler());
  impl_->stop_link();
  impl_->subscribed = false;
  impl_->confirmed = 0;
}

bool RedisSubscriber::subscribed() const noexcept {
  return impl_->subscribed;
}
std::uint64_t RedisSubscriber::messages() const noexcept {
  return impl_->messages;
}
std::uint64_t RedisSubscriber::bytes_sent() const noexcept {
  return impl_->bytes_sent();
}
std::uint64_t RedisSubscriber::bytes_received() const noexcept {
  return impl_->bytes_received();
}

}  // namespace rtsync::server::cluster
