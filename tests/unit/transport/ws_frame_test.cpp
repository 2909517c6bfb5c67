// The RFC 6455 frame parser and client-frame encoder on exact bytes: every length form, the RFC's
// own examples, fragmentation with control frames in between, every protocol error with its close
// code, UTF-8 (also split across fragments), the size limit, and frames fed one byte at a time.
#include "ws_frame.hpp"
#include "rtsync/protocol/close_codes.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace rtsync::client::ws {
namespace {

using Kind = Event::Kind;

std::string bytes(std::initializer_list<unsigned> list) {
  std::string out;
  for (unsigned b : list)
    out.push_back(static_cast<char>(b));
  return out;
}

enum class Len { shortest, b16, b64 };

// A server frame: first byte as given, unmasked, the length in the shortest form unless `len`
// forces a longer (non-minimal) one.
std::string frame(unsigned first, std::string_view payload, Len len = Len::shortest) {
  std::string out(1, static_cast<char>(first));
  const std::uint64_t n = payload.size();
  if (len == Len::shortest && n < 126) {
    out.push_back(static_cast<char>(n));
  } else if (len != Len::b64 && n <= 0xFFFF) {
    out.push_back(126);
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(127);
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<char>(n >> (56 - 8 * i)));
  }
  out.append(payload);
  return out;
}

std::string text(std::string_view p) {
  return frame(0x81, p);
}

struct Seen {
  Kind kind;
  std::string payload;
  bool binary = false;
  int code = 0;
  bool operator==(const Seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << "{kind " << static_cast<int>(s.kind) << ", '" << s.payload << "', binary "
            << s.binary << ", code " << s.code << "}";
}

// Parses everything in `in` (as the transport does) until need_more or fail.
std::vector<Seen> parse_all(std::string_view in, std::size_t max = 1u << 20) {
  FrameParser parser(max);
  std::vector<Seen> out;
  std::size_t at = 0;
  for (;;) {
    const auto ev = parser.next(in.data() + at, in.size() - at);
    if (ev.kind == Kind::need_more) break;
    out.push_back(Seen{ev.kind, std::string(ev.payload), ev.binary, ev.code});
    if (ev.kind == Kind::fail) break;
    at += ev.consumed;
  }
  return out;
}

Event one(std::string_view in, std::size_t max = 1u << 20) {
  FrameParser parser(max);
  return parser.next(in.data(), in.size());
}

void expect_fail(std::string_view in, int code, std::size_t max = 1u << 20) {
  const auto ev = one(in, max);
  EXPECT_EQ(ev.kind, Kind::fail);
  EXPECT_EQ(ev.code, code) << ev.payload;
  EXPECT_EQ(ev.consumed, 0u);
}

// ---- the RFC 6455 section 5.7 examples ---------------------------------------------------------

TEST(WsFrameParser, SingleFrameUnmaskedText) {
  const auto in = bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
  const auto ev = one(in);
  EXPECT_EQ(ev.kind, Kind::message);
  EXPECT_FALSE(ev.binary);
  EXPECT_EQ(ev.payload, "Hello");
  EXPECT_EQ(ev.consumed, 7u);
  // Zero copy: the payload is the input's own bytes.
  EXPECT_EQ(ev.payload.data(), in.data() + 2);
}

TEST(WsFrameParser, FragmentedUnmaskedText) {
  const auto in = bytes({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f});
  EXPECT_EQ(parse_all(in), (std::vector<Seen>{{Kind::fragment, ""}, {Kind::message, "Hello"}}));
}

TEST(WsFrameParser, UnmaskedPingAndPong) {
  EXPECT_EQ(parse_all(bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x8a, 0x00})),
            (std::vector<Seen>{{Kind::ping, "Hello"}, {Kind::pong, ""}}));
}

