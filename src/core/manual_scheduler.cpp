#include "rtsync/core/manual_scheduler.hpp"

#include <algorithm>

namespace rtsync::core {
namespace {

// std heap functions build a max-heap; "greater" puts the earliest (due, seq) on top.
bool later(const std::shared_ptr<detail::TimerState>& a,
           const std::shared_ptr<detail::TimerState>& b) {
  if (a->due != b->due) return a->due > b->due;
  return a->seq > b->seq;
}

bool live(const std::shared_ptr<detail::TimerState>& s) {
  return !s->cancelled && !s->fired;
}

}  // namespace

ManualScheduler::ManualScheduler(TimePoint start, WallTime wall_start)
    : now_(start), start_(start), wall_start_(wall_start) {}

WallTime ManualScheduler::wall_now() const {
  return wall_start_ + std::chrono::duration_cast<WallTime::duration>(now_ - start_);
}

Timer ManualScheduler::schedule(Duration delay, TimerId id, std::function<void()> fn) {
  auto state = std::make_shared<detail::TimerState>();
  state->id = id;
  state->due = now_ + std::max(delay, Duration::zero());
  state->seq = next_seq_++;
  state->fn = std::move(fn);
  heap_.push_back(state);
  std::push_heap(heap_.begin(), heap_.end(), later);
  if (heap_.size() > 64 && heap_.size() > 4 * pending_count()) compact();
  return Timer(std::move(state));
}

void ManualScheduler::post(std::function<void()> fn) {
  schedule(Duration::zero(), TimerId::Posted, std::move(fn)).release();
}

std::shared_ptr<detail::TimerState> ManualScheduler::pop_next(TimePoint limit) {
  while (!heap_.empty()) {
    auto top = heap_.front();
    if (!live(top)) {
      std::pop_heap(heap_.begin(), heap_.end(), later);
      heap_.pop_back();
      continue;
    }
    if (top->due > limit) return nullptr;
    std::pop_heap(heap_.begin(), heap_.end(), later);
    heap_.pop_back();
    return top;
  }
  return nullptr;
}

std::size_t ManualScheduler::advance(Duration d) {
  owner_ = std::this_thread::get_id();
  const TimePoint target = now_ + std::max(d, Duration::zero());
  std::size_t ran = 0;
  while (auto next = pop_next(target)) {
    now_ = std::max(now_, next->due);
    next->fired = true;
    auto fn = std::move(next->fn);
    if (fn) fn();
    ++ran;
  }
  now_ = target;
  return ran;
}

bool ManualScheduler::run_until(TimerId id) {
  owner_ = std::this_thread::get_id();
  auto due = next_due(id);
  if (!due) return false;
  // Fire everything strictly before, then the operations at that instant up to and including the
  // first one with `id` (insertion order decides among equals).
  while (true) {
    auto next = pop_next(*due);
    if (!next) return false;  // it was cancelled by an earlier callback
    now_ = std::max(now_, next->due);
    next->fired = true;
    const bool hit = next->id == id;
    auto fn = std::move(next->fn);
    if (fn) fn();
    if (hit) return true;
  }
}

std::size_t ManualScheduler::run_all(std::size_t limit) {
  owner_ = std::this_thread::get_id();
  std::size_t ran = 0;
  while (ran < limit) {
    auto next = pop_next(TimePoint::max());
    if (!next) break;
    now_ = std::max(now_, next->due);
    next->fired = true;
    auto fn = std::move(next->fn);
    if (fn) fn();
    ++ran;
  }
  return ran;
}

bool ManualScheduler::pending(TimerId id) const {
  return next_due(id).has_value();
}

std::size_t ManualScheduler::pending_count(TimerId id) const {
  return static_cast<std::size_t>(std::count_if(
      heap_.begin(), heap_.end(), [id](const auto& s) { return live(s) && s->id == id; }));
}

std::size_t ManualScheduler::pending_count() const {
  return static_cast<std::size_t>(std::count_if(heap_.begin(), heap_.end(), live));
}

std::optional<TimePoint> ManualScheduler::next_due(TimerId id) const {
  std::optional<TimePoint> best;
  std::uint64_t best_seq = 0;
  for (const auto& s : heap_) {
    if (!live(s) || s->id != id) continue;
    if (!best || s->due < *best || (s->due == *best && s->seq < best_seq)) {
      best = s->due;
      best_seq = s->seq;
    }
  }
  return best;
}

std::optional<Duration> ManualScheduler::time_until(TimerId id) const {
  auto due = next_due(id);
  if (!due) return std::nullopt;
  return *due - now_;
}

void ManualScheduler::compact() {
  std::erase_if(heap_, [](const auto& s) { return !live(s); });
  std::make_heap(heap_.begin(), heap_.end(), later);
}

}  // namespace rtsync::core
