#include "rtsync/testkit/fault_proxy.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <unordered_map>
#include <vector>

#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/testkit/names.hpp"

namespace rtsync::testkit {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// One slot per fault kind and flow: setting a fault replaces the one in its slot.
enum Slot : std::size_t { kCut, kStallUp, kStallDown, kDelayUp, kDelayDown, kSlots };

struct Fault {
  bool on = false;
  ProxyMatch match;
  CutMode mode = CutMode::partition;
  core::Duration latency{};
  core::Timer end;
};

std::string_view slot_name(std::size_t s) {
  static constexpr std::string_view kNames[] = {"cut", "stall upstream", "stall downstream",
                                                "delay upstream", "delay downstream"};
  return kNames[s];
}

constexpr std::size_t kReadChunk = 16 * 1024;

// The MSS the proxy's sockets announce when their buffers are made small: an Ethernet segment.
// Loopback's MSS is 64 KiB, and a receive window smaller than one segment leaves the sender able
// to send only when its persist timer fires — a timer that backed off exponentially while the
// window was shut. A healed partition or stall then trickled out for tens of seconds
// (docs/chaos.md §6, seen with `ss`: 3.4 MB unsent, window 26 KB, MSS 29 KB, a persist timer);
// with this MSS the window always holds many segments and the sender refills it at once.
constexpr int kSmallBufferMss = 1448;

void announce_small_mss(int fd) {
  const int mss = kSmallBufferMss;
  // Best effort: without it the link still works, only slower to recover.
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
}

}  // namespace

struct FaultProxy::Impl {
  struct Chunk {
    std::string bytes;
    core::TimePoint due;
  };
  // One direction of one connection: bytes read from its source, waiting to be written.
  struct Pipe {
    std::deque<Chunk> queue;
    std::size_t queued = 0;
    bool reading = false;
    bool writing = false;
    bool eof = false;   // the source sent FIN
    bool shut = false;  // FIN passed on to the destination
    std::array<char, kReadChunk> buf{};
    core::Timer due;
  };
  struct Conn : std::enable_shared_from_this<Conn> {
    explicit Conn(asio::io_context& io) : client(io), server(io) {}
    tcp::socket client;
    tcp::socket server;
    bool connected = false;
    bool parked = false;
    bool closed = false;
    std::string preamble;
    std::array<Pipe, 2> pipes;  // [0] upstream (client → server), [1] downstream
    tcp::socket& src(std::size_t d) { return d == 0 ? client : server; }
    tcp::socket& dst(std::size_t d) { return d == 0 ? server : client; }
  };

  Impl(std::unique_ptr<core::EventLoop> loop, asio::io_context& io_, core::Scheduler& sched_,
       FaultProxyOptions o)
      : own_loop(std::move(loop)), io(io_), sched(sched_), options(std::move(o)), acceptor(io_) {}

  std::unique_ptr<core::EventLoop> own_loop;
  asio::io_context& io;
  core::Scheduler& sched;
  FaultProxyOptions options;
  tcp::acceptor acceptor;
  tcp::endpoint target;
  std::uint16_t port = 0;
  std::array<Fault, kSlots> faults;
  FaultProxyStats stats;
  std::unordered_map<Conn*, std::shared_ptr<Conn>> conns;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  // Runs `fn` on the loop: at once for create() (loop-confined) or when already on the loop,
  // else posted to the own loop and waited for.
  template <class Fn>
  void call(Fn&& fn) {
    if (own_loop && !own_loop->running_in_loop()) {
      own_loop->run_sync(std::forward<Fn>(fn));
    } else {
      fn();
    }
  }

  Result<void> listen() {
    boost::system::error_code ec;
    auto listen_addr = asio::ip::make_address(options.listen_host, ec);
    if (ec) return make_error(Errc::invalid_argument, "listen_host: " + ec.message());
    auto target_addr = asio::ip::make_address(options.target_host, ec);
    if (ec) return make_error(Errc::invalid_argument, "target_host: " + ec.message());
    target = tcp::endpoint(target_addr, options.target_port);
    tcp::endpoint ep(listen_addr, options.listen_port);
    acceptor.open(ep.protocol(), ec);
    // Set before listen(): accepted sockets inherit it and announce it in their SYN-ACK.
    if (!ec && options.socket_buffer_bytes > 0) announce_small_mss(acceptor.native_handle());
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return make_error(Errc::io, "fault proxy listen: " + ec.message());
    port = acceptor.local_endpoint().port();
    accept_next();
    return {};
  }

