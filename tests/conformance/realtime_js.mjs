// Conformance of rtsync server with the official client: @supabase/realtime-js (tests/peers,
// lock file committed) over `ws`, for one protocol version given as argv[2] ("1.0.0"|"2.0.0").
//
// Environment (set by conformance_test.cpp): RTSYNC_HTTP (http://127.0.0.1:<port>), ANON_KEY,
// SERVICE_KEY, USER_KEY (role authenticated), BAD_KEY (signed with another secret), PG_URL,
// PEERS_DIR (folder holding node_modules).
//
// Prints one line per check; exits 0 when every check passed.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.PEERS_DIR}/package.json`);
const { RealtimeClient } = require('@supabase/realtime-js');
const WebSocket = require('ws');
const pg = require('pg');

const vsn = process.argv[2] || '2.0.0';
const http = process.env.RTSYNC_HTTP;
const endpoint = `${http.replace(/^http/, 'ws')}/realtime/v1`;
const tag = vsn.replace(/\./g, '');
const results = [];

function check(name, ok, detail = '') {
  results.push({ name, ok });
  console.log(`${ok ? 'ok  ' : 'FAIL'} [vsn ${vsn}] ${name}${detail ? ' — ' + detail : ''}`);
}

function client(key, extra = {}) {
  return new RealtimeClient(endpoint, {
    params: { apikey: key },
    transport: WebSocket,
    vsn,
    timeout: 5000,
    ...extra,
  });
}

function deferred(ms, what) {
  let resolve, reject;
  const p = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  return {
    promise: p.finally(() => clearTimeout(timer)),
    resolve,
    reject,
  };
}

function subscribed(channel, what) {
  const d = deferred(8000, `${what} SUBSCRIBED`);
  channel.subscribe((status, err) => {
    if (status === 'SUBSCRIBED') d.resolve();
    else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
      d.reject(new Error(`${what}: ${status} ${err ? err.message : ''}`));
    }
  });
  return d.promise;
}

async function run(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(name, false, e.message);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const db = new pg.Client({ connectionString: process.env.PG_URL });
  await db.connect();
  const clients = [];

  await run('join', async () => {
    const c = client(process.env.ANON_KEY);
    clients.push(c);
    const ch = c.channel(`join-${tag}`);
    await subscribed(ch, 'join');
    check('join', ch.state === 'joined', `state ${ch.state}`);
  });

  await run('postgres_changes with a filter', async () => {
    const c = client(process.env.ANON_KEY);
    clients.push(c);
    const got = [];
    const ready = deferred(8000, 'system "Subscribed to PostgreSQL"');
    const ch = c
      .channel(`pg-${tag}`)
      .on(
        'postgres_changes',
        { event: 'INSERT', schema: 'public', table: 'conf_items', filter: `kind=eq.wanted-${tag}` },
        (payload) => got.push(payload),
      )
      .on('system', {}, (p) => {
        if (p.extension === 'postgres_changes' && p.status === 'ok') ready.resolve();
      });
    await subscribed(ch, 'postgres_changes');
    await ready.promise;
    await db.query('insert into conf_items (kind, n) values ($1, 1), ($2, 2), ($1, 3)', [
      `wanted-${tag}`,
      `other-${tag}`,
    ]);
    for (let i = 0; i < 50 && got.length < 2; i++) await sleep(100);
    await sleep(300);
    const ns = got.map((p) => p.new.n);
    check(
      'postgres_changes with a filter',
      got.length === 2 &&
        ns[0] === 1 &&
        ns[1] === 3 &&
        got.every((p) => p.eventType === 'INSERT' && p.table === 'conf_items' && p.schema === 'public'),
      `received ${JSON.stringify(ns)}`,
    );
  });

  await run('broadcast self/ack between two clients', async () => {
    const a = client(process.env.ANON_KEY);
    const b = client(process.env.ANON_KEY);
    clients.push(a, b);
    const topic = `room-${tag}`;
    const gotA = [];
    const gotB = [];
    const chA = a
      .channel(topic, { config: { broadcast: { self: true, ack: true } } })
      .on('broadcast', { event: 'hello' }, (m) => gotA.push(m));
    const chB = b.channel(topic).on('broadcast', { event: 'hello' }, (m) => gotB.push(m));
    await subscribed(chA, 'A');
    await subscribed(chB, 'B');
    const status = await chA.send({ type: 'broadcast', event: 'hello', payload: { from: 'A', n: 42 } });
    for (let i = 0; i < 50 && (gotA.length < 1 || gotB.length < 1); i++) await sleep(50);
    check('broadcast ack', status === 'ok', `send() → ${status}`);
    check('broadcast self', gotA.length === 1 && gotA[0].payload.n === 42, `A got ${gotA.length}`);
    check('broadcast fan-out', gotB.length === 1 && gotB[0].payload.from === 'A', `B got ${gotB.length}`);

    // REST broadcast (httpSend, single-message endpoint, and the batch endpoint).
    const rest = client(process.env.SERVICE_KEY);
    clients.push(rest);
    const chR = rest.channel(topic);
    const r = await chR.httpSend('hello', { from: 'rest', n: 7 });
    const batch = await fetch(`${http}/realtime/v1/api/broadcast`, {
      method: 'POST',
      headers: {
        apikey: process.env.ANON_KEY,
        Authorization: `Bearer ${process.env.USER_KEY}`,
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({ messages: [{ topic, event: 'hello', payload: { from: 'batch', n: 8 } }] }),
    });
    for (let i = 0; i < 50 && gotB.length < 3; i++) await sleep(50);
    check(
      'REST broadcast',
      r.success === true && batch.status === 202 && gotB.length === 3 &&
        gotB[1].payload.from === 'rest' && gotB[2].payload.from === 'batch',
      `httpSend ${JSON.stringify(r)}, batch ${batch.status}, B got ${gotB.length}`,
    );
  });

  await run('refused token', async () => {
    // A bad apikey: the upgrade is answered 401 before any websocket opens.
    const status = await new Promise((resolve) => {
      const ws = new WebSocket(`${endpoint}/websocket?apikey=${process.env.BAD_KEY}&vsn=${vsn}`);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode);
        ws.terminate();
      });
      ws.on('open', () => {
        resolve('opened');
        ws.close();
      });
      ws.on('error', () => {});
    });
    check('refused apikey (HTTP 401)', status === 401, `status ${status}`);

    // A bad access token on join: CHANNEL_ERROR carrying the server's reason.
    const c = client(process.env.ANON_KEY);
    clients.push(c);
    await c.setAuth(process.env.BAD_KEY);
    const ch = c.channel(`refused-${tag}`);
    const d = deferred(8000, 'CHANNEL_ERROR');
    ch.subscribe((s, err) => {
      if (s === 'CHANNEL_ERROR') d.resolve(err);
      if (s === 'SUBSCRIBED') d.reject(new Error('joined with a bad token'));
    });
    const err = await d.promise;
    check(
      'refused access token (join error)',
      !!err && /JwtSignatureError: Failed to validate JWT signature/.test(err.message),
      err && err.message,
    );
  });

  for (const c of clients) {
    try {
      c.removeAllChannels();
      c.disconnect();
    } catch (_) {}
  }
  await db.end();
  const failed = results.filter((r) => !r.ok);
  console.log(`${results.length - failed.length}/${results.length} checks passed for vsn ${vsn}`);
  process.exit(failed.length === 0 && results.length >= 7 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