TEST(WsFrameParser, SixteenAndSixtyFourBitLengths) {
  const std::string p256(256, 'b');
  auto in = bytes({0x82, 0x7E, 0x01, 0x00}) + p256;
  auto ev = one(in);
  EXPECT_EQ(ev.kind, Kind::message);
  EXPECT_TRUE(ev.binary);
  EXPECT_EQ(ev.payload, p256);
  EXPECT_EQ(ev.consumed, 4u + 256u);
  EXPECT_EQ(ev.payload.data(), in.data() + 4);

  const std::string p64k(65536, 'c');
  in = bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}) + p64k;
  ev = one(in);
  EXPECT_EQ(ev.kind, Kind::message);
  EXPECT_EQ(ev.payload.size(), 65536u);
  EXPECT_EQ(ev.consumed, 10u + 65536u);
  EXPECT_EQ(ev.payload.data(), in.data() + 10);
}

TEST(WsFrameParser, EveryLengthBoundary) {
  for (std::size_t n : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 70000u}) {
    const std::string payload(n, 'x');
    const auto in = frame(0x81, payload);
    const std::size_t header = n < 126 ? 2 : n <= 0xFFFF ? 4 : 10;
    ASSERT_EQ(in.size(), header + n);
    const auto ev = one(in);
    EXPECT_EQ(ev.kind, Kind::message) << n;
    EXPECT_EQ(ev.payload.size(), n);
    EXPECT_EQ(ev.consumed, header + n);
    // One byte short: need_more, asking for exactly the whole frame.
    const auto short_ev = one(std::string_view(in).substr(0, in.size() - 1));
    EXPECT_EQ(short_ev.kind, Kind::need_more) << n;
    EXPECT_EQ(short_ev.need, header + n);
    EXPECT_EQ(short_ev.consumed, 0u);
  }
}

TEST(WsFrameParser, NeedMoreAsksForTheHeaderFirst) {
  EXPECT_EQ(one("").need, 2u);
  EXPECT_EQ(one(bytes({0x81})).need, 2u);
  EXPECT_EQ(one(bytes({0x81, 126})).need, 4u);
  EXPECT_EQ(one(bytes({0x81, 126, 0x01})).need, 4u);
  EXPECT_EQ(one(bytes({0x81, 127, 0, 0, 0})).need, 10u);
  EXPECT_EQ(one(bytes({0x81, 126, 0x01, 0x00})).need, 4u + 256u);
}

TEST(WsFrameParser, ManyFramesInOneBufferAllComeOut) {
  std::string in;
  std::vector<Seen> expected;
  for (int i = 0; i < 100; ++i) {
    const auto p = "frame " + std::to_string(i);
    in += text(p);
    expected.push_back({Kind::message, p});
  }
  EXPECT_EQ(parse_all(in), expected);
}

// ---- fragmentation -----------------------------------------------------------------------------

TEST(WsFrameParser, ControlFramesBetweenFragmentsAreDeliveredInOrder) {
  const auto in = frame(0x01, "Hel") + frame(0x89, "p1") + frame(0x00, "lo ") + frame(0x8A, "p2") +
                  frame(0x80, "world") + text("next");
  EXPECT_EQ(parse_all(in), (std::vector<Seen>{{Kind::fragment, ""},
                                              {Kind::ping, "p1"},
                                              {Kind::fragment, ""},
                                              {Kind::pong, "p2"},
                                              {Kind::message, "Hello world"},
                                              {Kind::message, "next"}}));
}

TEST(WsFrameParser, CloseBetweenFragments) {
  const auto in = frame(0x02, "ab") + frame(0x88, bytes({0x03, 0xE9}) + "away");
  EXPECT_EQ(parse_all(in),
            (std::vector<Seen>{{Kind::fragment, ""}, {Kind::close, "away", false, 1001}}));
}

TEST(WsFrameParser, FragmentedBinaryKeepsItsType) {
  const auto in = frame(0x02, bytes({0xFF, 0x00})) + frame(0x80, bytes({0xFE}));
  const auto seen = parse_all(in);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1], (Seen{Kind::message, bytes({0xFF, 0x00, 0xFE}), true}));
}

