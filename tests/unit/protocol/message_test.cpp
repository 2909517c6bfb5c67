#include "rtsync/protocol/message.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "reference_frames.hpp"

namespace rtsync::protocol {
namespace {

using namespace test;  // NOLINT

// The documented frame without insignificant whitespace, keys in their original order; produced
// by Boost.JSON, not by the encoder under test.
std::string compact(std::string_view text) {
  return json::serialize(json::parse(text));
}

// ---- vsn 2 golden frames ----------------------------------------------------------------------

class V2Golden : public ::testing::TestWithParam<std::string_view> {};

TEST_P(V2Golden, DecodesAndReencodesByteForByte) {
  auto m = decode_v2(GetParam());
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(encode_v2(m.value()), compact(GetParam()));
  // And through the vsn switch.
  EXPECT_EQ(encode_text(Vsn::v2, decode_text(Vsn::v2, GetParam()).value()), compact(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Reference, V2Golden,
                         ::testing::Values(kV2Heartbeat, kV2HeartbeatReply, kV2JoinDocs,
                                           kV2JoinRealtimeJs, kV2JoinReplay, kV2JoinReply,
                                           kV2JoinErrorReply, kV2UnmatchedTopicReply, kV2System,
                                           kV2PostgresChanges, kV2BroadcastIn, kV2BroadcastOut,
                                           kV2PresenceTrack, kV2PresenceState, kV2PresenceDiff,
                                           kV2Leave, kV2Close, kV2Error, kV2AccessToken,
                                           kV2SerializerTest));

TEST(V2Decode, HeartbeatFields) {
  auto m = decode_v2(kV2Heartbeat).value();
  EXPECT_EQ(m.join_ref, std::nullopt);
  EXPECT_EQ(m.ref, "26");
  EXPECT_EQ(m.topic, kPhoenixTopic);
  EXPECT_EQ(m.event, events::kHeartbeat);
  EXPECT_TRUE(m.payload.is_object());
  EXPECT_TRUE(m.payload.get_object().empty());
}

TEST(V2Decode, SystemFieldsKeepJoinRefAndNullRef) {
  auto m = decode_v2(kV2System).value();
  EXPECT_EQ(m.join_ref, "13");
  EXPECT_EQ(m.ref, std::nullopt);
  EXPECT_EQ(m.event, events::kSystem);
  EXPECT_EQ(core::find_string(m.payload, "channel"), "main");
}

TEST(V2Decode, JoinFromRealtimeJsKeepsWholePayload) {
  auto m = decode_v2(kV2JoinRealtimeJs).value();
  EXPECT_EQ(m.join_ref, "3");
  EXPECT_EQ(m.ref, "3");
  EXPECT_EQ(m.topic, "realtime:room1");
  EXPECT_EQ(m.event, events::kJoin);
  EXPECT_EQ(core::find_string(m.payload, "access_token"), "eyJhbGciOi...");
  const auto* config = core::find_object(m.payload, "config");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(core::find_string(config->at("postgres_changes").at(0), "filter"), "id=eq.1");
}

TEST(V2Decode, ExtraElementsAfterPayloadAreIgnored) {
  auto m = decode_v2(R"(["1","2","t","e",{"a":1},"extra",7])");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(encode_v2(m.value()), R"(["1","2","t","e",{"a":1}])");
}

TEST(V2Encode, AbsentRefsAreNullAsInRealtimeJsSerializerTest) {
  Message m;
  m.topic = "t";
  m.event = "e";
  m.payload = json::object{{"foo", 1}};
  EXPECT_EQ(encode_v2(m), R"([null,null,"t","e",{"foo":1}])");
}

// ---- vsn 1 golden frames ----------------------------------------------------------------------

TEST(V1Golden, FramesInOurKeyOrderReencodeByteForByte) {
  for (auto frame : {kV1Heartbeat, kV1HeartbeatReply, kV1Join}) {
    auto m = decode_v1(frame);
    ASSERT_TRUE(m.ok()) << frame;
    EXPECT_EQ(encode_v1(m.value()), compact(frame)) << frame;
  }
}

TEST(V1Golden, FramesInOtherKeyOrderReencodeToEqualJson) {
  for (auto frame :
       {kV1JoinReplyPy, kV1JoinReplyIntegration, kV1SystemTokenExpired, kV1CloseAfterSystem}) {
    auto m = decode_v1(frame);
    ASSERT_TRUE(m.ok()) << frame;
    auto out = encode_v1(m.value());
    EXPECT_TRUE(core::json_equal(jv(out), jv(frame))) << out;
    EXPECT_EQ(out.rfind(R"({"topic":)", 0), 0u) << out;
  }
}

TEST(V1Decode, JoinCarriesJoinRef) {
  auto m = decode_v1(kV1Join).value();
  EXPECT_EQ(m.join_ref, "1");
  EXPECT_EQ(m.ref, "1");
  EXPECT_EQ(m.topic, "realtime:presence-room");
  EXPECT_EQ(m.event, events::kJoin);
}

TEST(V1Decode, NullRefAndNullJoinRefAreAbsent) {
  auto m = decode_v1(R"({"topic":"t","event":"e","payload":{},"ref":null,"join_ref":null})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->ref, std::nullopt);
  EXPECT_EQ(m->join_ref, std::nullopt);
}

TEST(V1Encode, OmitsAbsentJoinRefAndWritesNullRef) {
  Message m;
  m.topic = "realtime:t";
  m.event = "phx_close";
  EXPECT_EQ(encode_v1(m), R"({"topic":"realtime:t","event":"phx_close","payload":{},"ref":null})");
  m.ref = "4";
  m.join_ref = "3";
  EXPECT_EQ(encode_v1(m),
            R"({"topic":"realtime:t","event":"phx_close","payload":{},"ref":"4","join_ref":"3"})");
  EXPECT_EQ(encode_text(Vsn::v1, m), encode_v1(m));
}

TEST(V1AndV2, SameMessageRoundTripsThroughBoth) {
  auto m = decode_v2(kV2PostgresChanges).value();
  auto v1 = decode_v1(encode_v1(m));
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1.value(), m);
}

// ---- encoding details -------------------------------------------------------------------------

TEST(Encode, StringsAreEscapedLikeJsonStringify) {
  Message m;
  m.topic = std::string("a\"b\\c/\n\t\r\b\f\x01\x1f\x7f", 14) + "é€😀";
  m.event = "e";
  // JSON.stringify(["a\"b\\c/\n\t\r\b\f\x01\x1f\x7f" + "é€😀"]) — '/' and DEL stay as is.
  EXPECT_EQ(encode_v2(m), std::string(R"([null,null,"a\"b\\c/\n\t\r\b\f\u0001\u001f)") + "\x7f" +
                              "é€😀" + R"(","e",{}])");
  auto back = decode_v2(encode_v2(m));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->topic, m.topic);
}

TEST(Encode, LongStringsWithEscapesAfterTheFastPath) {
  Message m;
  m.topic = std::string(40, 'x') + "\"" + std::string(9, 'y') + "\n";
  m.event = "e";
  auto back = decode_v1(encode_v1(m));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->topic, m.topic);
}

TEST(Encode, NumbersRoundTripAndNonFiniteBecomeNull) {
  Message m;
  m.topic = "t";
  m.event = "e";
  m.payload = json::object{{"i", -9223372036854775807LL - 1},
                           {"u", 18446744073709551615ULL},
                           {"d", 0.1},
                           {"big", 1e300},
                           {"inf", std::numeric_limits<double>::infinity()},
                           {"nan", std::numeric_limits<double>::quiet_NaN()}};
  auto text = encode_v2(m);
  auto back = decode_v2(text);
  ASSERT_TRUE(back.ok()) << text;
  const auto& p = back->payload.get_object();
  EXPECT_EQ(p.at("i").as_int64(), -9223372036854775807LL - 1);
  EXPECT_EQ(p.at("u").as_uint64(), 18446744073709551615ULL);
  EXPECT_EQ(p.at("d").as_double(), 0.1);
  EXPECT_EQ(p.at("big").as_double(), 1e300);
  EXPECT_TRUE(p.at("inf").is_null());
  EXPECT_TRUE(p.at("nan").is_null());
}

TEST(Encode, NestedArraysAndObjectsKeepOrder) {
  Message m;
  m.topic = "t";
  m.event = "e";
  m.payload = jv(R"({"z":[1,[2,{"b":true,"a":null}],"s"],"a":{}})");
  EXPECT_EQ(encode_v2(m), R"([null,null,"t","e",{"z":[1,[2,{"b":true,"a":null}],"s"],"a":{}}])");
}

TEST(Encode, VeryDeepValuesBuiltInCodeStillSerialize) {
  // Deeper than the decoder accepts and than the writer recurses: must not crash.
  json::value v = json::array();
  for (int i = 0; i < 1000; ++i)
    v = json::array{std::move(v)};
  Message m;
  m.topic = "t";
  m.event = "e";
  m.payload = json::object{{"deep", std::move(v)}};
  auto text = encode_v2(m);
  EXPECT_EQ(text.size(), std::string(R"([null,null,"t","e",{"deep":]})").size() + 2 * 1001);
}

// ---- bad input: one test per case -------------------------------------------------------------

void expect_error(const Result<Message>& r, Errc code) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, code) << r.error().describe();
  EXPECT_FALSE(r.error().message.empty());
}

