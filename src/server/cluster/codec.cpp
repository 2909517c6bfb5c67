#include "rtsync/server/cluster/codec.hpp"

#include <charconv>

#include "rtsync/core/json.hpp"

namespace rtsync::server::cluster {

namespace {

std::string_view kind_code(ChangeKind k) {
  switch (k) {
    case ChangeKind::insert:
      return "I";
    case ChangeKind::update:
      return "U";
    case ChangeKind::remove:
      return "D";
  }
  return "I";
}

template <class T>
bool to_number(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

Error bad(std::string_view what) {
  return Error{Errc::invalid_argument, "cluster message: " + std::string(what)};
}

// Length-prefixed fields: "<decimal length>:<bytes>" one after another.
void put(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}

struct Fields {
  std::string_view rest;
  bool next(std::string_view& field) {
    auto colon = rest.find(':');
    if (colon == std::string_view::npos) return false;
    std::size_t n = 0;
    if (!to_number(rest.substr(0, colon), n) || n > rest.size() - colon - 1) return false;
    field = rest.substr(colon + 1, n);
    rest.remove_prefix(colon + 1 + n);
    return true;
  }
};

std::uint64_t u64(const json::object& o, std::string_view key, bool& ok) {
  auto* v = o.if_contains(key);
  if (!v) {
    ok = false;
    return 0;
  }
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<std::uint64_t>(v->get_int64());
  ok = false;
  return 0;
}

std::string str(const json::object& o, std::string_view key, bool& ok) {
  auto* v = o.if_contains(key);
  if (!v || !v->is_string()) {
    ok = false;
    return {};
  }
  return std::string(v->get_string());
}

}  // namespace

std::string to_string(EntryId id) {
  return std::to_string(id.lsn) + "-" + std::to_string(id.part);
}

Result<EntryId> parse_entry_id(std::string_view text) {
  auto dash = text.find('-');
  EntryId id;
  if (dash == std::string_view::npos || !to_number(text.substr(0, dash), id.lsn) ||
      !to_number(text.substr(dash + 1), id.part)) {
    return bad("entry id '" + std::string(text) + "'");
  }
  return id;
}

std::string encode_transaction(const Transaction& txn) {
  json::object o;
  o["x"] = txn.xid;
  o["c"] = txn.commit_lsn;
  o["e"] = txn.end_lsn;
  o["w"] = std::chrono::duration_cast<std::chrono::microseconds>(txn.commit_time.time_since_epoch())
               .count();
  o["ts"] = txn.commit_timestamp;
  o["p"] = txn.part;
  o["l"] = txn.last;
  o["b"] = txn.bytes;
  json::array rels;
  std::vector<const Relation*> seen;
  json::array changes;
  changes.reserve(txn.changes.size());
  for (const auto& c : txn.changes) {
    const Relation& r = *c.relation;
    if (std::find(seen.begin(), seen.end(), &r) == seen.end()) {
      seen.push_back(&r);
      json::array cols;
      for (const auto& col : r.columns) {
        cols.push_back(json::array{json::value(col.name), json::value(col.type_oid),
                                   json::value(col.type_name), json::value(col.is_key)});
      }
      rels.push_back(json::object{{"o", r.oid},
                                  {"s", r.schema},
                                  {"n", r.table},
                                  {"i", std::string(1, r.replica_identity)},
                                  {"c", std::move(cols)}});
    }
    json::object ch;
    ch["k"] = kind_code(c.kind);
    ch["o"] = r.oid;
    if (c.record) ch["n"] = *c.record;
    if (c.old_record) ch["d"] = *c.old_record;
    changes.push_back(std::move(ch));
  }
  o["r"] = std::move(rels);
  o["ch"] = std::move(changes);
  return json::serialize(o);
}

Result<std::shared_ptr<const Transaction>> decode_transaction(std::string_view text,
                                                              RelationCache& relations) {
  auto parsed = core::parse_json(text);
  if (!parsed.ok() || !parsed.value().is_object()) return bad("transaction is not a JSON object");
  const auto& o = parsed.value().get_object();
  bool ok = true;
  auto txn = std::make_shared<Transaction>();
  txn->xid = static_cast<std::uint32_t>(u64(o, "x", ok));
  txn->commit_lsn = u64(o, "c", ok);
  txn->end_lsn = u64(o, "e", ok);
  txn->commit_time = core::WallTime(std::chrono::microseconds(u64(o, "w", ok)));
  txn->commit_timestamp = str(o, "ts", ok);
  txn->part = static_cast<std::uint32_t>(u64(o, "p", ok));
  txn->bytes = u64(o, "b", ok);
  auto* last = o.if_contains("l");
  if (!ok || !last || !last->is_bool()) return bad("transaction fields");
  txn->last = last->get_bool();
  auto* rels = o.if_contains("r");
  auto* changes = o.if_contains("ch");
  if (!rels || !rels->is_array() || !changes || !changes->is_array())
    return bad("transaction body");
  std::unordered_map<std::uint32_t, std::shared_ptr<const Relation>> here;
  for (const auto& rv : rels->get_array()) {
    if (!rv.is_object()) return bad("relation");
    const auto& ro = rv.get_object();
    auto rel = std::make_shared<Relation>();
    rel->oid = static_cast<std::uint32_t>(u64(ro, "o", ok));
    rel->schema = str(ro, "s", ok);
    rel->table = str(ro, "n", ok);
    auto ident = str(ro, "i", ok);
    auto* cols = ro.if_contains("c");
    if (!ok || ident.size() != 1 || !cols || !cols->is_array()) return bad("relation fields");
    rel->replica_identity = ident[0];
    for (const auto& cv : cols->get_array()) {
      if (!cv.is_array() || cv.get_array().size() != 4) return bad("column");
      const auto& a = cv.get_array();
      if (!a[0].is_string() || !a[2].is_string() || !a[3].is_bool() || !a[1].is_number()) {
        return bad("column fields");
      }
      rel->columns.push_back(RelationColumn{std::string(a[0].get_string()),
                                            a[1].to_number<std::uint32_t>(),
                                            std::string(a[2].get_string()), a[3].get_bool()});
    }
    // One object per relation as long as it does not change: routing caches facts by relation.
    auto& cached = relations[rel->oid];
    if (!cached || cached->schema != rel->schema || cached->table != rel->table ||
        cached->replica_identity != rel->replica_identity ||
        cached->columns.size() != rel->columns.size() ||
        !std::equal(cached->columns.begin(), cached->columns.end(), rel->columns.begin(),
                    [](const RelationColumn& a, const RelationColumn& b) {
                      return a.name == b.name && a.type_oid == b.type_oid &&
                             a.type_name == b.type_name && a.is_key == b.is_key;
                    })) {
      cached = rel;
    }
    here[rel->oid] = cached;
  }
  txn->changes.reserve(changes->get_array().size());
  for (const auto& cv : changes->get_array()) {
    if (!cv.is_object()) return bad("change");
    const auto& co = cv.get_object();
    RowChange c;
    auto k = str(co, "k", ok);
    auto oid = static_cast<std::uint32_t>(u64(co, "o", ok));
    if (!ok) return bad("change fields");
    if (k == "I") {
      c.kind = ChangeKind::insert;
    } else if (k == "U") {
      c.kind = ChangeKind::update;
    } else if (k == "D") {
      c.kind = ChangeKind::remove;
    } else {
      return bad("change kind '" + k + "'");
    }
    auto rel = here.find(oid);
    if (rel == here.end()) return bad("change of an unknown relation");
    c.relation = rel->second;
    if (auto* n = co.if_contains("n")) {
      if (!n->is_object()) return bad("record");
      c.record = n->get_object();
    }
    if (auto* d = co.if_contains("d")) {
      if (!d->is_object()) return bad("old record");
      c.old_record = d->get_object();
    }
    txn->changes.push_back(std::move(c));
  }
  return std::shared_ptr<const Transaction>(std::move(txn));
}

std::string encode_broadcast(std::string_view node, const realtime::BroadcastMessage& msg) {
  std::string out;
  put(out, node);
  put(out, msg.topic);
  put(out, msg.is_private ? "1" : "0");
  put(out, msg.id);
  if (msg.binary) {
    const auto& b = *msg.binary;
    put(out, "b");
    put(out, b.topic);
    put(out, b.user_event);
    put(out, b.metadata);
    put(out, b.encoding == protocol::PayloadEncoding::json ? "j" : "b");
    put(out, b.payload);
  } else {
    put(out, "j");
    put(out, msg.json_payload ? json::serialize(*msg.json_payload) : "null");
  }
  return out;
}

Result<NodeBroadcast> decode_broadcast(std::string_view bytes) {
  Fields f{bytes};
  std::string_view node, topic, priv, id, kind;
  if (!f.next(node) || !f.next(topic) || !f.next(priv) || !f.next(id) || !f.next(kind)) {
    return bad("broadcast header");
  }
  NodeBroadcast out;
  out.node = std::string(node);
  out.message.topic = std::string(topic);
  out.message.is_private = priv == "1";
  out.message.id = std::string(id);
  if (kind == "b") {
    protocol::UserBroadcast b;
    std::string_view t, ev, meta, enc, payload;
    if (!f.next(t) || !f.next(ev) || !f.next(meta) || !f.next(enc) || !f.next(payload)) {
      return bad("binary broadcast");
    }
    b.topic = std::string(t);
    b.user_event = std::string(ev);
    b.metadata = std::string(meta);
    b.encoding = enc == "j" ? protocol::PayloadEncoding::json : protocol::PayloadEncoding::binary;
    b.payload = std::string(payload);
    out.message.binary = std::move(b);
  } else if (kind == "j") {
    std::string_view text;
    if (!f.next(text)) return bad("broadcast payload");
    auto v = core::parse_json(text);
    if (!v.ok()) return bad("broadcast payload is not JSON");
    out.message.json_payload = std::move(v.value());
  } else {
    return bad("broadcast kind");
  }
  if (!f.rest.empty()) return bad("broadcast trailing bytes");
  return out;
}

std::string encode_presence(const NodePresence& p) {
  json::object o;
  o["n"] = p.node;
  if (p.snapshot) o["s"] = true;
  if (p.request) o["q"] = true;
  json::array cs;
  cs.reserve(p.changes.size());
  for (const auto& c : p.changes) {
    cs.push_back(json::array{json::value(c.member_key), json::value(c.topic), json::value(c.join),
                             json::value(c.key), json::value(c.ref), json::value(c.text)});
  }
  o["c"] = std::move(cs);
  return json::serialize(o);
}

Result<NodePresence> decode_presence(std::string_view text) {
  auto parsed = core::parse_json(text);
  if (!parsed.ok() || !parsed.value().is_object()) return bad("presence is not a JSON object");
  const auto& o = parsed.value().get_object();
  bool ok = true;
  NodePresence p;
  p.node = str(o, "n", ok);
  if (auto* s = o.if_contains("s")) p.snapshot = s->is_bool() && s->get_bool();
  if (auto* q = o.if_contains("q")) p.request = q->is_bool() && q->get_bool();
  auto* cs = o.if_contains("c");
  if (!ok || !cs || !cs->is_array()) return bad("presence fields");
  for (const auto& cv : cs->get_array()) {
    if (!cv.is_array() || cv.get_array().size() != 6) return bad("presence change");
    const auto& a = cv.get_array();
    if (!a[0].is_string() || !a[1].is_string() || !a[2].is_bool() || !a[3].is_string() ||
        !a[4].is_string() || !a[5].is_string()) {
      return bad("presence change fields");
    }
    p.changes.push_back(
        realtime::PresenceChange{std::string(a[0].get_string()), std::string(a[1].get_string()),
                                 a[2].get_bool(), std::string(a[3].get_string()),
                                 std::string(a[4].get_string()), std::string(a[5].get_string())});
  }
  return p;
}

}  // namespace rtsync::server::cluster
