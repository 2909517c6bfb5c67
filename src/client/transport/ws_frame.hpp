// RFC 6455 framing for the client side of a WebSocket: a parser of server-to-client frames over a
// caller-owned receive buffer, and the encoder of (masked) client-to-server frames. Pure code, no
// I/O: the Beast transport (beast_transport.cpp) moves the bytes, this unit decides what they mean.
//
// The parser is resumable rather than stateful per byte: `next()` looks at the unconsumed front of
// the buffer and either reports one event (and how many bytes it used) or `need_more` (using
// nothing, with the size the buffer must reach), so the caller simply appends bytes and asks
// again. An unfragmented message's payload is a view into the caller's buffer (zero copy); only
// fragmented messages are reassembled in the parser.
//
// Thread safety: none; one parser per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rtsync/protocol/close_codes.hpp"

namespace rtsync::client::ws {

enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// Longest header a frame can have: 2 bytes + 64-bit length + mask.
inline constexpr std::size_t kMaxHeaderBytes = 14;
// Largest payload of a control frame.
inline constexpr std::size_t kMaxControlPayload = 125;
// Readable bytes after a reassembled message (see FrameParser).
inline constexpr std::size_t kReassembledPadding = 64;

struct Event {
  enum class Kind : std::uint8_t {
    need_more,  // no complete frame at the front; `need` says how many bytes it takes
    fragment,   // a non-final fragment was taken in; nothing to deliver yet
    message,    // a whole text or binary message: `payload`, `binary`
    ping,       // `payload` (≤ 125 bytes) to echo in a pong
    pong,       // `payload`
    close,      // the peer's close frame: `code` (protocol::close_code::kNoStatus when absent),
                // `payload` = reason
    fail,       // the peer broke the protocol: `code` to close with, `payload` = description
  };
  Kind kind = Kind::need_more;
  bool binary = false;
  int code = 0;
  // Bytes of the input this event used; 0 for need_more and fail.
  std::size_t consumed = 0;
  // need_more: the input must hold at least this many bytes before the next call can progress
  // (the whole frame once its header is known, else enough for the header).
  std::size_t need = 0;
  // Valid until the next call to next() or reset(), and while the input bytes are unchanged.
  std::string_view payload;
};

class FrameParser {
 public:
  // Messages (after reassembly) longer than `max_message_bytes` fail with 1009. Text messages
  // that are not UTF-8 fail with 1007 unless `check_text_utf8` is false (their reader checks).
  // A reassembled message is followed by at least kReassembledPadding bytes of its buffer (an
  // unfragmented one is a view into the caller's buffer, whose room is the caller's to give).
  explicit FrameParser(std::size_t max_message_bytes, bool check_text_utf8 = true)
      : max_message_bytes_(max_message_bytes), check_text_utf8_(check_text_utf8) {}

  // The next event at the front of `data[0, size)`. Once it has reported `fail` it keeps
  // reporting the same failure: the connection is not to be read further.
  Event next(const char* data, std::size_t size);

  // Forget any partial message and failure (a new connection).
  void reset();

  // Bytes of a fragmented message held so far (after a reassembled message: its size), and
  // the bytes its buffer holds in all (the message and its padding).
  std::size_t partial_bytes() const {
    return drop_partial_ ? partial_.size() - kReassembledPadding : partial_.size();
  }
  std::size_t partial_buffer_bytes() const { return partial_.size(); }

 private:
  Event fail(int code, const char* why);

  std::size_t max_message_bytes_;
  bool check_text_utf8_;
  std::string partial_;  // fragments of the message in progress
  bool in_message_ = false;
  bool partial_binary_ = false;
  bool drop_partial_ = false;  // the last event pointed into partial_; clear it on the next call
  int fail_code_ = 0;
  const char* fail_why_ = "";
};

// True when `data` is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
// simdjson's validator when built with it, else a scalar one.
bool valid_utf8(const char* data, std::size_t size) noexcept;
// The scalar validator, always available (tests compare the two).
bool valid_utf8_scalar(const char* data, std::size_t size) noexcept;

// RFC 6455 section 7.4: codes a close frame may carry.
bool valid_close_code(int code) noexcept;

// Writes the header of a final client frame (`opcode`, `payload_size`, masked with `mask`) into
// `out` (at least kMaxHeaderBytes) and returns its length.
std::size_t write_client_header(unsigned char* out, Opcode opcode, std::uint64_t payload_size,
                                std::uint32_t mask) noexcept;

// XORs `data` with the 4-byte `mask` as laid out in the header (byte i with mask byte i % 4).
void apply_mask(char* data, std::size_t size, std::uint32_t mask) noexcept;

// A close frame's payload: the big-endian code and the reason cut to fit 125 bytes (at a UTF-8
// boundary). No code (protocol::close_code::kNoStatus or 0) gives an empty payload.
std::string close_payload(int code, std::string_view reason);

// A whole masked client frame (header + masked payload); tests and small control frames.
std::string encode_client_frame(Opcode opcode, std::string_view payload, std::uint32_t mask);

}  // namespace rtsync::client::ws
