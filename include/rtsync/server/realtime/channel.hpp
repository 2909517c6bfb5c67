// One joined channel of one connection (server side). Owned by its Connection; the Hub indexes
// it by topic (broadcast fan-out) and by id (postgres_changes delivery).
//
// Thread safety: loop-confined, like its Connection and the Hub.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/channel_authorizer.hpp"
#include "rtsync/server/realtime/history.hpp"
#include "rtsync/server/realtime/router.hpp"

namespace rtsync::server::realtime {

class Connection;

enum class PgState : std::uint8_t {
  none,        // no valid postgres_changes binding
  subscribed,  // registered with the router; "Subscribed to PostgreSQL" sent
  waiting,     // stream down: error sent, "Subscribed" follows when it comes back
};

struct Channel {
  std::uint64_t id = 0;  // unique per server run; the router's SubscriberId
  Connection* connection = nullptr;
  std::string topic;      // "realtime:room1"
  std::string sub_topic;  // "room1"
  // Fan-out namespace: the topic, or "private|" + topic, so a private and a public channel of the
  // same name are separate streams (as Supabase's "<tenant>-private:<name>" pub/sub topics).
  std::string member_key;
  std::string join_ref;
  bool ack = false;
  bool self = false;
  bool is_private = false;
  // Private channels: what the channel's token may do on the topic, as the policies on
  // realtime.messages answered (docs/private-channels.md). The reads are asked at join (presence
  // read only with presence enabled), the writes at the first broadcast or track; all of it is
  // asked again when the token is replaced. Unused on public channels.
  ChannelRights rights;
  std::vector<BindingSpec> bindings;  // the valid postgres_changes bindings
  PgState pg = PgState::none;
  std::shared_ptr<const auth::VerifiedJwt> token;  // access_token or the apikey's
  core::Timer expiry;                              // timers::TokenExpiry
  // Presence (presence.hpp): the key this channel tracks under (config.presence.key, or a fresh
  // one per join), whether it receives presence frames (enabled at join, or since its first
  // track), the tracker sequence its presence_state covered (later diffs carry only what came
  // after it), and whether its presence_state waits for the topic's open window to close.
  std::string presence_key;
  bool presence_enabled = false;
  std::uint64_t presence_seq = 0;
  bool presence_state_due = false;

  // Ids of the messages this channel's join replayed (at most 25): live copies are not sent
  // again (docs/database-broadcast.md).
  std::vector<std::string> replayed_ids;
  // A channel that resumed (docs/resume.md): live changes at or before this position were
  // replayed or were already the client's, and are not sent.
  std::optional<StreamPosition> live_after;
  // Resuming (Hub::begin_resume until its replay and held items are written): live changes and
  // broadcasts are held for it rather than sent.
  bool resuming = false;
  // Was `message_id` among replayed_ids?
  bool replayed(std::string_view message_id) const {
    for (const auto& id : replayed_ids)
      if (id == message_id) return true;
    return false;
  }
};

}  // namespace rtsync::server::realtime
