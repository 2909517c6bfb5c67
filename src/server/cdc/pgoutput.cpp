#include "rtsync/server/cdc/pgoutput.hpp"

#include <fmt/format.h>

#include <cstring>

#include "rtsync/core/log.hpp"
#include "rtsync/server/cdc/names.hpp"

namespace rtsync::server::cdc {

namespace {

constexpr std::int64_t kPgEpochOffsetSeconds = 946684800;  // 1970-01-01 → 2000-01-01

struct TupleValue {
  char kind = 'n';  // 'n' null, 'u' unchanged TOAST, 't' text
  std::string_view text;
};

}  // namespace

core::WallTime pg_time_to_wall(std::int64_t micros) noexcept {
  return core::WallTime(std::chrono::duration_cast<core::WallTime::duration>(
      std::chrono::seconds(kPgEpochOffsetSeconds) + std::chrono::microseconds(micros)));
}

std::int64_t wall_to_pg_time(core::WallTime t) noexcept {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
  return us.count() - kPgEpochOffsetSeconds * 1'000'000;
}

// Big-endian cursor over one message; every read checks the remaining length.
class PgOutputDecoder::Reader {
 public:
  explicit Reader(std::string_view data) : d_(data) {}

  bool u8(std::uint8_t& v) {
    if (left() < 1) return false;
    v = static_cast<std::uint8_t>(d_[i_++]);
    return true;
  }
  bool u16(std::uint16_t& v) {
    if (left() < 2) return false;
    v = static_cast<std::uint16_t>((byte(0) << 8) | byte(1));
    i_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (left() < 4) return false;
    v = (static_cast<std::uint32_t>(byte(0)) << 24) | (static_cast<std::uint32_t>(byte(1)) << 16) |
        (static_cast<std::uint32_t>(byte(2)) << 8) | static_cast<std::uint32_t>(byte(3));
    i_ += 4;
    return true;
  }
  bool u64(std::uint64_t& v) {
    std::uint32_t hi = 0, lo = 0;
    if (!u32(hi) || !u32(lo)) return false;
    v = (static_cast<std::uint64_t>(hi) << 32) | lo;
    return true;
  }
  bool i64(std::int64_t& v) {
    std::uint64_t u = 0;
    if (!u64(u)) return false;
    v = static_cast<std::int64_t>(u);
    return true;
  }
  bool cstr(std::string_view& v) {
    const void* nul = std::memchr(d_.data() + i_, '\0', left());
    if (!nul) return false;
    const auto end = static_cast<std::size_t>(static_cast<const char*>(nul) - d_.data());
    v = d_.substr(i_, end - i_);
    i_ = end + 1;
    return true;
  }
  bool bytes(std::size_t n, std::string_view& v) {
    if (left() < n) return false;
    v = d_.substr(i_, n);
    i_ += n;
    return true;
  }
  bool peek(char& c) const {
    if (left() < 1) return false;
    c = d_[i_];
    return true;
  }
  std::size_t left() const { return d_.size() - i_; }

 private:
  unsigned byte(std::size_t k) const { return static_cast<unsigned char>(d_[i_ + k]); }
  std::string_view d_;
  std::size_t i_ = 0;
};

namespace {

Error truncated(std::string_view what) {
  return make_error(Errc::protocol, fmt::format("truncated pgoutput {} message", what));
}

// TupleData: Int16 column count, then per column 'n' | 'u' | 't' Int32 len, bytes.
template <class Reader>
bool read_tuple(Reader& r, std::vector<TupleValue>& out) {
  std::uint16_t n = 0;
  if (!r.u16(n)) return false;
  out.resize(n);
  for (std::uint16_t i = 0; i < n; ++i) {
    std::uint8_t kind = 0;
    if (!r.u8(kind)) return false;
    out[i].kind = static_cast<char>(kind);
    out[i].text = {};
    if (kind == 't' || kind == 'b') {
      std::uint32_t len = 0;
      if (!r.u32(len) || !r.bytes(len, out[i].text)) return false;
    } else if (kind != 'n' && kind != 'u') {
      return false;
    }
  }
  return true;
}

// Builds a JSON row. `keys_only` keeps the replica identity columns (an old key tuple carries
// nulls for the others). `old_full` supplies unchanged TOASTed values.
json::object build_row(const std::vector<Conversion>& conv, const Relation& rel,
                       const std::vector<TupleValue>& values, bool keys_only,
                       const json::object* old_full) {
  json::object row;
  const std::size_t n = std::min(values.size(), rel.columns.size());
  row.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& col = rel.columns[i];
    if (keys_only && !col.is_key) continue;
    const auto& v = values[i];
    switch (v.kind) {
      case 'n':
        row.emplace(col.name, nullptr);
        break;
      case 't':
        row.emplace(col.name, convert_text(conv[i], v.text));
        break;
      case 'u':
        if (old_full) {
          if (auto it = old_full->find(col.name); it != old_full->end()) {
            row.emplace(col.name, it->value());
          }
        }
        break;
      default:  // binary format is never requested
        break;
    }
  }
  return row;
}

json::object key_columns_of(const Relation& rel, const json::object& row) {
  json::object keys;
  for (const auto& col : rel.columns) {
    if (!col.is_key) continue;
    if (auto it = row.find(col.name); it != row.end()) keys.emplace(col.name, it->value());
  }
  return keys;
}

}  // namespace