  void shutdown() {
    *alive = false;
    boost::system::error_code ec;
    acceptor.close(ec);
    for (auto& f : faults)
      f.end.cancel();
    auto all = conns;
    for (auto& [p, c] : all)
      abort(*c);
  }

  // ---- matching and fault state ------------------------------------------------------------
  static bool matches(const Conn& c, const ProxyMatch& m) {
    return m.needle.empty() || c.preamble.find(m.needle) != std::string::npos;
  }
  bool partition_all() const {
    return faults[kCut].on && faults[kCut].mode == CutMode::partition &&
           faults[kCut].match.needle.empty();
  }
  bool held(const Conn& c, std::size_t d) const {
    const auto& cut = faults[kCut];
    if (cut.on && cut.mode == CutMode::partition && matches(c, cut.match)) return true;
    const auto& stall = faults[d == 0 ? kStallUp : kStallDown];
    return stall.on && matches(c, stall.match);
  }
  core::Duration latency(const Conn& c, std::size_t d) const {
    const auto& f = faults[d == 0 ? kDelayUp : kDelayDown];
    return f.on && matches(c, f.match) ? f.latency : core::Duration::zero();
  }
  bool reset_applies(const Conn& c) const {
    const auto& cut = faults[kCut];
    return cut.on && cut.mode == CutMode::reset && matches(c, cut.match);
  }

  void set_socket_buffers(tcp::socket& s) {
    if (options.socket_buffer_bytes <= 0) return;
    boost::system::error_code ec;
    s.set_option(asio::socket_base::receive_buffer_size(options.socket_buffer_bytes), ec);
    s.set_option(asio::socket_base::send_buffer_size(options.socket_buffer_bytes), ec);
  }

  // ---- connections ---------------------------------------------------------------------------
  void accept_next() {
    auto c = std::make_shared<Conn>(io);
    acceptor.async_accept(c->client, [this, alive = alive, c](boost::system::error_code ec) {
      if (!*alive) return;
      if (ec) {
        if (acceptor.is_open()) accept_next();
        return;
      }
      ++stats.accepted;
      on_accept(c);
      accept_next();
    });
  }

  void on_accept(const std::shared_ptr<Conn>& c) {
    set_socket_buffers(c->client);
    if (faults[kCut].on && faults[kCut].mode == CutMode::reset &&
        faults[kCut].match.needle.empty()) {
      // The link is down: the connection is refused as a reset.
      ++stats.refused;
      reset_socket(c->client);
      return;
    }
    conns.emplace(c.get(), c);
    stats.open = conns.size();
    if (partition_all()) {
      c->parked = true;  // joined to the target when the partition ends
      return;
    }
    connect(c);
  }

  void connect(const std::shared_ptr<Conn>& c) {
    c->parked = false;
    boost::system::error_code ec;
    c->server.open(target.protocol(), ec);
    if (!ec && options.socket_buffer_bytes > 0) {
      set_socket_buffers(c->server);
      announce_small_mss(c->server.native_handle());  // before connect: it goes in the SYN
    }
    c->server.async_connect(target, [this, alive = alive, c](boost::system::error_code ec) {
      if (!*alive || c->closed) return;
      if (ec) {
        ++stats.refused;
        return abort(*c);
      }
      c->connected = true;
      ++stats.connected;
      boost::system::error_code ignore;
      c->server.set_option(tcp::no_delay(true), ignore);
      c->client.set_option(tcp::no_delay(true), ignore);
      pump(c);
    });
  }

  void pump(const std::shared_ptr<Conn>& c) {
    for (std::size_t d = 0; d < 2 && !c->closed; ++d) {
      maybe_write(c, d);
      maybe_read(c, d);
    }
  }

  void maybe_read(const std::shared_ptr<Conn>& c, std::size_t d) {
    Pipe& p = c->pipes[d];
    if (c->closed || !c->connected || p.reading || p.eof || p.queued >= options.buffer_bytes ||
        held(*c, d)) {
      return;
    }
    p.reading = true;
    c->src(d).async_read_some(asio::buffer(p.buf), [this, alive = alive, c, d](
                                                       boost::system::error_code ec,
                                                       std::size_t n) {
      if (!*alive) return;
      Pipe& p = c->pipes[d];
      p.reading = false;
      if (c->closed) return;
      if (ec == asio::error::eof) {
        p.eof = true;
        maybe_write(c, d);
        return;
      }
      if (ec) return abort(*c);
      bool grew = false;
      if (d == 0 && c->preamble.size() < options.preamble_bytes) {
        c->preamble.append(p.buf.data(), std::min(n, options.preamble_bytes - c->preamble.size()));
        grew = true;
      }
      p.queue.push_back(Chunk{std::string(p.buf.data(), n), sched.now() + latency(*c, d)});
      p.queued += n;
      if (grew && reset_applies(*c)) {
        ++stats.closed_by_fault;
        return abort(*c);
      }
      // A grown preamble may bring the connection under a fault: re-check both flows.
      if (grew) return pump(c);
      maybe_write(c, d);
      maybe_read(c, d);
    });
  }

