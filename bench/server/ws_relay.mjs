// The do-it-yourself relay a team would write instead of a realtime server: Node and the `ws`
// package, topics in a Map, and for each broadcast one JSON.stringify and one `send` per socket
// of the topic. It speaks just enough of the Phoenix frames the fan-out probe of bench_server
// uses (phx_join, heartbeat, broadcast with self:false), and none of what rtsync does beyond
// relaying (no auth, no limits, no presence, no positions): the floor a hand-written relay sets.
//
// Usage: node ws_relay.mjs   (listens on 127.0.0.1, a free port, printed as one line on stdout)
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { WebSocketServer } = require(join(here, '../../tests/peers/node_modules/ws'));

const topics = new Map(); // topic → Set of sockets joined to it
const ok = { status: 'ok', response: {} };

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (ws) => {
  const joined = new Set();
  ws.on('message', (data) => {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!Array.isArray(frame) || frame.length !== 5) return;
    const [joinRef, ref, topic, event, payload] = frame;
    if (event === 'phx_join') {
      let members = topics.get(topic);
      if (!members) topics.set(topic, (members = new Set()));
      members.add(ws);
      joined.add(topic);
      ws.send(JSON.stringify([joinRef, ref, topic, 'phx_reply', ok]));
    } else if (event === 'heartbeat') {
      ws.send(JSON.stringify([null, ref, 'phoenix', 'phx_reply', ok]));
    } else if (event === 'broadcast' && joined.has(topic)) {
      const out = JSON.stringify([null, null, topic, 'broadcast', payload]);
      for (const member of topics.get(topic)) {
        if (member !== ws) member.send(out);
      }
    }
  });
  ws.on('close', () => {
    for (const topic of joined) topics.get(topic)?.delete(ws);
  });
});
wss.on('listening', () => console.log(String(wss.address().port)));
