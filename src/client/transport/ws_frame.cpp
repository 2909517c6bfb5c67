#include "ws_frame.hpp"
#include "rtsync/protocol/close_codes.hpp"

#include <cstring>

#if RTSYNC_HAVE_SIMDJSON
#include <simdjson.h>
#endif

namespace rtsync::client::ws {

namespace {

std::uint64_t read_be(const unsigned char* p, int bytes) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | p[i];
  return v;
}

bool is_continuation_byte(unsigned char c) noexcept {
  return (c & 0xC0) == 0x80;
}

}  // namespace

void FrameParser::reset() {
  partial_.clear();
  in_message_ = false;
  partial_binary_ = false;
  drop_partial_ = false;
  fail_code_ = 0;
  fail_why_ = "";
}

Event FrameParser::fail(int code, const char* why) {
  fail_code_ = code;
  fail_why_ = why;
  Event e;
  e.kind = Event::Kind::fail;
  e.code = code;
  e.payload = why;
  return e;
}

Event FrameParser::next(const char* data, std::size_t size) {
  if (drop_partial_) {
    drop_partial_ = false;
    partial_.clear();
    // A big reassembled message should not pin its memory for the rest of the connection.
    if (partial_.capacity() > (1u << 20)) std::string().swap(partial_);
  }
  if (fail_code_ != 0) return fail(fail_code_, fail_why_);

  Event e;
  if (size < 2) {
    e.need = 2;
    return e;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  const bool fin = (p[0] & 0x80) != 0;
  const unsigned rsv = p[0] & 0x70;
  const auto op = static_cast<Opcode>(p[0] & 0x0F);
  const bool masked = (p[1] & 0x80) != 0;
  const unsigned len7 = p[1] & 0x7F;

  // Checks that need only the first two bytes come first, so a broken stream fails as early as it
  // can be recognised.
  if (rsv != 0)
    return fail(protocol::close_code::kProtocolError, "protocol error: reserved bits set");
  if (masked)
    return fail(protocol::close_code::kProtocolError,
                "protocol error: masked frame from the server");
  const bool control = (p[0] & 0x08) != 0;
  if (control) {
    if (op != Opcode::close && op != Opcode::ping && op != Opcode::pong) {
      return fail(protocol::close_code::kProtocolError, "protocol error: unknown opcode");
    }
    if (!fin)
      return fail(protocol::close_code::kProtocolError, "protocol error: fragmented control frame");
    if (len7 > kMaxControlPayload) {
      return fail(protocol::close_code::kProtocolError,
                  "protocol error: control frame longer than 125 bytes");
    }
  } else if (op == Opcode::continuation) {
    if (!in_message_)
      return fail(protocol::close_code::kProtocolError, "protocol error: unexpected continuation");
  } else if (op == Opcode::text || op == Opcode::binary) {
    if (in_message_) {
      return fail(protocol::close_code::kProtocolError,
                  "protocol error: new message inside a fragmented one");
    }
  } else {
    return fail(protocol::close_code::kProtocolError, "protocol error: unknown opcode");
  }

  std::size_t header = 2;
  std::uint64_t length = len7;
  if (len7 == 126) {
    header = 4;
    if (size < header) {
      e.need = header;
      return e;
    }
    length = read_be(p + 2, 2);
    if (length < 126)
      return fail(protocol::close_code::kProtocolError, "protocol error: non-minimal length");
  } else if (len7 == 127) {
    header = 10;
    if (size < header) {
      e.need = header;
      return e;
    }
    length = read_be(p + 2, 8);
    if ((length >> 63) != 0) {
      return fail(protocol::close_code::kProtocolError,
                  "protocol error: 64-bit length with the high bit set");
    }
    if (length <= 0xFFFF)
      return fail(protocol::close_code::kProtocolError, "protocol error: non-minimal length");
  }

  // Before waiting for the payload: a message over the limit is refused on its header.
  if (!control) {
    const std::uint64_t so_far = in_message_ ? partial_.size() : 0;
    if (length > max_message_bytes_ || so_far + length > max_message_bytes_) {
      return fail(protocol::close_code::kMessageTooBig, "message too big");
    }
  }
  const std::size_t frame = header + static_cast<std::size_t>(length);
  if (size < frame) {
    e.need = frame;
    return e;
  }
  const std::string_view payload(data + header, static_cast<std::size_t>(length));
  e.consumed = frame;

  switch (op) {
    case Opcode::ping:
      e.kind = Event::Kind::ping;
      e.payload = payload;
      return e;
    case Opcode::pong:
      e.kind = Event::Kind::pong;
      e.payload = payload;
      return e;
    case Opcode::close: {
      if (payload.empty()) {
        e.kind = Event::Kind::close;
        e.code = protocol::close_code::kNoStatus;
        return e;
      }
      if (payload.size() == 1) {
        return fail(protocol::close_code::kProtocolError,
                    "protocol error: close frame with a 1-byte payload");
      }
      const int code = static_cast<int>(read_be(p + header, 2));
      if (!valid_close_code(code))
        return fail(protocol::close_code::kProtocolError, "protocol error: close code");
      const auto reason = payload.substr(2);
      if (!valid_utf8(reason.data(), reason.size())) {
        return fail(protocol::close_code::kInvalidPayload, "close reason is not valid UTF-8");
      }
      e.kind = Event::Kind::close;
      e.code = code;
      e.payload = reason;
      return e;
    }
    case Opcode::text:
    case Opcode::binary:
      if (fin) {
        // The common case: one frame, one message, delivered in place.
        if (op == Opcode::text && check_text_utf8_ && !valid_utf8(payload.data(), payload.size())) {
          return fail(protocol::close_code::kInvalidPayload, "text message is not valid UTF-8");
        }
        e.kind = Event::Kind::message;
        e.binary = op == Opcode::binary;
        e.payload = payload;
        return e;
      }
      in_message_ = true;
      partial_binary_ = op == Opcode::binary;
      partial_.assign(payload);
      e.kind = Event::Kind::fragment;
      return e;
    case Opcode::continuation:
      partial_.append(payload);
      if (!fin) {
        e.kind = Event::Kind::fragment;
        return e;
      }
      in_message_ = false;
      // Validated whole, so a code point split across fragments is judged as one.
      if (!partial_binary_ && check_text_utf8_ && !valid_utf8(partial_.data(), partial_.size())) {
        return fail(protocol::close_code::kInvalidPayload, "text message is not valid UTF-8");
      }
      drop_partial_ = true;
      // Padding for in-place readers, inside the string's size (initialised, and in bounds for
      // any checker); it may reallocate once, a copy of the message, when the slack is short.
      partial_.resize(partial_.size() + kReassembledPadding);
      e.kind = Event::Kind::message;
      e.binary = partial_binary_;
      e.payload = std::string_view(partial_).substr(0, partial_.size() - kReassembledPadding);
      return e;
  }
  return fail(protocol::close_code::kProtocolError,
              "protocol error: unknown opcode");  // unreachable
}

bool valid_utf8_scalar(const char* data, std::size_t size) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(data);
  std::size_t i = 0;
  while (i < size) {
    if (i + 8 <= size) {
      std::uint64_t word;
      std::memcpy(&word, s + i, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
    } else if (c < 0xC2) {  // a continuation byte first, or an overlong 2-byte form
      return false;
    } else if (c < 0xE0) {
      if (i + 1 >= size || !is_continuation_byte(s[i + 1])) return false;
      i += 2;
    } else if (c < 0xF0) {
      if (i + 2 >= size) return false;
      const unsigned char c1 = s[i + 1];
      if (c == 0xE0   ? (c1 < 0xA0 || c1 > 0xBF)  // overlong
          : c == 0xED ? (c1 < 0x80 || c1 > 0x9F)  // UTF-16 surrogates
                      : !is_continuation_byte(c1)) {
        return false;
      }
      if (!is_continuation_byte(s[i + 2])) return false;
      i += 3;
    } else if (c < 0xF5) {
      if (i + 3 >= size) return false;
      const unsigned char c1 = s[i + 1];
      if (c == 0xF0   ? (c1 < 0x90 || c1 > 0xBF)  // overlong
          : c == 0xF4 ? (c1 < 0x80 || c1 > 0x8F)  // above U+10FFFF
                      : !is_continuation_byte(c1)) {
        return false;
      }
      if (!is_continuation_byte(s[i + 2]) || !is_continuation_byte(s[i + 3])) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

bool valid_utf8(const char* data, std::size_t size) noexcept {
#if RTSYNC_HAVE_SIMDJSON
  return simdjson::validate_utf8(data, size);
#else
  return valid_utf8_scalar(data, size);
#endif
}

bool valid_close_code(int code) noexcept {
  // 1004-1006 and 1015 are reserved (never sent); 1012-1014 are registered with IANA.
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

std::size_t write_client_header(unsigned char* out, Opcode opcode, std::uint64_t payload_size,
                                std::uint32_t mask) noexcept {
  out[0] = static_cast<unsigned char>(0x80 | static_cast<unsigned>(opcode));
  std::size_t n = 2;
  if (payload_size < 126) {
    out[1] = static_cast<unsigned char>(0x80 | payload_size);
  } else if (payload_size <= 0xFFFF) {
    out[1] = 0x80 | 126;
    out[2] = static_cast<unsigned char>(payload_size >> 8);
    out[3] = static_cast<unsigned char>(payload_size);
    n = 4;
  } else {
    out[1] = 0x80 | 127;
    for (int i = 0; i < 8; ++i)
      out[2 + i] = static_cast<unsigned char>(payload_size >> (56 - 8 * i));
    n = 10;
  }
  std::memcpy(out + n, &mask, 4);
  return n + 4;
}

void apply_mask(char* data, std::size_t size, std::uint32_t mask) noexcept {
  unsigned char key[4];
  std::memcpy(key, &mask, 4);
  std::uint64_t wide;
  std::memcpy(&wide, key, 4);
  std::memcpy(reinterpret_cast<unsigned char*>(&wide) + 4, key, 4);
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, data + i, 8);
    w ^= wide;
    std::memcpy(data + i, &w, 8);
  }
  for (; i < size; ++i)
    data[i] = static_cast<char>(data[i] ^ key[i % 4]);
}

std::string close_payload(int code, std::string_view reason) {
  std::string out;
  if (code == 0 || code == protocol::close_code::kNoStatus) return out;
  if (reason.size() > kMaxControlPayload - 2) {
    std::size_t cut = kMaxControlPayload - 2;
    // Never split a UTF-8 sequence: back up to the start of the one the cut falls in.
    while (cut > 0 && is_continuation_byte(static_cast<unsigned char>(reason[cut])))
      --cut;
    reason = reason.substr(0, cut);
  }
  out.reserve(2 + reason.size());
  out.push_back(static_cast<char>((code >> 8) & 0xFF));
  out.push_back(static_cast<char>(code & 0xFF));
  out.append(reason);
  return out;
}

std::string encode_client_frame(Opcode opcode, std::string_view payload, std::uint32_t mask) {
  unsigned char header[kMaxHeaderBytes];
  const std::size_t n = write_client_header(header, opcode, payload.size(), mask);
  std::string out;
  out.resize(n + payload.size());
  std::memcpy(out.data(), header, n);
  if (!payload.empty()) std::memcpy(out.data() + n, payload.data(), payload.size());
  apply_mask(out.data() + n, payload.size(), mask);
  return out;
}

}  // namespace rtsync::client::ws
