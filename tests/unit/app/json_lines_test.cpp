#include "view/json_lines.hpp"

#include <gtest/gtest.h>

namespace rtsync::app::view {
namespace {

json::value parse(const std::string& s) {
  auto v = core::parse_json(s);
  EXPECT_TRUE(v.ok()) << s;
  return v.ok() ? v.value() : json::value();
}

TEST(JsonLines, ConnectionStateNames) {
  EXPECT_EQ(connection_state_name(true, true, true), ConnectionStateName::connected);
  EXPECT_EQ(connection_state_name(false, true, true), ConnectionStateName::connecting);
  EXPECT_EQ(connection_state_name(false, false, true), ConnectionStateName::error);
  EXPECT_EQ(connection_state_name(false, false, false), ConnectionStateName::disconnected);
}

TEST(JsonLines, ConnectionLineIsOneObjectOnOneLine) {
  const auto s = connection_line(ConnectionStateName::error, std::string("Failed to connect"),
                                 "2025-11-19T00:22:40.877Z");
  EXPECT_EQ(s.find('\n'), std::string::npos);
  EXPECT_EQ(s, R"({"type":"connection","state":"error","error":"Failed to connect",)"
               R"("at":"2025-11-19T00:22:40.877Z"})");
  const auto ok = parse(connection_line(ConnectionStateName::connected, std::nullopt, "t"));
  EXPECT_TRUE(ok.as_object().at("error").is_null());
}

TEST(JsonLines, TaskEventFromPostgresChanges) {
  const auto payload = parse(R"({"schema":"public","table":"tasks","eventType":"UPDATE",
      "commit_timestamp":"2025-11-19T00:22:40Z","new":{"id":"t1","status":"Complete",
      "project_id":"p1"},"old":{"id":"t1"},"errors":null})");
  const auto info = task_event_info(payload);
  EXPECT_EQ(info.source, "postgres_changes");
  EXPECT_EQ(info.task_id, "t1");
  EXPECT_EQ(info.status, "Complete");
  EXPECT_EQ(info.project_id, "p1");
  const auto line = parse(event_line("realtime:task-update", info, "at"));
  EXPECT_EQ(line.as_object().at("type"), "event");
  EXPECT_EQ(line.as_object().at("name"), "realtime:task-update");
  EXPECT_EQ(line.as_object().at("task_id"), "t1");
  EXPECT_EQ(line.as_object().at("status"), "Complete");
}

TEST(JsonLines, TaskEventFromTheBroadcast) {
  const auto nested = parse(R"({"type":"broadcast","event":"task-update","payload":{
      "type":"TASKS_STATUS_UPDATE","payload":{"projectId":"p2","taskId":"t9","status":"Failed",
      "updated_at":"x"}}})");
  auto info = task_event_info(nested);
  EXPECT_EQ(info.source, "broadcast");
  EXPECT_EQ(info.task_id, "t9");
  EXPECT_EQ(info.status, "Failed");
  EXPECT_EQ(info.project_id, "p2");
  info = task_event_info(parse(R"({"type":"TASKS_STATUS_UPDATE","payload":{"taskId":"t3"}})"));
  EXPECT_EQ(info.task_id, "t3");
  EXPECT_FALSE(info.status);
}

TEST(JsonLines, TaskEventFromBroadcastFromDatabase) {
  // What db/0006's trigger sends through realtime.broadcast_changes.
  auto info = task_event_info(parse(R"({"type":"broadcast","event":"UPDATE","payload":{
      "old_record":{"id":"t4","status":"Queued","project_id":"p3"},
      "record":{"id":"t4","status":"In Progress","project_id":"p3"},"operation":"UPDATE",
      "table":"tasks","schema":"public","id":"m1"},"meta":{"id":"m1"}})"));
  EXPECT_EQ(info.source, "broadcast");
  EXPECT_EQ(info.task_id, "t4");
  EXPECT_EQ(info.status, "In Progress");
  EXPECT_EQ(info.project_id, "p3");
  info = task_event_info(parse(R"({"type":"broadcast","event":"DELETE","payload":{
      "old_record":{"id":"t5","status":"Failed","project_id":"p3"},"record":null,
      "operation":"DELETE","table":"tasks","schema":"public","id":"m2"}})"));
  EXPECT_EQ(info.task_id, "t5");
  EXPECT_EQ(info.status, "Failed");
}

