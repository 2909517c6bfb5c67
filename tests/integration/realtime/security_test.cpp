// Cross-tenant isolation of postgres_changes, as an attacker holding a valid key for another
// tenant would probe it: throwaway PostgreSQL, the server on port 0, real websockets.
//
// The rule every test here encodes: each row image the server delivers is authorized against the
// table's RLS policies evaluated on THAT image (the committed version decoded from the WAL), under
// the subscriber's role and claims — never on the row as it is in the table when the check runs.
//   INSERT/UPDATE  delivered iff the subscriber may see the new image (and its filter matches it);
//   UPDATE old     the full old image only if the subscriber could see it, else the key only;
//   DELETE (FULL)  only to subscribers that could see the old image, with the full old row;
//                  filters are evaluated for those subscribers only, so they are no oracle;
//   DELETE (no FULL identity on an RLS table) unfiltered subscribers whose role may SELECT the
//                  table get the key only; filtered subscribers get nothing.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "realtime_helpers.hpp"
#include "rtsync/server/pg/connection.hpp"

namespace rtsync::testkit {
namespace {

const std::string kAlice = "11111111-1111-1111-1111-111111111111";
const std::string kBob = "22222222-2222-2222-2222-222222222222";

// "TYPE new={…} old={…}" — what a subscriber was shown, comparable as a whole.
std::string show(const protocol::ChangeEvent& e) {
  std::string out = e.data.type;
  if (e.data.record) out += " new=" + json::serialize(*e.data.record);
  if (e.data.old_record) out += " old=" + json::serialize(*e.data.old_record);
  return out;
}

std::vector<std::string> shown(const std::vector<protocol::ChangeEvent>& evs) {
  std::vector<std::string> out;
  for (const auto& e : evs)
    out.push_back(show(e));
  return out;
}

// The id of the row an event is about (record for INSERT/UPDATE, old_record for DELETE).
std::int64_t row_id(const protocol::ChangeEvent& e) {
  return id_of(e.data.record ? *e.data.record : *e.data.old_record);
}

// Collects from every client until `done(collected)` holds or `timeout`, then `settle` more so
// that an event that should not come has had its chance to.
void collect_until(std::vector<std::pair<WsClient*, ChangesByTopic*>> clients,
                   const std::function<bool()>& done, std::chrono::milliseconds timeout,
                   std::chrono::milliseconds settle = 1500ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    for (auto& [c, into] : clients)
      drain_into(*c, *into, 200ms);
  }
  for (auto& [c, into] : clients)
    drain_into(*c, *into, settle);
}

bool has_row(const std::vector<protocol::ChangeEvent>& evs, std::string_view type,
             std::int64_t id) {
  for (const auto& e : evs) {
    if (e.data.type == type && row_id(e) == id) return true;
  }
  return false;
}

TEST(RealtimeSecurity, RlsIsolatesTwoUsersIncludingDeletes) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.notes (id serial primary key, owner uuid not null, body text);
    alter table public.notes replica identity full;
    alter table public.notes enable row level security;
    create policy own_notes on public.notes for select to authenticated using (owner = auth.uid());
    grant select on public.notes to authenticated;
    alter publication supabase_realtime add table public.notes;)"));
  auto a = connect(*s, s->anon_key());
  auto b = connect(*s, s->anon_key());
  ASSERT_TRUE(a && b);
  auto alice_key = s->key("authenticated", 1h, kAlice);
  auto bob_key = s->key("authenticated", 1h, kBob);
  ASSERT_TRUE(a->join_pg("realtime:mine", json::array{binding("*", "notes")}, alice_key));
  ASSERT_TRUE(a->join_pg("realtime:mine-filtered",
                         json::array{binding("*", "notes", "owner=eq." + kAlice)}, alice_key));
  ASSERT_TRUE(b->join_pg("realtime:mine", json::array{binding("*", "notes")}, bob_key));
  ASSERT_TRUE(b->join_pg("realtime:spy", json::array{binding("*", "notes", "owner=eq." + kAlice)},
                         bob_key));

  ChangesByTopic ga, gb;
  REQUIRE_OK(s->sql("insert into notes (owner, body) values ('" + kAlice + "', 'a-secret'), ('" +
                    kBob + "', 'b-secret');"));
  // Each step waits for the previous one's delivery: this test is about who sees which image;
  // InsertImageIsAuthorizedAsCommittedNotAsItIsNow is about the race.
  drain_into(*a, ga, 1500ms);
  REQUIRE_OK(s->sql("update notes set body = 'a-secret-2' where owner = '" + kAlice + "';"));
  drain_into(*a, ga, 1500ms);
  REQUIRE_OK(s->sql("delete from notes where owner = '" + kAlice + "';"));
  drain_into(*a, ga, 1500ms);
  drain_into(*b, gb, 1000ms);

  using V = std::vector<std::string>;
  const std::string a1 = R"({"id":1,"owner":")" + kAlice + R"(","body":"a-secret"})";
  const std::string a2 = R"({"id":1,"owner":")" + kAlice + R"(","body":"a-secret-2"})";
  const std::string b1 = R"({"id":2,"owner":")" + kBob + R"(","body":"b-secret"})";
  // Alice could see every image of her row: her DELETE carries the whole old row.
  const V alice_sees{"INSERT new=" + a1, "UPDATE new=" + a2 + " old=" + a1, "DELETE old=" + a2};
  EXPECT_EQ(shown(ga["realtime:mine"]), alice_sees);
  EXPECT_EQ(shown(ga["realtime:mine-filtered"]), alice_sees);
  // Bob never could see Alice's row: not even that it was deleted, nor its key.
  EXPECT_EQ(shown(gb["realtime:mine"]), (V{"INSERT new=" + b1}));
  // Bob's filter names Alice: RLS keeps every image of her row from him, DELETE included.
  EXPECT_EQ(shown(gb["realtime:spy"]), V{});
  // RLS checks ran per class and transaction, not per subscriber.
  auto queries = s->server().metrics_text();
  EXPECT_NE(queries.find("rtsync_authorization_queries_total"), std::string::npos);
}

