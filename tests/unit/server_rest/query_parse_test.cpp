// The PostgREST grammar and SQL builder as pure functions: parsing, the catalog check, and the
// rule that no request text reaches SQL (values are parameters).
#include <gtest/gtest.h>

#include "rtsync/server/http/request_parsing.hpp"
#include "rtsync/server/pg/pg_errors.hpp"
#include "rtsync/server/rest/api_request.hpp"
#include "rtsync/server/rest/catalog.hpp"
#include "rtsync/server/rest/pg_errors.hpp"
#include "rtsync/server/rest/sql_builder.hpp"

namespace rtsync::server::rest {
namespace {

TEST(ApiRequestTest, UrlDecoding) {
  EXPECT_EQ(http::url_decode("a%20b+c"), "a b c");
  EXPECT_EQ(http::url_decode("a+b", false), "a+b");
  EXPECT_EQ(http::url_decode("%2B%2f"), "+/");
  EXPECT_FALSE(http::url_decode("%"));
  EXPECT_FALSE(http::url_decode("%2"));
  EXPECT_FALSE(http::url_decode("%zz"));
  auto pairs = split_query("a=1&&b=&c&d=x%3Dy");
  ASSERT_TRUE(pairs.ok());
  ASSERT_EQ(pairs->size(), 4u);
  EXPECT_EQ((*pairs)[0], (std::pair<std::string, std::string>{"a", "1"}));
  EXPECT_EQ((*pairs)[1].second, "");
  EXPECT_EQ((*pairs)[2], (std::pair<std::string, std::string>{"c", ""}));
  EXPECT_EQ((*pairs)[3].second, "x=y");
}

TEST(ApiRequestTest, Filters) {
  auto f = parse_filter("status", "eq.In Progress");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->op, FilterOp::eq);
  EXPECT_EQ(f->value, "In Progress");
  EXPECT_FALSE(f->negated);

  auto dots = parse_filter("v", "eq.a.b.c");
  ASSERT_TRUE(dots.ok());
  EXPECT_EQ(dots->value, "a.b.c");

  auto n = parse_filter("v", "not.neq.1");
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->negated);
  EXPECT_EQ(n->op, FilterOp::neq);

  auto like = parse_filter("v", "ilike.*ab*c");
  ASSERT_TRUE(like.ok());
  EXPECT_EQ(like->value, "%ab%c");

  for (auto [text, expected] :
       std::vector<std::pair<std::string, IsValue>>{{"is.null", IsValue::null},
                                                    {"is.NULL", IsValue::null},
                                                    {"is.not_null", IsValue::not_null},
                                                    {"is.true", IsValue::is_true},
                                                    {"is.false", IsValue::is_false},
                                                    {"is.unknown", IsValue::unknown}}) {
    auto is = parse_filter("v", text);
    ASSERT_TRUE(is.ok()) << text;
    EXPECT_EQ(is->is, expected) << text;
  }
  EXPECT_FALSE(parse_filter("v", "is.maybe").ok());
  EXPECT_FALSE(parse_filter("v", "eq").ok());
  EXPECT_FALSE(parse_filter("v", "fts.x").ok());
  EXPECT_FALSE(parse_filter("v", "like(any).{a,b}").ok());
  auto err = parse_filter("v", "zz.1");
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().status, 400);
  EXPECT_EQ(err.error().code, "PGRST100");
}

TEST(ApiRequestTest, InLists) {
  auto l = parse_in_list(R"((a,b c,"d,e","f\"g",""))");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l.value(), (std::vector<std::string>{"a", "b c", "d,e", "f\"g", ""}));
  auto empty = parse_in_list("()");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(parse_in_list("(a").ok());
  EXPECT_FALSE(parse_in_list("a,b").ok());
  EXPECT_FALSE(parse_in_list(R"(("a)").ok());
  EXPECT_FALSE(parse_in_list(R"(("a"b))").ok());
}