TEST(WsFrameParser, ReassembledPayloadStaysValidUntilTheNextCall) {
  FrameParser parser(1024);
  const auto in = frame(0x01, "ab") + frame(0x80, "cd") + text("ef");
  auto ev = parser.next(in.data(), in.size());
  std::size_t at = ev.consumed;
  ev = parser.next(in.data() + at, in.size() - at);
  ASSERT_EQ(ev.kind, Kind::message);
  EXPECT_EQ(ev.payload, "abcd");
  EXPECT_EQ(parser.partial_bytes(), 4u);
  at += ev.consumed;
  ev = parser.next(in.data() + at, in.size() - at);
  EXPECT_EQ(ev.payload, "ef");
  EXPECT_EQ(parser.partial_bytes(), 0u);
}

// ---- protocol errors
// -----------------------------------------------------------------------------

TEST(WsFrameParser, MaskedServerFrameIs1002) {
  expect_fail(bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}),
              protocol::close_code::kProtocolError);
  // Recognised from the first two bytes, before the rest arrives.
  expect_fail(bytes({0x81, 0x85}), protocol::close_code::kProtocolError);
}

TEST(WsFrameParser, ReservedBitsAre1002) {
  for (unsigned rsv : {0x40u, 0x20u, 0x10u})
    expect_fail(frame(0x81 | rsv, "x"), protocol::close_code::kProtocolError);
}

TEST(WsFrameParser, UnknownOpcodesAre1002) {
  for (unsigned op : {0x3u, 0x4u, 0x5u, 0x6u, 0x7u, 0xBu, 0xCu, 0xDu, 0xEu, 0xFu})
    expect_fail(frame(0x80 | op, "x"), protocol::close_code::kProtocolError);
}

TEST(WsFrameParser, ControlFrameOver125BytesIs1002) {
  EXPECT_EQ(one(frame(0x89, std::string(125, 'p'))).kind, Kind::ping);
  expect_fail(frame(0x89, std::string(126, 'p')), protocol::close_code::kProtocolError);
  expect_fail(frame(0x88, bytes({0x03, 0xE8}) + std::string(124, 'r')),
              protocol::close_code::kProtocolError);
}

TEST(WsFrameParser, FragmentedControlFrameIs1002) {
  expect_fail(frame(0x09, "p"), protocol::close_code::kProtocolError);
  expect_fail(frame(0x08, ""), protocol::close_code::kProtocolError);
}

TEST(WsFrameParser, ContinuationWithoutAMessageIs1002) {
  expect_fail(frame(0x80, "x"), protocol::close_code::kProtocolError);
  expect_fail(frame(0x00, "x"), protocol::close_code::kProtocolError);
}

TEST(WsFrameParser, NewMessageInsideAFragmentedOneIs1002) {
  const auto seen = parse_all(frame(0x01, "a") + frame(0x81, "b"));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].kind, Kind::fail);
  EXPECT_EQ(seen[1].code, protocol::close_code::kProtocolError);
}

TEST(WsFrameParser, SixtyFourBitLengthWithTheHighBitIs1002) {
  expect_fail(bytes({0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0x01}),
              protocol::close_code::kProtocolError);
  // Not 1009, although such a length exceeds any limit.
  expect_fail(bytes({0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}),
              protocol::close_code::kProtocolError);
}

TEST(WsFrameParser, NonMinimalLengthsAre1002) {
  expect_fail(frame(0x81, "abc", Len::b16), protocol::close_code::kProtocolError);
  expect_fail(frame(0x81, std::string(300, 'a'), Len::b64), protocol::close_code::kProtocolError);
}

TEST(WsFrameParser, FailureIsSticky) {
  FrameParser parser(1024);
  const auto bad = frame(0x83, "x");
  EXPECT_EQ(parser.next(bad.data(), bad.size()).kind, Kind::fail);
  const auto good = text("ok");
  const auto again = parser.next(good.data(), good.size());
  EXPECT_EQ(again.kind, Kind::fail);
  EXPECT_EQ(again.code, protocol::close_code::kProtocolError);
  parser.reset();
  EXPECT_EQ(parser.next(good.data(), good.size()).kind, Kind::message);
}

