// Plays the Supabase Realtime server over the in-memory FakeTransport for coordination tests:
// answers heartbeats, joins (ok with postgres_changes ids, or an error), leaves; sends
// postgres_changes rows, broadcasts, phx_error / phx_close; drops the connection.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/protocol/join.hpp"
#include "rtsync/protocol/message.hpp"
#include "rtsync/protocol/reply.hpp"
#include "rtsync/protocol/stream_position.hpp"
#include "rtsync/testkit/fake_transport.hpp"

namespace rtsync::client::sync::testing {

using testkit::FakeTransport;

class FakeRealtimePeer {
 public:
  enum class JoinReply { ok, error, silent };

  struct JoinRecord {
    std::string topic;
    std::optional<std::string> join_ref;
    std::optional<std::string> ref;
    std::vector<protocol::PostgresChangesAck> acks;
    std::optional<std::string> access_token;
    json::value payload;
  };

  explicit FakeRealtimePeer(FakeTransport& transport, protocol::Vsn vsn = protocol::Vsn::v2)
      : t_(transport), vsn_(vsn) {}

  // How the next joins are answered by pump().
  JoinReply join_reply = JoinReply::ok;
  // rtsync (docs/resume.md): when set, ok join replies carry response.rtsync = this object
  // ({"epoch","position"[,"resume"]}) and heartbeat replies rtsync_heartbeat when that is set.
  // Unset (the default) the peer is hosted Supabase: no rtsync field anywhere.
  std::optional<json::object> rtsync_reply;
  std::optional<json::object> rtsync_heartbeat;
  std::string join_error = "Unauthorized";

  // Accepts a pending connection attempt, then answers what the client sent.
  void accept() {
    if (t_.is_connecting()) t_.accept();
    pump();
  }

  // Answers every frame the client sent since the last call.
  void pump() {
    while (true) {
      auto frames = t_.take_sent();
      if (frames.empty()) return;
      for (auto& f : frames) {
        if (f.binary) continue;
        auto m = protocol::decode_text(vsn_, f.data);
        if (!m.ok()) continue;
        handle(m.value());
      }
    }
  }

  // The current (last answered ok) join of `topic`.
  const JoinRecord* join_of(std::string_view topic) const {
    auto it = joined_.find(std::string(topic));
    return it == joined_.end() ? nullptr : &it->second;
  }
  const std::vector<JoinRecord>& joins() const noexcept { return joins_; }
  const std::vector<std::string>& leaves() const noexcept { return leaves_; }
  // "<event> <topic>" of every client frame, in order.
  const std::vector<std::string>& events_seen() const noexcept { return events_; }

  // A postgres_changes row for the bindings of `topic` whose event matches `type`.
  // With `position`, data.position = position (rtsync).
  void send_change(std::string_view topic, std::string_view type, json::object record,
                   json::object old_record = {}, std::string_view table = "tasks",
                   std::optional<json::object> position = std::nullopt) {
    const auto* j = join_of(topic);
    if (!j) return;
    json::array ids;
    for (const auto& a : j->acks) {
      if (a.spec.event == "*" || a.spec.event == type) ids.push_back(a.id);
    }
    json::object data{{"schema", "public"},
                      {"table", table},
                      {"commit_timestamp", "2026-01-01T00:00:00.000Z"},
                      {"type", type},
                      {"columns", json::array{}},
                      {"record", std::move(record)},
                      {"errors", nullptr}};
    if (type == "UPDATE") data["old_record"] = std::move(old_record);
    if (position) data["position"] = std::move(*position);
    send(std::nullopt, std::nullopt, topic, "postgres_changes",
         json::object{{"ids", std::move(ids)}, {"data", std::move(data)}});
  }

  void send_broadcast(std::string_view topic, std::string_view event, json::value payload) {
    send(std::nullopt, std::nullopt, topic, "broadcast",
         json::object{{"type", "broadcast"}, {"event", event}, {"payload", std::move(payload)}});
  }

