#include "rtsync/protocol/stream_position.hpp"

#include <cstdio>

#include "rtsync/protocol/change_view.hpp"

namespace rtsync::protocol {

std::optional<std::strong_ordering> compare_positions(const StreamPosition& a,
                                                      const StreamPosition& b) noexcept {
  if (a.epoch != b.epoch) return std::nullopt;
  if (auto c = a.lsn <=> b.lsn; c != 0) return c;
  return a.index <=> b.index;
}

bool at_or_before(const StreamPosition& a, const StreamPosition& b) noexcept {
  const auto c = compare_positions(a, b);
  return c && *c != std::strong_ordering::greater;
}

namespace {

std::optional<std::uint32_t> parse_hex32(std::string_view s) noexcept {
  if (s.empty() || s.size() > 8) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    std::uint32_t d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<std::uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<std::uint32_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    v = (v << 4) | d;
  }
  return v;
}

}  // namespace

std::optional<std::uint64_t> parse_lsn(std::string_view text) noexcept {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto hi = parse_hex32(text.substr(0, slash));
  const auto lo = parse_hex32(text.substr(slash + 1));
  if (!hi || !lo) return std::nullopt;
  return (static_cast<std::uint64_t>(*hi) << 32) | *lo;
}

std::string format_lsn(std::uint64_t lsn) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                static_cast<unsigned>(lsn & 0xffffffffu));
  return buf;
}

std::optional<StreamPosition> parse_stream_position(const JsonView& value,
                                                    std::string_view default_epoch) {
  if (!value.is_object()) return std::nullopt;
  StreamPosition p;
  if (auto e = value.find("epoch")) {
    auto s = e->as_string();
    if (!s || s->empty()) return std::nullopt;
    p.epoch = std::string(*s);
  } else if (!default_epoch.empty()) {
    p.epoch = std::string(default_epoch);
  } else {
    return std::nullopt;
  }
  const auto lsn_v = value.find("lsn");
  const auto lsn_s = lsn_v ? lsn_v->as_string() : std::nullopt;
  const auto lsn = lsn_s ? parse_lsn(*lsn_s) : std::nullopt;
  if (!lsn) return std::nullopt;
  p.lsn = *lsn;
  const auto index_v = value.find("index");
  const auto index = index_v ? index_v->as_int64() : std::nullopt;
  if (!index || *index < 0) return std::nullopt;
  p.index = *index;
  return p;
}

std::optional<StreamPosition> parse_stream_position(const json::value& value,
                                                    std::string_view default_epoch) {
  return parse_stream_position(JsonView(value), default_epoch);
}

json::object build_stream_position(const StreamPosition& position) {
  return json::object{
      {"epoch", position.epoch}, {"lsn", format_lsn(position.lsn)}, {"index", position.index}};
}

std::string describe(const StreamPosition& position) {
  return position.epoch + ":" + format_lsn(position.lsn) + "#" + std::to_string(position.index);
}

std::optional<RtsyncJoinReply> parse_rtsync_join_reply(const json::value& response) {
  const auto* rt = core::find(response, "rtsync");
  if (!rt || !rt->is_object()) return std::nullopt;
  const auto epoch = core::find_string(*rt, "epoch");
  if (!epoch || epoch->empty()) return std::nullopt;
  const auto* pos = core::find(*rt, "position");
  if (!pos) return std::nullopt;
  auto head = parse_stream_position(*pos, *epoch);
  if (!head) return std::nullopt;
  RtsyncJoinReply out;
  out.epoch = std::string(*epoch);
  out.head = std::move(*head);
  if (const auto* resume = core::find(*rt, "resume"); resume && resume->is_object()) {
    ResumeReply r;
    const auto status = core::find_string(*resume, "status");
    const auto replayed = core::find_int(*resume, "replayed");
    if (status == "resumed" && replayed && *replayed >= 0) {
      r.resumed = true;
      r.replayed = *replayed;
    } else {
      r.reason = std::string(core::find_string(*resume, "reason").value_or(""));
      if (r.reason.empty()) {
        r.reason = status == "gap" ? "gap" : "unreadable resume reply";
      }
    }
    out.resume = std::move(r);
  }
  return out;
}

std::optional<StreamPosition> parse_rtsync_heartbeat(const json::value& response) {
  const auto* rt = core::find(response, "rtsync");
  if (!rt || !rt->is_object()) return std::nullopt;
  const auto epoch = core::find_string(*rt, "epoch");
  const auto* pos = core::find(*rt, "position");
  if (!pos) return std::nullopt;
  return parse_stream_position(*pos, epoch.value_or(""));
}

void add_resume_request(json::value& join_payload, const StreamPosition& position) {
  auto* payload = join_payload.if_object();
  if (!payload) return;
  auto* config = payload->if_contains("config");
  if (!config || !config->is_object()) return;
  config->as_object()["rtsync"] = json::object{{"resume", build_stream_position(position)}};
}

std::optional<StreamPosition> find_resume_request(const json::value& join_payload) {
  const auto* config = core::find(join_payload, "config");
  const auto* rt = config ? core::find(*config, "rtsync") : nullptr;
  const auto* resume = rt ? core::find(*rt, "resume") : nullptr;
  if (!resume) return std::nullopt;
  return parse_stream_position(*resume);
}

}  // namespace rtsync::protocol
