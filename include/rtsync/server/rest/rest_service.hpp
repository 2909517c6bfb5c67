// /rest/v1: the PostgREST-compatible subset the client's fetchers and supabase-js use.
//
//   GET|HEAD /rest/v1/<table>?select=…&<col>=<op>.<v>&order=…&limit=…&offset=…
//            (Range, Prefer: count=exact → Content-Range; 206 for a partial page; 416 past the end)
//   POST     /rest/v1/<table>            insert (object or array; Prefer: return=representation,
//                                         missing=default, resolution=…-duplicates for upsert)
//   PATCH    /rest/v1/<table>?<filters>  update          DELETE /rest/v1/<table>?<filters>
//   POST     /rest/v1/rpc/<function>     named JSON arguments
//   Accept: application/vnd.pgrst.object+json → exactly one row as an object (else 406 PGRST116)
//
// Every request runs as one transaction under the caller's claims — role from the JWT
// (anon / authenticated / service_role), `request.jwt.claims` set for auth.uid() — so row-level
// security decides what is seen and changed. Identifiers are resolved in the schema cache
// (catalog.hpp), values are bound parameters (sql_builder.hpp). Errors are PostgREST's JSON with
// its status codes: 400 bad input or unknown column, 404 unknown table/function, 401 missing,
// expired or forged token, 403 (or an empty result) where RLS refuses.
//
// Thread safety: confined to the io_context thread of its DbPool and Scheduler.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/http/http_service.hpp"
#include "rtsync/server/pg/db_pool.hpp"
#include "rtsync/server/rest/catalog.hpp"

namespace rtsync::server::rest {

struct RestOptions {
  std::string prefix = "/rest/v1";
  std::string schema = "public";  // the one exposed schema
  // Roles a token may name; anything else is refused (401) rather than tried.
  std::vector<std::string> roles = {"anon", "authenticated", "service_role"};
  std::string anon_role = "anon";
  // Supabase's gateway refuses requests without an apikey/Authorization; so does this service.
  // When false, such requests run as anon_role (PostgREST's own behaviour).
  bool require_token = true;
  std::optional<std::int64_t> max_rows;  // cap on rows per read (PostgREST's db-max-rows)
  std::size_t max_body_bytes = 1 << 20;
  // Distinct statement texts kept prepared on the database connections (the shapes of requests,
  // not their values); beyond it, new shapes run unprepared so odd clients cannot grow the cache.
  std::size_t max_prepared = 1000;
  // Verified tokens remembered (by their exact text) so a client's repeated requests skip the
  // signature check; each use still checks exp/nbf against the clock. 0 disables the cache.
  std::size_t max_cached_tokens = 1024;
  // Reads (GET/HEAD) run with plan_cache_mode = force_generic_plan in their transaction. With the
  // default (auto) PostgreSQL never settles on the generic plan of a page read — it prices
  // `LIMIT $n` at a tenth of the table — and plans every request again, which cost it about a
  // third of the request (bench/rest/README.md). The plan is chosen without the values, so a
  // filter on a very skewed column may get a plan that suits its average value; set false to plan
  // each read for its values. Writes and rpc are unaffected.
  bool generic_read_plans = true;
  // Each request's transaction runs with this statement_timeout: a statement still running then
  // is cancelled by PostgreSQL and the request answered 500 (SQLSTATE 57014, "canceling statement
  // due to statement timeout"), so no request holds a pool connection for long. 8 s is Supabase's
  // default for the authenticated role. Zero leaves the role's or the server's own setting.
  std::chrono::milliseconds statement_timeout{8000};
};

class RestService final : public http::HttpService {
 public:
  RestService(std::shared_ptr<pg::DbPool> pool, auth::JwtVerifier verifier, core::Scheduler& clock,
              RestOptions options = {});
  ~RestService() override;

  bool matches(std::string_view path) const override;
  void handle(http::HttpRequest request, std::function<void(http::HttpResponse)> done) override;

  // Reloads the schema cache (after DDL). Requests arriving meanwhile wait for it. The cache is
  // also loaded lazily by the first request.
  void reload_schema(std::function<void(Result<void>)> done = {});
  // The current cache (null before the first load).
  std::shared_ptr<const Catalog> catalog() const { return catalog_; }

  std::uint64_t requests() const noexcept { return requests_; }
  // Requests whose token was found already verified.
  std::uint64_t token_cache_hits() const noexcept { return token_cache_hits_; }

 private:
  struct Call;
  void with_catalog(std::function<void(const std::shared_ptr<const Catalog>&)> fn);
  void serve(std::shared_ptr<Call> call, const Catalog& catalog);
  bool keep_prepared(const std::string& sql);
  // verify() through the cache of verified tokens: the verified token (owned by this service,
  // valid until the next call), or null with why it was refused in `refused`.
  const auth::VerifiedJwt* verify_token(std::string_view token, auth::JwtError& refused);

  std::shared_ptr<pg::DbPool> pool_;
  auth::JwtVerifier verifier_;
  core::Scheduler& clock_;
  RestOptions options_;
  std::shared_ptr<const Catalog> catalog_;
  bool loading_ = false;
  std::deque<std::function<void(const std::shared_ptr<const Catalog>&)>> waiting_;
  std::vector<std::function<void(Result<void>)>> reload_waiters_;
  std::uint64_t requests_ = 0;
  std::unordered_set<std::string> prepared_;
  // Looked up by string_view: no copy of the token per request.
  struct TokenHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, auth::VerifiedJwt, TokenHash, std::equal_to<>> tokens_;
  auth::VerifiedJwt uncached_;  // the last token verified while the cache is off
  std::uint64_t token_cache_hits_ = 0;
  std::shared_ptr<bool> alive_;
};

}  // namespace rtsync::server::rest
