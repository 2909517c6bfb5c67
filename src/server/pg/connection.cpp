#include "rtsync/server/pg/connection.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <cstring>

#include "libpq_text.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/server/pg/names.hpp"

namespace rtsync::server::pg {

namespace {

using detail::trimmed;

void notice_to_log(void*, const char* message) {
  std::string m = trimmed(message);
  auto logger = log::get(loggers::kServer);
  if (m.rfind("WARNING", 0) == 0) {
    logger->warn("PostgreSQL: {}", m);
  } else {
    logger->debug("PostgreSQL: {}", m);
  }
}

}  // namespace

void route_notices_to_log(pg_conn* conn) noexcept {
  if (conn) PQsetNoticeProcessor(conn, &notice_to_log, nullptr);
}

// ---- PgResult --------------------------------------------------------------------------------

PgResult& PgResult::operator=(PgResult&& other) noexcept {
  if (this != &other) {
    if (res_) PQclear(res_);
    res_ = std::exchange(other.res_, nullptr);
  }
  return *this;
}

PgResult::~PgResult() {
  if (res_) PQclear(res_);
}

int PgResult::rows() const noexcept {
  return res_ ? PQntuples(res_) : 0;
}
int PgResult::columns() const noexcept {
  return res_ ? PQnfields(res_) : 0;
}

int PgResult::column(std::string_view name) const noexcept {
  for (int i = 0; i < columns(); ++i) {
    if (name == PQfname(res_, i)) return i;
  }
  return -1;
}

std::string_view PgResult::column_name(int col) const noexcept {
  const char* n = res_ ? PQfname(res_, col) : nullptr;
  return n ? std::string_view(n) : std::string_view();
}

bool PgResult::is_null(int row, int col) const noexcept {
  return !res_ || PQgetisnull(res_, row, col) != 0;
}

std::string_view PgResult::value(int row, int col) const noexcept {
  if (!res_ || row < 0 || row >= rows() || col < 0 || col >= columns()) return {};
  return {PQgetvalue(res_, row, col), static_cast<std::size_t>(PQgetlength(res_, row, col))};
}

std::optional<std::string> PgResult::get(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return std::string(value(row, col));
}

std::uint64_t PgResult::affected_rows() const noexcept {
  if (!res_) return 0;
  const char* t = PQcmdTuples(res_);
  std::uint64_t n = 0;
  if (t && *t) std::from_chars(t, t + std::strlen(t), n);
  return n;
}

Result<PgResult> take_result(pg_result* res, pg_conn* conn) {
  if (!res) {
    return make_error(Errc::io, conn ? trimmed(PQerrorMessage(conn)) : "no result from PostgreSQL");
  }
  PgResult owned(res);
  switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_COPY_BOTH:
    case PGRES_EMPTY_QUERY:
    case PGRES_PIPELINE_SYNC:
    case PGRES_SINGLE_TUPLE:
      return owned;
    case PGRES_PIPELINE_ABORTED:
      return make_error(Errc::remote, "pipeline aborted by an earlier error");
    default: {
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      std::string msg = state ? std::string(state) + " " : std::string();
      msg += trimmed(PQresultErrorMessage(res));
      // A FATAL_ERROR without SQLSTATE is libpq's own (connection lost, protocol).
      return make_error(state ? Errc::remote : Errc::io, std::move(msg));
    }
  }
}

std::string_view sqlstate_of(const Error& error) noexcept {
  std::string_view m = error.message;
  if (m.size() >= 6 && m[5] == ' ') {
    for (std::size_t i = 0; i < 5; ++i) {
      const char c = m[i];
      if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return {};
    }
    return m.substr(0, 5);
  }
  return {};
}

// ---- ConnParams ------------------------------------------------------------------------------

