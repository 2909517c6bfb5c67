// Codec throughput: decode and encode of a ~1.2 KB postgres_changes frame and of a broadcast
// frame (vsn 1 and vsn 2 text), the kind 4 binary broadcast, and the kind 3 push encode. The
// frames are files in frames/ so that realtime_js_serializer.mjs measures the same bytes.
// Each benchmark runs on one thread; items/s are frames per second.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "rtsync/protocol/frame_reader.hpp"
#include "rtsync/protocol/message.hpp"
#include "rtsync/protocol/postgres_changes.hpp"

namespace {

using namespace rtsync;
using namespace rtsync::protocol;

std::string load(const char* name) {
  const std::string path = std::string(RTSYNC_BENCH_FRAMES_DIR) + "/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(1);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void count(benchmark::State& state, std::size_t frame_bytes) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame_bytes));
}

void BM_DecodeText(benchmark::State& state, Vsn vsn, const char* file) {
  const std::string frame = load(file);
  for (auto _ : state) {
    auto m = decode_text(vsn, frame);
    if (!m.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(m);
  }
  count(state, frame.size());
}

void BM_EncodeText(benchmark::State& state, Vsn vsn, const char* file) {
  const Message m = decode_text(vsn, load(file)).value();
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto text = encode_text(vsn, m);
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  count(state, bytes);
}

// What a vsn 2 client does with a kind 4 frame: bytes → Message (payload parsed once).
void BM_DecodeKind4(benchmark::State& state) {
  const std::string frame = load("broadcast_kind4.bin");
  for (auto _ : state) {
    auto m = decode_binary(frame);
    if (!m.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(m);
  }
  count(state, frame.size());
}

// What a server does with a kind 3/4 frame it only forwards: fields + UTF-8/JSON validation.
void BM_DecodeKind4Fields(benchmark::State& state) {
  const std::string frame = load("broadcast_kind4.bin");
  for (auto _ : state) {
    auto b = decode_user_broadcast(frame);
    if (!b.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(b);
  }
  count(state, frame.size());
}

// Server fan-out: kind 4 frame from already-known fields.
void BM_EncodeKind4(benchmark::State& state) {
  const UserBroadcast b = decode_user_broadcast(load("broadcast_kind4.bin")).value();
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto out = encode_user_broadcast(b);
    bytes = out.value().size();
    benchmark::DoNotOptimize(out);
  }
  count(state, bytes);
}

// Client send of channel.send({type:'broadcast', event, payload}) as realtime-js does it on
// vsn 2: serialize the user payload to JSON, then the kind 3 frame.
void BM_EncodeKind3FromMessage(benchmark::State& state) {
  Message m = decode_v2(load("broadcast_v2.json")).value();
  m.join_ref = "10";
  m.ref = "11";
  std::size_t bytes = 0;
  for (auto _ : state) {
    UserBroadcast b;
    b.join_ref = m.join_ref;
    b.ref = m.ref;
    b.topic = m.topic;
    b.user_event = m.payload.at("event").get_string();
    b.payload = json::serialize(m.payload.at("payload"));
    auto out = encode_user_broadcast_push(b);
    bytes = out.value().size();
    benchmark::DoNotOptimize(out);
  }
  count(state, bytes);
}

// FrameReader::read: the envelope as views and the whole frame validated (JSON grammar, UTF-8,
// numbers) into a read-only view of the payload — what a receiver needs before it decides what to
// build. The realtime-js counterpart is the same Serializer.decode / JSON.parse as above.
void BM_ReadText(benchmark::State& state, Vsn vsn, const char* file) {
  const std::string frame = load(file);
  FrameReader reader;
  if (!FrameReader::available()) state.SkipWithError("built without simdjson");
  for (auto _ : state) {
    auto head = reader.read(vsn, frame);
    if (!head) state.SkipWithError("read declined");
    benchmark::DoNotOptimize(head);
  }
  count(state, frame.size());
}

// Frame text → the postgres_changes client shape {schema, table, commit_timestamp, eventType,
// new, old, errors}, what a channel hands its callbacks. DOM path: decode_v2 + parse_change_event
// + to_client_shape. realtime-js: Serializer.decode + its postgres_changes transform
// (convertChangeData of record and old_record).
void BM_ClientShapeDom(benchmark::State& state, Vsn vsn, const char* file) {
  const std::string frame = load(file);
  for (auto _ : state) {
    auto m = decode_text(vsn, frame);
    auto ev = parse_change_event(m.value().payload);
    auto shape = to_client_shape(ev.value().data);
    benchmark::DoNotOptimize(shape);
  }
  count(state, frame.size());
}

void BM_ClientShapeReader(benchmark::State& state, Vsn vsn, const char* file) {
  const std::string frame = load(file);
  FrameReader reader;
  if (!FrameReader::available()) state.SkipWithError("built without simdjson");
  for (auto _ : state) {
    auto head = reader.read(vsn, frame);
    auto change = reader.change();
    auto shape = reader.client_shape();
    if (!head || !change || !shape) state.SkipWithError("reader declined");
    benchmark::DoNotOptimize(shape);
  }
  count(state, frame.size());
}

BENCHMARK_CAPTURE(BM_ReadText, v2_pg_changes, Vsn::v2, "pg_changes_v2.json");
BENCHMARK_CAPTURE(BM_ReadText, v1_pg_changes, Vsn::v1, "pg_changes_v1.json");
BENCHMARK_CAPTURE(BM_ReadText, v2_broadcast, Vsn::v2, "broadcast_v2.json");
BENCHMARK_CAPTURE(BM_ReadText, v1_broadcast, Vsn::v1, "broadcast_v1.json");
BENCHMARK_CAPTURE(BM_ClientShapeDom, v2_pg_changes, Vsn::v2, "pg_changes_v2.json");
BENCHMARK_CAPTURE(BM_ClientShapeReader, v2_pg_changes, Vsn::v2, "pg_changes_v2.json");
BENCHMARK_CAPTURE(BM_DecodeText, v2_pg_changes, Vsn::v2, "pg_changes_v2.json");
BENCHMARK_CAPTURE(BM_DecodeText, v1_pg_changes, Vsn::v1, "pg_changes_v1.json");
BENCHMARK_CAPTURE(BM_DecodeText, v2_broadcast, Vsn::v2, "broadcast_v2.json");
BENCHMARK_CAPTURE(BM_DecodeText, v1_broadcast, Vsn::v1, "broadcast_v1.json");
BENCHMARK_CAPTURE(BM_EncodeText, v2_pg_changes, Vsn::v2, "pg_changes_v2.json");
BENCHMARK_CAPTURE(BM_EncodeText, v1_pg_changes, Vsn::v1, "pg_changes_v1.json");
BENCHMARK_CAPTURE(BM_EncodeText, v2_broadcast, Vsn::v2, "broadcast_v2.json");
BENCHMARK_CAPTURE(BM_EncodeText, v1_broadcast, Vsn::v1, "broadcast_v1.json");
BENCHMARK(BM_DecodeKind4);
BENCHMARK(BM_DecodeKind4Fields);
BENCHMARK(BM_EncodeKind4);
BENCHMARK(BM_EncodeKind3FromMessage);

}  // namespace

BENCHMARK_MAIN();