TEST(RealtimeSecurity, UpdateMovingARowToAnotherTenantSendsOnlyTheKeyAsOldRecord) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.docs (id int primary key, owner uuid not null, shared bool not null,
                              secret text);
    alter table public.docs replica identity full;
    alter table public.docs enable row level security;
    create policy see_docs on public.docs for select to authenticated
      using (owner = auth.uid() or shared);
    grant select on public.docs to authenticated;
    create table public.docs_default (id int primary key, owner uuid not null, secret text);
    alter table public.docs_default enable row level security;
    create policy own_docs on public.docs_default for select to authenticated
      using (owner = auth.uid());
    grant select on public.docs_default to authenticated;
    alter publication supabase_realtime add table public.docs, public.docs_default;)"));
  REQUIRE_OK(s->sql("insert into docs values (1, '" + kAlice + "', false, 'a-private'), (2, '" +
                    kAlice + "', true, 'shared-1'), (3, '" + kAlice +
                    "', false, 'a-draft'), (4, '" + kAlice + "', true, 'was-shared');" +
                    "insert into docs_default values (7, '" + kAlice + "', 'a-1');"));
  auto a = connect(*s, s->anon_key());
  auto b = connect(*s, s->anon_key());
  ASSERT_TRUE(a && b);
  const auto alice_key = s->key("authenticated", 1h, kAlice);
  const auto bob_key = s->key("authenticated", 1h, kBob);
  for (auto& [c, key] : {std::pair{a.get(), alice_key}, std::pair{b.get(), bob_key}}) {
    ASSERT_TRUE(c->join_pg("realtime:docs", json::array{binding("UPDATE", "docs")}, key));
    ASSERT_TRUE(
        c->join_pg("realtime:docs-default", json::array{binding("UPDATE", "docs_default")}, key));
  }

  // One transaction per step, in this order.
  REQUIRE_OK(s->sql("update docs set owner = '" + kBob + "', secret = 'b-new' where id = 1;"));
  REQUIRE_OK(s->sql("update docs set secret = 'shared-2' where id = 2;"));
  REQUIRE_OK(s->sql("update docs set shared = true where id = 3;"));
  REQUIRE_OK(s->sql("update docs set shared = false, secret = 'private-now' where id = 4;"));
  REQUIRE_OK(s->sql("update docs_default set secret = 'a-2' where id = 7;"));
  REQUIRE_OK(
      s->sql("update docs_default set owner = '" + kBob + "', secret = 'b-1' where id = 7;"));
  ChangesByTopic ga, gb;
  // Bob sees the last step (his own row now); everything before it was delivered by then.
  collect_until(
      {{a.get(), &ga}, {b.get(), &gb}},
      [&] { return has_row(gb["realtime:docs-default"], "UPDATE", 7); }, 10s);

  auto doc = [](int id, const std::string& owner, bool shared, const std::string& secret) {
    return R"({"id":)" + std::to_string(id) + R"(,"owner":")" + owner + R"(","shared":)" +
           (shared ? "true" : "false") + R"(,"secret":")" + secret + R"("})";
  };
  using V = std::vector<std::string>;
  // 1: Alice's private row handed to Bob. Bob sees the new row and only the key of the old one
  //    (it was Alice's: its owner and secret are not his to see); Alice no longer sees the row.
  // 2: a row both see before and after: both get the whole old row.
  // 3: a row that becomes visible to Bob: the key as his old_record, the whole old row for Alice.
  // 4: a row that stops being visible to Bob: nothing for him.
  EXPECT_EQ(shown(gb["realtime:docs"]),
            (V{"UPDATE new=" + doc(1, kBob, false, "b-new") + R"( old={"id":1})",
               "UPDATE new=" + doc(2, kAlice, true, "shared-2") +
                   " old=" + doc(2, kAlice, true, "shared-1"),
               "UPDATE new=" + doc(3, kAlice, true, "a-draft") + R"( old={"id":3})"}));
  EXPECT_EQ(shown(ga["realtime:docs"]), (V{"UPDATE new=" + doc(2, kAlice, true, "shared-2") +
                                               " old=" + doc(2, kAlice, true, "shared-1"),
                                           "UPDATE new=" + doc(3, kAlice, true, "a-draft") +
                                               " old=" + doc(3, kAlice, false, "a-draft"),
                                           "UPDATE new=" + doc(4, kAlice, false, "private-now") +
                                               " old=" + doc(4, kAlice, true, "was-shared")}));
  // Default replica identity, key unchanged: PostgreSQL logs no old row; old_record is the key.
  EXPECT_EQ(shown(ga["realtime:docs-default"]),
            (V{R"(UPDATE new={"id":7,"owner":")" + kAlice + R"(","secret":"a-2"} old={"id":7})"}));
  EXPECT_EQ(shown(gb["realtime:docs-default"]),
            (V{R"(UPDATE new={"id":7,"owner":")" + kBob + R"(","secret":"b-1"} old={"id":7})"}));
}

