// One logger per component, named with the original app's console prefixes so log lines read the
// same: "[SimpleRealtime] joined task-updates:p1".
//
// The level comes from RTSYNC_LOG_LEVEL (trace, debug, info, warn, error, off; default warn) or
// `set_level()` (the CLI's --log-level). Lines go to stderr so that stdout stays free for --json
// streams. Tests can capture lines with `capture()`.
//
// Thread safety: spdlog loggers are thread-safe; set_level/capture are meant for start-up.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rtsync::log {

// Core's own channels. Upper layers name theirs in their own `names.hpp` (namespace `loggers`,
// e.g. include/rtsync/client/transport/names.hpp); core lists none of them.
inline constexpr std::string_view kEventBus = "EventBus";
inline constexpr std::string_view kEventLoop = "EventLoop";

// The logger for `component`, created on first use with the current level and sinks.
std::shared_ptr<spdlog::logger> get(std::string_view component);

// "info" → spdlog::level::info; unknown names → nullopt-like `off` is not guessed: returns false.
bool parse_level(std::string_view name, spdlog::level::level_enum& out);
void set_level(spdlog::level::level_enum level);
spdlog::level::level_enum level();

// Collects formatted lines ("[Component] message") while alive; for tests.
class Capture {
 public:
  Capture();
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
  std::vector<std::string> lines() const;
  bool contains(std::string_view needle) const;
  void clear();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtsync::log
