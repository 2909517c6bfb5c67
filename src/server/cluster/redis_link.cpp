#include "redis_link.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <limits>

#include "rtsync/core/log.hpp"
#include "rtsync/server/cluster/names.hpp"

namespace rtsync::server::cluster::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
// A write buffer that grew past this (a large value was sent) is released after the write rather
// than kept for the life of the link.
constexpr std::size_t kKeepWriteBuffer = 1024 * 1024;

struct ReplyFree {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};

RedisReply to_reply(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::status;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::error;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::string;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::integer;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::array;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) {
        out.elements.push_back(r.element[i] ? to_reply(*r.element[i]) : RedisReply{});
      }
      break;
    default:  // REDIS_REPLY_NIL (a nil bulk string or a nil array)
      out.type = RedisReply::Type::nil;
      break;
  }
  return out;
}

std::string describe(const boost::system::error_code& ec) {
  if (ec == asio::error::eof) return "Redis closed the connection";
  return ec.message();
}

}  // namespace

Result<std::string> encode_command(const std::vector<std::string>& args) {
  if (args.empty()) return make_error(Errc::invalid_argument, "a Redis command needs a name");
  if (args.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return make_error(Errc::too_large, "too many arguments for one Redis command");
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int n =
      redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lens.data());
  if (n < 0 || !cmd) return make_error(Errc::internal, "encoding a Redis command failed");
  std::string out(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  return out;
}

void RedisLink::ReaderFree::operator()(redisReader* r) const noexcept {
  redisReaderFree(r);
}

RedisLink::RedisLink(asio::io_context& io, core::Scheduler& scheduler, RedisOptions options,
                     std::string_view role)
    : io_(io),
      scheduler_(scheduler),
      options_(std::move(options)),
      role_(role),
      socket_(io),
      resolver_(io),
      read_buf_(kReadChunk) {}

RedisLink::~RedisLink() = default;

void RedisLink::start_link() {
  if (phase_ != Phase::stopped) return;
  connect();
}

void RedisLink::stop_link() {
  if (phase_ == Phase::stopped) return;
  if (phase_ == Phase::up) {
    log::get(loggers::kRedis)->info("Redis {} to {} closed", role_, to_string(options_.endpoint));
  }
  close_socket();
  ++epoch_;
  retry_timer_.cancel();
  phase_ = Phase::stopped;
}

void RedisLink::reset_link(const std::string& reason) {
  fail(reason);
}

void RedisLink::connect() {
  phase_ = Phase::connecting;
  const std::uint64_t epoch = ++epoch_;
  std::weak_ptr<RedisLink> weak = weak_from_this();
  connect_timer_ =
      scheduler_.schedule(options_.connect_timeout, timers::RedisConnectTimeout, [weak, epoch] {
        auto self = weak.lock();
        if (!self || self->epoch_ != epoch || self->phase_ != Phase::connecting) return;
        self->fail(fmt::format("connect timed out after {} ms",
                               core::to_ms(self->options_.connect_timeout)));
      });
  // An address needs no resolver (whose lookups run on a helper thread).
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options_.endpoint.host, ec);
  if (!ec) {
    connect_to({tcp::endpoint(address, options_.endpoint.port)});
    return;
  }
  resolver_.async_resolve(
      options_.endpoint.host, std::to_string(options_.endpoint.port),
      [self = shared_from_this(), epoch](const boost::system::error_code& ec,
                                         tcp::resolver::results_type results) {
        if (self->epoch_ != epoch || self->phase_ != Phase::connecting) return;
        if (ec)
          return self->fail("resolving " + self->options_.endpoint.host + ": " + ec.message());
        self->connect_to({results.begin(), results.end()});
      });
}

void RedisLink::connect_to(std::vector<tcp::endpoint> endpoints) {
  asio::async_connect(socket_, std::move(endpoints),
                      [self = shared_from_this(), epoch = epoch_](
                          const boost::system::error_code& ec, const tcp::endpoint&) {
                        if (self->epoch_ != epoch || self->phase_ != Phase::connecting) return;
                        if (ec) return self->fail("connect: " + ec.message());
                        self->on_connected();
                      });
}

void RedisLink::on_connected() {
  connect_timer_.cancel();
  boost::system::error_code ec;
  // Commands are small and a caller often waits on each: Nagle would hold them back.
  socket_.set_option(tcp::no_delay(true), ec);
  // A peer that vanished without a FIN (host down, cable cut) is noticed eventually even on a
  // quiet link (the Pub/Sub one mostly listens).
  socket_.set_option(asio::socket_base::keep_alive(true), ec);
  reader_.reset(redisReaderCreate());
  if (!reader_) return fail("out of memory creating the reply parser");
  reply_bytes_ = 0;
  phase_ = Phase::up;
  ++connects_;
  auto logger = log::get(loggers::kRedis);
  if (failures_in_row_ > 0) {
    logger->info("Redis {} to {} up (after {} failed attempt{})", role_,
                 to_string(options_.endpoint), failures_in_row_, failures_in_row_ == 1 ? "" : "s");
  } else {
    logger->info("Redis {} to {} up", role_, to_string(options_.endpoint));
  }
  failures_in_row_ = 0;
  arm_read();
  on_link_up();
}

