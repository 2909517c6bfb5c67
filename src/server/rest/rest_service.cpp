#include "rtsync/server/rest/rest_service.hpp"

#include <algorithm>
#include <charconv>

#include "rtsync/core/log.hpp"
#include "rtsync/server/http/request_parsing.hpp"
#include "rtsync/server/rest/api_request.hpp"
#include "rtsync/server/rest/pg_errors.hpp"
#include "rtsync/server/rest/sql_builder.hpp"

namespace rtsync::server::rest {
namespace {

constexpr std::string_view kObjectMedia = "application/vnd.pgrst.object+json";

std::shared_ptr<spdlog::logger> logger() {
  return log::get("RestApi");
}

http::HttpResponse error_response(const ApiError& e) {
  http::HttpResponse r = http::make_response(e.status, e.to_json());
  if (e.status == 401) {
    r.headers.emplace_back(
        "WWW-Authenticate",
        "Bearer error=\"invalid_token\", error_description=\"" + e.message + "\"");
  }
  return r;
}

ApiError singular_error(std::int64_t rows) {
  return ApiError{406, "PGRST116", "JSON object requested, multiple (or no) rows returned",
                  "The result contains " + std::to_string(rows) + " rows", std::nullopt};
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

ApiError unknown_table(const Catalog& catalog, std::string_view name) {
  ApiError e{404, "PGRST205",
             "Could not find the table '" + catalog.schema() + "." + std::string(name) +
                 "' in the schema cache",
             std::nullopt, std::nullopt};
  std::size_t best = 4;
  for (const auto& t : catalog.table_names()) {
    const std::size_t d = edit_distance(name, t);
    if (d < best) {
      best = d;
      e.hint = "Perhaps you meant the table '" + catalog.schema() + "." + t + "'";
    }
  }
  return e;
}

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

struct RestService::Call {
  http::HttpRequest req;
  std::function<void(http::HttpResponse)> done;
  std::string role;
  std::string claims_json;
  bool anonymous = false;

  void reply(http::HttpResponse r) {
    auto cb = std::move(done);
    done = nullptr;
    if (cb) cb(std::move(r));
  }
  void fail(const ApiError& e) {
    if (e.status >= 500) {
      logger()->warn("{} {} → {} {}", req.method, req.target, e.status, e.message);
    } else {
      logger()->debug("{} {} → {} {}", req.method, req.target, e.status, e.message);
    }
    reply(error_response(e));
  }
};

RestService::RestService(std::shared_ptr<pg::DbPool> pool, auth::JwtVerifier verifier,
                         core::Scheduler& clock, RestOptions options)
    : pool_(std::move(pool)),
      verifier_(std::move(verifier)),
      clock_(clock),
      options_(std::move(options)),
      alive_(std::make_shared<bool>(true)) {}

RestService::~RestService() = default;

bool RestService::matches(std::string_view path) const {
  const std::string_view p = options_.prefix;
  return path == p ||
         (path.size() > p.size() && path.substr(0, p.size()) == p && path[p.size()] == '/');
}

void RestService::handle(http::HttpRequest request, std::function<void(http::HttpResponse)> done) {
  ++requests_;
  if (request.method == "OPTIONS") return done(http::preflight_response());
  auto call = std::make_shared<Call>();
  call->req = std::move(request);
  call->done = std::move(done);

  if (call->req.body.size() > options_.max_body_bytes) {
    return call->fail(ApiError{
        413, "PGRST413", "Payload too large",
        "the body exceeds " + std::to_string(options_.max_body_bytes) + " bytes", std::nullopt});
  }

  auto token = http::request_token(call->req);
  if (!token) {
    if (options_.require_token) {
      return call->fail(ApiError{401, "PGRST302", "Anonymous access is disabled",
                                 "No apikey or Authorization header was found in the request",
                                 std::nullopt});
    }
    call->role = options_.anon_role;
    call->claims_json = R"({"role":")" + options_.anon_role + R"("})";
  } else {
    auth::JwtError refused;
    const auth::VerifiedJwt* verified = verify_token(*token, refused);
    if (!verified) {
      const bool expired = refused.fault == auth::JwtFault::expired;
      return call->fail(ApiError{401, expired ? "PGRST303" : "PGRST301",
                                 expired ? "JWT expired" : refused.message, std::nullopt,
                                 std::nullopt});
    }
    const auto& roles = options_.roles;
    if (std::find(roles.begin(), roles.end(), verified->role) == roles.end()) {
      return call->fail(ApiError{401, "PGRST301",
                                 "JWT role \"" + verified->role + "\" is not allowed", std::nullopt,
                                 std::nullopt});
    }
    call->role = verified->role;
    call->claims_json = verified->claims_json;
  }
  call->anonymous = call->role == options_.anon_role;

  with_catalog([this, call,
                weak = std::weak_ptr<bool>(alive_)](const std::shared_ptr<const Catalog>& catalog) {
    if (weak.expired()) return;
    if (!catalog) {
      return call->fail(ApiError{503, "PGRST002",
                                 "Could not query the database for the schema cache. Retrying.",
                                 std::nullopt, std::nullopt});
    }
    serve(call, *catalog);
  });
}

const auth::VerifiedJwt* RestService::verify_token(std::string_view token,
                                                   auth::JwtError& refused) {
  const core::WallTime now = clock_.wall_now();
  if (auto it = tokens_.find(token); it != tokens_.end()) {
    if (auto fault = verifier_.check_time(it->second, now)) {
      tokens_.erase(it);
      refused = std::move(*fault);
      return nullptr;
    }
    ++token_cache_hits_;
    return &it->second;
  }
  auto verified = verifier_.verify(token, now);
  if (!verified.ok()) {
    refused = verified.error();
    return nullptr;
  }
  if (options_.max_cached_tokens == 0) {
    uncached_ = std::move(verified.value());
    return &uncached_;
  }
  // Bounded: when full, start over (expired tokens leave this way too).
  if (tokens_.size() >= options_.max_cached_tokens) tokens_.clear();
  return &tokens_.emplace(std::string(token), std::move(verified.value())).first->second;
}

bool RestService::keep_prepared(const std::string& sql) {
  if (prepared_.count(sql)) return true;
  if (prepared_.size() >= options_.max_prepared) return false;
  prepared_.insert(sql);
  return true;
}

void RestService::with_catalog(std::function<void(const std::shared_ptr<const Catalog>&)> fn) {
  if (catalog_ && !loading_) return fn(catalog_);
  waiting_.push_back(std::move(fn));
  if (!loading_) reload_schema();
}

void RestService::reload_schema(std::function<void(Result<void>)> done) {
  if (done) reload_waiters_.push_back(std::move(done));
  if (loading_) return;
  loading_ = true;
  std::vector<pg::Statement> batch;
  batch.push_back(pg::Statement{Catalog::query_sql(), {options_.schema}, {}});
  pool_->execute(
      std::move(batch),
      [this, weak = std::weak_ptr<bool>(alive_)](Result<std::vector<pg::PgResult>> r) {
        if (weak.expired()) return;
        loading_ = false;
        Result<void> outcome;
        if (!r) {
          outcome = r.error();
        } else if (r.value().empty() || r.value()[0].rows() != 1) {
          outcome = make_error(Errc::internal, "catalog query returned no row");
        } else {
          auto cat = Catalog::from_json(options_.schema, r.value()[0].value(0, 0));
          if (!cat) {
            outcome = cat.error();
          } else {
            catalog_ = std::make_shared<const Catalog>(std::move(cat).value());
            logger()->info("schema cache loaded: {} tables in {}", catalog_->table_count(),
                           options_.schema);
          }
        }
        if (!outcome) logger()->error("schema cache load failed: {}", outcome.error().describe());
        auto waiting = std::move(waiting_);
        waiting_.clear();
        auto waiters = std::move(reload_waiters_);
        reload_waiters_.clear();
        const auto snapshot = catalog_;
        for (auto& w : waiting)
          w(snapshot);
        for (auto& w : waiters)
          w(outcome);
      },
      pg::Retry::idempotent);  // a catalog read
}

void RestService::serve(std::shared_ptr<Call> call, const Catalog& catalog) {
  const http::HttpRequest& req = call->req;
  std::string_view rest = std::string_view(req.target).substr(options_.prefix.size());
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == '/')
    rest.remove_suffix(1);
  auto decoded = http::url_decode(rest, false);
  if (!decoded || decoded->empty() || decoded->find('/') != decoded->rfind('/')) {
    return call->fail(ApiError{404, "PGRST125", "Invalid path specified in request URL",
                               std::nullopt, std::nullopt});
  }
  const std::string& path = *decoded;

  const bool reading = req.method == "GET" || req.method == "HEAD";
  const std::string_view profile = req.header(reading ? "accept-profile" : "content-profile");
  if (!profile.empty() && profile != options_.schema) {
    return call->fail(ApiError{406, "PGRST106",
                               "The schema must be one of the following: " + options_.schema,
                               std::nullopt, std::nullopt});
  }
  const BodyShape shape = req.header("accept").find(kObjectMedia) != std::string_view::npos
                              ? BodyShape::singular
                              : BodyShape::array;
  const std::string content_type = shape == BodyShape::singular
                                       ? std::string(kObjectMedia) + "; charset=utf-8"
                                       : std::string("application/json; charset=utf-8");
  const Preferences prefer = parse_prefer(req.header("prefer"));

  // The batch: the caller's claims first, then the request's statements; one transaction.
  const bool rpc = path.rfind("rpc/", 0) == 0;
  const bool generic_plan = reading && !rpc && options_.generic_read_plans;
  // Table reads may run twice if a connection breaks under them; writes and functions may not.
  const pg::Retry retry = reading && !rpc ? pg::Retry::idempotent : pg::Retry::if_not_committed;
  auto run = [this, call, generic_plan, retry](
                 std::vector<pg::Statement> statements,
                 std::function<void(std::vector<pg::PgResult>&)> on_ok) {
    std::vector<pg::Statement> batch;
    batch.reserve(statements.size() + 1);
    std::optional<std::int64_t> timeout_ms;
    if (options_.statement_timeout.count() > 0) timeout_ms = options_.statement_timeout.count();
    batch.push_back(claims_statement(call->role, call->claims_json, generic_plan, timeout_ms));
    for (auto& s : statements) {
      s.prepare = keep_prepared(s.sql);
      batch.push_back(std::move(s));
    }
    pool_->execute(
        std::move(batch),
        [call, on_ok = std::move(on_ok),
         weak = std::weak_ptr<bool>(alive_)](Result<std::vector<pg::PgResult>> r) {
          if (weak.expired()) return;
          if (!r) {
            if (auto rows = singular_violation(r.error().message)) {
              return call->fail(singular_error(*rows));
            }
            return call->fail(api_error_from_pg(r.error(), call->anonymous));
          }
          on_ok(r.value());
        },
        retry);
  };

  if (rpc) {
    const std::string name = path.substr(4);
    if (req.method != "POST" && req.method != "GET" && req.method != "HEAD") {
      return call->fail(ApiError{405, "PGRST117", "Unsupported HTTP method: " + req.method,
                                 std::nullopt, std::nullopt});
    }
    json::object args;
    if (req.method == "POST") {
      if (!req.body.empty()) {
        auto parsed = core::parse_json(req.body);
        if (!parsed || !parsed.value().is_object()) {
          return call->fail(ApiError{400, "PGRST102", "Empty or invalid json",
                                     "rpc arguments must be a JSON object", std::nullopt});
        }
        args = std::move(parsed.value().get_object());
      }
    } else {
      auto pairs = split_query(req.query);
      if (!pairs) return call->fail(pairs.error());
      for (auto& [k, v] : pairs.value())
        args[k] = v;
    }
    auto fn = resolve_function(catalog, name, args);
    if (!fn) return call->fail(fn.error());
    auto stmt = build_rpc(*fn.value(), args, shape);
    if (!stmt) return call->fail(stmt.error());
    const bool is_void = fn.value()->returns_void();
    const bool head = req.method == "HEAD";
    std::vector<pg::Statement> statements;
    statements.push_back(std::move(stmt).value());
    return run(std::move(statements), [call, is_void, head, content_type](auto& results) {
      if (is_void) return call->reply(http::make_response(204, ""));
      const pg::PgResult& res = results.back();
      std::string body = res.rows() > 0 ? std::string(res.value(0, 0)) : "null";
      call->reply(http::make_response(200, head ? "" : std::move(body), content_type));
    });
  }

  const CatalogTable* table = catalog.table(path);
  if (!table) return call->fail(unknown_table(catalog, path));
  auto query = parse_query_string(req.query);
  if (!query) return call->fail(query.error());

  if (reading) {
    ReadRequest r;
    r.table = table;
    r.query = std::move(query).value();
    r.range = parse_range_header(req.header("range"));
    r.count = prefer.count;
    r.head = req.method == "HEAD";
    r.shape = shape;
    r.max_rows = options_.max_rows;
    auto built = build_read(r);
    if (!built) return call->fail(built.error());
    const std::int64_t lower = built->offset;
    const bool head = r.head;
    std::vector<pg::Statement> statements;
    const bool counted = built->count.has_value();
    if (counted) statements.push_back(std::move(*built->count));
    statements.push_back(std::move(built->statement));
    // Rows mode (plain columns): the body is written here from the rows.
    auto columns = std::make_shared<const std::vector<RowColumn>>(std::move(built->columns));
    return run(std::move(statements), [call, lower, head, shape, content_type, counted,
                                       columns](auto& results) {
      const pg::PgResult& res = results.back();
      std::optional<std::int64_t> total;
      std::int64_t rows = 0;
      std::string body;
      if (!columns->empty()) {
        if (counted) total = to_int(results[results.size() - 2].value(0, 0));
        rows = res.rows();
        if (shape != BodyShape::singular || rows == 1) {
          body.reserve(static_cast<std::size_t>(rows) * 256 + 2);
          write_rows_json(res, *columns, shape, body);
        }
      } else {
        if (!res.is_null(0, 0)) total = to_int(res.value(0, 0));
        rows = to_int(res.value(0, 1)).value_or(0);
        if (!head) body = std::string(res.value(0, 2));
      }
      const std::int64_t upper = lower + rows - 1;
      const std::string total_text = total ? std::to_string(*total) : "*";
      int status = 200;
      if (total) {
        if (lower > *total) {
          return call->fail(ApiError{416, "PGRST103", "Requested range not satisfiable",
                                     "An offset of " + std::to_string(lower) +
                                         " was requested, but there are only " +
                                         std::to_string(*total) + " rows.",
                                     std::nullopt});
        }
        if (1 + upper - lower < *total) status = 206;
      }
      if (shape == BodyShape::singular && rows != 1) return call->fail(singular_error(rows));
      http::HttpResponse resp = http::make_response(status, std::move(body), content_type);
      const bool in_range = total.value_or(-1) != 0 && lower <= upper;
      resp.headers.emplace_back("Content-Range", in_range
                                                     ? std::to_string(lower) + "-" +
                                                           std::to_string(upper) + "/" + total_text
                                                     : "*/" + total_text);
      call->reply(std::move(resp));
    });
  }

  WriteRequest w;
  if (req.method == "POST") {
    w.kind = WriteKind::insert;
  } else if (req.method == "PATCH") {
    w.kind = WriteKind::update;
  } else if (req.method == "DELETE") {
    w.kind = WriteKind::remove;
  } else {
    return call->fail(ApiError{405, "PGRST117", "Unsupported HTTP method: " + req.method,
                               std::nullopt, std::nullopt});
  }
  w.table = table;
  w.query = std::move(query).value();
  w.prefer = prefer;
  w.shape = shape;
  if (w.kind != WriteKind::remove) {
    auto parsed = core::parse_json(req.body);
    if (!parsed) {
      return call->fail(
          ApiError{400, "PGRST102", "Empty or invalid json", parsed.error().message, std::nullopt});
    }
    w.body = std::move(parsed).value();
  }
  auto built = build_write(w);
  if (!built) return call->fail(built.error());
  const bool representation = built->representation;
  const WriteKind kind = w.kind;
  const bool count = prefer.count;
  return run(std::move(built.value().statements),
             [call, representation, kind, count, content_type](auto& results) {
               std::int64_t rows = 0;
               std::string body;
               if (representation) {
                 const pg::PgResult& res = results.back();
                 rows = to_int(res.value(0, 1)).value_or(0);
                 body = std::string(res.value(0, 2));
               } else {
                 for (std::size_t i = 1; i < results.size(); ++i) {
                   rows += static_cast<std::int64_t>(results[i].affected_rows());
                 }
               }
               int status = kind == WriteKind::insert ? 201 : (representation ? 200 : 204);
               http::HttpResponse resp = http::make_response(status, std::move(body), content_type);
               if (count) resp.headers.emplace_back("Content-Range", "*/" + std::to_string(rows));
               if (representation) {
                 resp.headers.emplace_back("Preference-Applied", "return=representation");
               }
               call->reply(std::move(resp));
             });
}

}  // namespace rtsync::server::rest
