// Counting query functions for the query-cache tests: every call is recorded with its key, token,
// completion and virtual time, and completed by the test when it wants.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "rtsync/client/query/query_client.hpp"
#include "rtsync/client/query/query_observer.hpp"
#include "rtsync/core/manual_scheduler.hpp"

namespace rtsync::client::query::test {

using namespace std::chrono_literals;

inline json::value J(std::string_view text) {
  return core::parse_json(text).value();
}

// A query function whose calls the test completes by hand.
class ManualFetcher {
 public:
  struct Call {
    QueryKey key;
    CancellationToken token;
    Completion done;
    core::TimePoint at;
  };
  explicit ManualFetcher(core::Scheduler& s) : s_(s) {}
  QueryFn fn() {
    return [this](const QueryKey& key, CancellationToken token, Completion done) {
      calls.push_back(Call{key, token, done, s_.now()});
      if (on_call) on_call(calls.back());
    };
  }
  std::size_t count() const { return calls.size(); }
  Call& last() { return calls.back(); }
  // Resolves call `i` (default: last) with `v`.
  void resolve(const json::value& v) { calls.back().done.resolve(v); }
  void resolve(std::size_t i, const json::value& v) { calls.at(i).done.resolve(v); }
  void reject(const std::string& message) {
    calls.back().done.reject(make_error(Errc::remote, message));
  }
  std::vector<Call> calls;
  std::function<void(Call&)> on_call;

 private:
  core::Scheduler& s_;
};

// A query function that completes at once with {"n": call number} (or a fixed value), counting
// calls per key hash.
class AutoFetcher {
 public:
  QueryFn fn() {
    return [this](const QueryKey& key, CancellationToken, Completion done) {
      ++calls;
      ++per_key[key.hash()];
      if (fixed) {
        done.resolve(*fixed);
      } else {
        done.resolve(json::object{{"n", calls}});
      }
    };
  }
  std::size_t count(const QueryKey& key) const {
    auto it = per_key.find(key.hash());
    return it == per_key.end() ? 0 : it->second;
  }
  std::size_t calls = 0;
  std::map<std::string, std::size_t> per_key;
  std::optional<json::value> fixed;
};

}  // namespace rtsync::client::query::test