TEST(BadText, EmptyInput) {
  expect_error(decode_v1(""), Errc::invalid_json);
  expect_error(decode_v2(""), Errc::invalid_json);
}

TEST(BadText, InvalidJson) {
  expect_error(decode_v1(R"({"topic":"t",)"), Errc::invalid_json);
  expect_error(decode_v2(R"([null,"1","t","e",{}] trailing)"), Errc::invalid_json);
  expect_error(decode_v2(R"([null,"1","t","e",{},])"), Errc::invalid_json);
}

TEST(BadText, InvalidUtf8InsideJsonString) {
  expect_error(decode_v2("[null,null,\"t\xff\",\"e\",{}]"), Errc::invalid_json);
}

TEST(BadText, V2NotAnArrayAtTopLevel) {
  expect_error(decode_v2(R"({"topic":"t","event":"e","payload":{},"ref":null})"),
               Errc::invalid_frame);
  expect_error(decode_v2("42"), Errc::invalid_frame);
}

TEST(BadText, V1NotAnObjectAtTopLevel) {
  expect_error(decode_v1(R"([null,null,"t","e",{}])"), Errc::invalid_frame);
  expect_error(decode_v1(R"("text")"), Errc::invalid_frame);
}

TEST(BadText, V2WrongArity) {
  expect_error(decode_v2("[]"), Errc::invalid_frame);
  expect_error(decode_v2(R"([null,"1","t","e"])"), Errc::invalid_frame);
}