Result<ConnParams> ConnParams::parse(std::string_view conninfo,
                                     const std::vector<ConnOption>& overrides) {
  ConnParams p;
  char* err = nullptr;
  const std::string info(conninfo);
  PQconninfoOption* opts = PQconninfoParse(info.c_str(), &err);
  if (!opts) {
    std::string msg = err ? trimmed(err) : "invalid connection string";
    if (err) PQfreemem(err);
    return make_error(Errc::invalid_argument, msg);
  }
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (o->val && *o->val) {
      p.keys_.emplace_back(o->keyword);
      p.vals_.emplace_back(o->val);
    }
  }
  PQconninfoFree(opts);
  for (const auto& [k, v] : overrides) {
    bool replaced = false;
    for (std::size_t i = 0; i < p.keys_.size(); ++i) {
      if (p.keys_[i] == k) {
        p.vals_[i] = v;
        replaced = true;
      }
    }
    if (!replaced) {
      p.keys_.push_back(k);
      p.vals_.push_back(v);
    }
  }
  p.rebuild();
  return p;
}

void ConnParams::rebuild() {
  keyword_ptrs_.clear();
  value_ptrs_.clear();
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    keyword_ptrs_.push_back(keys_[i].c_str());
    value_ptrs_.push_back(vals_[i].c_str());
  }
  keyword_ptrs_.push_back(nullptr);
  value_ptrs_.push_back(nullptr);
}

std::optional<std::string> ConnParams::get(std::string_view keyword) const {
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == keyword) return vals_[i];
  }
  return std::nullopt;
}

// ---- Connection ------------------------------------------------------------------------------

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    close();
    conn_ = std::exchange(other.conn_, nullptr);
  }
  return *this;
}

Connection::~Connection() {
  close();
}

void Connection::close() noexcept {
  if (conn_) PQfinish(std::exchange(conn_, nullptr));
}

Result<Connection> Connection::open(std::string_view conninfo,
                                    const std::vector<ConnOption>& overrides) {
  auto params = ConnParams::parse(conninfo, overrides);
  if (!params) return params.error();
  Connection c(PQconnectdbParams(params->keywords(), params->values(), 0));
  if (!c.conn_) return make_error(Errc::io, "out of memory creating a PostgreSQL connection");
  if (PQstatus(c.conn_) != CONNECTION_OK) {
    return make_error(Errc::io, "connecting to PostgreSQL: " + c.error_message());
  }
  route_notices_to_log(c.conn_);
  return c;
}

bool Connection::is_open() const noexcept {
  return conn_ && PQstatus(conn_) == CONNECTION_OK;
}

std::string Connection::error_message() const {
  return conn_ ? trimmed(PQerrorMessage(conn_)) : "not connected";
}

Result<PgResult> Connection::exec(std::string_view sql, const std::vector<Param>& params,
                                  const std::vector<std::uint32_t>& types) {
  if (!conn_) return make_error(Errc::closed, "not connected");
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params)
    values.push_back(p ? p->c_str() : nullptr);
  std::vector<Oid> oids;
  if (!types.empty()) {
    oids.assign(params.size(), 0);
    for (std::size_t i = 0; i < types.size() && i < oids.size(); ++i)
      oids[i] = types[i];
  }
  const std::string text(sql);
  PGresult* res =
      PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()),
                   oids.empty() ? nullptr : oids.data(), values.data(), nullptr, nullptr, 0);
  return take_result(res, conn_);
}

Result<PgResult> Connection::exec_script(std::string_view sql) {
  if (!conn_) return make_error(Errc::closed, "not connected");
  const std::string text(sql);
  return take_result(PQexec(conn_, text.c_str()), conn_);
}

Result<std::string> Connection::escape_identifier(std::string_view ident) const {
  if (!conn_) return make_error(Errc::closed, "not connected");
  char* q = PQescapeIdentifier(conn_, ident.data(), ident.size());
  if (!q) return make_error(Errc::invalid_argument, error_message());
  std::string out(q);
  PQfreemem(q);
  return out;
}

std::string quote_identifier(std::string_view ident) {
  std::string out;
  out.reserve(ident.size() + 2);
  out.push_back('"');
  for (char c : ident) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string quote_literal(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('\'');
  for (char c : text) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

}  // namespace rtsync::server::pg
