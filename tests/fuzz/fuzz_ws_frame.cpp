// The WebSocket frame parser (src/client/transport/ws_frame.hpp) on arbitrary server bytes: the
// events must not depend on how the bytes are split into reads (whole input, one byte at a time,
// and chunks sized by the input all agree, failures included); every event stays inside the
// input; a message never exceeds the limit and a text message is valid UTF-8 by the scalar
// validator; simdjson's validator and the scalar one agree; masking is its own inverse.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.hpp"
#include "ws_frame.hpp"

namespace {

using namespace rtsync::client::ws;

constexpr std::size_t kMax = 4096;

struct Seen {
  Event::Kind kind;
  bool binary;
  int code;
  std::string payload;
  bool operator==(const Seen&) const = default;
};

// Feeds `data` in pieces of `chunk(i)` bytes, parsing the unconsumed front after each, as the
// transport does.
template <class Chunk>
std::vector<Seen> run(std::string_view data, Chunk chunk) {
  FrameParser parser(kMax);
  std::string buffer;
  std::size_t begin = 0;
  std::vector<Seen> out;
  std::size_t fed = 0;
  for (std::size_t i = 0; fed < data.size(); ++i) {
    const std::size_t n = std::min(chunk(i), data.size() - fed);
    buffer.append(data.substr(fed, n));
    fed += n;
    for (;;) {
      const std::size_t avail = buffer.size() - begin;
      const auto ev = parser.next(buffer.data() + begin, avail);
      if (ev.kind == Event::Kind::need_more) {
        if (ev.need <= avail) rtsync::fuzz::fail("need_more with enough bytes");
        if (ev.need > kMax + kMaxHeaderBytes) rtsync::fuzz::fail("need beyond the limit");
        break;
      }
      const char* lo = buffer.data() + begin;
      if (ev.kind != Event::Kind::fail) {
        if (ev.consumed == 0 || ev.consumed > avail) rtsync::fuzz::fail("consumed out of range");
        const bool in_input =
            ev.payload.data() >= lo && ev.payload.data() + ev.payload.size() <= lo + ev.consumed;
        if (!ev.payload.empty() && ev.kind != Event::Kind::message && !in_input)
          rtsync::fuzz::fail("control payload outside its frame");
      }
      if (ev.kind == Event::Kind::message) {
        if (ev.payload.size() > kMax) rtsync::fuzz::fail("message over the limit");
        if (!ev.binary && !valid_utf8_scalar(ev.payload.data(), ev.payload.size()))
          rtsync::fuzz::fail("invalid UTF-8 text delivered");
      }
      if ((ev.kind == Event::Kind::ping || ev.kind == Event::Kind::pong) &&
          ev.payload.size() > kMaxControlPayload) {
        rtsync::fuzz::fail("control payload over 125 bytes");
      }
      out.push_back(Seen{ev.kind, ev.binary, ev.code, std::string(ev.payload)});
      if (ev.kind == Event::Kind::fail) return out;
      begin += ev.consumed;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  const auto whole = run(in, [&](std::size_t) { return in.size(); });
  const auto bytewise = run(in, [](std::size_t) { return std::size_t{1}; });
  const auto chunked = run(in, [&](std::size_t i) {
    return in.empty() ? std::size_t{1} : 1 + static_cast<unsigned char>(in[i % in.size()]) % 61;
  });
  if (whole != bytewise) rtsync::fuzz::fail("byte-by-byte parse differs");
  if (whole != chunked) rtsync::fuzz::fail("chunked parse differs");

  if (valid_utf8(in.data(), in.size()) != valid_utf8_scalar(in.data(), in.size()))
    rtsync::fuzz::fail("UTF-8 validators disagree");

  std::string masked(in);
  std::uint32_t mask = 0;
  if (size >= 4) std::memcpy(&mask, data, 4);
  apply_mask(masked.data(), masked.size(), mask);
  apply_mask(masked.data(), masked.size(), mask);
  if (masked != in) rtsync::fuzz::fail("masking twice is not the identity");
  return 0;
}
