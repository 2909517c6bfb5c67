// A chaos run's plan, a pure function of (seed, profile[, fault]): which fault, how long, the
// write rate, and how long to write before and after. The same seed gives the same plan and the
// same writer choices (projects, inserts/updates, transaction sizes); only the real system's
// timing differs between replays. docs/chaos.md lists the faults and their ranges.
//
// Thread safety: pure functions and values.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rtsync::chaos {

enum class FaultKind : std::uint8_t {
  client_cut_reset,      // the client's link (WebSocket and REST) reset and refused
  client_cut_partition,  // the client's link holds every byte both ways, then flows again
  server_kill,           // `rtsync server` SIGKILLed, started again after a pause
  pg_restart_fast,       // pg_ctl restart -m fast
  pg_restart_immediate,  // pg_ctl restart -m immediate (a crash and recovery)
  replication_cut,       // the server's replication connection reset and refused
  token_expiry,          // the client's link reset for longer than its access token lives
  slow_consumer,         // the client stops reading: the server must drop it, not buffer
};
inline constexpr FaultKind kAllFaults[] = {
    FaultKind::client_cut_reset, FaultKind::client_cut_partition, FaultKind::server_kill,
    FaultKind::pg_restart_fast,  FaultKind::pg_restart_immediate, FaultKind::replication_cut,
    FaultKind::token_expiry,     FaultKind::slow_consumer};
std::string_view to_string(FaultKind k) noexcept;
std::optional<FaultKind> parse_fault(std::string_view name);

// ci: short runs with fixed-size faults (ctest); campaign: the full ranges.
enum class Profile : std::uint8_t { ci, campaign };
std::string_view to_string(Profile p) noexcept;

struct Plan {
  std::uint64_t seed = 0;
  Profile profile = Profile::ci;
  FaultKind fault = FaultKind::client_cut_reset;
  double rate = 100;  // changes per second, all projects
  int users = 3;
  int projects_per_user = 2;
  int max_changes_per_transaction = 3;
  std::size_t pad_bytes = 0;  // WriterOptions::pad_bytes
  // Share of changes that go to the watched project (the rest spread over the others).
  double watched_share = 0.35;
  std::chrono::milliseconds warmup{1500};  // writing before the fault
  // How long the fault lasts: the cut or stall; the server's time down before its restart; the
  // outage of token_expiry. PostgreSQL restarts take what pg_ctl takes.
  std::chrono::milliseconds fault_for{2000};
  // Writing after it healed and the victim is live again.
  std::chrono::milliseconds after{1500};
  std::chrono::seconds token_ttl{3600};  // the server's --access-token-ttl
  std::chrono::seconds refresh_margin{60};
  std::chrono::seconds converge_timeout{45};  // for the final cache to equal the database

  std::string describe() const;  // one line
};

Plan make_plan(std::uint64_t seed, Profile profile, std::optional<FaultKind> fault = std::nullopt);

// RTSYNC_CHAOS_SEED, when set (and a number).
std::optional<std::uint64_t> seed_from_env();

}  // namespace rtsync::chaos
