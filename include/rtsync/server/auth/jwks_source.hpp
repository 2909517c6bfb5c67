// Where the verification keys come from and when they are read again: a JWKS file loaded at
// start, reloaded every `interval` and on demand (the server's SIGHUP), so rotating keys needs no
// restart.
//
// A reload that fails — unreadable file, not JSON, a malformed key, more than kMaxJwksBytes —
// keeps the last good keys and logs an error; the first load failing is an error of start(), so
// a server never starts with keys it could not read. The KeyRing is replaced only with a fully
// parsed set (plus the `extra` keys, /auth/v1's own signing key).
//
// Locations: a file path, or `file:` followed by one. http(s) URLs are not fetched by the server;
// start() refuses them with Errc::invalid_argument.
//
// Thread safety: confined to the scheduler's loop (start, reload, stop); the KeyRing it fills is
// read from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/auth/jwks.hpp"

namespace rtsync::server::auth {

struct JwksSourceOptions {
  std::string location;                // empty: no key set, only `extra`
  std::chrono::seconds interval{300};  // between scheduled reloads (0: only on demand)
  JwkSet extra;                        // keys kept whatever the file says
};

class JwksSource {
 public:
  JwksSource(core::Scheduler& scheduler, std::shared_ptr<KeyRing> ring, JwksSourceOptions options);
  ~JwksSource();
  JwksSource(const JwksSource&) = delete;
  JwksSource& operator=(const JwksSource&) = delete;

  // Loads the keys and schedules the next reload (timers::JwksReload).
  Result<void> start();
  // Reads the key set now and restarts the interval. Returns what the read gave; on error the
  // previous keys stay in the ring.
  Result<void> reload();
  void stop();

  // Successful loads and failed reloads so far.
  std::uint64_t loads() const noexcept { return loads_; }
  std::uint64_t failures() const noexcept { return failures_; }

 private:
  Result<void> load();
  void schedule_next();

  core::Scheduler& scheduler_;
  std::shared_ptr<KeyRing> ring_;
  JwksSourceOptions options_;
  std::string path_;
  core::Timer timer_;
  std::uint64_t loads_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace rtsync::server::auth