TEST(BadText, V2NonStringTopic) {
  expect_error(decode_v2(R"([null,"1",7,"e",{}])"), Errc::invalid_frame);
  expect_error(decode_v2(R"([null,"1",null,"e",{}])"), Errc::invalid_frame);
}

TEST(BadText, V2NonStringEvent) {
  expect_error(decode_v2(R"([null,"1","t",["e"],{}])"), Errc::invalid_frame);
}

TEST(BadText, V2RefOfWrongType) {
  expect_error(decode_v2(R"([null,1,"t","e",{}])"), Errc::invalid_frame);
  expect_error(decode_v2(R"([null,{},"t","e",{}])"), Errc::invalid_frame);
}

TEST(BadText, V2JoinRefOfWrongType) {
  expect_error(decode_v2(R"([3,"1","t","e",{}])"), Errc::invalid_frame);
  expect_error(decode_v2(R"([{"a":1},"1","t","e",{}])"), Errc::invalid_frame);
}

TEST(BadText, V2PayloadNotAnObject) {
  expect_error(decode_v2(R"([null,"1","t","e",[]])"), Errc::invalid_frame);
  expect_error(decode_v2(R"([null,"1","t","e","x"])"), Errc::invalid_frame);
}

TEST(BadText, V1MissingRequiredKey) {
  expect_error(decode_v1(R"({"event":"e","payload":{},"ref":null})"), Errc::invalid_frame);
  expect_error(decode_v1(R"({"topic":"t","payload":{},"ref":null})"), Errc::invalid_frame);
  expect_error(decode_v1(R"({"topic":"t","event":"e","ref":null})"), Errc::invalid_frame);
  expect_error(decode_v1(R"({"topic":"t","event":"e","payload":{}})"), Errc::invalid_frame);
}

TEST(BadText, V1NonStringTopicOrEvent) {
  expect_error(decode_v1(R"({"topic":1,"event":"e","payload":{},"ref":null})"),
               Errc::invalid_frame);
  expect_error(decode_v1(R"({"topic":"t","event":false,"payload":{},"ref":null})"),
               Errc::invalid_frame);
}

