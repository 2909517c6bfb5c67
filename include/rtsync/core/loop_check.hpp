// Loop confinement, checked: RTSYNC_ASSERT_ON_LOOP(scheduler) at the top of a public method that
// its header documents as loop-confined reports a call from a thread other than the one running
// that scheduler's loop (Scheduler::on_loop_thread()). A core::ManualScheduler counts the thread
// that drives it as the loop thread.
//
// The check is compiled in debug builds (no NDEBUG) and when RTSYNC_LOOP_CHECKS is defined to 1;
// otherwise the macro expands to nothing and costs nothing. A violation calls the handler set with
// set_loop_violation_handler(); the default handler prints the method's name to stderr and aborts.
//
// Thread safety: the checks may run on any thread; set_loop_violation_handler() is for start-up
// and tests.
#pragma once

#include <functional>
#include <string_view>

#include "rtsync/core/scheduler.hpp"

#if !defined(RTSYNC_LOOP_CHECKS)
#if defined(NDEBUG)
#define RTSYNC_LOOP_CHECKS 0
#else
#define RTSYNC_LOOP_CHECKS 1
#endif
#endif

namespace rtsync::core {

// True when RTSYNC_ASSERT_ON_LOOP checks anything in this build.
inline constexpr bool kLoopChecks = RTSYNC_LOOP_CHECKS != 0;

// Called with the method's name when a loop-confined method runs off its loop. An empty function
// restores the default (print and abort). Returns the previous handler.
using LoopViolationHandler = std::function<void(std::string_view method)>;
LoopViolationHandler set_loop_violation_handler(LoopViolationHandler handler);

namespace detail {
void loop_violation(std::string_view method);
inline void check_on_loop(const Scheduler& scheduler, std::string_view method) {
  if (!scheduler.on_loop_thread()) loop_violation(method);
}
}  // namespace detail

}  // namespace rtsync::core

#if RTSYNC_LOOP_CHECKS
#define RTSYNC_ASSERT_ON_LOOP(scheduler) \
  ::rtsync::core::detail::check_on_loop((scheduler), static_cast<const char*>(__func__))
#else
#define RTSYNC_ASSERT_ON_LOOP(scheduler) static_cast<void>(0)
#endif
