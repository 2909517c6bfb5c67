#include "rtsync/server/realtime/metrics.hpp"

#include <fmt/format.h>

namespace rtsync::server::realtime {

void Metrics::drop(std::string_view reason, std::uint64_t n) {
  auto it = drops.find(reason);
  if (it == drops.end()) it = drops.emplace(std::string(reason), 0).first;
  it->second += n;
}

std::uint64_t Metrics::drops_for(std::string_view reason) const {
  auto it = drops.find(reason);
  return it == drops.end() ? 0 : it->second;
}

void Metrics::refuse(std::string_view reason) {
  auto it = refusals.find(reason);
  if (it == refusals.end()) it = refusals.emplace(std::string(reason), 0).first;
  ++it->second;
}

void Metrics::refuse_channel(std::string_view reason, std::uint64_t n) {
  auto it = channel_auth_refusals.find(reason);
  if (it == channel_auth_refusals.end()) {
    it = channel_auth_refusals.emplace(std::string(reason), 0).first;
  }
  it->second += n;
}

std::uint64_t Metrics::channel_refusals_for(std::string_view reason) const {
  auto it = channel_auth_refusals.find(reason);
  return it == channel_auth_refusals.end() ? 0 : it->second;
}

std::string Metrics::render() const {
  std::string out;
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help,
                    double value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  metric("rtsync_connections", "gauge", "Open websocket connections.",
         static_cast<double>(connections));
  metric("rtsync_connections_total", "counter", "Websocket connections accepted.",
         static_cast<double>(connections_total));
  metric("rtsync_client_connections", "gauge", "Open client TCP connections (HTTP and websocket).",
         static_cast<double>(client_connections));
  out +=
      "# HELP rtsync_connection_refusals_total Client connections refused (503), by reason.\n"
      "# TYPE rtsync_connection_refusals_total counter\n";
  for (auto reason : {refusal::kMaxConnections, refusal::kMaxConnectionsPerAddress}) {
    auto it = refusals.find(reason);
    out += fmt::format("rtsync_connection_refusals_total{{reason=\"{}\"}} {}\n", reason,
                       it == refusals.end() ? 0 : it->second);
  }
  metric("rtsync_channels", "gauge", "Joined channels.", static_cast<double>(channels));
  metric("rtsync_joins_total", "counter", "Successful channel joins.", static_cast<double>(joins));
  metric("rtsync_join_errors_total", "counter", "Refused channel joins.",
         static_cast<double>(join_errors));
  metric("rtsync_frames_in_total", "counter", "Websocket messages received.",
         static_cast<double>(frames_in));
  metric("rtsync_frames_out_total", "counter", "Websocket messages sent.",
         static_cast<double>(frames_out));
  metric("rtsync_bytes_out_total", "counter", "Websocket payload bytes sent.",
         static_cast<double>(bytes_out));
  metric("rtsync_transactions_total", "counter", "Transactions received from the change stream.",
         static_cast<double>(transactions));
  metric("rtsync_changes_decoded_total", "counter", "Row changes decoded from the change stream.",
         static_cast<double>(changes_decoded));
  metric("rtsync_deliveries_total", "counter", "postgres_changes frames handed to sessions.",
         static_cast<double>(deliveries));
  metric("rtsync_broadcasts_total", "counter", "Broadcast messages accepted.",
         static_cast<double>(broadcasts));
  metric("rtsync_broadcast_deliveries_total", "counter", "Broadcast frames handed to sessions.",
         static_cast<double>(broadcast_deliveries));
  metric("rtsync_feed_gaps_total", "counter",
         "Holes a cluster node found in the change feed it read (its sockets were told).",
         static_cast<double>(feed_gaps));
  metric("rtsync_db_broadcasts_total", "counter",
         "realtime.messages inserts broadcast (Broadcast from Database).",
         static_cast<double>(db_broadcasts));
  metric("rtsync_db_broadcast_deliveries_total", "counter",
         "Broadcast-from-Database frames handed to sessions.",
         static_cast<double>(db_broadcast_deliveries));
  metric("rtsync_replays_total", "counter", "Channel joins whose broadcast replay was served.",
         static_cast<double>(replays));
  metric("rtsync_replayed_messages_total", "counter", "Stored messages sent by replays.",
         static_cast<double>(replayed_messages));
  metric("rtsync_replay_errors_total", "counter",
         "Channel joins refused because the replay query failed.",
         static_cast<double>(replay_errors));
  out +=
      "# HELP rtsync_resumes_total Joins that asked to resume a change stream, by outcome.\n"
      "# TYPE rtsync_resumes_total counter\n";
  for (auto outcome :
       {resume_outcome::kResumed, resume_outcome::kGapEpoch, resume_outcome::kGapHistory,
        resume_outcome::kGapOverflow, resume_outcome::kGapTooLarge,
        resume_outcome::kGapAuthorization, resume_outcome::kGapUnavailable}) {
    auto it = resumes.find(outcome);
    out += fmt::format("rtsync_resumes_total{{outcome=\"{}\"}} {}\n", outcome,
                       it == resumes.end() ? 0 : it->second);
  }
  metric("rtsync_resume_replayed_changes_total", "counter",
         "Changes replayed to resuming joins (postgres_changes and database broadcasts).",
         static_cast<double>(resume_replayed_changes));
  metric("rtsync_presences", "gauge", "Tracked presences (one per tracking channel).",
         static_cast<double>(presences));
  metric("rtsync_presence_states_total", "counter", "presence_state frames sent.",
         static_cast<double>(presence_states));
  metric("rtsync_presence_diffs_total", "counter", "presence_diff frames handed to sessions.",
         static_cast<double>(presence_diffs));
  out +=
      "# HELP rtsync_channel_auth_checks_total Private-channel policy checks asked for, by kind.\n"
      "# TYPE rtsync_channel_auth_checks_total counter\n";
  out += fmt::format("rtsync_channel_auth_checks_total{{kind=\"read\"}} {}\n",
                     channel_auth_read_checks);
  out += fmt::format("rtsync_channel_auth_checks_total{{kind=\"write\"}} {}\n",
                     channel_auth_write_checks);
  metric("rtsync_channel_auth_cache_hits_total", "counter",
         "Private-channel broadcasts and tracks decided from the channel's cached rights.",
         static_cast<double>(channel_auth_cache_hits));
  out +=
      "# HELP rtsync_channel_auth_refusals_total Private-channel authorization refusals, by "
      "reason.\n# TYPE rtsync_channel_auth_refusals_total counter\n";
  for (auto reason : {auth_refusal::kRead, auth_refusal::kPrivateOnly,
                      auth_refusal::kBroadcastWrite, auth_refusal::kPresenceWrite,
                      auth_refusal::kRestWrite, auth_refusal::kRevoked, auth_refusal::kDatabase}) {
    out += fmt::format("rtsync_channel_auth_refusals_total{{reason=\"{}\"}} {}\n", reason,
                       channel_refusals_for(reason));
  }
  metric("rtsync_authorization_retries_total", "counter",
         "Row authorizations retried because PostgreSQL could not answer (delivery waited).",
         static_cast<double>(authorization_retries));
  out +=
      "# HELP rtsync_drops_total Messages dropped, by reason.\n# TYPE rtsync_drops_total counter\n";
  for (const auto& [reason, n] : drops) {
    out += fmt::format("rtsync_drops_total{{reason=\"{}\"}} {}\n", reason, n);
  }
  for (const auto& g : gauges) {
    metric(g.name, g.type.empty() ? "gauge" : g.type, g.help, g.read ? g.read() : 0.0);
  }
  return out;
}

}  // namespace rtsync::server::realtime
