// Test doubles for the realtime server's seams: an in-memory session, a scripted row authorizer
// and a scripted private-channel authorizer.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/protocol/message.hpp"
#include "rtsync/server/change_feed.hpp"
#include "rtsync/server/channel_authorizer.hpp"
#include "rtsync/server/message_store.hpp"
#include "rtsync/server/realtime/session_io.hpp"
#include "rtsync/server/row_authorizer.hpp"

namespace rtsync::server::realtime::testing {

// The HS256 secret the hubs of these tests verify tokens with.
inline const std::string kSecret = "unit-test-secret-unit-test-secret-0123";

// `frames` is the session's outbound queue: what was sent and the test has not read yet (take,
// read). With `max_frames` / `max_bytes` set it overflows like the transport's (close 1008); the
// peaks of the queue are recorded. A drain notification (when_drained) fires when a read leaves
// the queue short enough — the test's read plays the socket's completed write.
class FakeSession final : public SessionIo {
 public:
  explicit FakeSession(protocol::Vsn vsn = protocol::Vsn::v2) : vsn(vsn) {}
  bool send(const OutFrame& f) override {
    if (closed) return false;
    if ((max_frames && frames.size() >= max_frames) ||
        (max_bytes && queued_bytes() + f.bytes->size() > max_bytes)) {
      close(1008, "slow consumer");
      return false;
    }
    frames.push_back(f);
    peak_frames = std::max(peak_frames, frames.size());
    peak_bytes = std::max(peak_bytes, queued_bytes());
    return true;
  }
  void close(std::uint16_t code, std::string_view reason) override {
    if (closed) return;
    closed = true;
    close_code = code;
    close_reason = std::string(reason);
    drained_ = nullptr;
  }
  std::size_t queued_frames() const override { return frames.size(); }
  // Summed, not kept: tests also clear `frames` directly.
  std::size_t queued_bytes() const override {
    std::size_t n = 0;
    for (const auto& f : frames)
      n += f.bytes->size();
    return n;
  }
  void when_drained(std::size_t f, std::size_t b, std::function<void()> drained) override {
    drain_frames_ = f;
    drain_bytes_ = b;
    drained_ = std::move(drained);
  }
  bool drain_armed() const { return static_cast<bool>(drained_); }

  // Decoded text frames (binary ones are kept in `frames` only).
  std::vector<protocol::Message> messages() const { return decode(frames); }
  // Reads the whole queue (then a drain notification may queue more: the next take gets it).
  std::vector<protocol::Message> take() { return read(frames.size()); }
  // Reads the first `n` frames of the queue.
  std::vector<protocol::Message> read(std::size_t n) {
    n = std::min(n, frames.size());
    std::vector<OutFrame> got(frames.begin(), frames.begin() + static_cast<std::ptrdiff_t>(n));
    frames.erase(frames.begin(), frames.begin() + static_cast<std::ptrdiff_t>(n));
    if (drained_ && !closed && frames.size() <= drain_frames_ && queued_bytes() <= drain_bytes_) {
      auto d = std::move(drained_);
      drained_ = nullptr;
      d();
    }
    return decode(got);
  }
  // A client reading at its pace: reads `chunk` frames at a time until nothing more comes.
  std::vector<protocol::Message> read_all(std::size_t chunk = 1) {
    std::vector<protocol::Message> out;
    while (!frames.empty()) {
      auto got = read(chunk);
      out.insert(out.end(), got.begin(), got.end());
    }
    return out;
  }

  protocol::Vsn vsn;
  std::vector<OutFrame> frames;
  bool closed = false;
  std::uint16_t close_code = 0;
  std::string close_reason;
  std::size_t max_frames = 0;  // 0: unbounded
  std::size_t max_bytes = 0;
  std::size_t peak_frames = 0;
  std::size_t peak_bytes = 0;

 private:
  std::vector<protocol::Message> decode(const std::vector<OutFrame>& fs) const {
    std::vector<protocol::Message> out;
    for (const auto& f : fs) {
      if (f.binary) continue;
      auto m = protocol::decode_text(vsn, *f.bytes);
      if (m.ok()) out.push_back(m.value());
    }
    return out;
  }
  std::function<void()> drained_;
  std::size_t drain_frames_ = 0;
  std::size_t drain_bytes_ = 0;
};

// Visibility by predicates over (role, claims_json, change); answers synchronously unless
// `defer` is set, then `flush()` answers.
class FakeAuthorizer final : public RowAuthorizer {
 public:
  // May the class see the new image of an INSERT/UPDATE?
  using Rule = std::function<bool(const AuthClass&, const RowChange&)>;
  // What may the class see of the old image of an UPDATE/DELETE?
  using OldRule = std::function<Visibility(const AuthClass&, const RowChange&)>;
  Rule rule = [](const AuthClass&, const RowChange&) { return true; };
  // By default like a table under RLS whose every row the class may see: a complete old image
  // (REPLICA IDENTITY FULL) is visible, an incomplete one cannot be judged (key only).
  OldRule old_rule = [](const AuthClass&, const RowChange& ch) {
    return ch.relation->replica_identity == 'f' ? Visibility::full : Visibility::key_only;
  };
  bool defer = false;
  bool fail = false;       // every call fails
  int fail_times = 0;      // the next N calls fail
  bool permanent = false;  // failures are of the kind that repeats (not an outage)
  std::vector<std::vector<VisibilityRequest>> calls;

