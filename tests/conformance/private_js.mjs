// Private channels of rtsync server with the official client: @supabase/realtime-js (tests/peers)
// over `ws`, for one protocol version given as argv[2] ("1.0.0"|"2.0.0"). The test's database
// has Supabase-style policies on realtime.messages (conformance_test.cpp): on topic TOPIC,
// ALICE and CAROL may receive and send, BOB may receive only, EVE may do nothing.
//
// Environment: RTSYNC_HTTP, ANON_KEY, ALICE_KEY, BOB_KEY, CAROL_KEY, EVE_KEY, TOPIC, PEERS_DIR.
// Prints one line per check; exits 0 when every check passed.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.PEERS_DIR}/package.json`);
const { RealtimeClient } = require('@supabase/realtime-js');
const WebSocket = require('ws');

const vsn = process.argv[2] || '2.0.0';
const endpoint = `${process.env.RTSYNC_HTTP.replace(/^http/, 'ws')}/realtime/v1`;
const topic = process.env.TOPIC;
const results = [];
const clients = [];

function check(name, ok, detail = '') {
  results.push({ name, ok });
  console.log(`${ok ? 'ok  ' : 'FAIL'} [vsn ${vsn}] ${name}${detail ? ' — ' + detail : ''}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A client on the anon key whose channels join with `token` (setAuth, as supabase-js does after
// sign-in).
async function client(token) {
  const c = new RealtimeClient(endpoint, {
    params: { apikey: process.env.ANON_KEY },
    transport: WebSocket,
    vsn,
    timeout: 5000,
  });
  clients.push(c);
  await c.setAuth(token);
  return c;
}

// subscribe() until the first SUBSCRIBED or CHANNEL_ERROR/TIMED_OUT: {status, err}.
function firstStatus(channel) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ status: 'NONE' }), 8000);
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED' || status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
        clearTimeout(timer);
        resolve({ status, err });
      }
    });
  });
}

async function privateMember(token, name, received) {
  const c = await client(token);
  const ch = c
    .channel(topic, { config: { private: true, broadcast: { ack: true } } })
    .on('broadcast', { event: '*' }, (m) => received.push(m));
  const r = await firstStatus(ch);
  if (r.status !== 'SUBSCRIBED') {
    throw new Error(`${name}: ${r.status} ${r.err ? r.err.message : ''}`);
  }
  return ch;
}

async function run(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(name, false, e.message);
  }
}

async function main() {
  const gotAlice = [];
  const gotCarol = [];
  const gotBob = [];
  let alice, carol, bob;

  await run('authorized private join', async () => {
    alice = await privateMember(process.env.ALICE_KEY, 'alice', gotAlice);
    carol = await privateMember(process.env.CAROL_KEY, 'carol', gotCarol);
    bob = await privateMember(process.env.BOB_KEY, 'bob', gotBob);
    check('private join allowed by policy', alice.state === 'joined' && carol.state === 'joined' &&
            bob.state === 'joined', `${alice.state} ${carol.state} ${bob.state}`);
  });

  await run('refused private join', async () => {
    const c = await client(process.env.EVE_KEY);
    const ch = c.channel(topic, { config: { private: true } });
    const r = await firstStatus(ch);
    const expected = `Unauthorized: You do not have permissions to read from this Channel topic: ${topic}`;
    check('private join refused by policy with the exact reason',
          r.status === 'CHANNEL_ERROR' && !!r.err && r.err.message === expected,
          `${r.status} ${r.err ? JSON.stringify(r.err.message) : ''}`);
    await c.removeChannel(ch);
  });

  await run('broadcast between authorized subscribers', async () => {
    const s1 = await alice.send({ type: 'broadcast', event: 'hello', payload: { from: 'alice' } });
    for (let i = 0; i < 60 && (gotCarol.length < 1 || gotBob.length < 1); i++) await sleep(50);
    check('authorized send acknowledged', s1 === 'ok', `send() → ${s1}`);
    check('carol receives alice', gotCarol.length === 1 && gotCarol[0].payload.from === 'alice',
          JSON.stringify(gotCarol));
    check('bob (read only) receives alice', gotBob.length === 1 &&
            gotBob[0].payload.from === 'alice', JSON.stringify(gotBob));
    const s2 = await carol.send({ type: 'broadcast', event: 'hello', payload: { from: 'carol' } });
    for (let i = 0; i < 60 && gotAlice.length < 1; i++) await sleep(50);
    check('alice receives carol', s2 === 'ok' && gotAlice.length === 1 &&
            gotAlice[0].payload.from === 'carol', `${s2} ${JSON.stringify(gotAlice)}`);
  });

  await run('unauthorized sender', async () => {
    const before = { alice: gotAlice.length, carol: gotCarol.length };
    // Bob may read but not send: the server drops it without a word, so the ack never comes.
    const s = await bob.send({ type: 'broadcast', event: 'hello', payload: { from: 'bob' } },
                             { timeout: 1500 });
    await sleep(300);
    check('unauthorized broadcast not acknowledged', s === 'timed out', `send() → ${s}`);
    check('unauthorized broadcast not delivered',
          gotAlice.length === before.alice && gotCarol.length === before.carol,
          `alice ${gotAlice.length - before.alice}, carol ${gotCarol.length - before.carol}`);
    // The channel still works for those who may send.
    await alice.send({ type: 'broadcast', event: 'hello', payload: { from: 'alice-2' } });
    for (let i = 0; i < 60 && gotCarol.length < before.carol + 1; i++) await sleep(50);
    check('later authorized broadcast still delivered',
          gotCarol.length === before.carol + 1 && gotCarol[gotCarol.length - 1].payload.from ===
            'alice-2', JSON.stringify(gotCarol));
  });

  await run('token refresh to a user without the right', async () => {
    // supabase-js calls setAuth() with the new session's token: realtime-js pushes access_token
    // to every joined channel. The server re-checks the policies and ends the channel with a
    // system error, which realtime-js hands to 'system' listeners, then CLOSED.
    const c = await client(process.env.ALICE_KEY);
    const systems = [];
    const statuses = [];
    const ch = c.channel(topic, { config: { private: true } }).on('system', {}, (p) => systems.push(p));
    const joined = new Promise((resolve) => {
      ch.subscribe((status) => {
        statuses.push(status);
        if (status === 'SUBSCRIBED') resolve();
      });
    });
    await joined;
    await c.setAuth(process.env.EVE_KEY);
    for (let i = 0; i < 100 && !statuses.includes('CLOSED'); i++) await sleep(50);
    const expected = `You do not have permissions to read from this Channel topic: ${topic}`;
    check('system error on the revoked channel',
          systems.length === 1 && systems[0].extension === 'system' &&
            systems[0].status === 'error' && systems[0].message === expected &&
            systems[0].channel === topic, JSON.stringify(systems));
    check('channel CLOSED after the system error', statuses.includes('CLOSED') &&
            ch.state === 'closed', `${JSON.stringify(statuses)} ${ch.state}`);
  });

  for (const c of clients) {
    try {
      c.removeAllChannels();
      c.disconnect();
    } catch (_) {}
  }
  const failed = results.filter((r) => !r.ok);
  console.log(`${results.length - failed.length}/${results.length} checks passed for vsn ${vsn}`);
  process.exit(failed.length === 0 && results.length >= 11 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