  void maybe_write(const std::shared_ptr<Conn>& c, std::size_t d) {
    Pipe& p = c->pipes[d];
    if (c->closed || !c->connected || p.writing) return;
    if (p.queue.empty()) {
      if (p.eof && !p.shut) {
        p.shut = true;
        boost::system::error_code ec;
        c->dst(d).shutdown(tcp::socket::shutdown_send, ec);
        if (c->pipes[0].shut && c->pipes[1].shut) finish(*c);
      }
      return;
    }
    if (held(*c, d)) return;
    const auto now = sched.now();
    const Chunk& head = p.queue.front();
    if (head.due > now) {
      if (!p.due.pending()) {
        p.due = sched.schedule(head.due - now, timers::ProxyDelay,
                               [this, alive = alive, weak = std::weak_ptr<Conn>(c), d] {
                                 if (!*alive) return;
                                 if (auto c = weak.lock()) maybe_write(c, d);
                               });
      }
      return;
    }
    p.writing = true;
    // std::deque keeps references to its elements valid across push_back.
    asio::async_write(c->dst(d), asio::buffer(head.bytes),
                      [this, alive = alive, c, d](boost::system::error_code ec, std::size_t n) {
                        if (!*alive) return;
                        Pipe& p = c->pipes[d];
                        p.writing = false;
                        if (c->closed) return;
                        if (ec) return abort(*c);
                        (d == 0 ? stats.bytes_upstream : stats.bytes_downstream) += n;
                        p.queued -= p.queue.front().bytes.size();
                        p.queue.pop_front();
                        maybe_write(c, d);
                        maybe_read(c, d);
                      });
  }

  static void reset_socket(tcp::socket& s) {
    boost::system::error_code ec;
    if (!s.is_open()) return;
    s.set_option(asio::socket_base::linger(true, 0), ec);
    s.close(ec);
  }

  void forget(Conn& c) {
    c.closed = true;
    for (auto& p : c.pipes)
      p.due.cancel();
    conns.erase(&c);
    stats.open = conns.size();
  }

  // RST both ways (what a crashed peer or a dropped link looks like to each end).
  void abort(Conn& c) {
    if (c.closed) return;
    reset_socket(c.client);
    reset_socket(c.server);
    forget(c);
  }

  // Both sides sent FIN and it was passed on: close quietly.
  void finish(Conn& c) {
    boost::system::error_code ec;
    c.client.close(ec);
    c.server.close(ec);
    forget(c);
  }

  void graceful_close(Conn& c) {
    boost::system::error_code ec;
    c.client.shutdown(tcp::socket::shutdown_both, ec);
    c.server.shutdown(tcp::socket::shutdown_both, ec);
    finish(c);
  }

  // ---- faults --------------------------------------------------------------------------------
  void set(std::size_t slot, Fault f, std::optional<core::Duration> duration) {
    f.on = true;
    faults[slot].end.cancel();
    faults[slot] = std::move(f);
    const auto ms = duration
                        ? std::chrono::duration_cast<std::chrono::milliseconds>(*duration).count()
                        : std::int64_t{-1};
    log::get(loggers::kProxy)
        ->info("port {}: {} on ({}{})", port, slot_name(slot),
               ms < 0 ? std::string("until cleared") : std::to_string(ms) + " ms",
               faults[slot].match.needle.empty() ? "" : ", matching connections");
    if (duration) {
      faults[slot].end =
          sched.schedule(*duration, timers::ProxyFaultEnd, [this, alive = alive, slot] {
            if (*alive) end(slot);
          });
    }
    if (slot == kCut && faults[kCut].mode == CutMode::reset) {
      std::vector<std::shared_ptr<Conn>> hit;
      for (auto& [p, c] : conns)
        if (matches(*c, faults[kCut].match)) hit.push_back(c);
      for (auto& c : hit) {
        ++stats.closed_by_fault;
        abort(*c);
      }
    }
    pump_all();
  }

  void end(std::size_t slot) {
    if (!faults[slot].on) return;
    faults[slot].on = false;
    faults[slot].end.cancel();
    log::get(loggers::kProxy)->info("port {}: {} off", port, slot_name(slot));
    pump_all();
  }