  void authorize(std::shared_ptr<const Transaction> txn, VisibilityRequests requests,
                 std::function<void(Result<std::vector<VisibilityResult>>)> done) override {
    calls.push_back(*requests);
    queries_ += requests->size();
    auto answer = [this, txn, requests, done] {
      if (fail || fail_times > 0) {
        if (fail_times > 0) --fail_times;
        return done(make_error(Errc::io, "database went away"));
      }
      std::vector<VisibilityResult> out;
      for (const auto& r : *requests) {
        VisibilityResult v;
        for (const auto& check : r.rows) {
          const RowChange& ch = txn->changes[check.change];
          v.rows.push_back(check.image == RowImage::old_row ? old_rule(*r.auth, ch)
                           : rule(*r.auth, ch)              ? Visibility::full
                                                            : Visibility::hidden);
        }
        out.push_back(std::move(v));
      }
      done(std::move(out));
    };
    if (defer) {
      pending_.push_back(answer);
    } else {
      answer();
    }
  }
  void flush() {
    auto p = std::move(pending_);
    pending_.clear();
    for (auto& f : p)
      if (f) f();
  }
  // Answers the i-th deferred call since the last flush (in call order) now, leaving the others
  // pending.
  void answer(std::size_t i) {
    if (i >= pending_.size() || !pending_[i]) return;
    auto f = std::move(pending_[i]);
    pending_[i] = nullptr;
    f();
  }
  // Answers the latest deferred call.
  void answer_last() {
    if (!pending_.empty()) answer(pending_.size() - 1);
  }
  std::uint64_t queries() const override { return queries_; }
  bool transient(const Error&) const override { return !permanent; }

 private:
  std::uint64_t queries_ = 0;
  std::vector<std::function<void()>> pending_;
};

// Private-channel policies as a function of the check: `rule` gives every right of (auth, topic)
// (or an error); the answer carries only the rights the check asked for, like the real one.
// Answers go through the scheduler (run_ready() delivers them), never inside check(); with
// `hold`, they wait for release().
class FakeChannelAuthorizer final : public ChannelAuthorizer {
 public:
  using Rule = std::function<ChannelAuthResult(const ChannelCheck&)>;
  explicit FakeChannelAuthorizer(core::Scheduler& sched) : sched_(sched) {}

  Rule rule = [](const ChannelCheck&) -> ChannelAuthResult {
    return ChannelRights{false, false, false, false};
  };
  bool hold = false;
  std::vector<ChannelCheck> calls;

  void check(ChannelCheck c, std::function<void(ChannelAuthResult)> done) override {
    calls.push_back(c);
    auto answer = [this, c, done = std::move(done)] {
      auto all = rule(c);
      if (!all) return done(all);
      ChannelRights out;
      if (c.broadcast_read) out.broadcast_read = all.value().broadcast_read.value_or(false);
      if (c.presence_read) out.presence_read = all.value().presence_read.value_or(false);
      if (c.write) {
        out.broadcast_write = all.value().broadcast_write.value_or(false);
        out.presence_write = all.value().presence_write.value_or(false);
      }
      done(out);
    };
    if (hold) {
      held_.push_back(std::move(answer));
    } else {
      sched_.post(std::move(answer));
    }
  }
  // Answers the held checks now, in order.
  void release() {
    auto h = std::move(held_);
    held_.clear();
    for (auto& f : h)
      f();
  }
  std::size_t held() const { return held_.size(); }

 private:
  core::Scheduler& sched_;
  std::vector<std::function<void()>> held_;
};

// A MessageStore answering from a script: replays are held until `answer()`/`fail()` (or answered
// at once when `immediate`), deletes answered with `delete_result`.
class FakeMessageStore final : public MessageStore {
 public:
  struct ReplayCall {
    std::string topic;
    std::int64_t since_ms = 0;
    std::int64_t limit = 0;
    std::vector<std::uint32_t> xids;
    ReplayCallback done;
  };
  std::vector<ReplayCall> replays;
  std::vector<StoredMessage> stored;  // what `immediate` replays answer
  bool immediate = false;
  std::vector<std::pair<std::int64_t, std::size_t>> deletes;  // (cutoff, max_rows)
  std::vector<Result<std::size_t>> delete_results;            // answers, in order; then 0
  bool defer_deletes = false;
  std::vector<DeleteCallback> pending_deletes;

