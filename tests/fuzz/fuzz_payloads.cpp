// The payload readers (join, reply, system, postgres_changes + realtime-js conversion) never crash
// on any JSON, and what they accept rebuilds into something they accept again.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.hpp"
#include "rtsync/protocol/join.hpp"
#include "rtsync/protocol/postgres_changes.hpp"
#include "rtsync/protocol/reply.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rtsync;
  using namespace rtsync::protocol;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = core::parse_json(text);
  if (!parsed.ok()) return 0;
  const auto& v = parsed.value();

  if (auto j = parse_join_payload(v); j.ok()) {
    auto again = parse_join_payload(build_join_payload(j.value()));
    if (!again.ok() || again->config.postgres_changes != j->config.postgres_changes ||
        again->access_token != j->access_token) {
      fuzz::fail("join payload round trip");
    }
  }
  if (auto r = parse_join_response(v); r.ok() && r->has_value()) {
    auto again = parse_join_response(build_join_response(**r));
    if (!again.ok() || !again->has_value() || (*again)->size() != (*r)->size()) {
      fuzz::fail("join response round trip");
    }
  }
  if (auto r = parse_reply(v); r.ok()) {
    (void)r->reason();
    if (!parse_reply(build_reply(r.value())).ok()) fuzz::fail("reply round trip");
  }
  if (auto s = parse_system(v); s.ok()) {
    if (!parse_system(build_system(s.value())).ok()) fuzz::fail("system round trip");
  }
  if (auto ev = parse_change_event(v); ev.ok()) {
    (void)to_client_shape(ev->data);
    auto again = parse_change_event(build_change_event(ev.value()));
    if (!again.ok() || again->ids != ev->ids || again->data.columns != ev->data.columns) {
      fuzz::fail("change event round trip");
    }
  }
  // Every value under every conversion rule.
  if (const auto* o = v.if_object()) {
    for (const auto& kv : *o) {
      for (auto type : {"int4", "int8", "float8", "numeric", "bool", "json", "jsonb", "timestamp",
                        "_int4", "_text", "_jsonb", "__int4", "text"}) {
        (void)convert_value(type, kv.value());
      }
    }
  } else if (const auto* s = v.if_string()) {
    for (auto type :
         {"int8", "float8", "bool", "jsonb", "timestamp", "_int4", "_text", "_bool", "__float8"}) {
      (void)convert_value(type, *s);
    }
  }
  return 0;
}