TEST(BadText, V1RefsOfWrongType) {
  expect_error(decode_v1(R"({"topic":"t","event":"e","payload":{},"ref":5})"), Errc::invalid_frame);
  expect_error(decode_v1(R"({"topic":"t","event":"e","payload":{},"ref":"1","join_ref":{}})"),
               Errc::invalid_frame);
}

TEST(BadText, V1PayloadNotAnObject) {
  expect_error(decode_v1(R"({"topic":"t","event":"e","payload":null,"ref":null})"),
               Errc::invalid_frame);
}

TEST(BadText, NestingDeeperThanTheLimit) {
  std::string deep =
      R"([null,null,"t","e",{"a":)" + std::string(200, '[') + std::string(200, ']') + "}]";
  expect_error(decode_v2(deep), Errc::invalid_json);
  std::string ok =
      R"([null,null,"t","e",{"a":)" + std::string(100, '[') + std::string(100, ']') + "}]";
  EXPECT_TRUE(decode_v2(ok).ok());
}

// ---- vsn ----------------------------------------------------------------------------------------

TEST(Vsn, ParsesVersionsAndDefaultsToV1) {
  EXPECT_EQ(parse_vsn("1.0.0").value(), Vsn::v1);
  EXPECT_EQ(parse_vsn("2.0.0").value(), Vsn::v2);
  EXPECT_EQ(parse_vsn("1.0").value(), Vsn::v1);
  EXPECT_EQ(parse_vsn("2").value(), Vsn::v2);
  EXPECT_EQ(parse_vsn("").value(), Vsn::v1);
  for (auto bad : {"3.0.0", "0.9", "2.0.0-rc", "12.0", "x", "v2"}) {
    auto r = parse_vsn(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
  }
  EXPECT_EQ(to_string(Vsn::v1), "1.0.0");
  EXPECT_EQ(to_string(Vsn::v2), "2.0.0");
}

// ---- binary frames: Supabase's documented byte examples -----------------------------------------

constexpr std::string_view kChatTopic = "realtime:chat-room";
constexpr std::string_view kKind3Payload =
    R"({"content":"Hello, World!","createdAt":"2025-11-17T21:14:14Z","id":"9b823349-71c0-465b-9a83-a63aa2a9ae6d","username":"VCSHLD556nQD-B-vUTJJ3"})";
constexpr std::string_view kKind4Meta = R"({"id":"006554ce-d22d-469c-877a-88bef47214a3"})";
constexpr std::string_view kKind4Payload =
    R"({"id":"513edcc1-4cbc-4274-aa26-c195f7e8c090","content":"oi","username":"hpK9jN2iY-I2HioHWr5ml","createdAt":"2025-11-18T22:44:29Z"})";

std::string bytes(std::initializer_list<int> header, std::initializer_list<std::string_view> rest) {
  std::string out;
  for (int b : header)
    out.push_back(static_cast<char>(b));
  for (auto s : rest)
    out.append(s);
  return out;
}

std::string kind3_example() {
  return bytes({0x03, 0x02, 0x01, 0x12, 0x0A, 0x00, 0x01},
               {"10", "1", kChatTopic, "user-event", kKind3Payload});
}

std::string kind4_example() {
  static_assert(kKind4Meta.size() == 0x2D);
  return bytes({0x04, 0x12, 0x07, 0x2D, 0x01}, {kChatTopic, "message", kKind4Meta, kKind4Payload});
}

TEST(Kind3, ReferenceExampleDecodes) {
  auto b = decode_user_broadcast(kind3_example());
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ(b->join_ref, "10");
  EXPECT_EQ(b->ref, "1");
  EXPECT_EQ(b->topic, kChatTopic);
  EXPECT_EQ(b->user_event, "user-event");
  EXPECT_EQ(b->metadata, "");
  EXPECT_EQ(b->encoding, PayloadEncoding::json);
  EXPECT_EQ(b->payload, kKind3Payload);
}

TEST(Kind3, ReferenceExampleEncodesByteForByte) {
  UserBroadcast b;
  b.join_ref = "10";
  b.ref = "1";
  b.topic = std::string(kChatTopic);
  b.user_event = "user-event";
  b.payload = std::string(kKind3Payload);
  EXPECT_EQ(encode_user_broadcast_push(b).value(), kind3_example());
  EXPECT_EQ(encode_user_broadcast_push(decode_user_broadcast(kind3_example()).value()).value(),
            kind3_example());
}

TEST(Kind3, ToMessageIsTheJsonBroadcastPushSameAsTextFrame) {
  auto m = to_message(decode_user_broadcast(kind3_example()).value());
  ASSERT_TRUE(m.ok());
  // The JSON text form of the same push (docs/protocol.md §3.2) carries the same message.
  EXPECT_EQ(m.value(), decode_v2(kV2BroadcastIn).value());
}

TEST(Kind4, ReferenceExampleDecodes) {
  auto b = decode_user_broadcast(kind4_example());
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ(b->join_ref, std::nullopt);
  EXPECT_EQ(b->ref, std::nullopt);
  EXPECT_EQ(b->topic, kChatTopic);
  EXPECT_EQ(b->user_event, "message");
  EXPECT_EQ(b->metadata, kKind4Meta);
  EXPECT_EQ(b->encoding, PayloadEncoding::json);
  EXPECT_EQ(b->payload, kKind4Payload);
}

TEST(Kind4, ReferenceExampleEncodesByteForByte) {
  UserBroadcast b;
  b.topic = std::string(kChatTopic);
  b.user_event = "message";
  b.metadata = std::string(kKind4Meta);
  b.payload = std::string(kKind4Payload);
  EXPECT_EQ(encode_user_broadcast(b).value(), kind4_example());
  // Refs are not part of kind 4.
  b.join_ref = "1";
  b.ref = "2";
  EXPECT_EQ(encode_user_broadcast(b).value(), kind4_example());
}

TEST(Kind4, ToMessageEqualsTheJsonBroadcastOfTheReference) {
  auto m = to_message(decode_user_broadcast(kind4_example()).value());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->join_ref, std::nullopt);
  EXPECT_EQ(m->ref, std::nullopt);
  EXPECT_EQ(m->topic, kChatTopic);
  EXPECT_EQ(m->event, events::kBroadcast);
  EXPECT_EQ(m.value(), decode_v2(kV2BroadcastOut).value());
  EXPECT_EQ(decode_binary(kind4_example()).value(), m.value());
}

