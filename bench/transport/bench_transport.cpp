// Events/s decoded and dispatched to callbacks by one RealtimeSocket (Beast, vsn 2.0.0) connected
// to a local peer streaming postgres_changes frames (bench/transport/stream_peer.mjs). The loop
// runs on this thread, so the process CPU time is the client's single core.
//
//   bench_transport <http://127.0.0.1:port> <count> [timeout-seconds]
// BENCH_READ says what the callback reads of each change:
//   seed    new.params.seed, a nested number (default; what realtime_js_client.mjs touches)
//   string  that and new.status, a string cell (its conversion needs the frame's column list)
//   copy    that and a Boost.JSON copy of the whole change into an arena (as the sync layer)
// Prints one JSON line: events, expected, seconds (first to last event), events_per_s,
// cpu_seconds, events_per_cpu_s, malformed, reconnects, bytes_in.
#include <sys/resource.h>

#include <boost/json/monotonic_resource.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "rtsync/client/transport/beast_transport.hpp"
#include "rtsync/core/event_loop.hpp"

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rtsync;
  using Clock = std::chrono::steady_clock;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <http://127.0.0.1:port> <count> [timeout-seconds]\n", argv[0]);
    return 2;
  }
  const std::string url = argv[1];
  const std::uint64_t expected = std::strtoull(argv[2], nullptr, 10);
  const int timeout_s = argc > 3 ? std::atoi(argv[3]) : 120;
  const char* read_env = std::getenv("BENCH_READ");
  const std::string read = read_env ? read_env : "seed";
  if (read != "seed" && read != "string" && read != "copy") {
    std::fprintf(stderr, "BENCH_READ must be seed, string or copy\n");
    return 2;
  }
  const bool read_string = read != "seed";
  const bool read_copy = read == "copy";

  core::EventLoop loop;
  std::unique_ptr<client::RealtimeSocket> socket;
  std::shared_ptr<client::RealtimeChannel> channel;
  core::Subscription binding;
  core::Timer deadline;
  std::uint64_t events = 0;
  std::uint64_t touched = 0;
  Clock::time_point t0{}, t1{};
  double cpu0 = 0, cpu1 = 0;
  client::SocketCounters counters;

  auto finish = [&] {
    t1 = Clock::now();
    cpu1 = cpu_seconds();
    counters = socket->counters();
    binding.remove();
    channel->unsubscribe();
    socket->disconnect();
    loop.stop();
  };

  loop.post([&] {
    client::SocketOptions options;
    options.url = url;
    options.api_key = "bench-key";
    options.vsn = protocol::Vsn::v2;
    socket = client::make_realtime_socket(loop, options);
    channel = socket->channel("bench");
    binding = channel->on_postgres_changes(
        client::PostgresChangesFilter{"*", "public", "tasks", std::nullopt},
        [&](const protocol::ChangeView& change) {
          if (events == 0) {
            t0 = Clock::now();
            cpu0 = cpu_seconds();
          }
          ++events;
          // Touch the decoded record, like an application would.
          if (auto params = change.new_record().find("params")) {
            if (auto seed = params->find("seed")) {
              touched += static_cast<std::uint64_t>(seed->as_int64().value_or(0));
            }
          }
          if (read_string) {
            if (auto status = change.new_record().find("status")) {
              touched += status->as_string().value_or("").size();
            }
          }
          if (read_copy) {
            // Into one arena per change, as the sync layer's RealtimeManager copies it.
            touched +=
                change.to_object(json::make_shared_resource<json::monotonic_resource>(4096)).size();
          }
          if (events == expected) finish();
        });
    auto ok = channel->subscribe([](client::SubscribeStatus s, std::optional<Error> e) {
      if (s != client::SubscribeStatus::subscribed) {
        std::fprintf(stderr, "[bench] %s %s\n", std::string(client::to_string(s)).c_str(),
                     e ? e->message.c_str() : "");
      }
    });
    if (!ok.ok()) loop.stop();
    deadline = loop.scheduler().schedule(std::chrono::seconds(timeout_s), core::TimerId::Test,
                                         [&] { finish(); });
  });
  loop.run();

  const double seconds = events > 1 ? std::chrono::duration<double>(t1 - t0).count() : 0.0;
  const double cpu = cpu1 - cpu0;
  std::printf(
      "{\"client\":\"rtsync\",\"read\":\"%s\",\"events\":%llu,\"expected\":%llu,\"seconds\":%.6f,"
      "\"events_per_s\":%.1f,\"cpu_seconds\":%.6f,\"events_per_cpu_s\":%.1f,"
      "\"malformed\":%llu,\"reconnects\":%llu,\"bytes_in\":%llu,\"checksum\":%llu}\n",
      read.c_str(), static_cast<unsigned long long>(events),
      static_cast<unsigned long long>(expected), seconds,
      seconds > 0 ? static_cast<double>(events - 1) / seconds : 0.0, cpu,
      cpu > 0 ? static_cast<double>(events - 1) / cpu : 0.0,
      static_cast<unsigned long long>(counters.malformed_frames),
      static_cast<unsigned long long>(counters.reconnects),
      static_cast<unsigned long long>(counters.bytes_in), static_cast<unsigned long long>(touched));
  deadline.cancel();
  binding.remove();
  channel.reset();
  socket.reset();
  return events == expected ? 0 : 1;
}
