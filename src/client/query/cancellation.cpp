#include "internal.hpp"
#include "rtsync/client/query/names.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::query {

void CancellationToken::State::cancel() {
  if (cancelled.exchange(true)) return;
  // Callbacks may register or remove others (core/listener_list.hpp); each runs once.
  callbacks.notify();
  callbacks.clear();
}

CancellationToken::CancellationToken() : state_(std::make_shared<State>()) {}

bool CancellationToken::cancelled() const noexcept {
  state_->consumed.store(true);
  return state_->cancelled.load();
}

core::Subscription CancellationToken::on_cancel(std::function<void()> fn) const {
  state_->consumed.store(true);
  if (state_->cancelled.load()) {
    if (fn) fn();
    return {};
  }
  return state_->callbacks.add(std::move(fn));
}

void Completion::operator()(Result<json::value> result) const {
  if (!state_) return;
  if (state_->called.exchange(true)) {
    if (state_->counters) ++state_->counters->duplicate_completions;
    log::get(loggers::kQuery)->warn("query function completed twice; the second result is ignored");
    return;
  }
  auto* scheduler = state_->scheduler;
  if (!scheduler) return;
  scheduler->post([run = state_->run, attempt = state_->attempt, counters = state_->counters,
                   result = std::move(result)]() mutable {
    if (auto r = run.lock()) {
      r->on_attempt_result(attempt, std::move(result));
    } else if (counters) {
      ++counters->late_completions;
    }
  });
}

bool Completion::done() const noexcept {
  return state_ && state_->called.load();
}

}  // namespace rtsync::client::query