TEST(ApiRequestTest, SelectAndOrder) {
  auto s = parse_select(R"(*,k:task_type,"odd name",x:"y z")");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 4u);
  EXPECT_EQ((*s)[0], (SelectItem{"*", ""}));
  EXPECT_EQ((*s)[1], (SelectItem{"task_type", "k"}));
  EXPECT_EQ((*s)[2], (SelectItem{"odd name", ""}));
  EXPECT_EQ((*s)[3], (SelectItem{"y z", "x"}));
  EXPECT_EQ(parse_select("a,projects(*)").error().code, "PGRST200");
  EXPECT_FALSE(parse_select("a::text").ok());
  EXPECT_FALSE(parse_select("a->b").ok());
  EXPECT_FALSE(parse_select("a,,b").ok());

  auto o = parse_order(R"(a,b.desc,c.asc.nullsfirst,d.nullslast,"e.f".desc)");
  ASSERT_TRUE(o.ok());
  ASSERT_EQ(o->size(), 5u);
  EXPECT_EQ((*o)[0], (OrderTerm{"a", false, std::nullopt}));
  EXPECT_EQ((*o)[1], (OrderTerm{"b", true, std::nullopt}));
  EXPECT_EQ((*o)[2], (OrderTerm{"c", false, true}));
  EXPECT_EQ((*o)[3], (OrderTerm{"d", false, false}));
  EXPECT_EQ((*o)[4], (OrderTerm{"e.f", true, std::nullopt}));
  EXPECT_FALSE(parse_order("a.up").ok());
  EXPECT_FALSE(parse_order("a.desc.asc").ok());
  EXPECT_FALSE(parse_order("a.nullsfirst.desc").ok());
  EXPECT_FALSE(parse_order("").ok());
}

TEST(ApiRequestTest, QueryString) {
  auto q = parse_query_string(
      "select=id,status&project_id=eq.p1&status=in.(Queued,In+Progress)&order=created_at.desc"
      "&limit=50&offset=100&columns=%22a%22,%22b%22&on_conflict=id");
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->select.size(), 2u);
  ASSERT_EQ(q->filters.size(), 2u);
  EXPECT_EQ(q->filters[1].list, (std::vector<std::string>{"Queued", "In Progress"}));
  EXPECT_EQ(q->order.size(), 1u);
  EXPECT_EQ(q->limit, 50);
  EXPECT_EQ(q->offset, 100);
  EXPECT_EQ(*q->columns, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*q->on_conflict, (std::vector<std::string>{"id"}));

  EXPECT_FALSE(parse_query_string("limit=-1").ok());
  EXPECT_FALSE(parse_query_string("offset=1.5").ok());
  EXPECT_FALSE(parse_query_string("or=(a.eq.1)").ok());
  EXPECT_FALSE(parse_query_string("projects.name=eq.x").ok());
  EXPECT_FALSE(parse_query_string("status=eq.%G1").ok());
}

TEST(ApiRequestTest, PreferAndRange) {
  auto p = parse_prefer("return=representation, count=exact,missing=default");
  EXPECT_EQ(p.ret, Preferences::Return::representation);
  EXPECT_TRUE(p.count);
  EXPECT_TRUE(p.missing_default);
  EXPECT_EQ(parse_prefer("resolution=ignore-duplicates").resolution,
            Preferences::Resolution::ignore_duplicates);
  EXPECT_EQ(parse_prefer("").ret, Preferences::Return::minimal);
  EXPECT_TRUE(parse_prefer("count=planned").count);

  auto r = parse_range_header("0-24");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->from, 0);
  EXPECT_EQ(r->to, 24);
  auto open = parse_range_header("items=10-");
  ASSERT_TRUE(open);
  EXPECT_EQ(open->from, 10);
  EXPECT_FALSE(open->to);
  EXPECT_FALSE(parse_range_header("bytes"));
  EXPECT_FALSE(parse_range_header("a-b"));
}

TEST(ApiRequestTest, ErrorJsonShape) {
  ApiError e{400, "PGRST100", "bad", std::nullopt, std::string("h")};
  EXPECT_EQ(e.to_json(), R"({"code":"PGRST100","details":null,"hint":"h","message":"bad"})");
}

