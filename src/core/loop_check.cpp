#include "rtsync/core/loop_check.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace rtsync::core {
namespace {

std::mutex& handler_mutex() {
  static std::mutex m;
  return m;
}

LoopViolationHandler& handler() {
  static LoopViolationHandler h;
  return h;
}

}  // namespace

LoopViolationHandler set_loop_violation_handler(LoopViolationHandler next) {
  std::lock_guard lock(handler_mutex());
  auto previous = std::move(handler());
  handler() = std::move(next);
  return previous;
}

namespace detail {

void loop_violation(std::string_view method) {
  LoopViolationHandler h;
  {
    std::lock_guard lock(handler_mutex());
    h = handler();
  }
  if (h) return h(method);
  const std::string name(method);
  std::fprintf(stderr, "rtsync: %s called off its event loop thread (loop-confined)\n",
               name.c_str());
  std::abort();
}

}  // namespace detail
}  // namespace rtsync::core