  void replay(std::string topic, std::int64_t since_ms, std::int64_t limit,
              std::vector<std::uint32_t> xids, ReplayCallback done) override {
    if (immediate) return done(stored);
    replays.push_back(
        ReplayCall{std::move(topic), since_ms, limit, std::move(xids), std::move(done)});
  }
  void answer(std::size_t i, std::vector<StoredMessage> messages) {
    auto done = std::move(replays.at(i).done);
    replays.at(i).done = nullptr;
    if (done) done(std::move(messages));
  }
  void fail(std::size_t i) {
    auto done = std::move(replays.at(i).done);
    replays.at(i).done = nullptr;
    if (done) done(make_error(Errc::io, "57014 canceling statement due to statement timeout"));
  }
  void delete_before(std::int64_t cutoff_ms, std::size_t max_rows, DeleteCallback done) override {
    deletes.emplace_back(cutoff_ms, max_rows);
    if (defer_deletes) return pending_deletes.push_back(std::move(done));
    done(next_delete_result());
  }
  void finish_delete() {
    auto done = std::move(pending_deletes.front());
    pending_deletes.erase(pending_deletes.begin());
    done(next_delete_result());
  }

 private:
  Result<std::size_t> next_delete_result() {
    if (delete_results.empty()) return std::size_t{0};
    auto r = std::move(delete_results.front());
    delete_results.erase(delete_results.begin());
    return r;
  }
};

inline std::shared_ptr<Relation> make_relation(std::string schema, std::string table,
                                               char identity = 'd') {
  auto r = std::make_shared<Relation>();
  r->oid = 16384;
  r->schema = std::move(schema);
  r->table = std::move(table);
  r->replica_identity = identity;
  r->columns = {{"id", 20, "int8", true},
                {"owner", 25, "text", false},
                {"score", 23, "int4", false},
                {"title", 25, "text", false}};
  return r;
}

// realtime.messages as pgoutput describes it (bootstrap's column order).
inline std::shared_ptr<Relation> messages_relation(std::string table = "messages") {
  auto r = std::make_shared<Relation>();
  r->oid = 17000;
  r->schema = "realtime";
  r->table = std::move(table);
  r->columns = {{"topic", 25, "text", false},
                {"extension", 25, "text", false},
                {"payload", 3802, "jsonb", false},
                {"event", 25, "text", false},
                {"private", 16, "bool", false},
                {"updated_at", 1114, "timestamp", false},
                {"inserted_at", 1114, "timestamp", true},
                {"id", 2950, "uuid", true}};
  return r;
}

// A realtime.messages insert as the change stream decodes it.
inline RowChange message_insert(std::string topic, std::string event, json::value payload,
                                bool is_private, std::string id,
                                std::shared_ptr<const Relation> rel = messages_relation()) {
  json::object rec{{"topic", std::move(topic)},
                   {"extension", "broadcast"},
                   {"payload", std::move(payload)},
                   {"event", std::move(event)},
                   {"private", is_private},
                   {"updated_at", "2026-01-01T00:00:00"},
                   {"inserted_at", "2026-01-01T00:00:00"},
                   {"id", std::move(id)}};
  return RowChange{ChangeKind::insert, std::move(rel), std::move(rec), std::nullopt};
}

inline json::object row(std::int64_t id, std::string owner, std::int64_t score,
                        std::string title = "t") {
  return json::object{{"id", id}, {"owner", owner}, {"score", score}, {"title", title}};
}

inline RowChange insert(std::shared_ptr<const Relation> rel, json::object rec) {
  return RowChange{ChangeKind::insert, std::move(rel), std::move(rec), std::nullopt};
}
inline RowChange update(std::shared_ptr<const Relation> rel, json::object rec,
                        std::optional<json::object> old = std::nullopt) {
  return RowChange{ChangeKind::update, std::move(rel), std::move(rec), std::move(old)};
}
inline RowChange remove(std::shared_ptr<const Relation> rel, json::object old) {
  return RowChange{ChangeKind::remove, std::move(rel), std::nullopt, std::move(old)};
}

inline std::shared_ptr<Transaction> txn(std::vector<RowChange> changes, Lsn end = 100) {
  auto t = std::make_shared<Transaction>();
  t->xid = 7;
  t->commit_lsn = end - 1;
  t->end_lsn = end;
  t->commit_timestamp = "2026-01-01T00:00:00.000Z";
  t->changes = std::move(changes);
  return t;
}

}  // namespace rtsync::server::realtime::testing