TEST(Kind4, WithoutMetadataHasNoMetaKey) {
  UserBroadcast b;
  b.topic = "realtime:r";
  b.user_event = "ev";
  b.payload = R"({"x":1})";
  auto m = decode_binary(encode_user_broadcast(b).value()).value();
  EXPECT_TRUE(
      core::json_equal(m.payload, jv(R"({"type":"broadcast","event":"ev","payload":{"x":1}})")));
}

TEST(Kind4, BinaryEncodedPayloadBecomesStringOfRawBytes) {
  UserBroadcast b;
  b.topic = "realtime:r";
  b.user_event = "bin";
  b.encoding = PayloadEncoding::binary;
  b.payload = std::string("\x00\xff\x01", 3);
  auto frame = encode_user_broadcast(b).value();
  EXPECT_EQ(frame,
            bytes({0x04, 10, 3, 0, 0}, {"realtime:r", "bin", std::string_view("\x00\xff\x01", 3)}));
  auto decoded = decode_user_broadcast(frame).value();
  EXPECT_EQ(decoded.encoding, PayloadEncoding::binary);
  EXPECT_EQ(decoded.payload, b.payload);
  auto m = to_message(decoded).value();
  const auto& inner = m.payload.at("payload");
  ASSERT_TRUE(inner.is_string());
  EXPECT_EQ(std::string_view(inner.get_string()), b.payload);
}

TEST(Binary, EncodeRejectsFieldsLongerThan255Bytes) {
  UserBroadcast b;
  b.topic = std::string(256, 't');
  b.user_event = "e";
  b.payload = "{}";
  EXPECT_EQ(encode_user_broadcast(b).error().code, Errc::too_large);
  b.topic = std::string(255, 't');
  EXPECT_TRUE(encode_user_broadcast(b).ok());
  b.ref = std::string(256, '1');
  EXPECT_TRUE(encode_user_broadcast(b).ok());  // kind 4 carries no refs
  EXPECT_EQ(encode_user_broadcast_push(b).error().code, Errc::too_large);
}

