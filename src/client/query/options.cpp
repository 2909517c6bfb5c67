#include <algorithm>

#include "internal.hpp"

namespace rtsync::client::query {

Duration default_retry_delay(std::uint32_t failure_count) {
  // min(1000 · 2^n, 30000) ms; 2^5 · 1000 already exceeds the cap.
  const std::int64_t ms =
      failure_count >= 5 ? 30000 : std::min<std::int64_t>(1000LL << failure_count, 30000);
  return std::chrono::milliseconds(ms);
}

std::optional<Duration> RefetchInterval::resolve(const Query& query) const {
  std::optional<Duration> d = fn_ ? fn_(query) : every_;
  if (!d || *d <= Duration::zero() || *d == kInfinite) return std::nullopt;
  return d;
}

PlaceholderData keep_previous_data() {
  return [](const std::optional<Data>& previous) { return previous; };
}

std::string_view to_string(QueryStatus s) noexcept {
  switch (s) {
    case QueryStatus::pending:
      return "pending";
    case QueryStatus::error:
      return "error";
    case QueryStatus::success:
      return "success";
  }
  return "?";
}

std::string_view to_string(FetchStatus s) noexcept {
  switch (s) {
    case FetchStatus::fetching:
      return "fetching";
    case FetchStatus::paused:
      return "paused";
    case FetchStatus::idle:
      return "idle";
  }
  return "?";
}

std::string_view to_string(QueryAction a) noexcept {
  switch (a) {
    case QueryAction::fetch:
      return "fetch";
    case QueryAction::success:
      return "success";
    case QueryAction::error:
      return "error";
    case QueryAction::failed:
      return "failed";
    case QueryAction::invalidate:
      return "invalidate";
    case QueryAction::pause:
      return "pause";
    case QueryAction::continue_:
      return "continue";
    case QueryAction::set_state:
      return "setState";
  }
  return "?";
}

std::string_view to_string(CacheEventType t) noexcept {
  switch (t) {
    case CacheEventType::added:
      return "added";
    case CacheEventType::removed:
      return "removed";
    case CacheEventType::updated:
      return "updated";
    case CacheEventType::observer_added:
      return "observerAdded";
    case CacheEventType::observer_removed:
      return "observerRemoved";
  }
  return "?";
}

std::uint32_t QueryResult::changed_fields(const QueryResult& o) const noexcept {
  std::uint32_t m = 0;
  const bool data_same = data.has_value() == o.data.has_value() && (!data || same(*data, *o.data));
  if (!data_same || is_placeholder_data != o.is_placeholder_data) m |= kFieldData;
  if (status != o.status) m |= kFieldStatus;
  if (fetch_status != o.fetch_status) m |= kFieldFetchStatus;
  if (error != o.error || error_updated_at != o.error_updated_at ||
      error_update_count != o.error_update_count) {
    m |= kFieldError;
  }
  if (failure_count != o.failure_count || failure_reason != o.failure_reason) m |= kFieldFailure;
  if (is_stale != o.is_stale) m |= kFieldStale;
  if (data_updated_at != o.data_updated_at || is_fetched != o.is_fetched ||
      is_fetched_after_mount != o.is_fetched_after_mount || is_enabled != o.is_enabled ||
      is_invalidated != o.is_invalidated) {
    m |= kFieldOther;
  }
  return m;
}

}  // namespace rtsync::client::query
