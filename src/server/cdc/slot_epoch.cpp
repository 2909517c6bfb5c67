#include "rtsync/server/cdc/slot_epoch.hpp"

namespace rtsync::server::cdc {

Result<SlotEpoch> read_slot_epoch(pg::Connection& conn, std::string_view slot, bool slot_created) {
  auto table = conn.exec_script(
      "CREATE SCHEMA IF NOT EXISTS realtime;"
      "CREATE TABLE IF NOT EXISTS realtime.rtsync_slot_epochs ("
      " slot_name text PRIMARY KEY,"
      " epoch text NOT NULL,"
      " created_at timestamptz NOT NULL DEFAULT now())");
  if (!table) return table.error();
  // Random enough to tell slot lifetimes apart; it is an identity, not a secret.
  constexpr std::string_view kFresh =
      "substr(md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text), 1, 16)";
  const std::string upsert =
      std::string("INSERT INTO realtime.rtsync_slot_epochs (slot_name, epoch) VALUES ($1, ") +
      std::string(kFresh) + ") ON CONFLICT (slot_name) DO " +
      (slot_created ? "UPDATE SET epoch = EXCLUDED.epoch, created_at = now()" : "NOTHING");
  if (auto r = conn.exec(upsert, {std::string(slot)}); !r) return r.error();
  auto row = conn.exec(
      "SELECT e.epoch, s.confirmed_flush_lsn::text, pg_catalog.pg_current_wal_flush_lsn()::text "
      "FROM realtime.rtsync_slot_epochs e "
      "JOIN pg_catalog.pg_replication_slots s ON s.slot_name = e.slot_name "
      "WHERE e.slot_name = $1",
      {std::string(slot)});
  if (!row) return row.error();
  if (row->rows() == 0) {
    return make_error(Errc::not_found, "replication slot " + std::string(slot) + " does not exist");
  }
  SlotEpoch out;
  out.epoch = std::string(row->value(0, 0));
  if (!row->value(0, 1).empty()) {
    auto lsn = parse_lsn(row->value(0, 1));
    if (!lsn) return lsn.error();
    out.start_lsn = lsn.value();
  }
  auto now = parse_lsn(row->value(0, 2));
  if (!now) return now.error();
  out.live_from = now.value();
  return out;
}

}  // namespace rtsync::server::cdc