// ---- close frames ------------------------------------------------------------------------------

TEST(WsFrameParser, CloseWithCodeAndReason) {
  const auto in = frame(0x88, bytes({0x03, 0xE8}) + "bye");
  const auto ev = one(in);
  EXPECT_EQ(ev.kind, Kind::close);
  EXPECT_EQ(ev.code, 1000);
  EXPECT_EQ(ev.payload, "bye");
}

TEST(WsFrameParser, CloseWithoutCodeIs1005) {
  const auto ev = one(frame(0x88, ""));
  EXPECT_EQ(ev.kind, Kind::close);
  EXPECT_EQ(ev.code, protocol::close_code::kNoStatus);
  EXPECT_EQ(ev.payload, "");
}

TEST(WsFrameParser, BadClosePayloads) {
  expect_fail(frame(0x88, bytes({0x03})), protocol::close_code::kProtocolError);  // 1-byte payload
  for (unsigned code : {0u, 999u, 1004u, 1005u, 1006u, 1015u, 1016u, 2999u, 5000u})
    expect_fail(frame(0x88, bytes({code >> 8, code & 0xFF})), protocol::close_code::kProtocolError);
  expect_fail(frame(0x88, bytes({0x03, 0xE8, 0xC3, 0x28})), protocol::close_code::kInvalidPayload);
  EXPECT_EQ(one(frame(0x88, bytes({0x0F, 0xA0}))).code, 4000);  // application codes are fine
}

// ---- UTF-8 -------------------------------------------------------------------------------------

TEST(WsFrameParser, InvalidUtf8TextIs1007ButBinaryIsNot) {
  const auto bad = bytes({'a', 0xC3, 0x28, 'b'});
  expect_fail(frame(0x81, bad), protocol::close_code::kInvalidPayload);
  EXPECT_EQ(one(frame(0x82, bad)).kind, Kind::message);
}

TEST(WsFrameParser, WithoutTheTextCheckInvalidUtf8IsDeliveredForItsReaderToJudge) {
  FrameParser parser(1 << 20, /*check_text_utf8=*/false);
  const auto bad = bytes({'a', 0xC3, 0x28, 'b'});
  const auto whole = frame(0x81, bad);
  auto e = parser.next(whole.data(), whole.size());
  EXPECT_EQ(e.kind, Kind::message);
  EXPECT_EQ(e.payload, bad);
  const auto fragmented = frame(0x01, bytes({'x', 0xE2})) + frame(0x80, "A");
  e = parser.next(fragmented.data(), fragmented.size());
  EXPECT_EQ(e.kind, Kind::fragment);
  e = parser.next(fragmented.data() + e.consumed, fragmented.size() - e.consumed);
  EXPECT_EQ(e.kind, Kind::message);
  EXPECT_EQ(e.payload, bytes({'x', 0xE2, 'A'}));
  // A close reason is the parser's own to read: still checked.
  const auto close = frame(0x88, bytes({0x03, 0xE8, 0xC3, 0x28}));
  e = parser.next(close.data(), close.size());
  EXPECT_EQ(e.kind, Kind::fail);
  EXPECT_EQ(e.code, protocol::close_code::kInvalidPayload);
}

TEST(WsFrameParser, AReassembledMessageHasItsPaddingInItsBuffer) {
  // Sizes around std::string's growth steps, where its own slack may be anything.
  for (std::size_t n : {1u, 15u, 16u, 30u, 31u, 100u, 1000u, 4095u, 4096u}) {
    FrameParser parser(1 << 20);
    const auto stream =
        frame(0x01, std::string(n / 2, 'a')) + frame(0x80, std::string(n - n / 2, 'b'));
    auto e = parser.next(stream.data(), stream.size());
    ASSERT_EQ(e.kind, Kind::fragment);
    e = parser.next(stream.data() + e.consumed, stream.size() - e.consumed);
    ASSERT_EQ(e.kind, Kind::message);
    ASSERT_EQ(e.payload.size(), n);
    EXPECT_EQ(parser.partial_bytes(), n);
    EXPECT_EQ(parser.partial_buffer_bytes(), n + kReassembledPadding) << n;
  }
}

