#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "reference_frames.hpp"
#include "rtsync/protocol/join.hpp"
#include "rtsync/protocol/message.hpp"
#include "rtsync/protocol/reply.hpp"

namespace rtsync::protocol {
namespace {

using namespace test;  // NOLINT

json::value payload_of(std::string_view v2_frame) {
  return decode_v2(v2_frame).value().payload;
}

// ---- join payload -------------------------------------------------------------------------------

TEST(JoinPayload, BuildsWhatRealtimeJsSendsByteForByte) {
  JoinRequest req;
  req.config.postgres_changes.push_back({"*", "public", "todos", "id=eq.1"});
  req.access_token = "eyJhbGciOi...";
  // realtime-js's frame minus the "version" key it appends after access_token.
  auto expected = payload_of(kV2JoinRealtimeJs);
  expected.as_object().erase("version");
  EXPECT_EQ(json::serialize(build_join_payload(req)), json::serialize(expected));
}

TEST(JoinPayload, OmitsAbsentSpecFieldsAndAccessToken) {
  JoinRequest req;
  req.config.postgres_changes.push_back({"INSERT", "public", std::nullopt, std::nullopt});
  req.config.broadcast_self = true;
  req.config.is_private = true;
  EXPECT_EQ(
      json::serialize(build_join_payload(req)),
      R"({"config":{"broadcast":{"ack":false,"self":true},"presence":{"key":"","enabled":false},"postgres_changes":[{"event":"INSERT","schema":"public"}],"private":true}})");
}

TEST(JoinPayload, ParsesRealtimeJsJoin) {
  auto r = parse_join_payload(payload_of(kV2JoinRealtimeJs));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  const auto& c = r->config;
  EXPECT_FALSE(c.broadcast_ack);
  EXPECT_FALSE(c.broadcast_self);
  EXPECT_EQ(c.presence_key, "");
  EXPECT_FALSE(c.presence_enabled);
  EXPECT_FALSE(c.is_private);
  ASSERT_EQ(c.postgres_changes.size(), 1u);
  EXPECT_EQ(c.postgres_changes[0], (PostgresChangesSpec{"*", "public", "todos", "id=eq.1"}));
  EXPECT_EQ(r->access_token, "eyJhbGciOi...");
}

TEST(JoinPayload, ParsesDocsJoinWithReplayAndPresence) {
  auto r = parse_join_payload(payload_of(kV2JoinReplay)).value();
  EXPECT_FALSE(r.config.broadcast_ack);
  EXPECT_TRUE(r.config.broadcast_self);
  EXPECT_EQ(r.config.presence_key, "user_id-827");
  EXPECT_TRUE(r.config.presence_enabled);
  EXPECT_TRUE(r.config.postgres_changes.empty());
  EXPECT_TRUE(r.config.is_private);
  EXPECT_EQ(r.access_token, std::nullopt);
  ASSERT_TRUE(r.config.replay);
  EXPECT_EQ(r.config.replay->since, 1763407103911);
  EXPECT_EQ(r.config.replay->limit, 10);
  EXPECT_FALSE(r.config.replay_invalid);
}

json::value replay_payload(std::string_view replay_json) {
  return json::parse(R"({"config":{"broadcast":{"replay":)" + std::string(replay_json) +
                     R"(},"private":true}})");
}

TEST(JoinPayload, ReplayParamsAreIntegersInRange) {
  auto ok = [](std::string_view text) {
    auto r = parse_join_payload(replay_payload(text)).value();
    EXPECT_FALSE(r.config.replay_invalid) << text;
    return r.config.replay;
  };
  EXPECT_EQ(ok(R"({"since":0})"), (ReplayConfig{0, std::nullopt}));
  EXPECT_EQ(ok(R"({"since":5,"limit":null})"), (ReplayConfig{5, std::nullopt}));
  EXPECT_EQ(ok(R"({"since":-1,"limit":-3})"), (ReplayConfig{-1, -3}));
  EXPECT_EQ(ok(R"({"since":253402300799999,"limit":100})"), (ReplayConfig{253402300799999, 100}));
  EXPECT_EQ(ok(R"({"since":-377705116800000})"), (ReplayConfig{-377705116800000, std::nullopt}));
  // null is no replay at all
  EXPECT_EQ(ok("null"), std::nullopt);

  for (std::string_view bad : {R"({})", R"({"limit":5})", R"({"since":"1763407103911"})",
                               R"({"since":1.5})", R"({"since":1e3})", R"({"since":null})",
                               R"({"since":1,"limit":"5"})", R"({"since":1,"limit":2.5})",
                               R"({"since":253402300800000})", R"({"since":-377705116800001})",
                               R"({"since":18446744073709551615})", R"("yes")", "[]", "7"}) {
    auto r = parse_join_payload(replay_payload(bad));
    ASSERT_TRUE(r.ok()) << bad << ": a bad replay is the server's join error, not a parse error";
    EXPECT_TRUE(r.value().config.replay_invalid) << bad;
    EXPECT_EQ(r.value().config.replay, std::nullopt) << bad;
  }
}

TEST(JoinPayload, ReplayLimitIsClampedToOneToTwentyFive) {
  EXPECT_EQ(effective_replay_limit({0, std::nullopt}), 25);
  EXPECT_EQ(effective_replay_limit({0, 0}), 1);
  EXPECT_EQ(effective_replay_limit({0, -7}), 1);
  EXPECT_EQ(effective_replay_limit({0, 1}), 1);
  EXPECT_EQ(effective_replay_limit({0, 24}), 24);
  EXPECT_EQ(effective_replay_limit({0, 25}), 25);
  EXPECT_EQ(effective_replay_limit({0, 26}), 25);
  EXPECT_EQ(effective_replay_limit({0, INT64_MAX}), 25);
}

TEST(JoinPayload, ReplayRoundTrips) {
  JoinRequest req;
  req.config.is_private = true;
  req.config.replay = ReplayConfig{1763407103911, 10};
  auto built = build_join_payload(req);
  EXPECT_EQ(json::serialize(built.at("config").at("broadcast")),
            R"({"ack":false,"self":false,"replay":{"since":1763407103911,"limit":10}})");
  EXPECT_EQ(parse_join_payload(built).value().config.replay, req.config.replay);
  req.config.replay->limit.reset();
  EXPECT_EQ(json::serialize(build_join_payload(req).at("config").at("broadcast").at("replay")),
            R"({"since":1763407103911})");
}

TEST(JoinPayload, ParsesV1DocsJoin) {
  auto r = parse_join_payload(decode_v1(kV1Join).value().payload).value();
  EXPECT_FALSE(r.config.presence_enabled);
  EXPECT_EQ(r.config.presence_key, "");
  EXPECT_FALSE(r.config.is_private);
}

TEST(JoinPayload, RoundTrips) {
  JoinRequest req;
  req.config.broadcast_ack = true;
  req.config.presence_key = "k";
  req.config.presence_enabled = true;
  req.config.postgres_changes = {{"*", std::nullopt, "tasks", "project_id=eq.7"},
                                 {"UPDATE", "public", "tasks", std::nullopt}};
  req.access_token = "tok";
  auto back = parse_join_payload(build_join_payload(req)).value();
  EXPECT_EQ(back.config.broadcast_ack, true);
  EXPECT_EQ(back.config.presence_key, "k");
  EXPECT_EQ(back.config.presence_enabled, true);
  EXPECT_EQ(back.config.postgres_changes, req.config.postgres_changes);
  EXPECT_EQ(back.access_token, "tok");
}

TEST(JoinPayload, FlexibleBooleansAcceptStringsInAnyCase) {
  auto r = parse_join_payload(jv(
      R"({"config":{"broadcast":{"ack":"TRUE","self":"true"},"presence":{"enabled":"True"},"private":"fAlSe"}})"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->config.broadcast_ack);
  EXPECT_TRUE(r->config.broadcast_self);
  EXPECT_TRUE(r->config.presence_enabled);
  EXPECT_FALSE(r->config.is_private);
}

TEST(JoinPayload, MissingSectionsAndNullsTakeDefaults) {
  auto r = parse_join_payload(jv(R"({})")).value();
  EXPECT_FALSE(r.config.broadcast_ack);
  EXPECT_TRUE(r.config.postgres_changes.empty());
  r = parse_join_payload(
          jv(R"({"config":{"broadcast":null,"private":null,"postgres_changes":[null,{"event":"*"}]},"version":"x"})"))
          .value();
  EXPECT_FALSE(r.config.is_private);
  ASSERT_EQ(r.config.postgres_changes.size(), 1u);  // nil entries dropped, as the server does
  EXPECT_EQ(r.config.postgres_changes[0].schema, std::nullopt);
}

TEST(JoinPayload, LegacyUserTokenIsTheAccessToken) {
  EXPECT_EQ(parse_join_payload(jv(R"({"user_token":"u"})"))->access_token, "u");
  EXPECT_EQ(parse_join_payload(jv(R"({"access_token":"a","user_token":"u"})"))->access_token, "a");
}

TEST(JoinPayload, NonStringPresenceKeyKeptAsJsonText) {
  EXPECT_EQ(parse_join_payload(jv(R"({"config":{"presence":{"key":42}}})"))->config.presence_key,
            "42");
}

void expect_join_error(std::string_view payload) {
  auto r = parse_join_payload(jv(payload));
  ASSERT_FALSE(r.ok()) << payload;
  EXPECT_EQ(r.error().code, Errc::invalid_frame);
}

TEST(JoinPayload, UnreadableShapesAreErrors) {
  expect_join_error(R"([])");
  expect_join_error(R"({"config":[]})");
  expect_join_error(R"({"config":{"broadcast":true}})");
  expect_join_error(R"({"config":{"presence":"x"}})");
  expect_join_error(R"({"config":{"broadcast":{"ack":1}}})");
  expect_join_error(R"({"config":{"broadcast":{"self":"yes"}}})");
  expect_join_error(R"({"config":{"private":"maybe"}})");
  expect_join_error(R"({"config":{"postgres_changes":{}}})");
  expect_join_error(R"({"config":{"postgres_changes":["x"]}})");
  expect_join_error(R"({"config":{"postgres_changes":[{"event":5}]}})");
  expect_join_error(R"({"config":{"postgres_changes":[{"event":"*","table":["t"]}]}})");
  expect_join_error(R"({"access_token":7})");
}

// ---- join response
// --------------------------------------------------------------------------------

TEST(JoinResponse, ParsesDocsReplyIds) {
  auto reply = parse_reply(payload_of(kV2JoinReply)).value();
  auto acks = parse_join_response(reply.response);
  ASSERT_TRUE(acks.ok());
  ASSERT_TRUE(acks->has_value());
  ASSERT_EQ((*acks)->size(), 1u);
  EXPECT_EQ((**acks)[0].id, 106243155);
  EXPECT_EQ((**acks)[0].spec, (PostgresChangesSpec{"*", "public", "test", std::nullopt}));
}

TEST(JoinResponse, ParsesIntegrationReplyAndEmptyArray) {
  auto acks =
      parse_join_response(parse_reply(decode_v1(kV1JoinReplyIntegration)->payload)->response)
          .value();
  ASSERT_TRUE(acks.has_value());
  EXPECT_EQ(acks->at(0).id, 12345678);
  EXPECT_EQ(acks->at(0).spec.event, "INSERT");
  EXPECT_EQ(acks->at(0).spec.table, std::nullopt);
  auto empty = parse_join_response(parse_reply(decode_v1(kV1JoinReplyPy)->payload)->response);
  ASSERT_TRUE(empty.ok());
  ASSERT_TRUE(empty->has_value());
  EXPECT_TRUE((*empty)->empty());
}

TEST(JoinResponse, AbsentArrayIsNulloptNotEmpty) {
  auto r = parse_join_response(jv("{}"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST(JoinResponse, BadShapesAreErrors) {
  for (auto bad : {R"("x")", R"({"postgres_changes":{}})", R"({"postgres_changes":[1]})",
                   R"({"postgres_changes":[{"event":"*"}]})",
                   R"({"postgres_changes":[{"event":"*","id":"12"}]})",
                   R"({"postgres_changes":[{"event":"*","id":1.5}]})"}) {
    auto r = parse_join_response(jv(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_frame);
  }
}

TEST(JoinResponse, BuildsDocsReplyByteForByte) {
  auto response = build_join_response({{{"*", "public", "test", std::nullopt}, 106243155}});
  EXPECT_EQ(
      json::serialize(response),
      R"({"postgres_changes":[{"id":106243155,"event":"*","schema":"public","table":"test"}]})");
  EXPECT_EQ(json::serialize(ok_reply(response)), json::serialize(payload_of(kV2JoinReply)));
  EXPECT_EQ(json::serialize(build_join_response({})), R"({"postgres_changes":[]})");
}

TEST(SpecMatchesAck, EventExactOthersNullEqualsMissing) {
  PostgresChangesSpec client{"*", "public", "tasks", std::nullopt};
  EXPECT_TRUE(spec_matches_ack(client, client));
  EXPECT_FALSE(spec_matches_ack(client, {"INSERT", "public", "tasks", std::nullopt}));
  EXPECT_FALSE(spec_matches_ack({"insert", "public", "t", {}}, {"INSERT", "public", "t", {}}));
  EXPECT_FALSE(spec_matches_ack(client, {"*", "public", "tasks", "id=eq.1"}));
  EXPECT_FALSE(spec_matches_ack(client, {"*", std::nullopt, "tasks", std::nullopt}));
  // realtime-js only equates null and undefined; "" is a value.
  EXPECT_FALSE(spec_matches_ack(client, {"*", "public", "tasks", ""}));
  // A server ack parsed from JSON null equals the client's missing field.
  auto acks =
      parse_join_response(
          jv(R"({"postgres_changes":[{"id":1,"event":"*","schema":"public","table":"tasks","filter":null}]})"))
          .value();
  EXPECT_TRUE(spec_matches_ack(client, acks->at(0).spec));
}

// ---- replies ------------------------------------------------------------------------------------

TEST(Reply, ParsesHeartbeatReply) {
  auto r = parse_reply(payload_of(kV2HeartbeatReply));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, ReplyStatus::ok);
  EXPECT_TRUE(core::json_equal(r->response, json::object()));
}

TEST(Reply, ErrorReasonFromReasonKey) {
  auto r = parse_reply(payload_of(kV2JoinErrorReply)).value();
  EXPECT_EQ(r.status, ReplyStatus::error);
  EXPECT_EQ(r.reason(), "TopicNameRequired: You must provide a topic name");
  EXPECT_EQ(parse_reply(payload_of(kV2UnmatchedTopicReply))->reason(), "unmatched topic");
}

TEST(Reply, ErrorReasonOfBareStringAndOtherShapes) {
  EXPECT_EQ(parse_reply(jv(R"({"status":"error","response":"payload_size_exceeded"})"))->reason(),
            "payload_size_exceeded");
  EXPECT_EQ(parse_reply(jv(R"({"status":"error","response":{"error":"payload_size_exceeded"}})"))
                ->reason(),
            R"({"error":"payload_size_exceeded"})");
  EXPECT_EQ(parse_reply(jv(R"({"status":"error","response":{}})"))->reason(), "{}");
}

TEST(Reply, MissingResponseIsEmptyObject) {
  auto r = parse_reply(jv(R"({"status":"ok"})")).value();
  EXPECT_TRUE(core::json_equal(r.response, json::object()));
}

TEST(Reply, MissingOrUnknownStatusIsAnError) {
  for (auto bad : {R"({"response":{}})", R"({"status":"OK","response":{}})",
                   R"({"status":1,"response":{}})", R"([])"}) {
    auto r = parse_reply(jv(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_frame);
  }
}

TEST(Reply, BuildersMatchReferenceBytes) {
  EXPECT_EQ(json::serialize(ok_reply()), R"({"status":"ok","response":{}})");
  EXPECT_EQ(json::serialize(error_reply("TopicNameRequired", "You must provide a topic name")),
            json::serialize(payload_of(kV2JoinErrorReply)));
  EXPECT_EQ(json::serialize(error_reply("", "unmatched topic")),
            json::serialize(payload_of(kV2UnmatchedTopicReply)));
  Reply r{ReplyStatus::error, json::string("payload_size_exceeded")};
  EXPECT_EQ(json::serialize(build_reply(r)),
            R"({"status":"error","response":"payload_size_exceeded"})");
  EXPECT_EQ(json::serialize(build_reply(parse_reply(payload_of(kV2JoinReply)).value())),
            json::serialize(payload_of(kV2JoinReply)));
}

TEST(Reply, WholeReplyFramesMatchTheReference) {
  Message m;
  m.ref = "26";
  m.topic = std::string(kPhoenixTopic);
  m.event = std::string(events::kReply);
  m.payload = ok_reply();
  EXPECT_EQ(encode_v1(m), kV1HeartbeatReply);
  EXPECT_EQ(encode_v2(m), json::serialize(json::parse(kV2HeartbeatReply)));
}

// ---- system messages ----------------------------------------------------------------------------

TEST(System, ParsesDocsExample) {
  auto s = parse_system(payload_of(kV2System));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->extension, "postgres_changes");
  EXPECT_EQ(s->status, "ok");
  EXPECT_EQ(s->message, "Subscribed to PostgreSQL");
  EXPECT_EQ(s->channel, "main");
}

TEST(System, BuildsTheDocsFrame) {
  SystemMessage s{"postgres_changes", "ok", "Subscribed to PostgreSQL", "main"};
  auto payload = build_system(s);
  EXPECT_EQ(
      json::serialize(payload),
      R"({"extension":"postgres_changes","status":"ok","message":"Subscribed to PostgreSQL","channel":"main"})");
  Message m;
  m.join_ref = "13";
  m.topic = "realtime:chat-room";
  m.event = std::string(events::kSystem);
  m.payload = payload;
  EXPECT_EQ(m, decode_v2(kV2System).value());
}

TEST(System, ParsesTokenExpiredV1) {
  auto s = parse_system(decode_v1(kV1SystemTokenExpired)->payload).value();
  EXPECT_EQ(s.extension, "system");
  EXPECT_EQ(s.status, "error");
  EXPECT_EQ(s.message, "Token has expired 12 seconds ago");
  EXPECT_EQ(s.channel, "t1");
}

TEST(System, MissingChannelReadsEmptyOtherFieldsRequired) {
  EXPECT_EQ(parse_system(jv(R"({"extension":"system","status":"ok","message":"m"})"))->channel, "");
  for (auto bad : {R"({"status":"ok","message":"m"})", R"({"extension":"system","message":"m"})",
                   R"({"extension":"system","status":"ok"})",
                   R"({"extension":"system","status":"ok","message":1})",
                   R"({"extension":"system","status":"ok","message":"m","channel":2})", "[]"}) {
    auto r = parse_system(jv(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_frame);
  }
}

// ---- the "too many changes" signal -------------------------------------------------------------

TEST(ChangesOverflow, ParsesTheV2Frame) {
  const auto m = decode_v2(kV2TooManyChanges).value();
  EXPECT_EQ(m.event, events::kSystem);
  EXPECT_EQ(m.join_ref, "4");
  EXPECT_FALSE(m.ref.has_value());
  auto o = parse_changes_overflow(m.payload);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->schema, "public");
  EXPECT_EQ(o->table, "tasks");
  EXPECT_EQ(o->limit, 1000);
  EXPECT_EQ(o->channel, "task-updates:p1");
}

TEST(ChangesOverflow, ParsesTheV1Frame) {
  const auto m = decode_v1(kV1TooManyChanges).value();
  EXPECT_EQ(m.topic, "realtime:task-updates:p1");
  EXPECT_FALSE(m.join_ref.has_value());
  auto o = parse_changes_overflow(m.payload);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->schema, "public");
  EXPECT_EQ(o->table, "tasks");
  EXPECT_EQ(o->limit, 1000);
}

TEST(ChangesOverflow, IsStillAValidSystemMessage) {
  // Clients that only know parse_system (and realtime-js) read it as an ordinary ok message.
  auto s = parse_system(payload_of(kV2TooManyChanges));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->extension, "postgres_changes");
  EXPECT_EQ(s->status, "ok");
  EXPECT_EQ(s->message, "Too many changes");
}

TEST(ChangesOverflow, LimitIsOptionalAndInformational) {
  auto base = payload_of(kV2TooManyChanges).as_object();
  for (auto limit :
       {json::value(nullptr), json::value("1000"), json::value(-1), json::value(1.5)}) {
    auto p = base;
    p["limit"] = limit;
    auto o = parse_changes_overflow(p);
    ASSERT_TRUE(o.has_value()) << json::serialize(p);
    EXPECT_FALSE(o->limit.has_value()) << json::serialize(p);
    EXPECT_EQ(o->table, "tasks");
  }
  auto p = base;
  p.erase("limit");
  p.erase("channel");
  auto o = parse_changes_overflow(p);
  ASSERT_TRUE(o.has_value());
  EXPECT_FALSE(o->limit.has_value());
  EXPECT_EQ(o->channel, "");
  p["limit"] = std::uint64_t(5);
  EXPECT_EQ(parse_changes_overflow(p)->limit, 5);
}

TEST(ChangesOverflow, NearMissesAreNotOverflows) {
  const auto base = payload_of(kV2TooManyChanges).as_object();
  auto with = [&](std::string_view key, json::value v) {
    auto p = base;
    p[key] = std::move(v);
    return json::value(std::move(p));
  };
  auto without = [&](std::string_view key) {
    auto p = base;
    p.erase(key);
    return json::value(std::move(p));
  };
  const std::vector<std::pair<std::string, json::value>> cases = {
      {"status error", with("status", "error")},
      {"other message", with("message", "Subscribed to PostgreSQL")},
      {"message in other case", with("message", "too many changes")},
      {"message with a suffix", with("message", "Too many changes.")},
      {"other extension", with("extension", "system")},
      {"missing table", without("table")},
      {"null table", with("table", nullptr)},
      {"empty table", with("table", "")},
      {"numeric table", with("table", 7)},
      {"missing schema", without("schema")},
      {"empty schema", with("schema", "")},
      {"missing status", without("status")},
      {"missing message", without("message")},
      {"not an object", jv(R"(["postgres_changes","ok","Too many changes"])")},
      {"the docs' system example", payload_of(kV2System)},
  };
  for (const auto& [name, payload] : cases) {
    EXPECT_FALSE(parse_changes_overflow(payload).has_value()) << name;
  }
  // The error variant the server could send for the same table reads as an error report.
  auto err = parse_system(with("status", "error"));
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->status, "error");
}

}  // namespace
}  // namespace rtsync::protocol