TEST(Binary, BroadcastTextFramesMatchToMessage) {
  auto b = decode_user_broadcast(kind4_example()).value();
  auto expected = to_message(b).value();
  auto v2 = encode_broadcast_text(Vsn::v2, b);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(decode_v2(v2.value()).value(), expected);
  auto v1 = encode_broadcast_text(Vsn::v1, b);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(decode_v1(v1.value()).value(), expected);
  // Kind 3 pushes fan out with null refs.
  auto push = decode_user_broadcast(kind3_example()).value();
  auto fan = decode_v2(encode_broadcast_text(Vsn::v2, push).value()).value();
  EXPECT_EQ(fan.join_ref, std::nullopt);
  EXPECT_EQ(fan.ref, std::nullopt);
  EXPECT_TRUE(core::json_equal(fan.payload, decode_v2(kV2BroadcastIn)->payload));
  b.encoding = PayloadEncoding::binary;
  EXPECT_EQ(encode_broadcast_text(Vsn::v2, b).error().code, Errc::invalid_argument);
}

// ---- bad binary input: one test per case --------------------------------------------------------

void expect_binary_error(std::string_view frame, Errc code) {
  auto r = decode_user_broadcast(frame);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, code) << r.error().describe();
  auto m = decode_binary(frame);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, code) << m.error().describe();
}

TEST(BadBinary, EmptyFrame) {
  expect_binary_error("", Errc::truncated);
}

TEST(BadBinary, ShorterThanKind3Header) {
  expect_binary_error(bytes({0x03, 0, 0, 0, 0, 0}, {}), Errc::truncated);
}

TEST(BadBinary, ShorterThanKind4Header) {
  expect_binary_error(bytes({0x04, 0, 0, 0}, {}), Errc::truncated);
  expect_binary_error(bytes({0x04}, {}), Errc::truncated);
}

TEST(BadBinary, LengthsPastTheEnd) {
  auto frame = kind4_example();
  // Cut inside the metadata.
  expect_binary_error(frame.substr(0, 5 + 0x12 + 7 + 10), Errc::truncated);
  // Topic length larger than the whole frame.
  expect_binary_error(bytes({0x04, 0xFF, 0, 0, 1}, {"abc"}), Errc::truncated);
  expect_binary_error(bytes({0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1}, {"abc"}), Errc::truncated);
}

TEST(BadBinary, UnknownKinds) {
  for (int kind : {0, 1, 2, 5, 0xFF}) {
    expect_binary_error(bytes({kind, 0, 0, 0, 1, 0, 1}, {"{}"}), Errc::unknown_kind);
  }
}

TEST(BadBinary, UnknownPayloadEncoding) {
  expect_binary_error(bytes({0x04, 1, 1, 0, 2}, {"t", "e", "{}"}), Errc::invalid_frame);
}

TEST(BadBinary, InvalidUtf8InTopic) {
  expect_binary_error(bytes({0x04, 2, 1, 0, 1}, {"t\xff", "e", "{}"}), Errc::invalid_utf8);
  // Overlong encoding of '/' and a UTF-16 surrogate are not UTF-8 either.
  expect_binary_error(bytes({0x04, 2, 1, 0, 1}, {"\xc0\xaf", "e", "{}"}), Errc::invalid_utf8);
  expect_binary_error(bytes({0x04, 3, 1, 0, 1}, {"\xed\xa0\x80", "e", "{}"}), Errc::invalid_utf8);
}

TEST(BadBinary, InvalidUtf8InEvent) {
  expect_binary_error(bytes({0x04, 1, 2, 0, 1}, {"t", "\xe2\x82", "{}"}), Errc::invalid_utf8);
}

TEST(BadBinary, InvalidUtf8InRefs) {
  expect_binary_error(bytes({0x03, 1, 0, 1, 1, 0, 1}, {"\x80", "t", "e", "{}"}),
                      Errc::invalid_utf8);
  expect_binary_error(bytes({0x03, 0, 1, 1, 1, 0, 1}, {"\xf5", "t", "e", "{}"}),
                      Errc::invalid_utf8);
}

TEST(BadBinary, MetadataNotJson) {
  expect_binary_error(bytes({0x04, 1, 1, 3, 1}, {"t", "e", "{x}", "{}"}), Errc::invalid_json);
}

TEST(BadBinary, JsonEncodedPayloadNotJson) {
  expect_binary_error(bytes({0x04, 1, 1, 0, 1}, {"t", "e", "{\"a\":"}), Errc::invalid_json);
  expect_binary_error(bytes({0x04, 1, 1, 0, 1}, {"t", "e", ""}), Errc::invalid_json);
}