TEST(WsFrameParser, Utf8SplitAcrossFragmentsIsJudgedWhole) {
  // "€" = E2 82 AC split over three fragments: valid.
  auto seen = parse_all(frame(0x01, bytes({'x', 0xE2})) + frame(0x00, bytes({0x82})) +
                        frame(0x80, bytes({0xAC, 'y'})));
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2], (Seen{Kind::message, bytes({'x', 0xE2, 0x82, 0xAC, 'y'})}));
  // A sequence cut short by the next fragment's ASCII: invalid.
  seen = parse_all(frame(0x01, bytes({0xE2, 0x82})) + frame(0x80, "A"));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].kind, Kind::fail);
  EXPECT_EQ(seen[1].code, protocol::close_code::kInvalidPayload);
  // A message ending inside a sequence: invalid.
  seen = parse_all(frame(0x01, "ok") + frame(0x80, bytes({0xF0, 0x9F, 0x98})));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].code, protocol::close_code::kInvalidPayload);
}

TEST(WsUtf8, ValidatorsAgreeOnEdgeCases) {
  struct Case {
    std::string in;
    bool valid;
  };
  const std::vector<Case> cases = {
      {"", true},
      {"plain ascii", true},
      {bytes({0xC2, 0x80}), true},               // U+0080
      {bytes({0xDF, 0xBF}), true},               // U+07FF
      {bytes({0xE0, 0xA0, 0x80}), true},         // U+0800
      {bytes({0xED, 0x9F, 0xBF}), true},         // U+D7FF
      {bytes({0xEE, 0x80, 0x80}), true},         // U+E000
      {bytes({0xEF, 0xBF, 0xBF}), true},         // U+FFFF
      {bytes({0xF0, 0x90, 0x80, 0x80}), true},   // U+10000
      {bytes({0xF4, 0x8F, 0xBF, 0xBF}), true},   // U+10FFFF
      {bytes({0x80}), false},                    // lone continuation
      {bytes({0xC0, 0x80}), false},              // overlong NUL
      {bytes({0xC1, 0xBF}), false},              // overlong
      {bytes({0xE0, 0x9F, 0xBF}), false},        // overlong 3-byte
      {bytes({0xED, 0xA0, 0x80}), false},        // surrogate U+D800
      {bytes({0xF0, 0x8F, 0xBF, 0xBF}), false},  // overlong 4-byte
      {bytes({0xF4, 0x90, 0x80, 0x80}), false},  // U+110000
      {bytes({0xF5, 0x80, 0x80, 0x80}), false},  // no such lead byte
      {bytes({0xFF}), false},                    //
      {bytes({0xC3}), false},                    // truncated
      {bytes({0xE2, 0x82}), false},              // truncated
      {bytes({0xF0, 0x9F, 0x98}), false},        // truncated
      {bytes({0xE2, 0x28, 0xA1}), false},        // bad second byte
      {bytes({0xF0, 0x9F, 0x28, 0x80}), false},  // bad third byte
  };
  for (const auto& c : cases) {
    EXPECT_EQ(valid_utf8_scalar(c.in.data(), c.in.size()), c.valid) << testing::PrintToString(c.in);
    EXPECT_EQ(valid_utf8(c.in.data(), c.in.size()), c.valid) << testing::PrintToString(c.in);
  }
  // One bad byte at every position of a long ASCII run (the 8-byte fast path and its tail).
  for (std::size_t at = 0; at < 40; ++at) {
    std::string s(40, 'a');
    s[at] = static_cast<char>(0x80);
    EXPECT_FALSE(valid_utf8_scalar(s.data(), s.size())) << at;
    EXPECT_FALSE(valid_utf8(s.data(), s.size())) << at;
    s.replace(at, 1, "\xC3\xA9");  // é: valid anywhere
    EXPECT_TRUE(valid_utf8_scalar(s.data(), s.size())) << at;
    EXPECT_TRUE(valid_utf8(s.data(), s.size())) << at;
  }
}

