// Presence conformance of rtsync server with the official client: two @supabase/realtime-js
// clients (tests/peers) track in one channel, for one protocol version given as argv[2].
// Each must see the other in presenceState() and through `sync`/`join` events; untrack and a
// closed socket must give `leave`; twenty clients that join and track at once all converge. When
// OTHER_KEY is set, a presence under that key (tracked by
// the test itself with rtsync's client, payload {"client":"rtsync"}) must be seen too, and
// alice's final presenceState() is printed as `STATE <json>` for the test to compare with the
// state rtsync's client holds.
//
// Environment: RTSYNC_HTTP, ANON_KEY, PEERS_DIR, optional OTHER_KEY and TOPIC.
// Prints one line per check; exits 0 when every check passed.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.PEERS_DIR}/package.json`);
const { RealtimeClient } = require('@supabase/realtime-js');
const WebSocket = require('ws');

const vsn = process.argv[2] || '2.0.0';
const endpoint = `${process.env.RTSYNC_HTTP.replace(/^http/, 'ws')}/realtime/v1`;
const topic = process.env.TOPIC || `presence-${vsn.replace(/\./g, '')}`;
const other = process.env.OTHER_KEY || '';
const results = [];

function check(name, ok, detail = '') {
  results.push({ name, ok });
  console.log(`${ok ? 'ok  ' : 'FAIL'} [vsn ${vsn}] ${name}${detail ? ' — ' + detail : ''}`);
}

function client() {
  return new RealtimeClient(endpoint, {
    params: { apikey: process.env.ANON_KEY },
    transport: WebSocket,
    vsn,
    timeout: 5000,
  });
}

async function until(what, pred, ms = 8000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// A client on the channel with presence listeners, tracking {name}.
async function member(key, name) {
  const c = client();
  const ch = c.channel(topic, { config: { presence: { key } } });
  const seen = { syncs: 0, joins: [], leaves: [] };
  ch.on('presence', { event: 'sync' }, () => seen.syncs++);
  ch.on('presence', { event: 'join' }, (p) => seen.joins.push(p));
  ch.on('presence', { event: 'leave' }, (p) => seen.leaves.push(p));
  await new Promise((resolve, reject) => {
    ch.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve();
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
        reject(new Error(`${key}: ${status} ${err ? err.message : ''}`));
      }
    });
  });
  const r = await ch.track({ name });
  return { c, ch, seen, trackReply: r };
}

async function run(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(name, false, e.message);
  }
}

async function main() {
  let a, b;
  await run('two clients see each other', async () => {
    a = await member('alice', 'Alice');
    b = await member('bob', 'Bob');
    check('track replies ok', a.trackReply === 'ok' && b.trackReply === 'ok',
          `${a.trackReply} ${b.trackReply}`);
    await until('alice sees bob', () => !!a.ch.presenceState().bob);
    await until('bob sees alice', () => !!b.ch.presenceState().alice);
    const bobs = a.ch.presenceState().bob;
    check('presenceState holds the other with presence_ref and payload',
          bobs.length === 1 && bobs[0].name === 'Bob' && typeof bobs[0].presence_ref === 'string' &&
            !('phx_ref' in bobs[0]),
          JSON.stringify(a.ch.presenceState()));
    check('join event for the other', a.seen.joins.some((j) => j.key === 'bob' &&
            j.newPresences.length === 1 && j.newPresences[0].name === 'Bob'));
    check('sync events fired', a.seen.syncs > 0 && b.seen.syncs > 0);
    if (other) {
      await until(`alice sees ${other}`, () => !!a.ch.presenceState()[other]);
      const o = a.ch.presenceState()[other];
      check("rtsync's client is seen by realtime-js", o.length === 1 && o[0].client === 'rtsync',
            JSON.stringify(o));
    }
  });

  await run('untrack gives leave', async () => {
    const r = await b.ch.untrack();
    check('untrack reply ok', r === 'ok', r);
    await until('alice sees bob leave', () => !a.ch.presenceState().bob);
    check('leave event on untrack', a.seen.leaves.some((l) => l.key === 'bob' &&
            l.leftPresences.length === 1 && l.leftPresences[0].name === 'Bob'));
  });

  await run('closed socket gives leave', async () => {
    const r = await b.ch.track({ name: 'Bob again' });
    check('track again ok', r === 'ok', r);
    await until('alice sees bob again', () => !!a.ch.presenceState().bob);
    const leavesBefore = a.seen.leaves.length;
    b.c.disconnect();
    await until('alice sees bob leave after close', () => !a.ch.presenceState().bob);
    check('leave event on socket close', a.seen.leaves.length > leavesBefore);
  });

  // A join storm: STORM clients subscribe and track at once, so most of them join while the
  // server's presence window is open and get their presence_state only when it closes. Each must
  // still converge on everyone (alice included), through realtime-js's own state/diff merge.
  if (!other) {
    await run('a join storm converges', async () => {
      const n = 20;
      const storm = await Promise.all(
          Array.from({ length: n }, (_, i) => member(`storm${i}`, `S${i}`)));
      const want = ['alice', ...storm.map((_, i) => `storm${i}`)];
      const holds = (m) => want.every((k) => !!m.ch.presenceState()[k]);
      await until('every storm client sees everyone', () => storm.every(holds), 15000);
      check('every storm client holds all ' + want.length, storm.every(holds));
      check('storm track replies ok', storm.every((m) => m.trackReply === 'ok'));
      await until('alice sees the storm', () => holds(a));
      check('alice sees every storm client through diffs', holds(a));
      for (const m of storm) m.c.disconnect();
      await until('alice sees the storm leave',
                  () => storm.every((_, i) => !a.ch.presenceState()[`storm${i}`]), 15000);
      check('the storm leaves on disconnect', true);
    });
  }

  if (other) {
    // The test compares rtsync's client's state with this one while alice stays.
    console.log(`STATE ${JSON.stringify(a.ch.presenceState())}`);
    await new Promise((r) => setTimeout(r, 3000));
  }
  try {
    a.c.disconnect();
  } catch (_) {}
  const failed = results.filter((r) => !r.ok);
  console.log(`${results.length - failed.length}/${results.length} checks passed for vsn ${vsn}`);
  process.exit(failed.length === 0 && results.length >= 7 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
