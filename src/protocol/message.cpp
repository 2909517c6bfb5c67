#include "rtsync/protocol/message.hpp"

#include <cstring>

#include "json_text.hpp"
#include "utf8.hpp"

namespace rtsync::protocol {

namespace {

Error frame_error(std::string message) {
  return make_error(Errc::invalid_frame, std::move(message));
}

// A ref field: string → value, null → nullopt, anything else → error.
bool read_ref(const json::value& v, std::optional<std::string>& out) {
  if (v.is_null()) {
    out.reset();
    return true;
  }
  if (const auto* s = v.if_string()) {
    out.emplace(s->data(), s->size());
    return true;
  }
  return false;
}

using detail::sv;

void write_ref(detail::TextWriter& w, const std::optional<std::string>& ref) {
  if (ref) {
    w.string(*ref);
  } else {
    w.raw("null");
  }
}

constexpr std::size_t kKind3Header = 7;
constexpr std::size_t kKind4Header = 5;

// Fields of a binary frame, validated as UTF-8 where the protocol says they are strings.
Result<UserBroadcast> finish_binary(UserBroadcast b, std::uint8_t encoding, bool validate_payload) {
  if (encoding > 1) {
    return frame_error("payload encoding " + std::to_string(encoding) + " is neither 0 nor 1");
  }
  b.encoding = static_cast<PayloadEncoding>(encoding);
  if (!detail::valid_utf8(b.topic)) return make_error(Errc::invalid_utf8, "topic is not UTF-8");
  if (!detail::valid_utf8(b.user_event)) {
    return make_error(Errc::invalid_utf8, "user event is not UTF-8");
  }
  if (b.join_ref && !detail::valid_utf8(*b.join_ref)) {
    return make_error(Errc::invalid_utf8, "join_ref is not UTF-8");
  }
  if (b.ref && !detail::valid_utf8(*b.ref))
    return make_error(Errc::invalid_utf8, "ref is not UTF-8");
  if (!b.metadata.empty() && !detail::is_valid_json(b.metadata)) {
    return make_error(Errc::invalid_json, "metadata is not JSON");
  }
  if (validate_payload && b.encoding == PayloadEncoding::json &&
      !detail::is_valid_json(b.payload)) {
    return make_error(Errc::invalid_json, "JSON-encoded payload is not JSON");
  }
  return b;
}

std::optional<std::string> opt_field(std::string_view bytes) {
  if (bytes.empty()) return std::nullopt;
  return std::string(bytes);
}

Result<UserBroadcast> decode_binary_fields(std::string_view bytes, bool validate_payload) {
  if (bytes.empty()) return make_error(Errc::truncated, "empty binary frame");
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto kind = u[0];
  UserBroadcast b;
  std::size_t offset = 0;
  std::size_t topic_len = 0, event_len = 0, meta_len = 0;
  std::uint8_t encoding = 0;
  std::size_t join_ref_len = 0, ref_len = 0;
  if (kind == static_cast<std::uint8_t>(BinaryKind::user_broadcast_push)) {
    if (bytes.size() < kKind3Header) {
      return make_error(Errc::truncated, "kind 3 frame shorter than its 7-byte header");
    }
    join_ref_len = u[1];
    ref_len = u[2];
    topic_len = u[3];
    event_len = u[4];
    meta_len = u[5];
    encoding = u[6];
    offset = kKind3Header;
  } else if (kind == static_cast<std::uint8_t>(BinaryKind::user_broadcast)) {
    if (bytes.size() < kKind4Header) {
      return make_error(Errc::truncated, "kind 4 frame shorter than its 5-byte header");
    }
    topic_len = u[1];
    event_len = u[2];
    meta_len = u[3];
    encoding = u[4];
    offset = kKind4Header;
  } else {
    return make_error(Errc::unknown_kind, "binary frame kind " + std::to_string(kind) +
                                              " (only 3 and 4 are user broadcasts)");
  }
  // Lengths are single bytes, so this sum cannot overflow.
  const std::size_t fields = join_ref_len + ref_len + topic_len + event_len + meta_len;
  if (bytes.size() - offset < fields) {
    return make_error(Errc::truncated, "field lengths (" + std::to_string(fields) +
                                           " bytes) run past the end of the frame (" +
                                           std::to_string(bytes.size() - offset) + " left)");
  }
  auto next = [&](std::size_t n) {
    auto f = bytes.substr(offset, n);
    offset += n;
    return f;
  };
  if (kind == static_cast<std::uint8_t>(BinaryKind::user_broadcast_push)) {
    b.join_ref = opt_field(next(join_ref_len));
    b.ref = opt_field(next(ref_len));
  }
  b.topic.assign(next(topic_len));
  b.user_event.assign(next(event_len));
  b.metadata.assign(next(meta_len));
  b.payload.assign(bytes.substr(offset));
  return finish_binary(std::move(b), encoding, validate_payload);
}

Result<std::string> encode_binary(const UserBroadcast& b, BinaryKind kind) {
  const bool push = kind == BinaryKind::user_broadcast_push;
  const std::string_view join_ref = push && b.join_ref ? std::string_view(*b.join_ref) : "";
  const std::string_view ref = push && b.ref ? std::string_view(*b.ref) : "";
  auto check = [](std::string_view what, std::size_t n) -> std::optional<Error> {
    if (n > 255) {
      return make_error(Errc::too_large,
                        std::string(what) + " is " + std::to_string(n) + " bytes (max 255)");
    }
    return std::nullopt;
  };
  for (auto [what, n] : {std::pair<std::string_view, std::size_t>{"join_ref", join_ref.size()},
                         {"ref", ref.size()},
                         {"topic", b.topic.size()},
                         {"user event", b.user_event.size()},
                         {"metadata", b.metadata.size()}}) {
    if (auto e = check(what, n)) return *e;
  }
  std::string out;
  out.reserve((push ? kKind3Header : kKind4Header) + join_ref.size() + ref.size() + b.topic.size() +
              b.user_event.size() + b.metadata.size() + b.payload.size());
  out.push_back(static_cast<char>(kind));
  if (push) {
    out.push_back(static_cast<char>(join_ref.size()));
    out.push_back(static_cast<char>(ref.size()));
  }
  out.push_back(static_cast<char>(b.topic.size()));
  out.push_back(static_cast<char>(b.user_event.size()));
  out.push_back(static_cast<char>(b.metadata.size()));
  out.push_back(static_cast<char>(b.encoding));
  out.append(join_ref);
  out.append(ref);
  out.append(b.topic);
  out.append(b.user_event);
  out.append(b.metadata);
  out.append(b.payload);
  return out;
}

// The broadcast object receivers see: {type, event, payload[, meta]}, all in one arena.
Result<Message> user_broadcast_message(const UserBroadcast& b) {
  auto sp = detail::make_frame_arena(b.payload.size() + b.metadata.size());
  json::object obj(sp);
  obj.reserve(4);
  obj.emplace("type", events::kBroadcast);
  obj.emplace("event", b.user_event);
  if (b.encoding == PayloadEncoding::json) {
    auto parsed = detail::parse(b.payload, sp);
    if (!parsed.ok()) return make_error(Errc::invalid_json, "payload: " + parsed.error().message);
    obj.emplace("payload", std::move(parsed).value());
  } else {
    obj.emplace("payload", json::string_view(b.payload.data(), b.payload.size()));
  }
  if (!b.metadata.empty()) {
    auto meta = detail::parse(b.metadata, sp);
    if (!meta.ok()) return make_error(Errc::invalid_json, "metadata: " + meta.error().message);
    obj.emplace("meta", std::move(meta).value());
  }
  return Message{.join_ref = b.join_ref,
                 .ref = b.ref,
                 .topic = b.topic,
                 .event = std::string(events::kBroadcast),
                 .payload = json::value(std::move(obj))};
}

}  // namespace

bool operator==(const Message& a, const Message& b) {
  return a.join_ref == b.join_ref && a.ref == b.ref && a.topic == b.topic && a.event == b.event &&
         core::json_equal(a.payload, b.payload);
}

Result<Vsn> parse_vsn(std::string_view text) {
  if (text.empty()) return Vsn::v1;
  const char major = text[0];
  if ((major == '1' || major == '2') && (text.size() == 1 || text[1] == '.')) {
    bool ok = true;
    for (char c : text.substr(1))
      ok = ok && (c == '.' || (c >= '0' && c <= '9'));
    if (ok) return major == '1' ? Vsn::v1 : Vsn::v2;
  }
  return make_error(Errc::invalid_argument,
                    "unsupported vsn \"" + std::string(text) + "\" (expected 1.x or 2.x)");
}

std::string_view to_string(Vsn vsn) noexcept {
  return vsn == Vsn::v1 ? "1.0.0" : "2.0.0";
}

// ---- text frames ----------------------------------------------------------------------------

Result<Message> decode_v1(std::string_view text) {
  auto parsed = detail::parse(text, detail::make_frame_arena(text.size()));
  if (!parsed.ok()) return parsed.error();
  auto* obj = parsed.value().if_object();
  if (!obj) return frame_error("vsn 1 frame must be a JSON object");
  auto* topic = obj->if_contains("topic");
  auto* event = obj->if_contains("event");
  auto* payload = obj->if_contains("payload");
  auto* ref = obj->if_contains("ref");
  if (!topic) return frame_error("missing key \"topic\"");
  if (!event) return frame_error("missing key \"event\"");
  if (!payload) return frame_error("missing key \"payload\"");
  if (!ref) return frame_error("missing key \"ref\"");
  if (!topic->is_string()) return frame_error("topic must be a string");
  if (!event->is_string()) return frame_error("event must be a string");
  if (!payload->is_object()) return frame_error("payload must be a JSON object");
  std::optional<std::string> ref_value, join_ref_value;
  if (!read_ref(*ref, ref_value)) return frame_error("ref must be a string or null");
  if (auto* join_ref = obj->if_contains("join_ref")) {
    if (!read_ref(*join_ref, join_ref_value)) {
      return frame_error("join_ref must be a string or null");
    }
  }
  // Move-constructing the payload keeps it in the frame's arena.
  return Message{.join_ref = std::move(join_ref_value),
                 .ref = std::move(ref_value),
                 .topic = std::string(sv(topic->get_string())),
                 .event = std::string(sv(event->get_string())),
                 .payload = std::move(*payload)};
}

Result<Message> decode_v2(std::string_view text) {
  auto parsed = detail::parse(text, detail::make_frame_arena(text.size()));
  if (!parsed.ok()) return parsed.error();
  auto* arr = parsed.value().if_array();
  if (!arr) return frame_error("vsn 2 text frame must be a JSON array");
  if (arr->size() < 5) {
    return frame_error(
        "vsn 2 text frame needs 5 elements [join_ref, ref, topic, event, payload], got " +
        std::to_string(arr->size()));
  }
  auto& a = *arr;
  std::optional<std::string> join_ref, ref;
  if (!read_ref(a[0], join_ref)) return frame_error("join_ref must be a string or null");
  if (!read_ref(a[1], ref)) return frame_error("ref must be a string or null");
  if (!a[2].is_string()) return frame_error("topic must be a string");
  if (!a[3].is_string()) return frame_error("event must be a string");
  if (!a[4].is_object()) return frame_error("payload must be a JSON object");
  return Message{.join_ref = std::move(join_ref),
                 .ref = std::move(ref),
                 .topic = std::string(sv(a[2].get_string())),
                 .event = std::string(sv(a[3].get_string())),
                 .payload = std::move(a[4])};
}

Result<Message> decode_text(Vsn vsn, std::string_view text) {
  return vsn == Vsn::v1 ? decode_v1(text) : decode_v2(text);
}

std::string encode_v1(const Message& m) {
  detail::TextWriter w;
  w.raw(R"({"topic":)");
  w.string(m.topic);
  w.raw(R"(,"event":)");
  w.string(m.event);
  w.raw(R"(,"payload":)");
  w.value(m.payload);
  w.raw(R"(,"ref":)");
  write_ref(w, m.ref);
  if (m.join_ref) {
    w.raw(R"(,"join_ref":)");
    w.string(*m.join_ref);
  }
  w.raw('}');
  return w.take();
}

std::string encode_v2(const Message& m) {
  detail::TextWriter w;
  w.raw('[');
  write_ref(w, m.join_ref);
  w.raw(',');
  write_ref(w, m.ref);
  w.raw(',');
  w.string(m.topic);
  w.raw(',');
  w.string(m.event);
  w.raw(',');
  w.value(m.payload);
  w.raw(']');
  return w.take();
}

std::string encode_text(Vsn vsn, const Message& m) {
  return vsn == Vsn::v1 ? encode_v1(m) : encode_v2(m);
}

// ---- binary frames --------------------------------------------------------------------------

Result<UserBroadcast> decode_user_broadcast(std::string_view bytes) {
  return decode_binary_fields(bytes, /*validate_payload=*/true);
}

Result<std::string> encode_user_broadcast_push(const UserBroadcast& b) {
  return encode_binary(b, BinaryKind::user_broadcast_push);
}

Result<std::string> encode_user_broadcast(const UserBroadcast& b) {
  return encode_binary(b, BinaryKind::user_broadcast);
}

Result<Message> to_message(const UserBroadcast& b) {
  return user_broadcast_message(b);
}

Result<Message> decode_binary(std::string_view bytes) {
  // The payload is parsed once by to_message instead of validated then parsed.
  auto b = decode_binary_fields(bytes, /*validate_payload=*/false);
  if (!b.ok()) return b.error();
  return to_message(b.value());
}

Result<std::string> encode_broadcast_text(Vsn vsn, const UserBroadcast& b) {
  if (b.encoding != PayloadEncoding::json) {
    return make_error(Errc::invalid_argument,
                      "a binary-encoded payload cannot be carried by a text frame");
  }
  // Splices the already-validated JSON texts; no parse, no DOM.
  detail::TextWriter w;
  auto body = [&] {
    w.raw(R"({"type":"broadcast","event":)");
    w.string(b.user_event);
    w.raw(R"(,"payload":)");
    w.raw(b.payload.empty() ? std::string_view("{}") : std::string_view(b.payload));
    if (!b.metadata.empty()) {
      w.raw(R"(,"meta":)");
      w.raw(b.metadata);
    }
    w.raw('}');
  };
  if (vsn == Vsn::v1) {
    w.raw(R"({"topic":)");
    w.string(b.topic);
    w.raw(R"(,"event":"broadcast","payload":)");
    body();
    w.raw(R"(,"ref":null})");
  } else {
    w.raw("[null,null,");
    w.string(b.topic);
    w.raw(R"(,"broadcast",)");
    body();
    w.raw(']');
  }
  return w.take();
}

}  // namespace rtsync::protocol
