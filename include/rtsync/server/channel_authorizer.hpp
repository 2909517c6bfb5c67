// Private-channel authorization: what a caller may do on a private channel's topic, decided by the
// row-level-security policies the project writes on `realtime.messages` (docs/private-channels.md).
//
// A check answers, for one caller (role + JWT claims) and one topic (the channel name without
// "realtime:", what `realtime.topic()` returns inside the policies), any of:
//   - broadcast_read / presence_read: may the caller SELECT a `realtime.messages` row of that topic
//     with extension 'broadcast' / 'presence' (SELECT policies: who may receive);
//   - broadcast_write / presence_write: may the caller INSERT one (INSERT policies: who may send).
// The realtime server asks once per channel and caches the answer on the channel (per socket and
// topic); it asks again when the channel's token is replaced.
//
// Thread safety: implementations are confined to the server loop; `done` runs on it, never inside
// check() itself.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "rtsync/core/result.hpp"
#include "rtsync/server/row_authorizer.hpp"

namespace rtsync::server {

// What the caller may do on the topic; nullopt = not asked (yet).
struct ChannelRights {
  std::optional<bool> broadcast_read;   // may receive the topic's broadcasts
  std::optional<bool> presence_read;    // may receive the topic's presence
  std::optional<bool> broadcast_write;  // may send broadcasts to the topic
  std::optional<bool> presence_write;   // may track presence in the topic

  // A join needs broadcast read or presence read.
  bool may_join() const noexcept {
    return broadcast_read.value_or(false) || presence_read.value_or(false);
  }
  // Copies the answers `other` has over this one's.
  void merge(const ChannelRights& other) {
    if (other.broadcast_read) broadcast_read = other.broadcast_read;
    if (other.presence_read) presence_read = other.presence_read;
    if (other.broadcast_write) broadcast_write = other.broadcast_write;
    if (other.presence_write) presence_write = other.presence_write;
  }
  // Field-wise equality (tests).
  friend bool operator==(const ChannelRights&, const ChannelRights&) = default;
};

// One question: which rights of `auth` on `topic` to evaluate.
struct ChannelCheck {
  AuthClass auth;               // the caller's role and claims (as the token carried them)
  std::string topic;            // "room1" — realtime.topic() inside the policies
  bool broadcast_read = false;  // ask ChannelRights::broadcast_read
  bool presence_read = false;   // ask ChannelRights::presence_read
  bool write = false;           // ask both broadcast_write and presence_write
  // Field-wise equality (tests).
  friend bool operator==(const ChannelCheck&, const ChannelCheck&) = default;
};

// Why a check has no answer. The realtime server turns each into Supabase Realtime's reason.
enum class ChannelAuthFailure : std::uint8_t {
  // A policy raised, the role is unknown or not an API role, realtime.messages is missing…: the
  // same input fails the same way. A join is refused as if the policies said no.
  policy_error,
  // PostgreSQL cancelled the check (statement timeout): "QueryCanceled: <message>".
  query_canceled,
  // PostgreSQL is unreachable, restarting, or did not answer in time.
  unavailable,
};

// A check without an answer: why (the realtime server's reason follows from it) and the detail.
struct ChannelAuthError {
  ChannelAuthFailure failure = ChannelAuthFailure::unavailable;  // the kind of failure
  std::string message;  // PostgreSQL's message or what went wrong, for logs
  // Field-wise equality (tests).
  friend bool operator==(const ChannelAuthError&, const ChannelAuthError&) = default;
};

// The rights asked for, or why there is no answer.
using ChannelAuthResult = Result<ChannelRights, ChannelAuthError>;

// The seam between the realtime server and whatever evaluates the policies (PostgreSQL in
// production: cdc::PgChannelAuthorizer; a scripted fake in unit tests).
class ChannelAuthorizer {
 public:
  virtual ~ChannelAuthorizer() = default;
  // Asynchronous: `done` runs later on the server loop with the rights asked for set (the others
  // nullopt), or why there is no answer. While the authorizer lives an answer always comes:
  // implementations bound the wait (callbacks still pending at its destruction are dropped).
  virtual void check(ChannelCheck check, std::function<void(ChannelAuthResult)> done) = 0;
};

}  // namespace rtsync::server
