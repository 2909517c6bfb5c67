// Query-cache helpers for coordination tests: a counting query function with an optional latency
// on virtual time, and mounted observers.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/client/query/query_client.hpp"
#include "rtsync/client/query/query_observer.hpp"
#include "rtsync/core/manual_scheduler.hpp"

namespace rtsync::client::sync::testing {

// Records each call of the query function (by key hash) and completes it after `latency`.
struct FetchLog {
  explicit FetchLog(core::ManualScheduler& c) : clock(c) {}

  core::ManualScheduler& clock;
  core::Duration latency{0};
  std::map<std::string, std::vector<core::TimePoint>> starts;
  std::vector<core::Timer> in_flight;

  query::QueryFn fn() {
    return [this](const query::QueryKey& key, query::CancellationToken, query::Completion done) {
      auto& s = starts[key.hash()];
      s.push_back(clock.now());
      json::value data = json::object{{"key", key.hash()}, {"fetch", s.size()}};
      if (latency <= core::Duration::zero()) {
        done.resolve(std::move(data));
        return;
      }
      in_flight.push_back(clock.schedule(
          latency, core::TimerId::Test, [done, data]() mutable { done.resolve(std::move(data)); }));
    };
  }
  std::size_t count(const query::QueryKey& key) const {
    auto it = starts.find(key.hash());
    return it == starts.end() ? 0 : it->second.size();
  }
  void clear() { starts.clear(); }
  // The most fetch starts of `key` inside any half-open interval of length `window`.
  std::size_t max_in_window(const query::QueryKey& key, core::Duration window) const {
    auto it = starts.find(key.hash());
    if (it == starts.end()) return 0;
    const auto& v = it->second;
    std::size_t best = 0;
    for (std::size_t i = 0, j = 0; i < v.size(); ++i) {
      while (v[i] - v[j] >= window)
        ++j;
      best = std::max(best, i - j + 1);
    }
    return best;
  }
};

// Observers kept mounted (a listener each) for the test's life.
struct MountedQueries {
  std::vector<std::unique_ptr<query::QueryObserver>> observers;
  std::vector<core::Subscription> subs;

  query::QueryObserver& mount(query::QueryClient& cache, query::ObserverOptions options) {
    observers.push_back(std::make_unique<query::QueryObserver>(cache, std::move(options)));
    subs.push_back(observers.back()->subscribe([](const query::QueryResult&) {}));
    return *observers.back();
  }
  query::QueryObserver& mount(query::QueryClient& cache, query::QueryKey key, query::QueryFn fn) {
    query::ObserverOptions o;
    o.key = std::move(key);
    o.query.query_fn = std::move(fn);
    return mount(cache, std::move(o));
  }
};

}  // namespace rtsync::client::sync::testing
