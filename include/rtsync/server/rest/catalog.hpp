// The schema cache: tables, views and functions of the exposed schema, read from the PostgreSQL
// catalog. The REST layer resolves every identifier a request names (table, column, function,
// argument) here before any SQL is built, so unknown names are refused with PostgREST's errors
// and only catalog spellings ever reach SQL text.
//
// Thread safety: immutable after load; share it by shared_ptr<const Catalog>.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/result.hpp"

namespace rtsync::server::rest {

struct CatalogColumn {
  std::string name;
  std::string type;  // format_type(): "uuid", "task_status", "timestamp with time zone"…
  bool nullable = true;
  bool has_default = false;
};

struct CatalogTable {
  std::string schema;
  std::string name;
  char kind = 'r';                     // pg_class.relkind
  std::vector<CatalogColumn> columns;  // in attnum order
  std::vector<std::string> primary_key;

  const CatalogColumn* column(std::string_view name) const;
};

struct CatalogArg {
  std::string name;
  std::string type;
  bool has_default = false;
};

struct CatalogFunction {
  std::string schema;
  std::string name;
  std::vector<CatalogArg> args;  // input arguments only, in order
  bool returns_set = false;
  std::string return_type;  // "bigint", "record", "void"…

  bool returns_void() const { return !returns_set && return_type == "void"; }
};

class Catalog {
 public:
  // The catalog query: one row, one column holding a JSON document. $1 = the schema name.
  static const char* query_sql();
  // Builds the cache from that document.
  static Result<Catalog> from_json(std::string_view schema, std::string_view document);

  const std::string& schema() const noexcept { return schema_; }
  const CatalogTable* table(std::string_view name) const;
  // Every overload named `name` (empty when none).
  std::vector<const CatalogFunction*> functions(std::string_view name) const;
  std::size_t table_count() const noexcept { return tables_.size(); }
  // The catalog's table names, for "perhaps you meant" hints.
  std::vector<std::string> table_names() const;

 private:
  std::string schema_;
  std::map<std::string, CatalogTable, std::less<>> tables_;
  std::multimap<std::string, CatalogFunction, std::less<>> functions_;
};

}  // namespace rtsync::server::rest