// ---- the size limit
// ------------------------------------------------------------------------------

TEST(WsFrameParser, MessageOverTheLimitIs1009FromItsHeaderAlone) {
  EXPECT_EQ(one(text(std::string(100, 'a')), 100).kind, Kind::message);
  // Only the header of a 101-byte frame has arrived.
  const auto ev = one(bytes({0x81, 101}), 100);
  EXPECT_EQ(ev.kind, Kind::fail);
  EXPECT_EQ(ev.code, protocol::close_code::kMessageTooBig);
  EXPECT_EQ(ev.payload, "message too big");
  expect_fail(bytes({0x82, 0x7F, 0, 0, 0, 0x01, 0, 0, 0, 0}), protocol::close_code::kMessageTooBig,
              8u << 20);
}

TEST(WsFrameParser, FragmentedMessageOverTheLimitIs1009) {
  const auto seen = parse_all(frame(0x01, std::string(60, 'a')) + bytes({0x80, 41}), 100);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].kind, Kind::fail);
  EXPECT_EQ(seen[1].code, protocol::close_code::kMessageTooBig);
  // Exactly at the limit is fine.
  EXPECT_EQ(parse_all(frame(0x01, std::string(60, 'a')) + frame(0x80, std::string(40, 'b')), 100)
                .back()
                .kind,
            Kind::message);
}

TEST(WsFrameParser, ControlFramesDoNotCountTowardsTheLimit) {
  const auto seen =
      parse_all(frame(0x01, std::string(90, 'a')) + frame(0x89, std::string(100, 'p')) +
                    frame(0x80, std::string(10, 'b')),
                100);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].kind, Kind::message);
  EXPECT_EQ(seen[2].payload.size(), 100u);
}

// ---- incremental input -------------------------------------------------------------------------

TEST(WsFrameParser, FedOneByteAtATimeGivesTheSameEvents) {
  const auto stream = text("first") + frame(0x01, "frag") + frame(0x89, "ping") +
                      frame(0x80, "mented") + frame(0x82, std::string(300, 'z')) +
                      frame(0x81, std::string(70000, 'w')) + frame(0x8A, "") +
                      frame(0x88, bytes({0x03, 0xE8}) + "done");
  const auto whole = parse_all(stream);
  ASSERT_EQ(whole.size(), 8u);

  // The way the transport uses it: bytes arrive, the unconsumed front is parsed again.
  FrameParser parser(1u << 20);
  std::string buffer;
  std::size_t begin = 0;
  std::vector<Seen> seen;
  for (char c : stream) {
    buffer.push_back(c);
    for (;;) {
      const auto ev = parser.next(buffer.data() + begin, buffer.size() - begin);
      if (ev.kind == Kind::need_more) {
        EXPECT_GT(ev.need, buffer.size() - begin);
        break;
      }
      ASSERT_NE(ev.kind, Kind::fail) << ev.payload;
      // Nothing comes out before the frame's last byte is in.
      EXPECT_EQ(begin + ev.consumed, buffer.size());
      seen.push_back(Seen{ev.kind, std::string(ev.payload), ev.binary, ev.code});
      begin += ev.consumed;
    }
  }
  EXPECT_EQ(seen, whole);
  EXPECT_EQ(begin, stream.size());
}

// ---- the encoder -------------------------------------------------------------------------------

std::uint32_t mask_of(std::initializer_list<unsigned> four) {
  const auto b = bytes(four);
  std::uint32_t m;
  std::memcpy(&m, b.data(), 4);
  return m;
}

