// libpq behind small RAII types: a blocking Connection (start-up work: bootstrap, tools, tests)
// and its query results. The event-loop side lives in async_connection.hpp.
//
// Every statement with values goes through PQexecParams with bound parameters; SQL text is never
// assembled from values. Identifiers that must appear in SQL text are quoted with
// `escape_identifier` (PQescapeIdentifier).
//
// Thread safety: a Connection is used by one thread at a time; PgResult is an immutable value once
// built and may be read from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rtsync/core/result.hpp"

// libpq's handle types, without pulling libpq-fe.h into every includer.
struct pg_conn;
struct pg_result;

namespace rtsync::server::pg {

// A bound parameter in text format; nullopt is SQL NULL.
using Param = std::optional<std::string>;

// A libpq keyword=value override applied on top of a conninfo string (e.g. replication=database).
using ConnOption = std::pair<std::string, std::string>;

// TCP keepalive settings the server's long-lived connections add unless the conninfo sets them:
// a PostgreSQL host that vanished without closing is noticed in about 25 s.
inline const std::vector<ConnOption> kKeepaliveDefaults{{"keepalives", "1"},
                                                        {"keepalives_idle", "10"},
                                                        {"keepalives_interval", "5"},
                                                        {"keepalives_count", "3"}};

// One query's result. Move-only; owns the PGresult.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* res) noexcept : res_(res) {}
  PgResult(PgResult&& other) noexcept : res_(std::exchange(other.res_, nullptr)) {}
  PgResult& operator=(PgResult&& other) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult();

  bool empty() const noexcept { return res_ == nullptr; }
  int rows() const noexcept;
  int columns() const noexcept;
  // Index of the column named `name`, or -1.
  int column(std::string_view name) const noexcept;
  std::string_view column_name(int col) const noexcept;
  bool is_null(int row, int col) const noexcept;
  // The text value (empty for NULL). Valid while this PgResult lives.
  std::string_view value(int row, int col) const noexcept;
  std::optional<std::string> get(int row, int col) const;
  // "INSERT 0 3" → 3 for data-changing commands; 0 otherwise.
  std::uint64_t affected_rows() const noexcept;
  pg_result* native() const noexcept { return res_; }

 private:
  pg_result* res_ = nullptr;
};

// Turns a finished PGresult into a value or an error ("<SQLSTATE> <message>"), taking ownership.
// COMMAND_OK, TUPLES_OK, COPY_BOTH, EMPTY_QUERY and PIPELINE_SYNC are successes.
Result<PgResult> take_result(pg_result* res, pg_conn* conn = nullptr);

// The SQLSTATE of an error built by take_result ("42501"), empty if none.
std::string_view sqlstate_of(const Error& error) noexcept;

// libpq connection parameters: `conninfo` (keyword=value or URI) with `overrides` applied, as
// parallel keyword/value arrays for PQconnectdbParams / PQconnectStartParams.
class ConnParams {
 public:
  static Result<ConnParams> parse(std::string_view conninfo,
                                  const std::vector<ConnOption>& overrides = {});
  const char* const* keywords() const noexcept { return keyword_ptrs_.data(); }
  const char* const* values() const noexcept { return value_ptrs_.data(); }
  // The value of `keyword`, if set.
  std::optional<std::string> get(std::string_view keyword) const;

 private:
  std::vector<std::string> keys_;
  std::vector<std::string> vals_;
  std::vector<const char*> keyword_ptrs_;
  std::vector<const char*> value_ptrs_;
  void rebuild();
};

// A blocking libpq connection. Move-only; closes (PQfinish) on destruction.
class Connection {
 public:
  Connection() = default;
  explicit Connection(pg_conn* conn) noexcept : conn_(conn) {}  // adopts
  Connection(Connection&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Connects (blocking). Errors carry libpq's message; code Errc::io.
  static Result<Connection> open(std::string_view conninfo,
                                 const std::vector<ConnOption>& overrides = {});

  // One statement with bound text parameters (PQexecParams). `types` are parameter type OIDs
  // (0 or absent: inferred by the server).
  Result<PgResult> exec(std::string_view sql, const std::vector<Param>& params = {},
                        const std::vector<std::uint32_t>& types = {});
  // A script of several statements without parameters (PQexec, simple query protocol): DDL,
  // migrations. Returns the last statement's result.
  Result<PgResult> exec_script(std::string_view sql);

  // "my ""table""" — for identifiers that must appear in SQL text.
  Result<std::string> escape_identifier(std::string_view ident) const;

  bool is_open() const noexcept;
  pg_conn* native() const noexcept { return conn_; }
  // Releases ownership of the handle.
  pg_conn* release() noexcept { return std::exchange(conn_, nullptr); }
  void close() noexcept;
  // libpq's last error message, trimmed.
  std::string error_message() const;

 private:
  pg_conn* conn_ = nullptr;
};

// Routes the server's NOTICE/WARNING messages on `conn` to the log ("[Server] PostgreSQL: …")
// instead of libpq's default stderr printer. Connection::open and async_connect do this.
void route_notices_to_log(pg_conn* conn) noexcept;

// Quotes an identifier without a connection (doubles embedded quotes). Use only for names that
// come from the catalog or from validated configuration.
std::string quote_identifier(std::string_view ident);
// A SQL string literal ('it''s'), for the replication protocol's commands which take no
// parameters.
std::string quote_literal(std::string_view text);

}  // namespace rtsync::server::pg
