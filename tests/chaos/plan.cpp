#include "plan.hpp"

#include <cstdlib>
#include <random>
#include <sstream>

namespace rtsync::chaos {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

milliseconds uniform_ms(std::mt19937_64& rng, milliseconds lo, milliseconds hi) {
  std::uniform_int_distribution<std::int64_t> d(lo.count(), hi.count());
  return milliseconds(d(rng));
}

}  // namespace

std::string_view to_string(FaultKind k) noexcept {
  switch (k) {
    case FaultKind::client_cut_reset:
      return "client_cut_reset";
    case FaultKind::client_cut_partition:
      return "client_cut_partition";
    case FaultKind::server_kill:
      return "server_kill";
    case FaultKind::pg_restart_fast:
      return "pg_restart_fast";
    case FaultKind::pg_restart_immediate:
      return "pg_restart_immediate";
    case FaultKind::replication_cut:
      return "replication_cut";
    case FaultKind::token_expiry:
      return "token_expiry";
    case FaultKind::slow_consumer:
      return "slow_consumer";
  }
  return "?";
}

std::optional<FaultKind> parse_fault(std::string_view name) {
  for (auto k : kAllFaults)
    if (to_string(k) == name) return k;
  return std::nullopt;
}

std::string_view to_string(Profile p) noexcept {
  return p == Profile::ci ? "ci" : "campaign";
}

std::string Plan::describe() const {
  std::ostringstream o;
  o << "seed=" << seed << " profile=" << to_string(profile) << " fault=" << to_string(fault)
    << " fault_for=" << fault_for.count() << "ms rate=" << rate << "/s users=" << users
    << " projects/user=" << projects_per_user << " warmup=" << warmup.count()
    << "ms after=" << after.count() << "ms";
  if (fault == FaultKind::token_expiry) o << " token_ttl=" << token_ttl.count() << "s";
  if (pad_bytes > 0) o << " pad=" << pad_bytes << "B";
  return o.str();
}

Plan make_plan(std::uint64_t seed, Profile profile, std::optional<FaultKind> fault) {
  std::mt19937_64 rng(seed);
  Plan p;
  p.seed = seed;
  p.profile = profile;
  const auto drawn =
      kAllFaults[std::uniform_int_distribution<std::size_t>(0, std::size(kAllFaults) - 1)(rng)];
  p.fault = fault.value_or(drawn);
  if (profile == Profile::ci) {
    // Short and fixed: the whole chaos label must fit in CI's budget (docs/chaos.md).
    p.rate = std::uniform_int_distribution<int>(50, 200)(rng);
    p.warmup = milliseconds(1500);
    p.after = milliseconds(1500);
    p.converge_timeout = seconds(30);
    switch (p.fault) {
      case FaultKind::client_cut_reset:
      case FaultKind::client_cut_partition:
      case FaultKind::replication_cut:
        p.fault_for = milliseconds(2000);
        break;
      case FaultKind::server_kill:
        p.fault_for = milliseconds(1000);
        break;
      case FaultKind::pg_restart_fast:
      case FaultKind::pg_restart_immediate:
        p.fault_for = milliseconds(0);
        break;
      case FaultKind::token_expiry:
        p.token_ttl = seconds(4);
        p.refresh_margin = seconds(2);
        p.fault_for = milliseconds(7000);
        break;
      case FaultKind::slow_consumer:
        // Large events, so the kernel's socket buffers (megabytes on loopback) fill within the
        // stall and the server's own queue limit is what ends it.
        p.rate = 300;
        p.pad_bytes = 8192;
        p.fault_for = milliseconds(6000);
        break;
    }
    return p;
  }
  // The ranges: 50–500 changes/s, link cuts of 1–30 s, a server down for 0–10 s.
  p.rate = std::uniform_int_distribution<int>(50, 500)(rng);
  p.warmup = uniform_ms(rng, milliseconds(1000), milliseconds(4000));
  p.after = uniform_ms(rng, milliseconds(2000), milliseconds(6000));
  p.converge_timeout = seconds(60);
  switch (p.fault) {
    case FaultKind::client_cut_reset:
    case FaultKind::client_cut_partition:
      p.fault_for = uniform_ms(rng, milliseconds(1000), milliseconds(30000));
      break;
    case FaultKind::server_kill:
      p.fault_for = uniform_ms(rng, milliseconds(0), milliseconds(10000));
      break;
    case FaultKind::pg_restart_fast:
    case FaultKind::pg_restart_immediate:
      p.fault_for = milliseconds(0);
      break;
    case FaultKind::replication_cut:
      p.fault_for = uniform_ms(rng, milliseconds(1000), milliseconds(10000));
      break;
    case FaultKind::token_expiry:
      p.token_ttl = seconds(std::uniform_int_distribution<int>(5, 15)(rng));
      p.refresh_margin = seconds(2);
      p.fault_for = std::chrono::duration_cast<milliseconds>(p.token_ttl) +
                    uniform_ms(rng, milliseconds(3000), milliseconds(10000));
      break;
    case FaultKind::slow_consumer:
      p.rate = std::uniform_int_distribution<int>(200, 500)(rng);
      p.pad_bytes = 8192;
      p.fault_for = uniform_ms(rng, milliseconds(2000), milliseconds(30000));
      break;
  }
  return p;
}

std::optional<std::uint64_t> seed_from_env() {
  const char* s = std::getenv("RTSYNC_CHAOS_SEED");
  if (!s || !*s) return std::nullopt;
  char* end = nullptr;
  const auto v = std::strtoull(s, &end, 10);
  if (!end || *end) return std::nullopt;
  return v;
}

}  // namespace rtsync::chaos