void RedisLink::fail(const std::string& reason) {
  if (phase_ != Phase::connecting && phase_ != Phase::up) return;
  const bool was_up = phase_ == Phase::up;
  close_socket();
  const std::uint64_t epoch = ++epoch_;
  phase_ = Phase::waiting;
  ++failures_in_row_;
  auto logger = log::get(loggers::kRedis);
  const std::string where = to_string(options_.endpoint);
  if (was_up) {
    logger->warn("Redis {} to {} lost: {}", role_, where, reason);
  } else if (failures_in_row_ == 1) {
    // One warning per outage; the attempts that follow are at debug level.
    logger->warn("Redis {} to {} failed: {} (retrying every {} ms)", role_, where, reason,
                 core::to_ms(options_.reconnect_delay));
  } else {
    logger->debug("Redis {} to {} failed again: {}", role_, where, reason);
  }
  std::weak_ptr<RedisLink> weak = weak_from_this();
  retry_timer_ =
      scheduler_.schedule(options_.reconnect_delay, timers::RedisReconnect, [weak, epoch] {
        auto self = weak.lock();
        if (!self || self->epoch_ != epoch || self->phase_ != Phase::waiting) {
          return;
        }
        self->connect();
      });
  on_link_down(reason, was_up);
}

void RedisLink::close_socket() {
  // The operations still pending complete with operation_aborted and, their epoch being stale,
  // touch nothing; the buffers they were given stay allocated (only cleared) until they have.
  resolver_.cancel();
  boost::system::error_code ec;
  socket_.close(ec);
  connect_timer_.cancel();
  reader_.reset();
  reply_bytes_ = 0;
  out_.clear();
  writing_.clear();
  write_in_flight_ = false;
}

void RedisLink::arm_read() {
  socket_.async_read_some(asio::buffer(read_buf_),
                          [self = shared_from_this(), epoch = epoch_](
                              const boost::system::error_code& ec, std::size_t n) {
                            if (self->epoch_ != epoch || self->phase_ != Phase::up) return;
                            if (ec) return self->fail("read: " + describe(ec));
                            self->on_read(n);
                          });
}

void RedisLink::on_read(std::size_t n) {
  received_ += n;
  if (redisReaderFeed(reader_.get(), read_buf_.data(), n) != REDIS_OK) {
    return fail(std::string("reply parser: ") + reader_->errstr);
  }
  reply_bytes_ += n;
  const std::uint64_t epoch = epoch_;
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
      return fail(std::string("protocol error: ") + reader_->errstr);
    }
    if (!raw) break;
    std::unique_ptr<redisReply, ReplyFree> reply(static_cast<redisReply*>(raw));
    // What the parser still holds belongs to the replies after this one.
    const std::size_t left = reader_->len - reader_->pos;
    if (reply_bytes_ - left > options_.max_reply_bytes) {
      return fail(fmt::format("a reply of {} bytes exceeded the limit of {} bytes",
                              reply_bytes_ - left, options_.max_reply_bytes));
    }
    reply_bytes_ = left;
    RedisReply value = to_reply(*reply);
    reply.reset();
    on_link_reply(std::move(value));
    if (epoch_ != epoch) return;  // the owner stopped or reset the link
  }
  // What is left is one reply still arriving: refused as soon as it is too large, before all of
  // it is buffered.
  if (reply_bytes_ > options_.max_reply_bytes) {
    return fail(fmt::format("a reply exceeded the limit of {} bytes", options_.max_reply_bytes));
  }
  arm_read();
}

void RedisLink::send_raw(std::string_view bytes) {
  if (phase_ != Phase::up) return;
  out_.append(bytes);
  if (!write_in_flight_) start_write();
}

void RedisLink::start_write() {
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = shared_from_this(), epoch = epoch_](const boost::system::error_code& ec,
                                                                std::size_t n) {
                      if (self->epoch_ != epoch || self->phase_ != Phase::up) return;
                      self->write_in_flight_ = false;
                      if (ec) return self->fail("write: " + describe(ec));
                      self->sent_ += n;
                      if (self->writing_.capacity() > kKeepWriteBuffer) {
                        std::string().swap(self->writing_);
                      } else {
                        self->writing_.clear();
                      }
                      if (!self->out_.empty()) self->start_write();
                    });
}

}  // namespace rtsync::server::cluster::detail