  void pump_all() {
    std::vector<std::shared_ptr<Conn>> all;
    all.reserve(conns.size());
    for (auto& [p, c] : conns)
      all.push_back(c);
    for (auto& c : all) {
      if (c->closed) continue;
      if (c->parked) {
        if (!partition_all()) connect(c);
        continue;
      }
      pump(c);
    }
  }

  std::size_t close_matching(bool abrupt, const ProxyMatch& match) {
    std::vector<std::shared_ptr<Conn>> hit;
    for (auto& [p, c] : conns)
      if (matches(*c, match)) hit.push_back(c);
    for (auto& c : hit) {
      ++stats.closed_by_fault;
      if (abrupt) {
        abort(*c);
      } else {
        graceful_close(*c);
      }
    }
    if (!hit.empty())
      log::get(loggers::kProxy)
          ->info("port {}: closed {} connection(s){}", port, hit.size(), abrupt ? " (reset)" : "");
    return hit.size();
  }
};

FaultProxy::FaultProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<FaultProxy>> FaultProxy::start(FaultProxyOptions options) {
  auto loop = std::make_unique<core::EventLoop>();
  auto& io = loop->io_context();
  auto& sched = loop->scheduler();
  loop->start();
  auto impl = std::make_unique<Impl>(std::move(loop), io, sched, std::move(options));
  Result<void> listened;
  impl->call([&] { listened = impl->listen(); });
  if (!listened.ok()) {
    impl->call([&] { impl->shutdown(); });
    impl->own_loop->stop();
    impl->own_loop->join();
    return listened.error();
  }
  return std::unique_ptr<FaultProxy>(new FaultProxy(std::move(impl)));
}

Result<std::unique_ptr<FaultProxy>> FaultProxy::create(asio::io_context& io,
                                                       core::Scheduler& scheduler,
                                                       FaultProxyOptions options) {
  auto impl = std::make_unique<Impl>(nullptr, io, scheduler, std::move(options));
  if (auto r = impl->listen(); !r.ok()) return r.error();
  return std::unique_ptr<FaultProxy>(new FaultProxy(std::move(impl)));
}

FaultProxy::~FaultProxy() {
  impl_->call([this] { impl_->shutdown(); });
  if (impl_->own_loop) {
    impl_->own_loop->stop();
    impl_->own_loop->join();
  }
}

std::uint16_t FaultProxy::port() const noexcept {
  return impl_->port;
}

void FaultProxy::set_target(std::string host, std::uint16_t port) {
  impl_->call([&] {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (!ec) impl_->target = tcp::endpoint(addr, port);
  });
}

void FaultProxy::cut(CutMode mode, std::optional<core::Duration> duration, ProxyMatch match) {
  impl_->call([&] {
    Fault f;
    f.mode = mode;
    f.match = std::move(match);
    impl_->set(kCut, std::move(f), duration);
  });
}

void FaultProxy::stall(Flow flow, std::optional<core::Duration> duration, ProxyMatch match) {
  impl_->call([&] {
    for (std::size_t slot : {kStallUp, kStallDown}) {
      if (flow == Flow::both || (flow == Flow::upstream) == (slot == kStallUp)) {
        Fault f;
        f.match = match;
        impl_->set(slot, std::move(f), duration);
      }
    }
  });
}

void FaultProxy::delay(Flow flow, core::Duration latency, std::optional<core::Duration> duration,
                       ProxyMatch match) {
  impl_->call([&] {
    for (std::size_t slot : {kDelayUp, kDelayDown}) {
      if (flow == Flow::both || (flow == Flow::upstream) == (slot == kDelayUp)) {
        Fault f;
        f.match = match;
        f.latency = latency;
        impl_->set(slot, std::move(f), duration);
      }
    }
  });
}

std::size_t FaultProxy::close_all(bool abrupt, ProxyMatch match) {
  std::size_t n = 0;
  impl_->call([&] { n = impl_->close_matching(abrupt, match); });
  return n;
}

void FaultProxy::clear() {
  impl_->call([&] {
    for (std::size_t s = 0; s < kSlots; ++s)
      impl_->end(s);
  });
}

bool FaultProxy::faulty() const {
  bool on = false;
  impl_->call([&] {
    for (const auto& f : impl_->faults)
      on = on || f.on;
  });
  return on;
}

FaultProxyStats FaultProxy::stats() const {
  FaultProxyStats s;
  impl_->call([&] { s = impl_->stats; });
  return s;
}

}  // namespace rtsync::testkit