Result<std::shared_ptr<Transaction>> PgOutputDecoder::feed(std::string_view message) {
  if (message.empty()) return make_error(Errc::protocol, "empty pgoutput message");
  Reader r(message.substr(1));
  Result<void> st;
  switch (message[0]) {
    case 'B':
      st = on_begin(r);
      break;
    case 'C':
      return on_commit(r);
    case 'R':
      st = on_relation(r);
      break;
    case 'Y':
      st = on_type(r);
      break;
    case 'I':
      st = on_insert(r);
      if (st) return end_part_if_full(message.size());
      break;
    case 'U':
      st = on_update(r);
      if (st) return end_part_if_full(message.size());
      break;
    case 'D':
      st = on_delete(r);
      if (st) return end_part_if_full(message.size());
      break;
    case 'T':
      st = on_truncate(r);
      break;
    case 'O':  // origin of a replicated transaction: nothing to do
    case 'M':  // logical decoding message (not requested)
      break;
    default:
      return make_error(Errc::protocol, fmt::format("unknown pgoutput message type 0x{:02x}",
                                                    static_cast<unsigned char>(message[0])));
  }
  if (!st) return st.error();
  return std::shared_ptr<Transaction>();
}

Result<void> PgOutputDecoder::on_begin(Reader& r) {
  std::uint64_t final_lsn = 0;
  std::int64_t ts = 0;
  std::uint32_t xid = 0;
  if (!r.u64(final_lsn) || !r.i64(ts) || !r.u32(xid)) return truncated("Begin");
  if (current_) return make_error(Errc::protocol, "Begin inside an open transaction");
  current_ = std::make_shared<Transaction>();
  current_->xid = xid;
  current_->commit_lsn = final_lsn;
  current_->commit_time = pg_time_to_wall(ts);
  current_->commit_timestamp = core::format_iso8601(current_->commit_time);
  current_->last = false;
  return {};
}

Result<std::shared_ptr<Transaction>> PgOutputDecoder::end_part_if_full(std::size_t message_bytes) {
  current_->bytes += message_bytes;
  if (current_->changes.size() < limits_.part_changes && current_->bytes < limits_.part_bytes) {
    return std::shared_ptr<Transaction>();
  }
  // Hand this part on and go on with the next one of the same transaction: what it takes to
  // hold a transaction no longer grows with its size.
  auto part = std::move(current_);
  current_ = std::make_shared<Transaction>();
  current_->xid = part->xid;
  current_->commit_lsn = part->commit_lsn;
  current_->commit_time = part->commit_time;
  current_->commit_timestamp = part->commit_timestamp;
  current_->part = part->part + 1;
  current_->last = false;
  return part;
}

Result<std::shared_ptr<Transaction>> PgOutputDecoder::on_commit(Reader& r) {
  std::uint8_t flags = 0;
  std::uint64_t commit_lsn = 0, end_lsn = 0;
  std::int64_t ts = 0;
  if (!r.u8(flags) || !r.u64(commit_lsn) || !r.u64(end_lsn) || !r.i64(ts)) {
    return truncated("Commit");
  }
  if (!current_) return make_error(Errc::protocol, "Commit without Begin");
  auto txn = std::move(current_);
  current_.reset();
  txn->commit_lsn = commit_lsn;
  txn->end_lsn = end_lsn;
  txn->commit_time = pg_time_to_wall(ts);
  txn->commit_timestamp = core::format_iso8601(txn->commit_time);
  txn->last = true;
  return txn;
}

Result<void> PgOutputDecoder::on_relation(Reader& r) {
  auto rel = std::make_shared<Relation>();
  std::string_view ns, name;
  std::uint8_t ident = 0;
  std::uint16_t ncols = 0;
  if (!r.u32(rel->oid) || !r.cstr(ns) || !r.cstr(name) || !r.u8(ident) || !r.u16(ncols)) {
    return truncated("Relation");
  }
  // pgoutput sends an empty namespace for pg_catalog.
  rel->schema = ns.empty() ? "pg_catalog" : std::string(ns);
  rel->table = std::string(name);
  rel->replica_identity = static_cast<char>(ident);
  rel->columns.reserve(ncols);
  for (std::uint16_t i = 0; i < ncols; ++i) {
    std::uint8_t flags = 0;
    std::string_view col;
    std::uint32_t type = 0, typmod = 0;
    if (!r.u8(flags) || !r.cstr(col) || !r.u32(type) || !r.u32(typmod)) {
      return truncated("Relation");
    }
    RelationColumn c;
    c.name = std::string(col);
    c.type_oid = type;
    c.type_name = std::string(types_.name_of(type));
    c.is_key = (flags & 1) != 0;
    rel->columns.push_back(std::move(c));
  }
  CachedRelation cached;
  cached.conversions.reserve(rel->columns.size());
  for (const auto& c : rel->columns)
    cached.conversions.push_back(types_.conversion_of(c.type_oid));
  const auto oid = rel->oid;
  cached.relation = std::move(rel);
  relations_[oid] = std::move(cached);
  return {};
}

