#include "rtsync/server/realtime/history.hpp"

#include <algorithm>

namespace rtsync::server::realtime {

std::string position_text(std::string_view epoch, StreamPosition p) {
  std::string s = R"({"epoch":)";
  s += core::json_quoted(epoch);
  s += R"(,"lsn":")";
  s += format_lsn(p.lsn);
  s += R"(","index":)";
  s += std::to_string(p.index);
  s += '}';
  return s;
}

json::value position_json(std::string_view epoch, StreamPosition p) {
  return json::object{{"epoch", epoch}, {"lsn", format_lsn(p.lsn)}, {"index", p.index}};
}

std::optional<EpochPosition> parse_position(const json::value& v) {
  const auto* o = v.if_object();
  if (!o) return std::nullopt;
  const auto* epoch = o->if_contains("epoch");
  const auto* lsn = o->if_contains("lsn");
  const auto* index = o->if_contains("index");
  if (!epoch || !epoch->is_string() || !lsn || !lsn->is_string() || !index) return std::nullopt;
  auto parsed = parse_lsn(std::string_view(lsn->get_string()));
  if (!parsed.ok()) return std::nullopt;
  EpochPosition out;
  out.epoch = std::string(std::string_view(epoch->get_string()));
  out.position.lsn = parsed.value();
  if (index->is_uint64()) {
    out.position.index = index->get_uint64();
  } else if (index->is_int64() && index->get_int64() >= 0) {
    out.position.index = static_cast<std::uint64_t>(index->get_int64());
  } else {
    return std::nullopt;
  }
  return out;
}

void ChangeHistory::reset(StreamPosition floor) {
  entries_.clear();
  bytes_ = 0;
  floor_ = floor;
}

void ChangeHistory::append(std::shared_ptr<const Transaction> txn, std::uint64_t first_index,
                           core::TimePoint now) {
  bytes_ += txn->bytes;
  entries_.push_back(HistoryEntry{std::move(txn), first_index, now});
  trim(now);
}

void ChangeHistory::drop_front(core::TimePoint now) {
  const HistoryEntry& e = entries_.front();
  floor_ = std::max(floor_, e.end());
  floor_since_ = now;
  bytes_ -= std::min(bytes_, e.txn->bytes);
  entries_.pop_front();
}

void ChangeHistory::trim(core::TimePoint now) {
  while (!entries_.empty() && now - entries_.front().at >= window_)
    drop_front(now);
  while (!entries_.empty() && bytes_ > max_bytes_)
    drop_front(now);
}

std::vector<const HistoryEntry*> ChangeHistory::between(StreamPosition after,
                                                        StreamPosition upto) const {
  std::vector<const HistoryEntry*> out;
  for (const auto& e : entries_) {
    if (e.txn->changes.empty()) continue;
    if (e.end() <= after) continue;
    if (e.position(0) > upto) break;
    out.push_back(&e);
  }
  return out;
}

}  // namespace rtsync::server::realtime
