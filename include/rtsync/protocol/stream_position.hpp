// Positions of the change stream and rtsync's resume extension (docs/resume.md, the normative
// wire contract): the position every change carries, the `rtsync` field of join and heartbeat
// replies, and the `config.rtsync.resume` request of a rejoin. Supabase Realtime sends none of
// these and ignores the request; readers return nullopt for whatever is absent or malformed.
//
// Thread safety: pure functions over values; no shared state.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rtsync/core/json.hpp"

namespace rtsync::protocol {

class JsonView;

// One position: {"epoch": E, "lsn": "X/Y", "index": n}. Positions of one epoch are ordered by
// (lsn, index); positions of different epochs are not comparable (compare_positions).
struct StreamPosition {
  std::string epoch;       // the history it was taken from (a replication slot's lifetime)
  std::uint64_t lsn = 0;   // the commit LSN of the change's transaction
  std::int64_t index = 0;  // 1-based among the transaction's changes; 0 in a head position
  // Field by field.
  friend bool operator==(const StreamPosition&, const StreamPosition&) = default;
};

// (lsn, index) order of two positions of the same epoch; nullopt for different epochs.
std::optional<std::strong_ordering> compare_positions(const StreamPosition& a,
                                                      const StreamPosition& b) noexcept;
// True when `a` and `b` are of one epoch and `a` is at or before `b`.
bool at_or_before(const StreamPosition& a, const StreamPosition& b) noexcept;

// PostgreSQL's text form of an LSN: "X/Y", each part 1..8 hex digits (either case).
std::optional<std::uint64_t> parse_lsn(std::string_view text) noexcept;
std::string format_lsn(std::uint64_t lsn);  // upper-case hex, as PostgreSQL prints it

// {"epoch": non-empty string, "lsn": "X/Y", "index": integer >= 0}; other members are ignored.
// `default_epoch` stands in for a missing epoch (the `position` inside a reply's rtsync object
// may rely on the object's own epoch).
std::optional<StreamPosition> parse_stream_position(const json::value& value,
                                                    std::string_view default_epoch = {});
std::optional<StreamPosition> parse_stream_position(const JsonView& value,
                                                    std::string_view default_epoch = {});
// {"epoch","lsn","index"}
json::object build_stream_position(const StreamPosition& position);
// "<epoch>:<lsn>#<index>", for logs.
std::string describe(const StreamPosition& position);

// response.rtsync.resume of a join reply.
struct ResumeReply {
  bool resumed = false;       // status "resumed"; false: status "gap"
  std::int64_t replayed = 0;  // frames replayed after the reply (0 for a gap)
  std::string reason;         // why a gap ("" when resumed)
};

// response.rtsync of a join reply: the server's epoch, the channel's head, and the answer to a
// resume request when one was sent.
struct RtsyncJoinReply {
  std::string epoch;
  StreamPosition head;
  std::optional<ResumeReply> resume;
};

// Reads `response.rtsync` of a join reply (`response` is the reply's response object). nullopt
// when absent or unusable (no epoch, no readable position); a `resume` whose status is neither
// "resumed" nor "gap", or whose `replayed` is not a non-negative integer, reads as a gap.
std::optional<RtsyncJoinReply> parse_rtsync_join_reply(const json::value& response);
// Reads `response.rtsync.position` of a heartbeat reply: the position up to which every change has
// been handed to the socket. nullopt when absent or unusable.
std::optional<StreamPosition> parse_rtsync_heartbeat(const json::value& response);
// Adds "rtsync":{"resume":{position}} to `join_payload`.config (a phx_join payload as
// build_join_payload makes it). No-op when the payload or its config is not an object.
void add_resume_request(json::value& join_payload, const StreamPosition& position);
// The position of `join_payload`.config.rtsync.resume, if the payload carries one.
std::optional<StreamPosition> find_resume_request(const json::value& join_payload);

}  // namespace rtsync::protocol
