// The realtime-js side of bench_protocol: the same frames (frames/) through
// @supabase/realtime-js's Serializer (tests/peers, version pinned by the lock file), one thread.
//   vsn 2 text decode: Serializer.decode (JSON.parse + destructuring)
//   vsn 1 text decode: JSON.parse (what realtime-js <= 2.80 did)
//   text encode:       JSON.stringify of the array (vsn 2; what Serializer.encode does for
//                      non-broadcast pushes) or of the object (vsn 1)
//   kind 4 decode:     Serializer.decode of an ArrayBuffer (_binaryDecode)
//   kind 3 encode:     Serializer.encode of a broadcast push (_encodeUserBroadcastPush)
// Rates are per CPU second. Prints one JSON line per case: {"name", "frames_per_s", "mb_per_s", "bytes"}.
// Usage: node realtime_js_serializer.mjs [seconds_per_run=1] [runs_per_case=3] (median reported)
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const Serializer = require(
  join(here, '../../tests/peers/node_modules/@supabase/realtime-js/dist/main/lib/serializer.js'),
).default;
const version = require(
  join(here, '../../tests/peers/node_modules/@supabase/realtime-js/package.json'),
).version;
const { convertChangeData } = require(
  join(here, '../../tests/peers/node_modules/@supabase/realtime-js/dist/main/lib/transformers.js'),
);

const seconds = Number(process.argv[2] ?? 1);
const repeats = Number(process.argv[3] ?? 3);
const frame = (name) => readFileSync(join(here, 'frames', name));
const text = (name) => frame(name).toString('utf8');
const serializer = new Serializer();

let sink = 0;

function rate(fn) {
  // Rates are per CPU second of the whole process (GC threads included), like Google Benchmark's
  // CPU time, so a busy machine distorts the comparison less than wall time would.
  let n = 0;
  const cpu0 = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) fn();
    n += 1000;
  }
  const cpu = process.cpuUsage(cpu0);
  return n / ((cpu.user + cpu.system) / 1e6);
}

function run(name, bytes, fn) {
  // Warm up so the JIT has optimised fn, then report the median of `repeats` timed runs.
  const warmEnd = performance.now() + 300;
  while (performance.now() < warmEnd) for (let i = 0; i < 1000; i++) fn();
  const rates = [];
  for (let r = 0; r < repeats; r++) rates.push(rate(fn));
  rates.sort((a, b) => a - b);
  const perSecond = rates[Math.floor(rates.length / 2)];
  console.log(
    JSON.stringify({ name, frames_per_s: perSecond, mb_per_s: (perSecond * bytes) / 1e6, bytes }),
  );
}

for (const kind of ['pg_changes', 'broadcast']) {
  const v2 = text(`${kind}_v2.json`);
  const v1 = text(`${kind}_v1.json`);
  run(`decode_v2_${kind}`, Buffer.byteLength(v2), () =>
    serializer.decode(v2, (m) => {
      sink += m.topic.length;
    }),
  );
  run(`decode_v1_${kind}`, Buffer.byteLength(v1), () => {
    sink += JSON.parse(v1).topic.length;
  });
  const [join_ref, ref, topic, event, payload] = JSON.parse(v2);
  const encodedV2 = JSON.stringify([join_ref, ref, topic, event, payload]);
  run(`encode_v2_${kind}`, Buffer.byteLength(encodedV2), () => {
    sink += JSON.stringify([join_ref, ref, topic, event, payload]).length;
  });
  const msg = { topic, event, payload, ref };
  const encodedV1 = JSON.stringify(msg);
  run(`encode_v1_${kind}`, Buffer.byteLength(encodedV1), () => {
    sink += JSON.stringify({ topic: msg.topic, event: msg.event, payload: msg.payload, ref: msg.ref })
      .length;
  });
}

{
  // Frame text → the object a postgres_changes callback receives, as RealtimeChannel builds it
  // (_trigger: enriched payload + _getPayloadRecords with convertChangeData).
  const v2 = text('pg_changes_v2.json');
  const shape = (data) => {
    const out = {
      schema: data.schema,
      table: data.table,
      commit_timestamp: data.commit_timestamp,
      eventType: data.type,
      new: {},
      old: {},
      errors: data.errors,
    };
    if (data.type === 'INSERT' || data.type === 'UPDATE') {
      out.new = convertChangeData(data.columns, data.record);
    }
    if (data.type === 'UPDATE' || data.type === 'DELETE') {
      out.old = convertChangeData(data.columns, data.old_record);
    }
    return out;
  };
  run('client_shape_v2_pg_changes', Buffer.byteLength(v2), () =>
    serializer.decode(v2, (m) => {
      sink += shape(m.payload.data).schema.length;
    }),
  );
}

{
  const bin = frame('broadcast_kind4.bin');
  const ab = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
  run('decode_kind4', ab.byteLength, () =>
    serializer.decode(ab, (m) => {
      sink += m.topic.length;
    }),
  );
  const [, , topic, , payload] = JSON.parse(text('broadcast_v2.json'));
  const push = { join_ref: '10', ref: '11', topic, event: 'broadcast', payload };
  let out = 0;
  serializer.encode(push, (b) => {
    out = b.byteLength;
  });
  run('encode_kind3', out, () =>
    serializer.encode(push, (b) => {
      sink += b.byteLength;
    }),
  );
}

if (sink === 42) console.error('');  // keep results observable
console.error(`realtime-js ${version}, node ${process.version}`);
