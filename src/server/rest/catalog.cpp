#include "rtsync/server/rest/catalog.hpp"

#include "rtsync/core/json.hpp"

namespace rtsync::server::rest {

const CatalogColumn* CatalogTable::column(std::string_view n) const {
  for (const auto& c : columns) {
    if (c.name == n) return &c;
  }
  return nullptr;
}

const char* Catalog::query_sql() {
  return R"sql(
SELECT json_build_object(
  'tables', coalesce((
    SELECT json_agg(json_build_object(
      'name', c.relname,
      'kind', c.relkind,
      'columns', (
        SELECT coalesce(json_agg(json_build_object(
                 'name', a.attname,
                 'type', format_type(a.atttypid, a.atttypmod),
                 'nullable', NOT a.attnotnull,
                 'has_default', a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '')
               ORDER BY a.attnum), '[]')
          FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'primary_key', (
        SELECT coalesce(json_agg(a.attname ORDER BY k.ord), '[]')
          FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = c.oid AND i.indisprimary)))
      FROM pg_class c
     WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')), '[]'),
  'functions', coalesce((
    SELECT json_agg(json_build_object(
      'name', p.proname,
      'arg_names', coalesce(to_json(p.proargnames), '[]'),
      'arg_modes', to_json(p.proargmodes),
      'arg_types', (
        SELECT coalesce(json_agg(format_type(u.t, NULL) ORDER BY u.o), '[]')
          FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) WITH ORDINALITY AS u(t, o)),
      'n_defaults', p.pronargdefaults,
      'returns_set', p.proretset,
      'return_type', format_type(p.prorettype, NULL)))
      FROM pg_proc p
     WHERE p.pronamespace = $1::regnamespace AND p.prokind = 'f'), '[]'))::text
)sql";
}

Result<Catalog> Catalog::from_json(std::string_view schema, std::string_view document) {
  auto parsed = core::parse_json(document);
  if (!parsed) return parsed.error();
  const json::value& doc = parsed.value();
  const json::array* tables = core::find_array(doc, "tables");
  const json::array* functions = core::find_array(doc, "functions");
  if (!tables || !functions) {
    return make_error(Errc::invalid_argument, "catalog document lacks tables/functions");
  }
  Catalog cat;
  cat.schema_ = std::string(schema);
  auto str = [](const json::value& v, std::string_view key) {
    auto s = core::find_string(v, key);
    return s ? std::string(*s) : std::string();
  };
  for (const auto& t : *tables) {
    CatalogTable table;
    table.schema = cat.schema_;
    table.name = str(t, "name");
    const std::string kind = str(t, "kind");
    table.kind = kind.empty() ? 'r' : kind[0];
    if (const auto* cols = core::find_array(t, "columns")) {
      for (const auto& c : *cols) {
        table.columns.push_back(CatalogColumn{str(c, "name"), str(c, "type"),
                                              core::find_bool(c, "nullable").value_or(true),
                                              core::find_bool(c, "has_default").value_or(false)});
      }
    }
    if (const auto* pk = core::find_array(t, "primary_key")) {
      for (const auto& k : *pk) {
        if (k.is_string()) table.primary_key.emplace_back(k.as_string());
      }
    }
    std::string key = table.name;
    cat.tables_.emplace(std::move(key), std::move(table));
  }
  for (const auto& f : *functions) {
    CatalogFunction fn;
    fn.schema = cat.schema_;
    fn.name = str(f, "name");
    fn.returns_set = core::find_bool(f, "returns_set").value_or(false);
    fn.return_type = str(f, "return_type");
    const json::array* names = core::find_array(f, "arg_names");
    const json::array* modes = core::find_array(f, "arg_modes");  // null: all inputs
    const json::array* types = core::find_array(f, "arg_types");
    const std::size_t n = types ? types->size() : 0;
    for (std::size_t i = 0; i < n; ++i) {
      std::string mode = "i";
      if (modes && i < modes->size() && (*modes)[i].is_string()) {
        mode = std::string((*modes)[i].as_string());
      }
      if (mode != "i" && mode != "b" && mode != "v") continue;  // OUT / TABLE columns
      CatalogArg arg;
      if (names && i < names->size() && (*names)[i].is_string()) {
        arg.name = std::string((*names)[i].as_string());
      }
      if ((*types)[i].is_string()) arg.type = std::string((*types)[i].as_string());
      fn.args.push_back(std::move(arg));
    }
    const auto n_defaults = static_cast<std::size_t>(core::find_int(f, "n_defaults").value_or(0));
    for (std::size_t i = 0; i < fn.args.size(); ++i) {
      fn.args[i].has_default = i + n_defaults >= fn.args.size();
    }
    std::string key = fn.name;
    cat.functions_.emplace(std::move(key), std::move(fn));
  }
  return cat;
}

const CatalogTable* Catalog::table(std::string_view name) const {
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : &it->second;
}

std::vector<const CatalogFunction*> Catalog::functions(std::string_view name) const {
  std::vector<const CatalogFunction*> out;
  auto [lo, hi] = functions_.equal_range(name);
  for (auto it = lo; it != hi; ++it)
    out.push_back(&it->second);
  return out;
}

std::vector<std::string> Catalog::table_names() const {
  std::vector<std::string> out;
  out.reserve(tables_.size());
  for (const auto& [name, t] : tables_)
    out.push_back(name);
  return out;
}

}  // namespace rtsync::server::rest
