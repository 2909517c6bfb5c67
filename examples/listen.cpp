// listen: subscribes to postgres_changes of one table of any Supabase project (or rtsync server)
// and prints each change as one JSON line on stdout, in realtime-js's callback shape
//   {"schema":…,"table":…,"commit_timestamp":…,"eventType":…,"new":{…},"old":{…},"errors":…}
// Status and errors go to stderr. Ctrl-C leaves the channel and exits. The connection is a
// client::Client's (rtsync/client/client.hpp); the channel is opened on its realtime socket.
//
//   listen <url> <api-key> <table> [--schema public] [--event '*'|INSERT|UPDATE|DELETE]
//          [--filter 'column=eq.value'] [--token <user JWT>] [--vsn 1|2] [--ca-file ca.pem]
//
//   listen https://<ref>.supabase.co <anon key> todos
//   listen http://127.0.0.1:54321 "$ANON" tasks --filter project_id=eq.p1 --token "$JWT"
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "rtsync/client/client.hpp"
#include "rtsync/core/event_loop.hpp"

namespace {

int usage(const char* argv0) {
  std::cerr << "usage: " << argv0
            << " <url> <api-key> <table> [--schema public] [--event '*'|INSERT|UPDATE|DELETE]\n"
               "       [--filter 'column=eq.value'] [--token <user JWT>] [--vsn 1|2] "
               "[--ca-file ca.pem]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rtsync;
  if (argc < 4) return usage(argv[0]);
  client::ClientOptions options;
  options.url = argv[1];
  options.anon_key = argv[2];
  std::string token;
  client::PostgresChangesFilter filter;
  filter.event = "*";
  filter.schema = "public";
  filter.table = argv[3];
  for (int i = 4; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    const std::string value = argv[++i];
    if (flag == "--schema") {
      filter.schema = value;
    } else if (flag == "--event") {
      filter.event = value;
    } else if (flag == "--filter") {
      filter.filter = value;
    } else if (flag == "--token") {
      token = value;
    } else if (flag == "--vsn") {
      auto vsn = protocol::parse_vsn(value == "1" ? "1.0.0" : value == "2" ? "2.0.0" : value);
      if (!vsn.ok()) return usage(argv[0]);
      options.vsn = vsn.value();
    } else if (flag == "--ca-file") {
      options.ca_file = value;
    } else {
      return usage(argv[0]);
    }
  }
  core::EventLoop loop;
  std::unique_ptr<client::Client> db;
  std::shared_ptr<client::RealtimeChannel> channel;
  std::vector<core::Subscription> subs;
  boost::asio::signal_set signals(loop.io_context(), SIGINT, SIGTERM);

  int code = 0;
  loop.post([&] {
    auto created = client::Client::create(loop, options);
    if (!created.ok()) {
      std::cerr << created.error().message << "\n";
      code = 2;
      loop.stop();
      return;
    }
    db = std::move(created.value());
    if (!token.empty()) (void)db->sign_in_with_token(token);  // the socket joins with it
    client::RealtimeSocket* socket = &db->realtime();
    subs.push_back(socket->on_error([](const client::SocketError& e) {
      std::cerr << "[listen] connection error: " << e.error.message << "\n";
    }));
    subs.push_back(socket->on_state([](const client::SocketStateChange& c) {
      std::cerr << "[listen] socket " << client::to_string(c.current)
                << (c.reconnected ? " (reconnected)" : "")
                << (c.reason.empty() ? "" : ": " + c.reason) << "\n";
    }));
    channel = socket->channel(std::string(*filter.schema) + ":" + *filter.table);
    subs.push_back(channel->on_postgres_changes(filter, [](const protocol::ChangeView& change) {
      const auto line = json::serialize(change.to_object());
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    }));
    subs.push_back(channel->on_system([](const json::value& payload) {
      std::cerr << "[listen] system: " << json::serialize(payload) << "\n";
    }));
    // The rows printed so far are not the whole transaction: a reader would refetch the table.
    subs.push_back(
        channel->on_changes_overflow([](const client::RealtimeChannel::ChangesOverflow& o) {
          std::cerr << "[listen] too many changes on " << o.schema << "." << o.table
                    << " in one transaction; the rest was not sent (refetch the table)\n";
        }));
    auto subscribed = channel->subscribe([](client::SubscribeStatus s, std::optional<Error> error) {
      std::cerr << "[listen] " << client::to_string(s)
                << (error ? ": " + error->message : std::string()) << "\n";
    });
    if (!subscribed.ok()) {
      std::cerr << subscribed.error().message << "\n";
      loop.stop();
    }
  });

  signals.async_wait([&](const boost::system::error_code&, int) {
    std::cerr << "[listen] leaving\n";
    if (channel) channel->unsubscribe();
    // Give the leave a moment to reach the server, then stop.
    loop.scheduler()
        .schedule(std::chrono::milliseconds(300), core::TimerId::Test,
                  [&] {
                    subs.clear();
                    channel.reset();
                    db.reset();
                    loop.stop();
                  })
        .release();
  });

  loop.run();
  return code;
}