Result<void> PgOutputDecoder::on_type(Reader& r) {
  std::uint32_t oid = 0;
  std::string_view ns, name;
  if (!r.u32(oid) || !r.cstr(ns) || !r.cstr(name)) return truncated("Type");
  types_.add_type_message(oid, name);
  // Relations decoded before the type was known carry an empty name; pgoutput sends Type before
  // the Relation that uses it, so this only refreshes names.
  return {};
}

Result<const PgOutputDecoder::CachedRelation*> PgOutputDecoder::lookup(std::uint32_t oid) {
  auto it = relations_.find(oid);
  if (it == relations_.end()) {
    return make_error(Errc::protocol, fmt::format("change for unknown relation {}", oid));
  }
  return &it->second;
}

Result<void> PgOutputDecoder::on_insert(Reader& r) {
  std::uint32_t oid = 0;
  std::uint8_t tag = 0;
  if (!r.u32(oid) || !r.u8(tag)) return truncated("Insert");
  if (!current_) return make_error(Errc::protocol, "Insert outside a transaction");
  auto rel = lookup(oid);
  if (!rel) return rel.error();
  thread_local std::vector<TupleValue> values;
  if (tag != 'N' || !read_tuple(r, values)) return truncated("Insert");
  RowChange change;
  change.kind = ChangeKind::insert;
  change.relation = (*rel)->relation;
  change.record = build_row((*rel)->conversions, *change.relation, values, false, nullptr);
  current_->changes.push_back(std::move(change));
  ++changes_decoded_;
  return {};
}

Result<void> PgOutputDecoder::on_update(Reader& r) {
  std::uint32_t oid = 0;
  std::uint8_t tag = 0;
  if (!r.u32(oid) || !r.u8(tag)) return truncated("Update");
  if (!current_) return make_error(Errc::protocol, "Update outside a transaction");
  auto rel = lookup(oid);
  if (!rel) return rel.error();
  const Relation& relation = *(*rel)->relation;
  const auto& conv = (*rel)->conversions;
  thread_local std::vector<TupleValue> values;
  RowChange change;
  change.kind = ChangeKind::update;
  change.relation = (*rel)->relation;
  bool old_full = false;
  if (tag == 'K' || tag == 'O') {
    if (!read_tuple(r, values)) return truncated("Update");
    old_full = tag == 'O';
    change.old_record = build_row(conv, relation, values, !old_full, nullptr);
    if (!r.u8(tag)) return truncated("Update");
  }
  if (tag != 'N' || !read_tuple(r, values)) return truncated("Update");
  change.record = build_row(conv, relation, values, false,
                            old_full && change.old_record ? &*change.old_record : nullptr);
  if (!change.old_record &&
      (relation.replica_identity == 'd' || relation.replica_identity == 'i')) {
    change.old_record = key_columns_of(relation, *change.record);
  }
  current_->changes.push_back(std::move(change));
  ++changes_decoded_;
  return {};
}

Result<void> PgOutputDecoder::on_delete(Reader& r) {
  std::uint32_t oid = 0;
  std::uint8_t tag = 0;
  if (!r.u32(oid) || !r.u8(tag)) return truncated("Delete");
  if (!current_) return make_error(Errc::protocol, "Delete outside a transaction");
  auto rel = lookup(oid);
  if (!rel) return rel.error();
  thread_local std::vector<TupleValue> values;
  if ((tag != 'K' && tag != 'O') || !read_tuple(r, values)) return truncated("Delete");
  RowChange change;
  change.kind = ChangeKind::remove;
  change.relation = (*rel)->relation;
  change.old_record = build_row((*rel)->conversions, *change.relation, values, tag == 'K', nullptr);
  current_->changes.push_back(std::move(change));
  ++changes_decoded_;
  return {};
}

Result<void> PgOutputDecoder::on_truncate(Reader& r) {
  std::uint32_t nrels = 0;
  std::uint8_t options = 0;
  if (!r.u32(nrels) || !r.u8(options)) return truncated("Truncate");
  std::string names;
  for (std::uint32_t i = 0; i < nrels; ++i) {
    std::uint32_t oid = 0;
    if (!r.u32(oid)) return truncated("Truncate");
    if (auto it = relations_.find(oid); it != relations_.end()) {
      if (!names.empty()) names += ", ";
      names += it->second.relation->schema + "." + it->second.relation->table;
    }
  }
  ++truncates_ignored_;
  log::get(loggers::kCdc)
      ->info("TRUNCATE of {} ignored (postgres_changes has no truncate event)",
             names.empty() ? std::string("unknown tables") : names);
  return {};
}

std::shared_ptr<const Relation> PgOutputDecoder::relation(std::uint32_t oid) const {
  auto it = relations_.find(oid);
  return it == relations_.end() ? nullptr : it->second.relation;
}

}  // namespace rtsync::server::cdc
