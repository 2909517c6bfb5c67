// quickstart URL KEY EMAIL PASSWORD PROJECT: signs in, prints a project's five newest tasks, and
// prints them again whenever one of its tasks changes. README.md shows this program.
#include <cstdio>

#include "rtsync/client/client.hpp"
#include "rtsync/core/event_loop.hpp"

using namespace rtsync;

int main(int argc, char** argv) {
  if (argc != 6) return std::fputs("usage: quickstart URL KEY EMAIL PASSWORD PROJECT\n", stderr), 2;
  client::ClientOptions options;
  options.url = argv[1];
  options.anon_key = argv[2];
  // Stay live on the project's tasks: each change refetches the queries under ["tasks"].
  options.binding.channel_prefix = "quickstart:";
  options.binding.changes = {{"*", "public", "tasks", "project_id", "tasks-changed"}};
  options.binding.invalidations = {{"tasks-changed", {{"tasks"}}}};

  core::EventLoop loop;
  int status = 0;
  auto fail = [&](const Error& e) {
    std::fprintf(stderr, "%s\n", e.message.c_str());
    status = 1;
    loop.stop();
  };
  std::unique_ptr<client::Client> db;
  std::unique_ptr<client::query::QueryObserver> tasks;
  core::Subscription printer;
  loop.post([&] {
    auto created = client::Client::create(loop, options);
    if (!created) return fail(created.error());
    db = std::move(created.value());
    db->sign_in_with_password(argv[3], argv[4], [&](Result<void> signed_in) {
      if (!signed_in) return fail(signed_in.error());
      client::rest::PostgrestQuery query("tasks");
      query.select("id,status").eq("project_id", argv[5]).order("created_at", false).limit(5);
      tasks =
          std::make_unique<client::query::QueryObserver>(db->observe({"tasks", argv[5]}, query));
      printer = tasks->subscribe([](const client::query::QueryResult& r) {
        if (r.data) std::printf("%s\n", r.data->dump().c_str());
        std::fflush(stdout);
      });
      db->connect();
      db->watch(argv[5]);  // joins "quickstart:<PROJECT>"; its task changes refetch the query
    });
  });
  loop.run();
  return status;
}
