#include "rtsync/core/log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

namespace rtsync::log {
namespace {

spdlog::level::level_enum initial_level() {
  spdlog::level::level_enum lvl = spdlog::level::warn;
  if (const char* env = std::getenv("RTSYNC_LOG_LEVEL")) parse_level(env, lvl);
  return lvl;
}

struct Registry {
  std::mutex mu;
  spdlog::level::level_enum level = initial_level();
  // Every component logger writes to one distributing sink, so captures attach in one place.
  std::shared_ptr<spdlog::sinks::stderr_color_sink_mt> err = [this] {
    auto e = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    e->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
    e->set_level(level);
    return e;
  }();
  std::shared_ptr<spdlog::sinks::dist_sink_mt> dist = [this] {
    auto d = std::make_shared<spdlog::sinks::dist_sink_mt>();
    d->add_sink(err);
    return d;
  }();
  std::vector<std::shared_ptr<spdlog::logger>> loggers;
  int captures = 0;  // while > 0 loggers pass everything; the stderr sink keeps `level`

  spdlog::level::level_enum logger_level() const {
    return captures > 0 ? spdlog::level::trace : level;
  }
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: loggers may log during static teardown
  return *r;
}

class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    lines_.clear();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.push_back("[" + std::string(msg.logger_name.begin(), msg.logger_name.end()) + "] " +
                     std::string(msg.payload.begin(), msg.payload.end()));
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

}  // namespace

std::shared_ptr<spdlog::logger> get(std::string_view component) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  for (const auto& l : r.loggers) {
    if (l->name() == component) return l;
  }
  auto logger = std::make_shared<spdlog::logger>(std::string(component), r.dist);
  logger->set_level(r.logger_level());
  r.loggers.push_back(logger);
  return logger;
}

bool parse_level(std::string_view name, spdlog::level::level_enum& out) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace},  {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},    {"warn", spdlog::level::warn},
      {"warning", spdlog::level::warn}, {"error", spdlog::level::err},
      {"off", spdlog::level::off},
  };
  for (const auto& [n, l] : kLevels) {
    if (n == name) {
      out = l;
      return true;
    }
  }
  return false;
}

void set_level(spdlog::level::level_enum level) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  r.level = level;
  r.err->set_level(level);
  for (const auto& l : r.loggers)
    l->set_level(r.logger_level());
}

spdlog::level::level_enum level() {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  return r.level;
}

struct Capture::Impl {
  std::shared_ptr<CaptureSink> sink = std::make_shared<CaptureSink>();
};

namespace {
void adjust_captures(int delta) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  r.captures += delta;
  for (const auto& l : r.loggers)
    l->set_level(r.logger_level());
}
}  // namespace

// A capture sees every line; stderr still shows only what the configured level lets through.
Capture::Capture() : impl_(std::make_unique<Impl>()) {
  registry().dist->add_sink(impl_->sink);
  adjust_captures(+1);
}

Capture::~Capture() {
  registry().dist->remove_sink(impl_->sink);
  adjust_captures(-1);
}

std::vector<std::string> Capture::lines() const {
  return impl_->sink->lines();
}

bool Capture::contains(std::string_view needle) const {
  const auto all = lines();
  return std::any_of(all.begin(), all.end(),
                     [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

void Capture::clear() {
  impl_->sink->clear();
}

}  // namespace rtsync::log