TEST(JsonLines, TaskEventFromNonsenseHasNoFields) {
  for (const char* text : {"42", "[]", "{}", R"({"new":{}})", R"({"payload":"x"})"}) {
    const auto info = task_event_info(parse(text));
    EXPECT_FALSE(info.task_id) << text;
    EXPECT_FALSE(info.status) << text;
    const auto line = parse(event_line("realtime:task-new", info, "at"));
    EXPECT_TRUE(line.as_object().at("task_id").is_null());
  }
}

TEST(JsonLines, OverflowLineFromTheBusDetail) {
  const auto detail = parse(R"({"schema":"public","table":"tasks","limit":1000,"projectId":"p1"})");
  EXPECT_EQ(overflow_line(detail, "2025-11-19T00:22:40.877Z"),
            R"({"type":"overflow","schema":"public","table":"tasks","limit":1000,)"
            R"("project_id":"p1","at":"2025-11-19T00:22:40.877Z"})");
  const auto partial = parse(overflow_line(parse(R"({"table":"shots","limit":null})"), "t"));
  EXPECT_EQ(partial.as_object().at("table"), "shots");
  EXPECT_TRUE(partial.as_object().at("schema").is_null());
  EXPECT_TRUE(partial.as_object().at("limit").is_null());
  EXPECT_TRUE(partial.as_object().at("project_id").is_null());
  EXPECT_TRUE(parse(overflow_line(json::value(42), "t")).as_object().at("table").is_null());
}

TEST(JsonLines, ResumeLineForEachRejoin) {
  const auto from = parse(R"({"epoch":"5f0c2a9e1b7d4c38","lsn":"0/16B3748","index":3})");
  EXPECT_EQ(resume_line("realtime:task-updates:p1", false, 4, from, "2025-11-19T00:22:40.877Z"),
            R"({"type":"resume","topic":"realtime:task-updates:p1","gap":false,"replayed":4,)"
            R"("from":{"epoch":"5f0c2a9e1b7d4c38","lsn":"0/16B3748","index":3},)"
            R"("at":"2025-11-19T00:22:40.877Z"})");
  EXPECT_EQ(resume_line("realtime:task-updates:p1", true, 0, json::value(nullptr), "t"),
            R"({"type":"resume","topic":"realtime:task-updates:p1","gap":true,"replayed":0,)"
            R"("from":null,"at":"t"})");
  // Anything but a position object reads as null.
  EXPECT_TRUE(
      parse(resume_line("x", true, 0, json::value("0/1"), "t")).as_object().at("from").is_null());
}

TEST(JsonLines, QueryAndPollingLines) {
  QueryLine q;
  q.key = json::array{"tasks", "paginated", "p1", 1, 20, nullptr};
  q.status = "success";
  q.rows = 20;
  q.total = 51;
  q.updated_at = "2025-11-19T00:22:40.877Z";
  EXPECT_EQ(query_line(q),
            R"({"type":"query","key":["tasks","paginated","p1",1,20,null],"status":"success",)"
            R"("fetching":false,"rows":20,"total":51,"updated_at":"2025-11-19T00:22:40.877Z",)"
            R"("error":null})");
  EXPECT_EQ(polling_line(json::array{"task-status-counts", "p1"}, 5000, 0),
            R"({"type":"polling","key":["task-status-counts","p1"],"interval_ms":5000,)"
            R"("stale_time_ms":0})");
}

TEST(JsonLines, PrettyLines) {
  const auto v = parse(R"({"a":1,"b":{"c":[1,2],"d":[{"e":null}]},"f":{},"g":[]})");
  const std::vector<std::string> want = {
      "{",
      R"(  "a": 1,)",
      R"(  "b": {)",
      R"(    "c": [1,2],)",
      R"(    "d": [)",
      R"(      {)",
      R"(        "e": null)",
      R"(      })",
      R"(    ])",
      R"(  },)",
      R"(  "f": {},)",
      R"(  "g": [])",
      "}",
  };
  EXPECT_EQ(pretty_lines(v), want);
}

}  // namespace
}  // namespace rtsync::app::view