TEST(Binary, ValidUtf8MultibyteFieldsAreAccepted) {
  UserBroadcast b;
  b.topic = "realtime:café-😀";
  b.user_event = "événement";
  b.payload = "{}";
  auto back = decode_user_broadcast(encode_user_broadcast(b).value());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->topic, b.topic);
  EXPECT_EQ(back->user_event, b.user_event);
}

TEST(Binary, BinaryPayloadNeedNotBeJsonOrUtf8) {
  auto r = decode_user_broadcast(bytes({0x04, 1, 1, 0, 0}, {"t", "e", "\xff\xfe{"}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->payload, "\xff\xfe{");
}

}  // namespace
}  // namespace rtsync::protocol

namespace rtsync::protocol {
namespace {

// ---- storage and buffers ------------------------------------------------------------------------

TEST(Storage, DecodedPayloadOutlivesItsMessageThroughCopies) {
  std::optional<json::value> shared_copy;  // copy constructor: shares the frame's arena
  json::value detached;                    // default storage: deep copy
  {
    auto m = decode_v2(test::kV2PostgresChanges).value();
    shared_copy.emplace(m.payload);
    detached = m.payload.at("data");
    Message moved = std::move(m);
    EXPECT_EQ(moved.payload.storage(), shared_copy->storage());
  }
  EXPECT_EQ(shared_copy->at("data").at("record").at("text").as_string(), "content");
  EXPECT_EQ(detached.at("table").as_string(), "test");
  // Mutating a copy that shares the arena works (allocates from it).
  shared_copy->as_object()["extra"] = json::string(std::string(100, 'x'));
  EXPECT_EQ(shared_copy->at("extra").as_string().size(), 100u);
}

TEST(Storage, KindFourMessageOutlivesTheFrame) {
  Message m;
  {
    UserBroadcast b;
    b.topic = "realtime:r";
    b.user_event = "e";
    b.metadata = R"({"id":"m"})";
    b.payload = R"({"text":"a string longer than any small buffer"})";
    m = to_message(b).value();
  }
  EXPECT_EQ(m.payload.at("payload").at("text").as_string(),
            "a string longer than any small buffer");
  EXPECT_EQ(m.payload.at("meta").at("id").as_string(), "m");
}

TEST(EncodeBuffer, LargeFramesThenSmallFrames) {
  Message big;
  big.topic = "t";
  big.event = "e";
  big.payload = json::object{{"blob", std::string(3 << 20, 'a')}, {"n", 1}};
  auto text = encode_v2(big);
  EXPECT_EQ(text.size(),
            (3u << 20) + std::string(R"([null,null,"t","e",{"blob":"","n":1}])").size());
  auto back = decode_v2(text);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->payload.at("blob").as_string().size(), 3u << 20);
  Message small;
  small.topic = "t";
  small.event = "e";
  EXPECT_EQ(encode_v2(small), R"([null,null,"t","e",{}])");
  // Escapes that expand six-fold must fit too.
  Message controls;
  controls.topic = std::string(5000, '\x01');
  controls.event = "e";
  EXPECT_EQ(decode_v1(encode_v1(controls))->topic, controls.topic);
}

}  // namespace
}  // namespace rtsync::protocol

namespace rtsync::protocol {
namespace {

// The escaping JSON.stringify does, byte by byte (the reference for the block-wise writer).
std::string escape_reference(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

TEST(Encode, EscapingAtEveryPositionAndLength) {
  const std::string specials = std::string("\"\\\n\x01\x1f\x7f\x80\xff \x00", 10);
  for (std::size_t len = 0; len <= 40; ++len) {
    for (std::size_t pos = 0; pos <= len; ++pos) {
      for (char special : specials) {
        std::string s;
        for (std::size_t i = 0; i < len; ++i)
          s.push_back(static_cast<char>('a' + i % 26));
        if (pos < len) s[pos] = special;
        Message m;
        m.topic = s;
        m.event = "e";
        const auto text = encode_v2(m);
        ASSERT_EQ(text, "[null,null," + escape_reference(s) + R"(,"e",{}])")
            << "len " << len << " pos " << pos << " char " << int(special);
      }
    }
  }
}

}  // namespace
}  // namespace rtsync::protocol
