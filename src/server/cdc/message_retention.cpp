#include "rtsync/server/cdc/message_retention.hpp"

#include <vector>

#include "rtsync/core/log.hpp"
#include "rtsync/server/cdc/names.hpp"

namespace rtsync::server::cdc {

struct MessageRetention::Impl : std::enable_shared_from_this<MessageRetention::Impl> {
  Impl(core::Scheduler& sched, MessageStore& store, MessageRetentionOptions opts)
      : sched(sched), store(store), opts(opts), logger(log::get(loggers::kRetention)) {}

  core::Scheduler& sched;
  MessageStore& store;
  MessageRetentionOptions opts;
  std::shared_ptr<spdlog::logger> logger;
  core::Timer timer;
  bool started = false;
  bool in_run = false;
  std::int64_t cutoff_ms = 0;
  std::size_t run_deleted = 0;
  std::vector<std::function<void(Result<std::size_t>)>> waiters;
  std::uint64_t runs = 0;
  std::uint64_t deleted = 0;
  std::uint64_t failures = 0;
  std::int64_t last_cutoff_ms = 0;

  bool enabled() const { return opts.retention > core::Duration::zero(); }

  void schedule_next() {
    if (!started) return;
    timer = sched.schedule(opts.interval, timers::Retention, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->begin();
    });
  }

  void begin() {
    if (in_run) return;
    timer.cancel();
    in_run = true;
    run_deleted = 0;
    const auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(sched.wall_now().time_since_epoch())
            .count();
    cutoff_ms =
        now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(opts.retention).count();
    last_cutoff_ms = cutoff_ms;
    batch();
  }

  void batch() {
    store.delete_before(cutoff_ms, opts.batch_rows,
                        [weak = weak_from_this()](Result<std::size_t> r) {
                          if (auto self = weak.lock()) self->on_batch(std::move(r));
                        });
  }

  void on_batch(Result<std::size_t> r) {
    if (!r.ok()) {
      ++failures;
      logger->warn("deleting messages older than the retention period failed: {}",
                   r.error().describe());
      return finish(r.error());
    }
    run_deleted += r.value();
    deleted += r.value();
    if (r.value() >= opts.batch_rows && opts.batch_rows > 0) {
      // More may be left: the next batch on the next loop turn, behind whatever was queued.
      sched.post([weak = weak_from_this()] {
        if (auto self = weak.lock()) self->batch();
      });
      return;
    }
    if (run_deleted > 0)
      logger->info("deleted {} messages older than the retention period", run_deleted);
    finish(run_deleted);
  }

  void finish(Result<std::size_t> result) {
    in_run = false;
    ++runs;
    auto w = std::move(waiters);
    waiters.clear();
    schedule_next();
    for (auto& f : w)
      if (f) f(result);
  }
};

MessageRetention::MessageRetention(core::Scheduler& scheduler, MessageStore& store,
                                   MessageRetentionOptions options)
    : impl_(std::make_shared<Impl>(scheduler, store, options)) {}

MessageRetention::~MessageRetention() {
  stop();
  // Whoever waits for a run that can no longer finish is told so.
  auto waiters = std::move(impl_->waiters);
  impl_->waiters.clear();
  for (auto& f : waiters)
    if (f) f(make_error(Errc::closed, "message retention stopped"));
}

void MessageRetention::start() {
  if (impl_->started || !impl_->enabled()) return;
  impl_->started = true;
  impl_->sched.post([weak = std::weak_ptr(impl_)] {
    if (auto self = weak.lock(); self && self->started) self->begin();
  });
}

void MessageRetention::stop() {
  impl_->started = false;
  impl_->timer.cancel();
}

void MessageRetention::run_now(std::function<void(Result<std::size_t>)> done) {
  impl_->waiters.push_back(std::move(done));
  impl_->begin();
}

bool MessageRetention::running() const noexcept {
  return impl_->in_run;
}
std::uint64_t MessageRetention::runs() const noexcept {
  return impl_->runs;
}
std::uint64_t MessageRetention::deleted() const noexcept {
  return impl_->deleted;
}
std::uint64_t MessageRetention::failures() const noexcept {
  return impl_->failures;
}

json::value MessageRetention::diagnostics() const {
  return json::object{
      {"retention_ms",
       std::chrono::duration_cast<std::chrono::milliseconds>(impl_->opts.retention).count()},
      {"interval_ms",
       std::chrono::duration_cast<std::chrono::milliseconds>(impl_->opts.interval).count()},
      {"running", impl_->in_run},
      {"runs", impl_->runs},
      {"deleted", impl_->deleted},
      {"failures", impl_->failures},
      {"last_cutoff_ms", impl_->last_cutoff_ms},
  };
}

}  // namespace rtsync::server::cdc