TEST(RealtimeSecurity, DeleteFiltersAreNoOracle) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.ledger (id int primary key, owner uuid not null, amount int not null,
                                note text);
    alter table public.ledger replica identity full;
    alter table public.ledger enable row level security;
    create policy own_ledger on public.ledger for select to authenticated
      using (owner = auth.uid());
    grant select on public.ledger to anon, authenticated;
    create table public.ledger_default (id int primary key, owner uuid not null,
                                        amount int not null, note text);
    alter table public.ledger_default enable row level security;
    create policy own_ledger_default on public.ledger_default for select to authenticated
      using (owner = auth.uid());
    grant select on public.ledger_default to authenticated;
    alter publication supabase_realtime add table public.ledger, public.ledger_default;)"));
  REQUIRE_OK(s->sql("insert into ledger values (1, '" + kAlice + "', 500, 'a-private'), (2, '" +
                    kBob + "', 70, 'b-own');" + "insert into ledger_default values (1, '" + kAlice +
                    "', 500, 'a-private');"));
  auto a = connect(*s, s->anon_key());
  auto b = connect(*s, s->anon_key());
  auto anon = connect(*s, s->anon_key());
  ASSERT_TRUE(a && b && anon);
  const auto alice_key = s->key("authenticated", 1h, kAlice);
  const auto bob_key = s->key("authenticated", 1h, kBob);
  auto del = [](const std::string& table, const std::string& filter = "") {
    return json::array{binding("DELETE", table, filter)};
  };
  // REPLICA IDENTITY FULL.
  ASSERT_TRUE(a->join_pg("realtime:a-all", del("ledger"), alice_key));
  ASSERT_TRUE(a->join_pg("realtime:a-eq", del("ledger", "amount=eq.500"), alice_key));
  ASSERT_TRUE(a->join_pg("realtime:a-miss", del("ledger", "amount=eq.1"), alice_key));
  ASSERT_TRUE(b->join_pg("realtime:b-all", del("ledger"), bob_key));
  ASSERT_TRUE(b->join_pg("realtime:b-eq", del("ledger", "amount=eq.500"), bob_key));
  ASSERT_TRUE(b->join_pg("realtime:b-gt", del("ledger", "amount=gt.499"), bob_key));
  ASSERT_TRUE(b->join_pg("realtime:b-lt", del("ledger", "amount=lt.501"), bob_key));
  ASSERT_TRUE(b->join_pg("realtime:b-owner", del("ledger", "owner=eq." + kAlice), bob_key));
  ASSERT_TRUE(anon->join_pg("realtime:anon-all", del("ledger")));
  ASSERT_TRUE(anon->join_pg("realtime:anon-eq", del("ledger", "amount=eq.500")));
  // Default replica identity (the old row is the key only: who could see it is unknowable).
  ASSERT_TRUE(a->join_pg("realtime:d-a-all", del("ledger_default"), alice_key));
  ASSERT_TRUE(a->join_pg("realtime:d-a-eq", del("ledger_default", "amount=eq.500"), alice_key));
  ASSERT_TRUE(b->join_pg("realtime:d-b-all", del("ledger_default"), bob_key));
  ASSERT_TRUE(b->join_pg("realtime:d-b-eq", del("ledger_default", "amount=eq.500"), bob_key));
  ASSERT_TRUE(b->join_pg("realtime:d-b-id", del("ledger_default", "id=eq.1"), bob_key));
  // anon may not SELECT ledger_default at all.
  ASSERT_TRUE(anon->join_pg("realtime:d-anon-all", del("ledger_default")));

  REQUIRE_OK(s->sql("delete from ledger where id = 1;"));
  REQUIRE_OK(s->sql("delete from ledger_default where id = 1;"));
  // Bob's own row last: once he has it, every earlier DELETE was delivered.
  REQUIRE_OK(s->sql("delete from ledger where id = 2;"));
  ChangesByTopic ga, gb, gn;
  collect_until(
      {{a.get(), &ga}, {b.get(), &gb}, {anon.get(), &gn}},
      [&] { return has_row(gb["realtime:b-all"], "DELETE", 2); }, 10s);

  using V = std::vector<std::string>;
  const std::string alice_row =
      R"({"id":1,"owner":")" + kAlice + R"(","amount":500,"note":"a-private"})";
  const std::string bob_row = R"({"id":2,"owner":")" + kBob + R"(","amount":70,"note":"b-own"})";
  // Alice could see her row: the DELETE with the whole old row, filtered or not.
  EXPECT_EQ(shown(ga["realtime:a-all"]), (V{"DELETE old=" + alice_row}));
  EXPECT_EQ(shown(ga["realtime:a-eq"]), (V{"DELETE old=" + alice_row}));
  EXPECT_EQ(shown(ga["realtime:a-miss"]), V{});
  // Bob could not: none of his filters tells him anything about it (a delivery on `eq.500` but
  // not on `eq.499` would reveal the amount). His own row's DELETE passes his filters as usual.
  EXPECT_EQ(shown(gb["realtime:b-all"]), (V{"DELETE old=" + bob_row}));
  EXPECT_EQ(shown(gb["realtime:b-eq"]), V{});
  EXPECT_EQ(shown(gb["realtime:b-gt"]), V{});
  EXPECT_EQ(shown(gb["realtime:b-lt"]), (V{"DELETE old=" + bob_row}));
  EXPECT_EQ(shown(gb["realtime:b-owner"]), V{});
  // anon may SELECT the table but no policy lets it see a row.
  EXPECT_EQ(shown(gn["realtime:anon-all"]), V{});
  EXPECT_EQ(shown(gn["realtime:anon-eq"]), V{});

  // Without the old row, visibility is unknowable: unfiltered subscribers whose role may SELECT
  // the table get the key only; filtered ones get nothing; a role without SELECT nothing.
  EXPECT_EQ(shown(ga["realtime:d-a-all"]), (V{R"(DELETE old={"id":1})"}));
  EXPECT_EQ(shown(gb["realtime:d-b-all"]), (V{R"(DELETE old={"id":1})"}));
  EXPECT_EQ(shown(ga["realtime:d-a-eq"]), V{});
  EXPECT_EQ(shown(gb["realtime:d-b-eq"]), V{});
  EXPECT_EQ(shown(gb["realtime:d-b-id"]), V{});
  EXPECT_EQ(shown(gn["realtime:d-anon-all"]), V{});
}

