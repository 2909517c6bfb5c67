#include "rtsync/client/sync/auth_session.hpp"

#include "rtsync/client/sync/names.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::sync {

std::string_view to_string(AuthEvent e) noexcept {
  switch (e) {
    case AuthEvent::signed_in:
      return "SIGNED_IN";
    case AuthEvent::token_refreshed:
      return "TOKEN_REFRESHED";
    case AuthEvent::signed_out:
      return "SIGNED_OUT";
  }
  return "UNKNOWN";
}

Refresher static_token_refresher() {
  return [](const Session& current, RefreshDone done) {
    Session next = current;
    next.expires_at.reset();
    done(std::move(next));
  };
}

AuthSession::AuthSession(core::Scheduler& scheduler, Refresher refresher,
                         AuthSessionOptions options)
    : scheduler_(scheduler),
      refresher_(std::move(refresher)),
      options_(options),
      log_(log::get(kAuthSessionLog)),
      listeners_(kAuthSessionLog),
      sinks_(kAuthSessionLog) {}

AuthSession::~AuthSession() {
  *alive_ = false;
}

void AuthSession::sign_in(Session session) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  ++generation_;
  in_flight_ = false;  // a refresh of the previous session no longer counts
  early_retry_armed_ = false;
  session_ = std::move(session);
  log_->info("auth: SIGNED_IN user {}", session_->user_id);
  schedule_refresh();
  announce(AuthEvent::signed_in);
}

void AuthSession::sign_out() {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (!session_) return;
  ++generation_;
  in_flight_ = false;
  early_retry_armed_ = false;
  refresh_timer_.cancel();
  log_->info("auth: SIGNED_OUT user {}", session_->user_id);
  session_.reset();
  announce(AuthEvent::signed_out);
}

void AuthSession::announce(AuthEvent event) {
  const Session* s = session_ ? &*session_ : nullptr;
  static const std::string kNoToken;
  sinks_.notify(s ? s->access_token : kNoToken);
  listeners_.notify(event, s);
}

void AuthSession::schedule_refresh(bool after_refresh) {
  refresh_timer_.cancel();
  if (!session_ || !session_->expires_at) return;
  if (!refresher_) {
    log_->warn("auth: session expires but no refresher is configured; it will not be refreshed");
    return;
  }
  const auto until_expiry =
      std::chrono::duration_cast<core::Duration>(*session_->expires_at - scheduler_.wall_now());
  // `refresh_margin` before expiry, but never later than half the remaining life: a token that
  // lives no longer than the margin (short-lived tokens, a client clock running ahead) would
  // otherwise be refreshed the moment it arrives, and its successor too — a refresh storm.
  auto delay = std::max(until_expiry - options_.refresh_margin, until_expiry / 2);
  delay = std::max(delay, core::Duration::zero());
  // A token that is already (nearly) expired on arrival from a refresh points at clock skew or a
  // misconfigured server: ask again no sooner than `retry_delay`.
  if (after_refresh) delay = std::max(delay, options_.retry_delay);
  refresh_timer_ = scheduler_.schedule(delay, timers::TokenRefresh, [this] { refresh_now(); });
}

void AuthSession::refresh_now() {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  start_refresh(/*early=*/false);
}

void AuthSession::network_answered() {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (!early_retry_armed_ || !session_ || in_flight_ || !refresher_) return;
  const auto due =
      refresh_timer_.pending() ? refresh_timer_.due() - scheduler_.now() : core::Duration::zero();
  log_->info("auth: the network answered; retrying the refresh now instead of in {} ms",
             std::chrono::duration_cast<std::chrono::milliseconds>(due).count());
  start_refresh(/*early=*/true);
}

void AuthSession::start_refresh(bool early) {
  if (!session_ || in_flight_ || !refresher_) return;
  refresh_timer_.cancel();
  in_flight_ = true;
  in_flight_early_ = early;
  early_retry_armed_ = false;
  const auto generation = generation_;
  log_->info("auth: refreshing the access token of user {}", session_->user_id);
  refresher_(*session_, [this, alive = std::weak_ptr<bool>(alive_), generation](Result<Session> r) {
    auto a = alive.lock();
    if (!a || !*a) return;
    finish_refresh(generation, std::move(r));
  });
}

void AuthSession::finish_refresh(std::uint64_t generation, Result<Session> result) {
  if (generation != generation_ || !session_) {
    log_->debug("auth: dropping a refresh result for an earlier session");
    return;
  }
  in_flight_ = false;
  if (result.ok()) {
    ++refreshes_;
    session_ = std::move(result).value();
    log_->info("auth: TOKEN_REFRESHED for user {}", session_->user_id);
    schedule_refresh(/*after_refresh=*/true);
    announce(AuthEvent::token_refreshed);
    return;
  }
  ++refresh_failures_;
  const auto& err = result.error();
  if (err.code == Errc::unauthorized) {
    log_->warn("auth: refresh rejected ({}); signing out", err.describe());
    sign_out();
    return;
  }
  // Nothing answered: the first sign of the network coming back may retry early. Not after an
  // early retry, so that a flapping link cannot multiply the attempts.
  const bool unreached = err.code == Errc::io || err.code == Errc::timeout;
  early_retry_armed_ = unreached && !in_flight_early_;
  log_->warn("auth: refresh failed ({}); retrying in {} ms", err.describe(),
             std::chrono::duration_cast<std::chrono::milliseconds>(options_.retry_delay).count());
  refresh_timer_ =
      scheduler_.schedule(options_.retry_delay, timers::TokenRefresh, [this] { refresh_now(); });
}

core::Subscription AuthSession::on_auth_state_change(Listener listener) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return listeners_.add(std::move(listener));
}

core::Subscription AuthSession::on_token(TokenSink sink) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return sinks_.add(std::move(sink));
}

std::optional<core::TimePoint> AuthSession::next_refresh_at() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (!refresh_timer_.pending()) return std::nullopt;
  return refresh_timer_.due();
}

json::value AuthSession::diagnostics() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  json::value expires = nullptr;
  if (session_ && session_->expires_at) {
    expires = std::chrono::duration_cast<std::chrono::milliseconds>(
                  session_->expires_at->time_since_epoch())
                  .count();
  }
  json::value next = nullptr;
  if (refresh_timer_.pending()) {
    next = std::chrono::duration_cast<std::chrono::milliseconds>(refresh_timer_.due() -
                                                                 scheduler_.now())
               .count();
  }
  return json::object{{"signedIn", session_.has_value()},
                      {"userId", session_ ? json::value(session_->user_id) : json::value(nullptr)},
                      {"expiresAt", expires},
                      {"nextRefreshInMs", next},
                      {"refreshing", in_flight_},
                      {"earlyRetryArmed", early_retry_armed_},
                      {"refreshes", refreshes_},
                      {"refreshFailures", refresh_failures_}};
}

}  // namespace rtsync::client::sync
