#include "rtsync/server/auth/jwks_source.hpp"

#include <fstream>

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
  path_ = options_.location;
  if (path_.rfind("file:", 0) == 0) path_ = path_.substr(5);
}

JwksSource::~JwksSource() = default;

Result<void> JwksSource::start() {
  const auto& loc = options_.location;
  if (loc.rfind("http://", 0) == 0 || loc.rfind("https://", 0) == 0) {
    return make_error(Errc::invalid_argument,
                      "JWKS URLs are not fetched by the server: give a file path (" + loc + ")");
  }
  if (auto r = load(); !r.ok()) return r;
  schedule_next();
  return {};
}

Result<void> JwksSource::reload() {
  auto r = load();
  if (!r.ok()) {
    ++failures_;
    log::get(kLog)->error("JWKS reload failed, keeping the previous {} key(s): {}",
                          ring_->current()->keys().size(), r.error().describe());
  }
  schedule_next();
  return r;
}

void JwksSource::stop() {
  timer_.cancel();
}

Result<void> JwksSource::load() {
  JwkSet set;
  if (!path_.empty()) {
    auto text = read_capped(path_);
    if (!text.ok()) return text.error();
    auto parsed = JwkSet::parse(text.value());
    if (!parsed.ok()) return parsed.error();
    set = std::move(parsed.value());
  }
  auto merged = JwkSet::merge(set, options_.extra);
  if (!merged.ok()) return merged.error();
  auto count = merged.value().keys().size();
  ring_->replace(std::move(merged.value()));
  ++loads_;
  log::get(kLog)->info("JWT keys loaded: {} key(s){}", count,
                       path_.empty() ? std::string() : " from " + path_);
  return {};
}

void JwksSource::schedule_next() {
  timer_.cancel();
  if (options_.interval.count() <= 0 || path_.empty()) return;
  timer_ =
      scheduler_.schedule(options_.interval, timers::JwksReload, [this] { (void)reload(); });
}

}  // namespace rtsync::server::auth
