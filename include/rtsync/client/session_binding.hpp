// Glue between the REST layer's AuthClient and the coordination layer's AuthSession:
//   - `auth_refresher` is AuthSession's pluggable Refresher doing the GoTrue refresh-token grant;
//     a refused refresh token comes back as Errc::unauthorized, which makes the session sign out
//     (and its listeners see SIGNED_OUT); transport errors keep the session and retry;
//   - `to_session` turns a GoTrue session into an AuthSession Session;
//   - `bind_rest_token` keeps a RestClient's bearer token equal to the session's access token.
//
// Thread safety: loop-confined. The AuthClient / RestClient must outlive the refresher / binding.
#pragma once

#include "rtsync/client/rest/auth_client.hpp"
#include "rtsync/client/rest/rest_client.hpp"
#include "rtsync/client/sync/auth_session.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::client {

/// A GoTrue session as an AuthSession Session: expires_at from the tokens when given, else
/// now + expires_in.
sync::Session to_session(const rest::AuthTokens& tokens, core::WallTime now);

/// AuthSession's Refresher doing the GoTrue refresh-token grant through `auth`.
sync::Refresher auth_refresher(rest::AuthClient& auth, core::Scheduler& scheduler);

/// Keeps `rest`'s bearer token equal to the session's access token (set now, then on every token
/// change) while the returned Subscription lives.
core::Subscription bind_rest_token(sync::AuthSession& session, rest::RestClient& rest);

}  // namespace rtsync::client