// A catalog as the migrations create it (subset).
Catalog test_catalog() {
  auto c = Catalog::from_json("public", R"({
    "tables": [{"name": "tasks", "kind": "r", "primary_key": ["id"], "columns": [
        {"name": "id", "type": "uuid", "nullable": false, "has_default": true},
        {"name": "status", "type": "task_status", "nullable": false, "has_default": true},
        {"name": "task_type", "type": "text", "nullable": false, "has_default": false},
        {"name": "created_at", "type": "timestamp with time zone", "nullable": false,
         "has_default": true}]}],
    "functions": [
      {"name": "f", "arg_names": ["a", "b", "out1"], "arg_modes": ["i", "i", "o"],
       "arg_types": ["uuid", "interval", "bigint"], "n_defaults": 1, "returns_set": false,
       "return_type": "bigint"},
      {"name": "g", "arg_names": ["ids"], "arg_modes": null, "arg_types": ["uuid[]"],
       "n_defaults": 0, "returns_set": true, "return_type": "record"},
      {"name": "h", "arg_names": ["x"], "arg_modes": null, "arg_types": ["text"],
       "n_defaults": 0, "returns_set": false, "return_type": "bigint"},
      {"name": "h", "arg_names": ["x"], "arg_modes": null, "arg_types": ["integer"],
       "n_defaults": 0, "returns_set": false, "return_type": "bigint"}]})");
  EXPECT_TRUE(c.ok());
  return std::move(c).value();
}

TEST(CatalogTest, TablesColumnsAndFunctionArguments) {
  const Catalog c = test_catalog();
  const CatalogTable* t = c.table("tasks");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->columns.size(), 4u);
  EXPECT_EQ(t->primary_key, (std::vector<std::string>{"id"}));
  EXPECT_TRUE(t->column("status"));
  EXPECT_FALSE(t->column("nope"));
  EXPECT_FALSE(c.table("nope"));
  auto fs = c.functions("f");
  ASSERT_EQ(fs.size(), 1u);
  ASSERT_EQ(fs[0]->args.size(), 2u);  // the OUT argument is not an input
  EXPECT_FALSE(fs[0]->args[0].has_default);
  EXPECT_TRUE(fs[0]->args[1].has_default);
  EXPECT_FALSE(Catalog::from_json("public", "{}").ok());
  EXPECT_FALSE(Catalog::from_json("public", "not json").ok());
}

// Every value must be a parameter: the SQL text never contains it.
void expect_not_in_sql(const pg::Statement& s, std::string_view value) {
  EXPECT_EQ(s.sql.find(value), std::string::npos) << s.sql;
}

TEST(SqlBuilderTest, ReadBindsEveryValue) {
  const Catalog c = test_catalog();
  ReadRequest r;
  r.table = c.table("tasks");
  auto q = parse_query_string(
      "select=id,status&status=in.(Queued,%22x'%22)&task_type=like.*'; DROP--&"
      "created_at=gte.2025-01-01&order=created_at.desc.nullslast&limit=50&offset=10");
  ASSERT_TRUE(q.ok());
  r.query = q.value();
  r.count = true;
  auto b = build_read(r);
  ASSERT_TRUE(b.ok()) << b.error().message;
  const auto& s = b->statement;
  expect_not_in_sql(s, "DROP");
  expect_not_in_sql(s, "Queued");
  expect_not_in_sql(s, "2025");
  expect_not_in_sql(s, "50");
  EXPECT_NE(s.sql.find(R"(_r."status" = ANY($1))"), std::string::npos) << s.sql;
  EXPECT_NE(s.sql.find(R"(ORDER BY _r."created_at" DESC NULLS LAST)"), std::string::npos);
  ASSERT_EQ(s.params.size(), 5u);
  EXPECT_EQ(*s.params[0], R"({"Queued","x'"})");
  EXPECT_EQ(*s.params[1], "%'; DROP--");
  EXPECT_EQ(*s.params[3], "50");
  EXPECT_EQ(*s.params[4], "10");
  EXPECT_EQ(b->offset, 10);
  // Plain columns: rows mode, the total counted by its own statement with the filters' values.
  ASSERT_TRUE(b->count);
  expect_not_in_sql(*b->count, "DROP");
  EXPECT_EQ(b->count->sql.rfind("SELECT count(*) FROM \"public\".\"tasks\" _r WHERE ", 0), 0u)
      << b->count->sql;
  EXPECT_EQ(b->count->sql.find("LIMIT"), std::string::npos);
  ASSERT_EQ(b->count->params.size(), 3u);
  EXPECT_EQ(*b->count->params[2], "2025-01-01");
}

TEST(SqlBuilderTest, PlainColumnsAreReadAsRows) {
  const Catalog c = test_catalog();
  ReadRequest r;
  r.table = c.table("tasks");
  auto b = build_read(r);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->count);
  // Every column in catalog order; strings quoted (and escaped, except uuids, which never need
  // it) here, the rest converted by to_json in SQL.
  ASSERT_EQ(b->columns.size(), 4u);
  EXPECT_EQ(b->columns[0].key, R"("id":)");
  EXPECT_EQ(b->columns[0].kind, JsonKind::quoted);
  EXPECT_EQ(b->columns[1].kind, JsonKind::verbatim);
  EXPECT_EQ(b->columns[2].kind, JsonKind::string);
  EXPECT_EQ(b->statement.sql, R"(SELECT _r."id", to_json(_r."status")::text, _r."task_type", )"
                              R"(to_json(_r."created_at")::text FROM "public"."tasks" _r)");
  EXPECT_EQ(b->statement.sql.find("json_agg"), std::string::npos);

  // Renamed columns and HEAD keep the aggregated statement.
  r.query.select = {SelectItem{"id", "k"}};
  EXPECT_TRUE(build_read(r)->columns.empty());
  r.query.select.clear();
  r.head = true;
  EXPECT_TRUE(build_read(r)->columns.empty());
}

