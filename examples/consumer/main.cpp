// consumer <url> <api-key> <table>: subscribes to the postgres_changes of one table, prints
// "SUBSCRIBED" once the server confirmed the subscription, then the first change as one JSON line
// ({"schema":…,"table":…,"eventType":…,"new":{…},…}) and exits 0. Exits 1 on a subscription
// error or when no change arrives within 60 seconds.
//
// Built against an installed rtsync (find_package(rtsync) + rtsync::client, see CMakeLists.txt).
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rtsync/client/transport/beast_transport.hpp"
#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/json.hpp"

int main(int argc, char** argv) {
  using namespace rtsync;
  if (argc != 4) {
    std::cerr << "usage: " << argv[0] << " <url> <api-key> <table>\n";
    return 2;
  }
  client::SocketOptions options;
  options.url = argv[1];
  options.api_key = argv[2];
  client::PostgresChangesFilter filter;
  filter.event = "*";
  filter.schema = "public";
  filter.table = argv[3];

  core::EventLoop loop;
  std::unique_ptr<client::RealtimeSocket> socket;
  std::shared_ptr<client::RealtimeChannel> channel;
  std::vector<core::Subscription> subs;
  boost::asio::steady_timer deadline(loop.io_context(), std::chrono::seconds(60));
  int exit_code = 1;
  // Tears the client down on the loop (after the callback that decided to stop has returned),
  // then stops the loop.
  bool done = false;
  auto finish = [&](int code) {
    if (done) return;
    done = true;
    exit_code = code;
    deadline.cancel();
    loop.post([&] {
      subs.clear();
      channel.reset();
      socket.reset();
      loop.stop();
    });
  };

  // Everything below runs on the loop's thread, as the client requires.
  loop.post([&] {
    socket = client::make_realtime_socket(loop, options, client::BeastTransportOptions{});
    channel = socket->channel("public:" + std::string(argv[3]));
    subs.push_back(channel->on_postgres_changes(filter, [&](const protocol::ChangeView& change) {
      if (done) return;
      std::cout << json::serialize(change.to_object()) << std::endl;
      finish(0);
    }));
    auto subscribed = channel->subscribe([&](client::SubscribeStatus s, std::optional<Error> e) {
      if (s == client::SubscribeStatus::subscribed) {
        std::cout << "SUBSCRIBED" << std::endl;
        return;
      }
      std::cerr << "consumer: " << client::to_string(s) << (e ? ": " + e->message : "") << "\n";
      finish(1);
    });
    if (!subscribed.ok()) {
      std::cerr << "consumer: " << subscribed.error().message << "\n";
      finish(1);
    }
  });
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (ec) return;
    std::cerr << "consumer: no change within 60 s\n";
    finish(1);
  });

  loop.run();
  return exit_code;
}
