// SyncBinding — what ties the generic coordination layer (RealtimeManager, RealtimeProvider,
// RealtimeSync) to one application's data: which channel to join for a scope, which
// postgres_changes and broadcast events to register on it, which EventBus events they become,
// which FreshnessTracker keys an event stamps, and which query families each event, each table's
// "Too many changes" signal and each (re)subscription invalidate.
//
// A scope is the id the binding is parametrised by: the task app's project, a chat app's room.
// One channel per scope, named `channel_prefix + scope`; a change spec with a `scope_column`
// filters its rows `<scope_column>=eq.<scope>`.
//
// The task app's binding is client::domain::task_binding() (rtsync/client/domain/task_binding.hpp);
// an application with other tables builds its own value of this type.
//
// Thread safety: a plain value; the functions it holds are called on the loop that owns the
// manager.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "rtsync/client/query/key.hpp"
#include "rtsync/core/json.hpp"

namespace rtsync::client::sync {

/// One postgres_changes registration of a binding's channel.
struct ChangeSpec {
  /// "INSERT", "UPDATE", "DELETE" or "*".
  std::string event;
  /// The table's schema.
  std::string schema = "public";
  /// The table whose changes are delivered.
  std::string table;
  /// When not empty, rows are filtered `<scope_column>=eq.<scope>`; empty: every row.
  std::string scope_column;
  /// The EventBus event each change is emitted as (detail: the realtime-js change shape).
  std::string bus_event;
};

/// One broadcast registration of a binding's channel.
struct BroadcastSpec {
  /// The broadcast event name on the channel.
  std::string event;
  /// The EventBus event each message is emitted as (detail: the broadcast message).
  std::string bus_event;
};

/// The query families that read one table: what to refetch when that table's changes cannot be
/// delivered one by one.
struct TableFamilies {
  /// The table's schema.
  std::string schema;
  /// The table.
  std::string table;
  /// Query-key prefixes invalidated for it.
  std::vector<query::QueryKey> families;
};

/// An EventBus event whose latest payload the provider keeps in its state (ProviderState::last).
struct StampedEvent {
  /// The EventBus event.
  std::string bus_event;
  /// The member of the provider's diagnostics carrying its time ("lastTaskUpdateAt").
  std::string diagnostics_name;
};

/// The whole binding of an application to the coordination layer. See the file comment.
struct SyncBinding {
  /// The channel of a scope is named `channel_prefix + scope` (topic "realtime:<name>").
  std::string channel_prefix;
  /// The scope's name in diagnostics and in the changes-overflow bus detail ("projectId").
  std::string scope_name = "scopeId";
  /// Join each scope's channel as a private channel (config.private), as a Broadcast-from-
  /// Database topic needs (docs/database-broadcast.md); the server authorizes it.
  bool private_channel = false;
  /// Broadcast registrations, made before the change registrations.
  std::vector<BroadcastSpec> broadcasts;
  /// postgres_changes registrations, in this order.
  std::vector<ChangeSpec> changes;
  /// The FreshnessTracker keys each event of a scope stamps (called once per join). Unset: none.
  std::function<std::vector<json::array>(const std::string& scope)> freshness_keys;
  /// EventBus event → the query families it invalidates.
  std::vector<std::pair<std::string, std::vector<query::QueryKey>>> invalidations;
  /// Table → families, for the changes-overflow signal (one entry per table; the first match
  /// wins). A table without an entry invalidates nothing.
  std::vector<TableFamilies> table_families;
  /// Invalidated after every transition into SUBSCRIBED (what changed while realtime was down).
  std::vector<query::QueryKey> gap_fill_families;
  /// Events whose latest payload and time the provider keeps.
  std::vector<StampedEvent> stamped_events;

  /// The channel name of `scope`.
  std::string channel_name(std::string_view scope) const {
    return channel_prefix + std::string(scope);
  }
  /// True when a change spec of this binding reads `schema`.`table`.
  bool binds_table(std::string_view schema, std::string_view table) const {
    for (const auto& c : changes)
      if (c.schema == schema && c.table == table) return true;
    return false;
  }
};

}  // namespace rtsync::client::sync