  // presence_state of the current join of `topic` (carrying its join_ref on vsn 2).
  void send_presence_state(std::string_view topic, json::value state) {
    const auto* j = join_of(topic);
    send(j ? j->join_ref : std::nullopt, std::nullopt, topic, "presence_state", std::move(state));
  }
  // presence_diff {joins, leaves} (a fan-out message: null refs).
  void send_presence_diff(std::string_view topic, json::value joins, json::value leaves) {
    send(std::nullopt, std::nullopt, topic, "presence_diff",
         json::object{{"joins", std::move(joins)}, {"leaves", std::move(leaves)}});
  }
  // The payloads of the presence pushes received ({type, event[, payload]}), in order.
  const std::vector<json::value>& presence_pushes() const noexcept { return presence_; }

  void send_phx_error(std::string_view topic) {
    const auto* j = join_of(topic);
    send(j ? j->join_ref : std::nullopt, j ? j->join_ref : std::nullopt, topic, "phx_error",
         json::object{});
  }

  void send_phx_close(std::string_view topic) {
    const auto* j = join_of(topic);
    send(j ? j->join_ref : std::nullopt, j ? j->join_ref : std::nullopt, topic, "phx_close",
         json::object{});
    joined_.erase(std::string(topic));
  }

  void drop() {
    joined_.clear();
    t_.drop();
  }

  FakeTransport& transport() noexcept { return t_; }

 private:
  void send(std::optional<std::string> join_ref, std::optional<std::string> ref,
            std::string_view topic, std::string_view event, json::value payload) {
    protocol::Message m;
    m.join_ref = std::move(join_ref);
    m.ref = std::move(ref);
    m.topic = std::string(topic);
    m.event = std::string(event);
    m.payload = std::move(payload);
    t_.receive_text(protocol::encode_text(vsn_, m));
  }

  void handle(const protocol::Message& m) {
    events_.push_back(m.event + " " + m.topic);
    if (m.event == protocol::events::kHeartbeat) {
      json::object response;
      if (rtsync_heartbeat) response["rtsync"] = *rtsync_heartbeat;
      send(std::nullopt, m.ref, m.topic, "phx_reply", protocol::ok_reply(std::move(response)));
      return;
    }
    if (m.event == protocol::events::kJoin) {
      JoinRecord rec;
      rec.topic = m.topic;
      rec.join_ref = m.join_ref ? m.join_ref : m.ref;
      rec.ref = m.ref;
      rec.payload = m.payload;
      auto req = protocol::parse_join_payload(m.payload);
      if (req.ok()) {
        rec.access_token = req->access_token;
        std::int64_t id = 1000;
        for (const auto& spec : req->config.postgres_changes) {
          rec.acks.push_back({spec, ++id});
        }
      }
      joins_.push_back(rec);
      switch (join_reply) {
        case JoinReply::ok: {
          joined_[rec.topic] = rec;
          auto response = protocol::build_join_response(rec.acks);
          if (rtsync_reply) response.as_object()["rtsync"] = *rtsync_reply;
          send(rec.join_ref, rec.ref, rec.topic, "phx_reply",
               protocol::ok_reply(std::move(response)));
          break;
        }
        case JoinReply::error:
          send(rec.join_ref, rec.ref, rec.topic, "phx_reply",
               protocol::error_reply("", join_error));
          break;
        case JoinReply::silent:
          break;
      }
      return;
    }
    if (m.event == protocol::events::kLeave) {
      leaves_.push_back(m.topic);
      joined_.erase(m.topic);
      send(m.join_ref, m.ref, m.topic, "phx_reply", protocol::ok_reply());
      return;
    }
    if (m.event == protocol::events::kPresence) presence_.push_back(m.payload);
    if (m.ref) {  // access_token, presence and other pushes: ok
      send(m.join_ref, m.ref, m.topic, "phx_reply", protocol::ok_reply());
    }
  }

  FakeTransport& t_;
  protocol::Vsn vsn_;
  std::map<std::string, JoinRecord> joined_;
  std::vector<JoinRecord> joins_;
  std::vector<std::string> leaves_;
  std::vector<std::string> events_;
  std::vector<json::value> presence_;
};

}  // namespace rtsync::client::sync::testing
