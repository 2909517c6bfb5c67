// Server counters, rendered as Prometheus text exposition (/metrics).
//
// Thread safety: loop-confined (the whole realtime server runs on one loop); render() is called
// on the loop by the HTTP layer.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace rtsync::server::realtime {

// Why an outbound frame or an inbound message was dropped (label `reason` of
// rtsync_drops_total).
namespace drop {
inline constexpr std::string_view kMalformed = "malformed";       // undecodable client frame
inline constexpr std::string_view kRateLimited = "rate_limited";  // messages/s exceeded
inline constexpr std::string_view kPayloadTooLarge = "payload_too_large";  // broadcast > limit
inline constexpr std::string_view kSlowConsumer = "slow_consumer";         // session queue overflow
inline constexpr std::string_view kFrameTooLarge = "frame_too_large";      // websocket 1009
inline constexpr std::string_view kUnauthorized = "unauthorized";          // row not visible (RLS)
// RLS check failed the same way kPermanentErrorAttempts times (never for an outage: see hub.hpp)
inline constexpr std::string_view kAuthorizerFailed = "authorizer_failed";
// past RealtimeLimits::max_changes_per_transaction (one "Too many changes" message instead)
inline constexpr std::string_view kTooManyChanges = "too_many_changes";
inline constexpr std::string_view kV1Binary = "v1_binary";  // binary broadcast to a v1 socket
inline constexpr std::string_view kBadHttpRequest = "bad_http_request";  // unparseable HTTP (400)
// presence pushes (docs/presence.md): above max_presence_events_per_second, a track payload above
// max_presence_meta_bytes, a track refused by max_presences_per_channel, a malformed push
inline constexpr std::string_view kPresenceRateLimited = "presence_rate_limited";
inline constexpr std::string_view kPresenceTooLarge = "presence_too_large";
inline constexpr std::string_view kPresenceChannelFull = "presence_channel_full";
inline constexpr std::string_view kPresenceMalformed = "presence_malformed";
// client messages that arrived while the socket waited for a policy answer, past the socket's
// max_queued_frames / max_queued_bytes (the socket is closed with 1008)
inline constexpr std::string_view kAuthorizationBacklog = "authorization_backlog";

// Broadcast from Database (docs/database-broadcast.md): a realtime.messages row above
// max_broadcast_payload_bytes, a row missing topic/event/id/private/payload
inline constexpr std::string_view kDbBroadcastTooLarge = "db_broadcast_too_large";
inline constexpr std::string_view kDbBroadcastInvalid = "db_broadcast_invalid";
// a live broadcast its channel's replay already covered: sent by it, or committed before the
// replay's snapshot and left out by its since/limit (not sent twice, nor out of order)
inline constexpr std::string_view kReplayDuplicate = "replay_duplicate";
// a join's replay saw more live broadcasts arrive while it waited than it may hold (the join fails)
inline constexpr std::string_view kReplayHeldOverflow = "replay_held_overflow";
// a live change at or before a resumed channel's position (it was replayed, or the client had
// it already: docs/resume.md)
inline constexpr std::string_view kResumeDuplicate = "resume_duplicate";
// a resuming join saw more live changes arrive while its replay was prepared than it may hold
// (its join answers with a gap; once the reply is out, the socket is a slow consumer instead)
inline constexpr std::string_view kResumeHeldOverflow = "resume_held_overflow";
// changes a resume did not replay because one of them has a frame larger than the socket's whole
// byte queue (its join answers with a gap; resume_outcome::kGapTooLarge)
inline constexpr std::string_view kResumeTooLarge = "resume_too_large";
}  // namespace drop

// How a join's resume ended (label `outcome` of rtsync_resumes_total; docs/resume.md).
namespace resume_outcome {
inline constexpr std::string_view kResumed = "resumed";
inline constexpr std::string_view kGapEpoch = "gap_epoch";        // another epoch
inline constexpr std::string_view kGapHistory = "gap_history";    // before the history's floor
inline constexpr std::string_view kGapOverflow = "gap_overflow";  // too many live changes held
// The replay holds a change whose frame alone is larger than RealtimeLimits::max_queued_bytes: no
// socket can carry it (live, it closes the socket as a slow consumer), and replaying it would
// close the socket again on every rejoin. (A replay merely larger than the queue is paced.)
inline constexpr std::string_view kGapTooLarge = "gap_too_large";
inline constexpr std::string_view kGapAuthorization = "gap_authorization";  // replay not authorized
inline constexpr std::string_view kGapUnavailable = "gap_unavailable";  // no change stream/epoch
}  // namespace resume_outcome