TEST(SqlBuilderTest, AliasesAreBoundNotSpliced) {
  const Catalog c = test_catalog();
  ReadRequest r;
  r.table = c.table("tasks");
  r.query.select = {SelectItem{"id", R"(a"); DROP TABLE x; --)"}};
  auto b = build_read(r);
  ASSERT_TRUE(b.ok());
  expect_not_in_sql(b->statement, "DROP");
  EXPECT_EQ(*b->statement.params[0], R"(a"); DROP TABLE x; --)");
}

TEST(SqlBuilderTest, UnknownColumnsAreRefusedBeforeSql) {
  const Catalog c = test_catalog();
  for (auto qs : {"select=nope", "nope=eq.1", "order=nope", "select=k:nope"}) {
    ReadRequest r;
    r.table = c.table("tasks");
    r.query = parse_query_string(qs).value();
    auto b = build_read(r);
    ASSERT_FALSE(b.ok()) << qs;
    EXPECT_EQ(b.error().code, "42703");
    EXPECT_EQ(b.error().message, "column tasks.nope does not exist");
  }
}

TEST(SqlBuilderTest, PageIsQueryRangeIntersectedAndCapped) {
  const Catalog c = test_catalog();
  ReadRequest r;
  r.table = c.table("tasks");
  r.query.offset = 5;
  r.query.limit = 100;
  r.range = RangeHeader{10, 19};
  auto b = build_read(r);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->offset, 10);
  EXPECT_EQ(b->limit, 10);
  r.max_rows = 3;
  EXPECT_EQ(build_read(r)->limit, 3);
  r.range.reset();
  r.query = {};
  EXPECT_EQ(build_read(r)->limit, 3);
  r.max_rows.reset();
  EXPECT_FALSE(build_read(r)->limit);
}

TEST(SqlBuilderTest, WritesCheckBodyColumnsAndNeedFilters) {
  const Catalog c = test_catalog();
  WriteRequest w;
  w.table = c.table("tasks");
  w.body = json::parse(R"({"nope":1})");
  auto bad = build_write(w);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "PGRST204");

  w.body = json::parse(R"([{"task_type":"a"},{"task_type":"b","status":"Failed"}])");
  w.prefer.missing_default = true;
  auto grouped = build_write(w);
  ASSERT_TRUE(grouped.ok());
  EXPECT_EQ(grouped->statements.size(), 2u);  // one INSERT per set of present columns
  w.prefer.ret = Preferences::Return::representation;
  auto rep = build_write(w);
  ASSERT_TRUE(rep.ok());
  ASSERT_EQ(rep->statements.size(), 1u);
  expect_not_in_sql(rep->statements[0], "Failed");

  w.body = json::parse("3");
  EXPECT_EQ(build_write(w).error().code, "PGRST102");

  WriteRequest u;
  u.kind = WriteKind::update;
  u.table = c.table("tasks");
  u.body = json::parse(R"({"status":"Failed"})");
  EXPECT_EQ(build_write(u).error().code, "21000");
  u.query = parse_query_string("id=eq.x").value();
  auto ok = build_write(u);
  ASSERT_TRUE(ok.ok());
  expect_not_in_sql(ok->statements[0], "Failed");
  WriteRequest d;
  d.kind = WriteKind::remove;
  d.table = c.table("tasks");
  EXPECT_EQ(build_write(d).error().message, "DELETE requires a WHERE clause");
}

