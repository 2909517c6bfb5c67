// The chaos suite's offline checker (docs/chaos.md §3): given what the database committed (the
// audit table, with the writer's send/ack times) and what a client did (change events received,
// rejoins, refetches and its final cache), decide per committed change whether the client
// accounted for it, and how.
//
// A committed change the client's user may see in the watched scope (a bound operation on a row of
// the watched project, owned by the user) must be either
//   - delivered as a change event exactly once, or
//   - not delivered, and lie inside a gap the client was told about: the first rejoin after the
//     change was sent is a *told gap* (today: every rejoin — the provider refetches the binding's
//     families after each one), and a successful refetch that started after that rejoin shows the
//     row at this change or later.
// Everything else is a finding:
//   lost_in_session   a later change arrived in the session that was live when this one was sent:
//                     the stream skipped it (silent loss);
//   lost_no_rejoin    not delivered and no rejoin came after it (silent loss);
//   lost_resumed      not delivered, and the rejoin after it claimed to be gapless (a resume that
//                     did not replay it — silent loss). A resume whose session ended before its
//                     replay got to the change (fewer deliveries than it announced, none later
//                     than the change) leaves the decision to the rejoin after it;
//   gap_not_refetched the client was told, but no refetch after the rejoin shows the change;
//   duplicates        delivered twice in one session, or again after a resumed rejoin;
//   redelivered       delivered again after a told gap (today's server re-sends what its slot had
//                     not confirmed after a SIGKILL; harmless for a client that refetches, a
//                     duplicate under CheckOptions::strict_once);
//   reordered         delivered after a later change in the same session;
//   leaked            an event, cache row or refetched row of another project or user;
//   unknown           an event that matches no committed change.
// The final cache must equal the database's rows of the scope. Convergence: how long after the
// fault healed the client had accounted for the last change committed before it.
//
// Times are one process's steady clock (writer, client loop and harness run in the test process).
//
// Thread safety: pure functions over values.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rtsync::chaos {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

enum class Op : std::uint8_t { insert, update, remove };
std::string_view to_string(Op op) noexcept;

// One committed change: the audit table's row, with the writer's times.
struct Committed {
  std::int64_t seq = 0;  // the writer's sequence number: one writer, so commit order
  std::string row_id;
  Op op = Op::insert;
  std::string project_id;
  std::string owner;  // the project's user
  TimePoint sent{};   // before the writer sent COMMIT
  TimePoint acked{};  // when the writer saw the outcome (or gave up on it)
};

// A row as the client saw it: its project and the sequence number of its last change.
struct RowVersion {
  std::string project_id;
  std::int64_t seq = 0;
  friend bool operator==(const RowVersion&, const RowVersion&) = default;
};
using Rows = std::map<std::string, RowVersion>;  // by row id

// A change event the client received (from its record: id, project, params.chaos_seq).
struct Delivery {
  std::int64_t seq = -1;  // -1: the record carried none
  std::string row_id;
  Op op = Op::insert;
  std::string project_id;
  TimePoint at{};
};

// The channel entered SUBSCRIBED. `gap`: the client treats what happened while it was away as
// unknown and refetches (today, every rejoin); false: a resumed, gapless rejoin.
struct Rejoin {
  TimePoint at{};
  bool gap = true;
  // A resumed rejoin: how many changes the server announced it would replay; -1 unknown.
  std::int64_t replayed = -1;
};

// One fetch of the watched query, as its query function saw it.
struct Fetch {
  TimePoint started{};
  TimePoint finished{};
  bool ok = false;
  Rows rows;
};

struct ClientHistory {
  std::string user_id;
  std::string project_id;  // the watched scope
  std::vector<Delivery> deliveries;
  std::vector<Rejoin> rejoins;   // the first join included
  std::vector<TimePoint> downs;  // the channel left SUBSCRIBED
  std::vector<Fetch> fetches;
  std::optional<Rows> final_cache;  // the watched query's data at the end
};

struct CheckOptions {
  // The operations the binding subscribes to (the task binding: INSERT and UPDATE).
  std::vector<Op> bound_ops{Op::insert, Op::update};
  // A change delivered again after a told gap is a duplicate (for a client that applies events
  // instead of refetching); off: counted as `redelivered` only.
  bool strict_once = false;
  // When the fault healed (for convergence).
  std::optional<TimePoint> healed;
};

struct CheckReport {
  std::size_t committed = 0;  // changes in the audit
  std::size_t expected = 0;   // of those, the client's to account for
  std::size_t delivered_once = 0;
  std::size_t covered_by_gap = 0;
  std::size_t lost_in_session = 0;
  std::size_t lost_no_rejoin = 0;
  std::size_t lost_resumed = 0;
  std::size_t gap_not_refetched = 0;
  std::size_t duplicates = 0;
  std::size_t redelivered = 0;
  std::size_t reordered = 0;
  std::size_t leaked = 0;
  std::size_t unknown = 0;
  std::size_t told_gaps = 0;  // rejoins after the first with gap = true
  std::size_t resumed = 0;    // rejoins with gap = false
  std::size_t fetches = 0;    // fetches started
  bool final_cache_matches = false;
  std::string final_cache_diff;                          // empty when it matches
  std::optional<std::chrono::milliseconds> convergence;  // with CheckOptions::healed
  std::vector<std::string> problems;                     // the first findings, described

  std::size_t silently_lost() const noexcept {
    return lost_in_session + lost_no_rejoin + lost_resumed;
  }
  // No finding, and the final cache matches.
  bool ok() const noexcept {
    return silently_lost() == 0 && gap_not_refetched == 0 && duplicates == 0 && reordered == 0 &&
           leaked == 0 && unknown == 0 && final_cache_matches;
  }
  std::string summary() const;  // one line of counts
};

// Checks `client` against `committed` (every change the audit recorded, any project) and
// `database` (the rows of the watched scope at the end).
CheckReport check(const std::vector<Committed>& committed, const ClientHistory& client,
                  const Rows& database, const CheckOptions& options = {});

// An attacker's client (another user watching the victim's scope): every event it received and
// every row in its cache or fetches is a leak. Returns the count; `problems` gets descriptions.
std::size_t check_attacker(const ClientHistory& attacker, std::vector<std::string>& problems);

}  // namespace rtsync::chaos