TEST(RealtimeSecurity, InsertImageIsAuthorizedAsCommittedNotAsItIsNow) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.tasks (id int primary key, owner uuid not null, title text);
    alter table public.tasks replica identity full;
    alter table public.tasks enable row level security;
    create policy own_tasks on public.tasks for select to authenticated using (owner = auth.uid());
    grant select on public.tasks to authenticated;
    alter publication supabase_realtime add table public.tasks;)"));
  auto a = connect(*s, s->anon_key());
  auto b = connect(*s, s->anon_key());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->join_pg("realtime:tasks", json::array{binding("*", "tasks")},
                         s->key("authenticated", 1h, kAlice)));
  ASSERT_TRUE(b->join_pg("realtime:tasks", json::array{binding("*", "tasks")},
                         s->key("authenticated", 1h, kBob)));

  // Each row is committed as Alice's and, in the next transaction, handed to Bob without waiting:
  // when the server checks the INSERT, the row in the table is usually already Bob's.
  constexpr int kRows = 25;
  auto conn = server::pg::Connection::open(s->conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error().describe();
  for (int i = 1; i <= kRows; ++i) {
    const auto id = std::to_string(i);
    REQUIRE_OK(
        conn.value().exec("insert into tasks values ($1, $2, $3)", {id, kAlice, "a-title-" + id}));
    REQUIRE_OK(conn.value().exec("update tasks set owner = $2, title = $3 where id = $1",
                                 {id, kBob, "b-title-" + id}));
  }
  ChangesByTopic ga, gb;
  collect_until(
      {{a.get(), &ga}, {b.get(), &gb}},
      [&] { return has_row(gb["realtime:tasks"], "UPDATE", kRows); }, 20s);

  std::vector<std::int64_t> all(kRows);
  for (int i = 0; i < kRows; ++i)
    all[i] = i + 1;
  auto row = [](std::int64_t id, const std::string& owner, const char* prefix) {
    return R"({"id":)" + std::to_string(id) + R"(,"owner":")" + owner + R"(","title":")" + prefix +
           std::to_string(id) + R"("})";
  };
  // Alice: every INSERT, as she committed it, in commit order; nothing of what became Bob's.
  std::vector<std::int64_t> a_inserts;
  std::vector<std::string> a_other;
  for (const auto& e : ga["realtime:tasks"]) {
    if (show(e) == "INSERT new=" + row(row_id(e), kAlice, "a-title-"))
      a_inserts.push_back(row_id(e));
    else
      a_other.push_back(show(e));
  }
  EXPECT_EQ(a_inserts, all) << "Alice's INSERTs (ids) — her own rows as committed";
  EXPECT_TRUE(a_other.empty()) << a_other.size() << " other events for Alice, first: "
                               << (a_other.empty() ? "" : a_other[0]);
  // Bob: every UPDATE with his data and only the key of Alice's old row; never an INSERT, never
  // anything of Alice's.
  std::vector<std::int64_t> b_updates;
  std::vector<std::string> b_other, b_leaks;
  for (const auto& e : gb["realtime:tasks"]) {
    const std::string seen = show(e);
    if (seen.find(kAlice) != std::string::npos || seen.find("a-title") != std::string::npos)
      b_leaks.push_back(seen);
    const std::int64_t id = row_id(e);
    if (seen ==
        "UPDATE new=" + row(id, kBob, "b-title-") + R"( old={"id":)" + std::to_string(id) + "}")
      b_updates.push_back(id);
    else
      b_other.push_back(seen);
  }
  EXPECT_TRUE(b_leaks.empty()) << b_leaks.size() << " of Bob's events show Alice's data, first: "
                               << (b_leaks.empty() ? "" : b_leaks[0]);
  EXPECT_EQ(b_updates, all) << "Bob's UPDATEs (ids) — his data, key-only old_record";
  EXPECT_TRUE(b_other.empty()) << b_other.size() << " other events for Bob, first: "
                               << (b_other.empty() ? "" : b_other[0]);
}

