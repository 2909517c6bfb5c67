// Where the verification keys come from and when they are read again: a JWKS file loaded at
// start, reloaded every `interval` and on demand (the server's SIGHUP), so rotating keys needs no
// restart.
//
// A reload that fails — unreadable file, not JSON, a malformed key, more than kMaxJwksBytes —
// keeps the last good keys and logs an error; the first load failing is an error of start(), so
// a server never starts with keys it could not read. The KeyRing is replaced only with a fully
// parsed set (plus the `extra` keys, /auth/v1's own signing key).
//
// Locations: a file path, `file:` followed by one, or an http(s) URL (a hosted project's
// `https://<ref>.supabase.co/auth/v1/.well-known/jwks.json`). A URL is read through
// JwksSourceOptions::fetch, asynchronously: start() and reload() only begin the read, whose outcome
// goes to `on_load` (and to the log); a read already in flight absorbs further reload requests.
// Without `fetch`, start() refuses a URL with Errc::invalid_argument.
//
// Thread safety: confined to the scheduler's loop (start, reload, stop, and the fetch's callback);
// the KeyRing it fills is read from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/auth/jwks.hpp"

namespace rtsync::server::auth {

// Reads an http(s) URL; must call `done` exactly once, on the loop, with the body of a 2xx
// response or an error (a non-2xx status is an error). Destroying the JwksSource before `done`
// runs is allowed: the answer is then ignored.
using JwksFetch =
    std::function<void(const std::string& url, std::function<void(Result<std::string>)> done)>;

struct JwksSourceOptions {
  std::string location;                // empty: no key set, only `extra`
  std::chrono::seconds interval{300};  // between scheduled reloads (0: only on demand)
  JwkSet extra;                        // keys kept whatever the file says
  JwksFetch fetch{};                   // reads http(s) locations (required for a URL)
  // After every load attempt (start, reload, schedule), on the loop: ok, or why the previous keys
  // stay. For a file it runs before start()/reload() return.
  std::function<void(const Result<void>&)> on_load{};
};

class JwksSource {
 public:
  JwksSource(core::Scheduler& scheduler, std::shared_ptr<KeyRing> ring, JwksSourceOptions options);
  ~JwksSource();
  JwksSource(const JwksSource&) = delete;
  JwksSource& operator=(const JwksSource&) = delete;

  // Loads the keys and schedules the next reload (timers::JwksReload). A file: the load's outcome
  // (an unreadable first set is an error). A URL: ok once the read has begun
  // (Errc::invalid_argument without `fetch`); the outcome goes to `on_load`, and the interval
  // starts when it is known.
  Result<void> start();
  // Reads the key set now and restarts the interval. A file: what the read gave; on error the
  // previous keys stay in the ring. A URL: ok (the read begins, or one in flight covers it).
  Result<void> reload();
  void stop();
  // True for an http(s) location.
  bool remote() const noexcept { return remote_; }

  // Successful loads and failed reloads so far.
  std::uint64_t loads() const noexcept { return loads_; }
  std::uint64_t failures() const noexcept { return failures_; }

 private:
  Result<void> load();
  // Parses `text` (none: no key set of our own) and replaces the ring with it plus `extra`.
  Result<void> install(std::optional<std::string_view> text);
  void fetch_remote();
  void finish(const Result<void>& r, bool first);
  void schedule_next();

  core::Scheduler& scheduler_;
  std::shared_ptr<KeyRing> ring_;
  JwksSourceOptions options_;
  std::string path_;
  bool remote_ = false;
  bool fetching_ = false;
  bool started_ = false;  // the first load attempt finished
  core::Timer timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::uint64_t loads_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace rtsync::server::auth