TEST(SqlBuilderTest, RpcResolutionAndBinding) {
  const Catalog c = test_catalog();
  auto args = json::parse(R"({"a":"00000000-0000-0000-0000-000000000000"})").as_object();
  auto f = resolve_function(c, "f", args);
  ASSERT_TRUE(f.ok());
  auto s = build_rpc(*f.value(), args, BodyShape::array);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->sql, R"(SELECT to_json(_f)::text AS body FROM "public"."f"("a" := $1::uuid) _f)");

  auto missing = resolve_function(c, "f", json::object{});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().status, 404);
  EXPECT_EQ(missing.error().code, "PGRST202");
  auto extra = resolve_function(c, "f", json::parse(R"({"a":1,"zz":2})").as_object());
  EXPECT_FALSE(extra.ok());
  auto ambiguous = resolve_function(c, "h", json::parse(R"({"x":1})").as_object());
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_EQ(ambiguous.error().code, "PGRST203");

  auto ids = json::parse(R"({"ids":["a","b\"c"]})").as_object();
  auto g = build_rpc(*resolve_function(c, "g", ids).value(), ids, BodyShape::array);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g->params[0], R"({"a","b\"c"})");
  EXPECT_NE(g->sql.find("json_agg(_f)"), std::string::npos);
}

TEST(SqlBuilderTest, JsonBinding) {
  EXPECT_FALSE(bind_json(json::value(nullptr)));
  EXPECT_EQ(*bind_json(json::value("x")), "x");
  EXPECT_EQ(*bind_json(json::value(3)), "3");
  EXPECT_EQ(*bind_json(json::value(true)), "true");
  EXPECT_EQ(*bind_json(json::parse(R"({"a":[1]})")), R"({"a":[1]})");
  EXPECT_EQ(*bind_json(json::parse("[1,2]")), "[1,2]");
  EXPECT_EQ(*bind_json(json::parse("[1,2]"), "integer[]"), R"({"1","2"})");
  EXPECT_EQ(singular_violation(
                R"(22P02 ERROR:  invalid input syntax for type integer: "rtsync:singular:2")"),
            2);
  EXPECT_FALSE(singular_violation("22P02 ERROR:  invalid input syntax"));
}

TEST(PgErrorsTest, SplitAndStatus) {
  Error e{Errc::remote,
          "23505 ERROR:  duplicate key value violates unique constraint \"users_email_key\"\n"
          "DETAIL:  Key (email)=(a@x) already exists.\nHINT:  h1\nCONTEXT:  internal"};
  auto api = api_error_from_pg(e, false);
  EXPECT_EQ(api.status, 409);
  EXPECT_EQ(api.code, "23505");
  EXPECT_EQ(api.message, "duplicate key value violates unique constraint \"users_email_key\"");
  EXPECT_EQ(api.details, "Key (email)=(a@x) already exists.");
  EXPECT_EQ(api.hint, "h1");

  EXPECT_EQ(pg::status_for_sqlstate("42501", true), 401);
  EXPECT_EQ(pg::status_for_sqlstate("42501", false), 403);
  EXPECT_EQ(pg::status_for_sqlstate("42P01", false), 404);
  EXPECT_EQ(pg::status_for_sqlstate("22P02", false), 400);
  EXPECT_EQ(pg::status_for_sqlstate("23503", false), 409);
  EXPECT_EQ(pg::status_for_sqlstate("53300", false), 503);
  EXPECT_EQ(pg::status_for_sqlstate("P0001", false), 400);
  EXPECT_EQ(pg::status_for_sqlstate("XX000", false), 500);

  auto lost = api_error_from_pg(Error{Errc::io, "PostgreSQL connection lost: eof"}, false);
  EXPECT_EQ(lost.status, 503);
}

}  // namespace
}  // namespace rtsync::server::rest