TEST(RealtimeSecurity, FilterNamingAnotherTenantsValueNeverDeliversTheirRow) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.vault (id int primary key, owner uuid not null, secret text not null,
                               note text);
    alter table public.vault replica identity full;
    alter table public.vault enable row level security;
    create policy own_vault on public.vault for select to authenticated using (owner = auth.uid());
    grant select on public.vault to authenticated;
    alter publication supabase_realtime add table public.vault;)"));
  auto a = connect(*s, s->anon_key());
  auto b = connect(*s, s->anon_key());
  ASSERT_TRUE(a && b);
  const auto alice_key = s->key("authenticated", 1h, kAlice);
  const auto bob_key = s->key("authenticated", 1h, kBob);
  auto all = [](const std::string& filter) { return json::array{binding("*", "vault", filter)}; };
  // Bob guesses Alice's id and her secret (exact value and a range).
  ASSERT_TRUE(b->join_pg("realtime:b-owner", all("owner=eq." + kAlice), bob_key));
  ASSERT_TRUE(b->join_pg("realtime:b-secret", all("secret=eq.hunter2"), bob_key));
  ASSERT_TRUE(b->join_pg("realtime:b-range", all("secret=gte.h"), bob_key));
  // The same filters for Alice: they do match her rows.
  ASSERT_TRUE(a->join_pg("realtime:a-owner", all("owner=eq." + kAlice), alice_key));
  ASSERT_TRUE(a->join_pg("realtime:a-secret", all("secret=eq.hunter2"), alice_key));

  auto conn = server::pg::Connection::open(s->conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error().describe();
  auto& db = conn.value();
  // A row that stays Alice's.
  REQUIRE_OK(db.exec("insert into vault values (1, $1, 'hunter2', 'a-note')", {kAlice}));
  REQUIRE_OK(db.exec("update vault set note = 'a-note-2' where id = 1"));
  // Rows committed as Alice's and handed to Bob in the next transaction, without waiting.
  constexpr int kRaced = 10;
  for (int i = 2; i < 2 + kRaced; ++i) {
    const auto id = std::to_string(i);
    REQUIRE_OK(db.exec("insert into vault values ($1, $2, 'hunter2', 'a-note')", {id, kAlice}));
    REQUIRE_OK(
        db.exec("update vault set owner = $2, secret = 'b-own', note = 'b-note' where id = $1",
                {id, kBob}));
  }
  // Alice's last row: once she has it, everything before it was delivered.
  REQUIRE_OK(db.exec("insert into vault values (100, $1, 'hunter2', 'a-last')", {kAlice}));
  ChangesByTopic ga, gb;
  collect_until(
      {{a.get(), &ga}, {b.get(), &gb}},
      [&] { return has_row(ga["realtime:a-owner"], "INSERT", 100); }, 15s);

  for (const char* topic : {"realtime:b-owner", "realtime:b-secret", "realtime:b-range"}) {
    const auto& got = gb[topic];
    EXPECT_TRUE(got.empty()) << topic << ": " << got.size()
                             << " of Alice's rows reached Bob, first: "
                             << (got.empty() ? "" : show(got[0]));
  }
  // Alice's filters: her INSERT and UPDATE of row 1, the INSERT of every raced row (it was hers
  // as committed; its UPDATE is Bob's), then row 100.
  std::vector<std::string> expected{"I1", "U1"};
  for (int i = 2; i < 2 + kRaced; ++i)
    expected.push_back("I" + std::to_string(i));
  expected.push_back("I100");
  for (const char* topic : {"realtime:a-owner", "realtime:a-secret"}) {
    std::vector<std::string> got;
    for (const auto& e : ga[topic])
      got.push_back(e.data.type.substr(0, 1) + std::to_string(row_id(e)));
    EXPECT_EQ(got, expected) << topic;
  }
}

}  // namespace
}  // namespace rtsync::testkit
