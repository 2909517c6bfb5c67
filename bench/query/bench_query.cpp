// bench_query: the query cache under the workload of bench/query/README (same as
// tanstack_peer.mjs): N cached queries in N/100 families, keys shaped
// ["family-NNNN","paginated","project-P",page,50,"Queued"], data
// {"id":i,"status":"Queued","page":q}, 10 % of the queries observed (10 per family, stale_time
// infinite), no-op query functions that return the same data at once.
//
// Measures, per size: build (set_query_data creating a query), lookup (get_query_data with a key
// built and hashed per call), set (set_query_data on an existing query with changed data),
// invalidate (invalidate_queries of one family — 100 matches, 10 active refetched — then running
// the loop until the refetches settled), and bytes per cached query (mallinfo2 delta of the cache
// without observers). Times are process CPU time per operation. Output: one JSON object per size.
//   bench_query [--sizes 1000,10000,100000] [--invalidations 10000]
#include <malloc.h>

#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "rtsync/client/query/query_client.hpp"
#include "rtsync/client/query/query_observer.hpp"
#include "rtsync/core/manual_scheduler.hpp"

using namespace rtsync;
using namespace rtsync::client::query;

namespace {

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string family_name(std::size_t f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "family-%04zu", f);
  return buf;
}

// Query i lives in family i % F at position q = i / F.
json::array key_json(std::size_t families, std::size_t i) {
  const std::size_t f = i % families;
  const std::size_t q = i / families;
  return json::array{family_name(f),
                     "paginated",
                     "project-" + std::to_string(q % 10),
                     static_cast<std::int64_t>(q),
                     50,
                     "Queued"};
}

json::value data_json(std::size_t i, std::size_t families, const char* status) {
  return json::object{{"id", static_cast<std::int64_t>(i)},
                      {"status", status},
                      {"page", static_cast<std::int64_t>(i / families)}};
}

struct Sizes {
  std::vector<std::size_t> sizes{1000, 10000, 100000};
  std::size_t invalidations = 10000;
};