// Why private-channel authorization said no (label `reason` of
// rtsync_channel_auth_refusals_total; docs/private-channels.md).
namespace auth_refusal {
// A private join refused: no SELECT policy lets the token read the topic (or a policy raised).
inline constexpr std::string_view kRead = "read";
// A public join refused by the private_only setting.
inline constexpr std::string_view kPrivateOnly = "private_only";
// A websocket broadcast dropped (no INSERT policy for extension 'broadcast').
inline constexpr std::string_view kBroadcastWrite = "broadcast_write";
// A presence track refused (no INSERT policy for extension 'presence').
inline constexpr std::string_view kPresenceWrite = "presence_write";
// A private message of the REST broadcast API skipped (its sender may not write the topic).
inline constexpr std::string_view kRestWrite = "rest_write";
// A channel closed because its replaced token may no longer read the topic.
inline constexpr std::string_view kRevoked = "revoked";
// PostgreSQL could not answer (down, restarting, timed out, query cancelled): join refused,
// channel closed, or message dropped.
inline constexpr std::string_view kDatabase = "database";
}  // namespace auth_refusal

// Why a client connection was refused before its first request (label `reason` of
// rtsync_connection_refusals_total); the client gets 503 with this reason.
namespace refusal {
inline constexpr std::string_view kMaxConnections = "max_connections";  // the listener's total cap
inline constexpr std::string_view kMaxConnectionsPerAddress =
    "max_connections_per_address";  // the cap of one client IP address
}  // namespace refusal

struct Metrics {
  std::int64_t connections = 0;  // open websockets (gauge)
  // Open client TCP connections, HTTP and websocket alike (gauge; what the connection caps count).
  std::int64_t client_connections = 0;
  std::int64_t channels = 0;  // joined channels (gauge)
  std::uint64_t connections_total = 0;
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t transactions = 0;           // transactions received from the change stream
  std::uint64_t changes_decoded = 0;        // row changes received from the change stream
  std::uint64_t deliveries = 0;             // postgres_changes frames handed to sessions
  std::uint64_t broadcasts = 0;             // broadcast messages accepted (ws + REST)
  std::uint64_t feed_gaps = 0;              // holes in a cluster node's change feed (Hub::feed_gap)
  std::uint64_t broadcast_deliveries = 0;   // broadcast frames handed to sessions
  std::uint64_t authorization_retries = 0;  // authorizations retried while PostgreSQL was away
  std::uint64_t db_broadcasts = 0;          // realtime.messages inserts broadcast (decoded, sized)
  std::uint64_t db_broadcast_deliveries = 0;  // their frames handed to sessions
  std::uint64_t replays = 0;                  // joins whose replay was served
  std::uint64_t replayed_messages = 0;        // messages sent by replays
  std::uint64_t replay_errors = 0;            // joins refused because the replay query failed
  std::map<std::string, std::uint64_t, std::less<>> resumes;  // by resume_outcome::
  std::uint64_t resume_replayed_changes = 0;  // changes (and database broadcasts) replayed
  std::uint64_t joins = 0;
  std::uint64_t join_errors = 0;
  std::int64_t presences = 0;         // tracked presences (metas) over all topics (gauge)
  std::uint64_t presence_states = 0;  // presence_state frames sent
  std::uint64_t presence_diffs = 0;   // presence_diff frames handed to sessions
  // Private channels: policy checks asked for (read: joins, token changes, a first track without
  // presence read; write: the first broadcast or track of a channel, REST messages per topic),
  // pushes decided from a channel's cached rights without asking, and refusals by reason.
  std::uint64_t channel_auth_read_checks = 0;
  std::uint64_t channel_auth_write_checks = 0;
  std::uint64_t channel_auth_cache_hits = 0;
  std::map<std::string, std::uint64_t, std::less<>> channel_auth_refusals;
  std::map<std::string, std::uint64_t, std::less<>> drops;
  std::map<std::string, std::uint64_t, std::less<>> refusals;  // by refusal:: reason

  void drop(std::string_view reason, std::uint64_t n = 1);
  std::uint64_t drops_for(std::string_view reason) const;
  void refuse(std::string_view reason);
  void refuse_channel(std::string_view reason, std::uint64_t n = 1);  // an auth_refusal:: reason
  std::uint64_t channel_refusals_for(std::string_view reason) const;

  // Extra gauges provided by other parts (authorization queries, replication lag bytes…).
  struct Gauge {
    std::string name;
    std::string help;
    std::string type;  // "gauge" | "counter"
    std::function<double()> read;
  };
  std::vector<Gauge> gauges;

  std::string render() const;
};

}  // namespace rtsync::server::realtime
