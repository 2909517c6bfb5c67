// Limits of the realtime endpoint, as plain values (redis-plus-plus style options struct).
//
// Thread safety: a plain value; read-only once the server runs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace rtsync::server::realtime {

struct RealtimeLimits {
  // A websocket message larger than this closes the socket with 1009 (message too big).
  std::size_t max_frame_bytes = 5'000'000;
  // A broadcast whose payload is larger than this is refused: ack error `payload_size_exceeded`,
  // or a silent (counted) drop without ack.
  std::size_t max_broadcast_payload_bytes = 1 << 20;
  // Joins beyond this many channels on one socket: `ChannelRateLimitReached: Too many channels`.
  std::size_t max_channels_per_connection = 100;
  // Client messages per second per connection (heartbeats excluded). Above it, the messages of
  // that second are dropped and every joined channel is ended with the system error
  // `Too many messages per second` (then phx_close), as Supabase Realtime does per channel.
  std::uint32_t max_messages_per_second = 1000;
  // Outbound queue of one session, in frames and in bytes. A consumer that falls further behind is
  // closed with 1008 (policy violation, reason "slow consumer: … queued") and counted as drop
  // reason `slow_consumer`.
  std::size_t max_queued_frames = 8192;
  std::size_t max_queued_bytes = 16u << 20;
  // A socket that sent nothing for this long is closed (Phoenix's websocket timeout).
  std::chrono::milliseconds idle_timeout{60'000};
  // Changes of one table one subscriber receives from one transaction. Past it, the subscriber
  // gets one `system` message instead of the rest — {"extension":"postgres_changes","status":"ok",
  // "message":"Too many changes","channel":…,"schema":…,"table":…,"limit":N} — so a bulk write
  // neither floods nor disconnects anyone; rtsync's client refetches what it shows of that table,
  // the official clients ignore the message. 0: no limit (keep it below max_queued_frames).
  std::size_t max_changes_per_transaction = 1000;
  // Decoded transactions (or parts of large ones) authorized concurrently (delivery and
  // confirmation stay in commit order). 1 = one at a time.
  std::size_t max_transactions_in_flight = 128;
  // Presence (docs/presence.md). A topic's presence changes are gathered until the topic has been
  // quiet for `presence_diff_window`, but for at most `presence_diff_max_delay` after the first
  // one (timers::PresenceDiff); then each receiver gets one presence_diff, and a channel that
  // joined meanwhile gets its presence_state instead. A join storm of n clients thus costs each
  // client a few frames, not n. Window 0: one diff per loop turn.
  std::chrono::milliseconds presence_diff_window{50};
  std::chrono::milliseconds presence_diff_max_delay{500};
  // Presence pushes (track/untrack) per second per socket. The one past it ends that channel with
  // the system error `Too many presence messages per second` (then phx_close); the window starts
  // at the first push and lasts one second (timers::RateWindow).
  std::uint32_t max_presence_events_per_second = 10;
  // A track payload whose JSON text is longer than this ends the channel with the system error
  // `Track message size exceeded` (then phx_close).
  std::size_t max_presence_meta_bytes = 64 * 1024;
  // Presences (metas, one per tracking channel) per topic. A track that would add one more is
  // refused with the reply {"status":"error","response":{}}; the channel stays joined.
  std::size_t max_presences_per_channel = 10'000;
  // A project setting rather than a limit (Supabase's tenant flag `private_only`): public channels
  // are refused (`PrivateOnly: This project only allows private channels`); only private channels,
  // authorized by the policies on realtime.messages (docs/private-channels.md), may be joined.
  bool private_only = false;
  // Resumable change streams (docs/resume.md): delivered transactions are kept this long and up
  // to this many pgoutput bytes for replay to rejoining clients; the slot is held back to the
  // oldest kept.
  std::chrono::seconds resume_window{120};
  std::size_t resume_window_bytes = 64u << 20;
};

}  // namespace rtsync::server::realtime
