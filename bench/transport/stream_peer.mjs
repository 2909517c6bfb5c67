// Benchmark peer: a minimal Supabase Realtime server (vsn 2.0.0 text frames) that, once a client
// has joined a channel, streams `count` postgres_changes frames (~1 KB, a realistic `tasks` row)
// as fast as the connection drains. Heartbeats and joins are answered as docs/protocol.md says.
//
//   node stream_peer.mjs --count 200000 [--port 0] [--batch 64] [--prebuilt]
// --batch n: frames are framed here (server frames are unmasked) and written n at a time with one
// socket write, so a client drains many frames per wake-up (--prebuilt: see prebuild);
// --batch 1 sends each frame with ws.send (one write per frame, the original behaviour). The bytes
// on the wire are the same text frames either way.
// Prints "PORT <n>" once listening, then one JSON line per stream: {"streamed":n,"ms":…}.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/peers/package.json', import.meta.url));
const { WebSocketServer } = require('ws');

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const COUNT = Number(arg('--count', '200000'));
const PORT = Number(arg('--port', '0'));
const HIGH_WATER = 4 * 1024 * 1024;
const BATCH = Math.max(1, Number(arg('--batch', '64')));
const PREBUILT = args.includes('--prebuilt');

const columns = JSON.stringify([
  { name: 'id', type: 'uuid' },
  { name: 'project_id', type: 'uuid' },
  { name: 'task_type', type: 'text' },
  { name: 'status', type: 'text' },
  { name: 'params', type: 'jsonb' },
  { name: 'output_location', type: 'text' },
  { name: 'attempts', type: 'int4' },
  { name: 'cost_cents', type: 'int8' },
  { name: 'created_at', type: 'timestamptz' },
  { name: 'updated_at', type: 'timestamptz' },
  { name: 'generation_started_at', type: 'timestamptz' },
  { name: 'error_message', type: 'text' },
  { name: 'dependant_on', type: 'uuid' },
]);

const PROJECT = '7b6f2c1e-3d4a-4b5c-9e8f-0a1b2c3d4e5f';

// One frame per event, built by concatenation (cheap) so the peer outruns the clients.
function frame(topic, id, i) {
  const uuid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const record =
    `{"id":"${uuid}","project_id":"${PROJECT}","task_type":"single_image","status":"In Progress",` +
    `"params":{"prompt":"a lighthouse on a cliff at dusk, volumetric light, 35mm photograph, task ${i}",` +
    `"negative_prompt":"blurry, low quality","resolution":"1024x576","seed":${i},"steps":30,` +
    `"guidance":7.5,"model":"flux-dev","shot_id":"5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d","lora":[]},` +
    `"output_location":null,"attempts":1,"cost_cents":12,"created_at":"2026-11-27 03:00:00.123456+00",` +
    `"updated_at":"2026-11-27T03:00:01.234Z","generation_started_at":"2026-11-27T03:00:01.000Z",` +
    `"error_message":null,"dependant_on":null}`;
  return (
    `[null,null,"${topic}","postgres_changes",{"ids":[${id}],"data":{"schema":"public","table":"tasks",` +
    `"commit_timestamp":"2026-11-27T03:00:01.234Z","type":"UPDATE","columns":${columns},` +
    `"record":${record},"old_record":{"id":"${uuid}"},"errors":null}}]`
  );
}

const wss = new WebSocketServer({ host: '127.0.0.1', port: PORT, perMessageDeflate: false });
wss.on('listening', () => console.log(`PORT ${wss.address().port}`));

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return;
    }
    const [joinRef, ref, topic, event, payload] = msg;
    if (event === 'heartbeat') {
      ws.send(JSON.stringify([null, ref, topic, 'phx_reply', { status: 'ok', response: {} }]));
    } else if (event === 'phx_join') {
      const specs = payload?.config?.postgres_changes ?? [];
      const acks = specs.map((s, i) => ({ ...s, id: 1000 + i }));
      ws.send(
        JSON.stringify([joinRef, ref, topic, 'phx_reply', { status: 'ok', response: { postgres_changes: acks } }]),
      );
      if (acks.length > 0) stream(ws, topic, acks[0].id);
    } else if (event === 'phx_leave') {
      ws.send(JSON.stringify([joinRef, ref, topic, 'phx_reply', { status: 'ok', response: {} }]));
    }
  });
});

// The WebSocket header of an unmasked text frame of `n` bytes, as latin1 characters.
function header(n) {
  if (n < 126) return String.fromCharCode(0x81, n);
  if (n < 65536) return String.fromCharCode(0x81, 126, n >> 8, n & 0xff);
  throw new Error('frame too large for this peer');
}

// Frames are ASCII, so string length = byte length and latin1 encodes them unchanged.
function build_batch(topic, id, first) {
  const n = Math.min(BATCH, COUNT - first);
  let chunk = '';
  for (let k = 0; k < n; k += 1) {
    const f = frame(topic, id, first + k);
    chunk += header(f.length) + f;
  }
  return { bytes: Buffer.from(chunk, 'latin1'), frames: n };
}

// --prebuilt: the whole stream of a (topic, subscription id) built once, before the first
// client's stream, and written to every client as it is. Building frames costs this peer more
// CPU than a fast client spends reading them, so by default a fast client idles between the
// peer's writes; prebuilt, the peer outruns every client and the client is saturated.
const streams = new Map();
function prebuild(topic, id) {
  const key = `${topic}|${id}`;
  if (!streams.has(key)) {
    const batches = [];
    for (let first = 0; first < COUNT; first += BATCH) batches.push(build_batch(topic, id, first));
    streams.set(key, batches);
  }
  return streams.get(key);
}

function stream(ws, topic, id) {
  let sent = 0;
  const prebuilt = PREBUILT && BATCH > 1 ? prebuild(topic, id) : null;
  const started = performance.now();
  const socket = ws._socket;
  const pump = () => {
    while (sent < COUNT) {
      if (ws.readyState !== ws.OPEN) return;
      const buffered = BATCH === 1 ? ws.bufferedAmount : socket.writableLength;
      if (buffered > HIGH_WATER) {
        socket.once('drain', pump);
        return;
      }
      if (BATCH === 1) {
        ws.send(frame(topic, id, sent));
        sent += 1;
        continue;
      }
      // One socket write per batch: whole frames only, so ws.send replies (heartbeats) written
      // in between stay intact.
      const batch = prebuilt ? prebuilt[sent / BATCH] : build_batch(topic, id, sent);
      socket.write(batch.bytes);
      sent += batch.frames;
    }
    console.log(JSON.stringify({ streamed: sent, ms: Math.round(performance.now() - started) }));
  };
  setImmediate(pump);
}

process.on('SIGTERM', () => process.exit(0));