TEST(WsFrameEncoder, RfcMaskedHelloExample) {
  // RFC 6455 section 5.7: a single-frame masked text message.
  EXPECT_EQ(encode_client_frame(Opcode::text, "Hello", mask_of({0x37, 0xfa, 0x21, 0x3d})),
            bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
}

TEST(WsFrameEncoder, HeaderLengthForms) {
  const auto m = mask_of({1, 2, 3, 4});
  unsigned char h[kMaxHeaderBytes];
  auto header = [&](Opcode op, std::uint64_t n) {
    const auto len = write_client_header(h, op, n, m);
    return std::string(reinterpret_cast<const char*>(h), len);
  };
  EXPECT_EQ(header(Opcode::text, 0), bytes({0x81, 0x80, 1, 2, 3, 4}));
  EXPECT_EQ(header(Opcode::binary, 125), bytes({0x82, 0xFD, 1, 2, 3, 4}));
  EXPECT_EQ(header(Opcode::text, 126), bytes({0x81, 0xFE, 0x00, 0x7E, 1, 2, 3, 4}));
  EXPECT_EQ(header(Opcode::text, 65535), bytes({0x81, 0xFE, 0xFF, 0xFF, 1, 2, 3, 4}));
  EXPECT_EQ(header(Opcode::text, 65536),
            bytes({0x81, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 1, 2, 3, 4}));
  EXPECT_EQ(header(Opcode::close, 2), bytes({0x88, 0x82, 1, 2, 3, 4}));
  EXPECT_EQ(header(Opcode::pong, 5), bytes({0x8A, 0x85, 1, 2, 3, 4}));
}

TEST(WsFrameEncoder, MaskingIsItsOwnInverseAtEveryLength) {
  const auto m = mask_of({0xA1, 0xB2, 0xC3, 0xD4});
  for (std::size_t n = 0; n < 40; ++n) {
    std::string original;
    for (std::size_t i = 0; i < n; ++i)
      original.push_back(static_cast<char>(i * 7));
    std::string s = original;
    apply_mask(s.data(), s.size(), m);
    for (std::size_t i = 0; i < n; ++i) {
      const unsigned key[4] = {0xA1, 0xB2, 0xC3, 0xD4};
      ASSERT_EQ(static_cast<unsigned char>(s[i]),
                static_cast<unsigned char>(original[i]) ^ key[i % 4])
          << n << " " << i;
    }
    apply_mask(s.data(), s.size(), m);
    EXPECT_EQ(s, original);
  }
}

TEST(WsFrameEncoder, ClosePayload) {
  EXPECT_EQ(close_payload(1000, ""), bytes({0x03, 0xE8}));
  EXPECT_EQ(close_payload(1009, "message too big"), bytes({0x03, 0xF1}) + "message too big");
  EXPECT_EQ(close_payload(protocol::close_code::kNoStatus, "ignored"), "");
  EXPECT_EQ(close_payload(0, ""), "");
  // Cut to 123 bytes of reason, never inside a UTF-8 sequence.
  const std::string euros = [] {
    std::string s;
    for (int i = 0; i < 50; ++i)
      s += "\xE2\x82\xAC";
    return s;
  }();
  const auto p = close_payload(1000, euros);
  EXPECT_EQ(p.size(), 2u + 123u);  // 41 whole euro signs
  EXPECT_TRUE(valid_utf8(p.data() + 2, p.size() - 2));
  const auto q = close_payload(1000, "a" + euros);
  EXPECT_EQ(q.size(), 2u + 121u);  // "a" + 40 euro signs
  EXPECT_TRUE(valid_utf8(q.data() + 2, q.size() - 2));
  // Whatever the encoder writes, the parser reads back.
  const auto ev = one(frame(0x88, p));
  EXPECT_EQ(ev.kind, Kind::close);
  EXPECT_EQ(ev.code, 1000);
}

TEST(WsFrameEncoder, CloseCodes) {
  for (int c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999})
    EXPECT_TRUE(valid_close_code(c)) << c;
  for (int c : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000})
    EXPECT_FALSE(valid_close_code(c)) << c;
}

}  // namespace
}  // namespace rtsync::client::ws