void run(std::size_t n, std::size_t invalidations, bool last) {
  const std::size_t families = std::max<std::size_t>(1, n / 100);
  std::printf("{\"queries\":%zu,\"families\":%zu", n, families);

  // ---- memory: the cache alone ------------------------------------------------------------------
  {
    core::ManualScheduler s;
    auto before = mallinfo2().uordblks;
    {
      QueryClient client(s);
      for (std::size_t i = 0; i < n; ++i) {
        client.set_query_data(QueryKey(key_json(families, i)), data_json(i, families, "Queued"));
      }
      s.run_ready();
      const auto after = mallinfo2().uordblks;
      std::printf(",\"bytes_per_query\":%.1f",
                  static_cast<double>(after - before) / static_cast<double>(n));
      std::printf(",\"index_nodes\":%llu",
                  static_cast<unsigned long long>(client.stats().index_nodes));
    }
  }

  core::ManualScheduler s;
  QueryClient client(s);

  // ---- build
  // --------------------------------------------------------------------------------------
  {
    std::vector<json::array> keys;
    std::vector<json::value> datas;
    keys.reserve(n);
    datas.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      keys.push_back(key_json(families, i));
      datas.push_back(data_json(i, families, "Queued"));
    }
    const double t0 = cpu_seconds();
    for (std::size_t i = 0; i < n; ++i)
      client.set_query_data(QueryKey(std::move(keys[i])), datas[i]);
    const double t1 = cpu_seconds();
    s.run_ready();
    std::printf(",\"build_ns\":%.1f", (t1 - t0) * 1e9 / static_cast<double>(n));
  }

  // ---- lookup (key built and hashed per call, as getQueryData does)
  // ----------------------------------
  {
    const std::size_t ops = std::max<std::size_t>(n, 100000);
    std::vector<json::array> keys;
    keys.reserve(ops);
    for (std::size_t k = 0; k < ops; ++k)
      keys.push_back(key_json(families, (k * 7919) % n));
    std::size_t hits = 0;
    const double t0 = cpu_seconds();
    for (std::size_t k = 0; k < ops; ++k)
      hits += client.get_query_data(QueryKey(std::move(keys[k]))).has_value();
    const double t1 = cpu_seconds();
    if (hits != ops) std::fprintf(stderr, "lookup misses: %zu\n", ops - hits);
    std::printf(",\"lookup_ns\":%.1f", (t1 - t0) * 1e9 / static_cast<double>(ops));
  }

  // ---- set_query_data on existing queries (changed data)
  // -----------------------------------------------
  {
    const std::size_t ops = std::max<std::size_t>(n, 100000);
    std::vector<json::array> keys;
    std::vector<json::value> datas;
    keys.reserve(ops);
    datas.reserve(ops);
    for (std::size_t k = 0; k < ops; ++k) {
      const std::size_t i = (k * 7919) % n;
      keys.push_back(key_json(families, i));
      datas.push_back(data_json(i, families, (k / n) % 2 == 0 ? "Running" : "Queued"));
    }
    const double t0 = cpu_seconds();
    for (std::size_t k = 0; k < ops; ++k)
      client.set_query_data(QueryKey(std::move(keys[k])), datas[k]);
    const double t1 = cpu_seconds();
    s.run_ready();
    std::printf(",\"set_ns\":%.1f", (t1 - t0) * 1e9 / static_cast<double>(ops));
  }

  // ---- invalidate one family at a time
  // -----------------------------------------------------------------------
  {
    std::vector<std::unique_ptr<QueryObserver>> observers;
    std::vector<core::Subscription> subs;
    std::size_t fetches = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (i / families >= 10) continue;  // the first 10 queries of each family are active
      ObserverOptions o;
      o.key = QueryKey(key_json(families, i));
      auto value =
          std::make_shared<json::value>(*client.get_query_data(o.key)->to_json().if_object());
      o.query.query_fn = [value, &fetches](const QueryKey&, CancellationToken, Completion done) {
        ++fetches;
        done.resolve(*value);
      };
      o.stale_time = StaleTime(kInfinite);
      observers.push_back(std::make_unique<QueryObserver>(client, std::move(o)));
      subs.push_back(observers.back()->subscribe([](const QueryResult&) {}));
    }
    s.run_ready();
    std::vector<InvalidateFilters> filters(families);
    for (std::size_t f = 0; f < families; ++f)
      filters[f].query_key = QueryKey{family_name(f)};
    std::size_t refetched = 0, matched = 0;
    const double t0 = cpu_seconds();
    for (std::size_t k = 0; k < invalidations; ++k) {
      auto r = client.invalidate_queries(filters[k % families]);
      refetched += r.refetched;
      matched += r.matched;
      s.run_ready();  // the no-op fetches settle and observers are notified
    }
    const double t1 = cpu_seconds();
    std::printf(
        ",\"invalidations\":%zu,\"invalidate_us\":%.3f,\"matched_per_call\":%.1f,"
        "\"refetched_per_call\":%.1f,\"fetches\":%zu",
        invalidations, (t1 - t0) * 1e6 / static_cast<double>(invalidations),
        static_cast<double>(matched) / static_cast<double>(invalidations),
        static_cast<double>(refetched) / static_cast<double>(invalidations), fetches);
  }
  std::printf("}%s\n", last ? "" : "");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Sizes cfg;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--sizes") {
      cfg.sizes.clear();
      std::size_t pos = 0;
      while (pos < value.size()) {
        const auto comma = value.find(',', pos);
        cfg.sizes.push_back(std::stoul(value.substr(pos, comma - pos)));
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
    } else if (flag == "--invalidations") {
      cfg.invalidations = std::stoul(value);
    }
  }
  for (std::size_t i = 0; i < cfg.sizes.size(); ++i) {
    run(cfg.sizes[i], cfg.invalidations, i + 1 == cfg.sizes.size());
  }
  return 0;
}
