#include "rtsync/server/auth/jwks_source.hpp"

#include <fstream>
#include <optional>

#include "rtsync/core/log.hpp"
#include "rtsync/server/auth/names.hpp"

namespace rtsync::server::auth {

namespace {

constexpr std::string_view kLog = loggers::kAuth;

Result<std::string> read_capped(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::io, "cannot open JWKS file " + path);
  // Read one byte past the cap so an oversized file is recognised without reading all of it.
  std::string text(kMaxJwksBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return make_error(Errc::io, "cannot read JWKS file " + path);
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

}  // namespace

JwksSource::JwksSource(core::Scheduler& scheduler, std::shared_ptr<KeyRing> ring,
                       JwksSourceOptions options)
    : scheduler_(scheduler), ring_(std::move(ring)), options_(std::move(options)) {
  const auto& loc = options_.location;
  remote_ = loc.rfind("http://", 0) == 0 || loc.rfind("https://", 0) == 0;
  path_ = remote_ ? std::string() : loc;
  if (path_.rfind("file:", 0) == 0) path_ = path_.substr(5);
}

JwksSource::~JwksSource() = default;

Result<void> JwksSource::start() {
  if (remote_) {
    if (!options_.fetch) {
      return make_error(Errc::invalid_argument,
                        "no HTTP fetch is configured to read the JWKS URL " + options_.location);
    }
    fetch_remote();
    return {};
  }
  auto r = load();
  if (options_.on_load) options_.on_load(r);
  if (!r.ok()) return r;
  started_ = true;
  schedule_next();
  return {};
}

Result<void> JwksSource::reload() {
  if (remote_) {
    fetch_remote();
    return {};
  }
  auto r = load();
  finish(r, false);
  return r;
}

void JwksSource::stop() {
  timer_.cancel();
}

Result<void> JwksSource::load() {
  if (path_.empty()) return install(std::nullopt);
  auto text = read_capped(path_);
  if (!text.ok()) return text.error();
  return install(text.value());
}

Result<void> JwksSource::install(std::optional<std::string_view> text) {
  JwkSet set;
  if (text) {
    auto parsed = JwkSet::parse(*text);
    if (!parsed.ok()) return parsed.error();
    set = std::move(parsed.value());
  }
  auto merged = JwkSet::merge(set, options_.extra);
  if (!merged.ok()) return merged.error();
  auto count = merged.value().keys().size();
  ring_->replace(std::move(merged.value()));
  ++loads_;
  log::get(kLog)->info("JWT keys loaded: {} key(s){}", count,
                       options_.location.empty() ? std::string() : " from " + options_.location);
  return {};
}

void JwksSource::fetch_remote() {
  if (fetching_) return;  // the read in flight answers this request too
  fetching_ = true;
  timer_.cancel();
  options_.fetch(options_.location,
                 [this, alive = std::weak_ptr<bool>(alive_)](Result<std::string> body) {
                   if (alive.expired()) return;
                   fetching_ = false;
                   const bool first = !started_;
                   started_ = true;
                   Result<void> r = body.ok() ? install(body.value()) : Result<void>(body.error());
                   if (first && !r.ok()) {
                     log::get(kLog)->error("JWKS first read failed: {}", r.error().describe());
                   }
                   finish(r, first);
                 });
}

// Counts and logs a failed reload (the first load's failure is start()'s or on_load's to report),
// tells on_load, and starts the next interval.
void JwksSource::finish(const Result<void>& r, bool first) {
  if (!r.ok() && !first) {
    ++failures_;
    log::get(kLog)->error("JWKS reload failed, keeping the previous {} key(s): {}",
                          ring_->current()->keys().size(), r.error().describe());
  }
  if (options_.on_load && (remote_ || !first)) options_.on_load(r);
  schedule_next();
}

void JwksSource::schedule_next() {
  timer_.cancel();
  if (options_.interval.count() <= 0 || (path_.empty() && !remote_)) return;
  timer_ = scheduler_.schedule(options_.interval, timers::JwksReload, [this] { (void)reload(); });
}

}  // namespace rtsync::server::auth
