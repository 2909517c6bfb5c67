#include "rtsync/server/change_feed.hpp"

#include <fmt/format.h>

#include <charconv>

namespace rtsync::server {

std::string format_lsn(Lsn lsn) {
  return fmt::format("{:X}/{:X}", static_cast<std::uint32_t>(lsn >> 32),
                     static_cast<std::uint32_t>(lsn));
}

Result<Lsn> parse_lsn(std::string_view text) {
  const auto slash = text.find('/');
  auto bad = [&] {
    return make_error(Errc::invalid_argument, "invalid LSN '" + std::string(text) + "'");
  };
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= text.size()) return bad();
  std::uint32_t hi = 0, lo = 0;
  const char* b = text.data();
  const char* e = text.data() + text.size();
  auto [p1, ec1] = std::from_chars(b, b + slash, hi, 16);
  if (ec1 != std::errc() || p1 != b + slash) return bad();
  auto [p2, ec2] = std::from_chars(b + slash + 1, e, lo, 16);
  if (ec2 != std::errc() || p2 != e) return bad();
  return (static_cast<Lsn>(hi) << 32) | lo;
}

std::vector<protocol::Column> Relation::wire_columns() const {
  std::vector<protocol::Column> out;
  out.reserve(columns.size());
  for (const auto& c : columns)
    out.push_back(protocol::Column{c.name, c.type_name});
  return out;
}

std::vector<std::string> Relation::key_columns() const {
  std::vector<std::string> out;
  for (const auto& c : columns) {
    if (c.is_key) out.push_back(c.name);
  }
  return out;
}

bool is_messages_relation(const Relation& relation) noexcept {
  constexpr std::string_view kTable = "messages";
  if (relation.schema != "realtime" || !relation.table.starts_with(kTable)) return false;
  return relation.table.size() == kTable.size() || relation.table[kTable.size()] == '_';
}

std::string_view to_string(ChangeKind kind) noexcept {
  switch (kind) {
    case ChangeKind::insert:
      return "INSERT";
    case ChangeKind::update:
      return "UPDATE";
    case ChangeKind::remove:
      return "DELETE";
  }
  return "UNKNOWN";
}

}  // namespace rtsync::server
