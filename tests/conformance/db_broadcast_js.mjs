// Broadcast from Database with the official client: @supabase/realtime-js (tests/peers) over `ws`
// against rtsync server, for one protocol version given as argv[2] ("1.0.0"|"2.0.0").
//
//   - realtime.send from SQL reaches a private subscriber the project's policy lets read
//     (meta.id = the row id); a public subscriber of the same name gets nothing, and a user the
//     policy does not let read is refused with Supabase's reason and gets nothing;
//   - a realtime.broadcast_changes trigger's output arrives with the reference's payload shape;
//   - replay returns the last N stored messages, oldest first, with meta.replayed; the stranger's
//     replay is refused.
//
// Environment (set by conformance_test.cpp): RTSYNC_HTTP, ANON_KEY, MEMBER_ID, MEMBER_KEY (a user
// with that id), STRANGER_KEY (another user), PG_URL, PEERS_DIR. Prints one line per check; exits
// 0 when every check passed.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.PEERS_DIR}/package.json`);
const { RealtimeClient } = require('@supabase/realtime-js');
const WebSocket = require('ws');
const pg = require('pg');

const vsn = process.argv[2] || '2.0.0';
const endpoint = `${process.env.RTSYNC_HTTP.replace(/^http/, 'ws')}/realtime/v1`;
const tag = vsn.replace(/\./g, '');
const results = [];

function check(name, ok, detail = '') {
  results.push({ name, ok });
  console.log(`${ok ? 'ok  ' : 'FAIL'} [vsn ${vsn}] ${name}${detail ? ' — ' + detail : ''}`);
}

// A client on the anon key signed in as `user` (its JWT is every join's access_token).
async function client(user) {
  const c = new RealtimeClient(endpoint, {
    params: { apikey: process.env.ANON_KEY },
    transport: WebSocket,
    vsn,
    timeout: 5000,
  });
  if (user) await c.setAuth(user);
  return c;
}

function subscribed(channel, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no SUBSCRIBED within 8 s`)), 8000);
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') {
        clearTimeout(timer);
        resolve();
      } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
        clearTimeout(timer);
        reject(new Error(`${what}: ${status} ${err ? err.message : ''}`));
      }
    });
  });
}

function channelError(channel) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), 8000);
    channel.subscribe((status, err) => {
      if (status === 'CHANNEL_ERROR') {
        clearTimeout(timer);
        resolve(err ? err.message : 'CHANNEL_ERROR');
      }
      if (status === 'SUBSCRIBED') {
        clearTimeout(timer);
        resolve('SUBSCRIBED');
      }
    });
  });
}

async function run(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(name, false, e.message);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(pred, ms = 5000) {
  for (let waited = 0; !pred() && waited < ms; waited += 50) await sleep(50);
}
const sameKeys = (o, keys) =>
  o !== null && typeof o === 'object' && JSON.stringify(Object.keys(o).sort()) === JSON.stringify([...keys].sort());

async function main() {
  const db = new pg.Client({ connectionString: process.env.PG_URL });
  await db.connect();
  // The project's policy: the member may read every private topic's broadcasts.
  await db.query(`create policy conf_member_reads on realtime.messages for select to authenticated
                  using ((select auth.uid()) = '${process.env.MEMBER_ID}'::uuid)`);
  const clients = [];

  await run('realtime.send reaches a private subscriber', async () => {
    const topic = `send-${tag}`;
    const svc = await client(process.env.MEMBER_KEY);
    const pub = await client(null);
    const intruder = await client(process.env.STRANGER_KEY);
    clients.push(svc, pub, intruder);
    const got = [];
    const gotPublic = [];
    const gotIntruder = [];
    const priv = svc
      .channel(topic, { config: { private: true } })
      .on('broadcast', { event: '*' }, (m) => got.push(m));
    const open = pub.channel(topic).on('broadcast', { event: '*' }, (m) => gotPublic.push(m));
    const sneaky = intruder
      .channel(topic, { config: { private: true } })
      .on('broadcast', { event: '*' }, (m) => gotIntruder.push(m));
    await subscribed(priv, 'private');
    await subscribed(open, 'public');
    const refused = await channelError(sneaky);

    await db.query(`select realtime.send('{"n": 1}'::jsonb, 'ping', $1)`, [topic]);
    const { rows } = await db.query('select id::text from realtime.messages where topic = $1', [topic]);
    await until(() => got.length >= 1);
    await sleep(300);
    const m = got[0] || {};
    check(
      'realtime.send reaches a private subscriber',
      got.length === 1 && m.type === 'broadcast' && m.event === 'ping' && m.payload.n === 1 &&
        m.payload.id === rows[0].id && m.meta && m.meta.id === rows[0].id,
      JSON.stringify(got),
    );
    check('a public channel of the same name gets nothing', gotPublic.length === 0,
          `${gotPublic.length} received`);
    check('a user the policy does not let read cannot listen on the private channel',
          gotIntruder.length === 0 && refused !== 'SUBSCRIBED' &&
            /Unauthorized/.test(refused || ''),
          `${refused}; ${gotIntruder.length} received`);
  });

  await run('broadcast_changes trigger output', async () => {
    const table = `conf_bc_${tag}`;
    const topic = `changes-${tag}`;
    await db.query(`
      create table ${table} (id serial primary key, details text);
      create function ${table}_changes() returns trigger security definer language plpgsql as $$
      begin
        perform realtime.broadcast_changes('${topic}', TG_OP, TG_OP, TG_TABLE_NAME,
                                           TG_TABLE_SCHEMA, NEW, OLD);
        return null;
      end $$;
      create trigger ${table}_bc after insert or update or delete on ${table}
        for each row execute function ${table}_changes();`);
    const svc = await client(process.env.MEMBER_KEY);
    clients.push(svc);
    const got = [];
    const ch = svc
      .channel(topic, { config: { private: true } })
      .on('broadcast', { event: 'INSERT' }, (m) => got.push(m))
      .on('broadcast', { event: 'UPDATE' }, (m) => got.push(m))
      .on('broadcast', { event: 'DELETE' }, (m) => got.push(m));
    await subscribed(ch, 'trigger topic');
    await db.query(`insert into ${table} (details) values ('first')`);
    await db.query(`update ${table} set details = 'second' where id = 1`);
    await db.query(`delete from ${table} where id = 1`);
    await until(() => got.length >= 3);
    const [ins, upd, del] = got;
    const shape = ['old_record', 'record', 'operation', 'table', 'schema', 'id'];
    check(
      'broadcast_changes INSERT payload shape',
      !!ins && ins.event === 'INSERT' && ins.type === 'broadcast' && sameKeys(ins.payload, shape) &&
        ins.payload.old_record === null && ins.payload.operation === 'INSERT' &&
        ins.payload.table === table && ins.payload.schema === 'public' &&
        sameKeys(ins.payload.record, ['id', 'details']) && ins.payload.record.id === 1 &&
        ins.payload.record.details === 'first' &&
        ins.meta && ins.meta.id === ins.payload.id,
      JSON.stringify(ins),
    );
    check(
      'broadcast_changes UPDATE and DELETE',
      !!upd && !!del && upd.payload.record.details === 'second' &&
        upd.payload.old_record.details === 'first' && del.payload.record === null &&
        del.payload.old_record.id === 1 && del.payload.operation === 'DELETE',
      JSON.stringify([upd, del]),
    );
  });

  await run('replay', async () => {
    const topic = `replay-${tag}`;
    await db.query(`select realtime.send('{"n": 0}'::jsonb, 'old', $1)`, [topic]);
    await sleep(20);
    const since = Date.now();
    await sleep(20);
    for (let n = 1; n <= 4; n++) {
      await db.query(`select realtime.send(jsonb_build_object('n', $1::int), 'tick', $2)`, [n, topic]);
    }
    const { rows } = await db.query(
      `select id::text from realtime.messages where topic = $1 and payload->>'n' in ('3', '4')
       order by inserted_at`, [topic]);
    const svc = await client(process.env.MEMBER_KEY);
    clients.push(svc);
    const got = [];
    const ch = svc
      .channel(topic, { config: { private: true, broadcast: { replay: { since, limit: 2 } } } })
      .on('broadcast', { event: '*' }, (m) => got.push(m));
    await subscribed(ch, 'replay');
    await until(() => got.length >= 2);
    await sleep(300);
    check(
      'replay returns the last N with replayed',
      got.length === 2 && got.every((m) => m.meta && m.meta.replayed === true) &&
        got[0].payload.n === 3 && got[1].payload.n === 4 && got[0].meta.id === rows[0].id &&
        got[1].meta.id === rows[1].id,
      JSON.stringify(got),
    );
    await db.query(`select realtime.send('{"n": 5}'::jsonb, 'tick', $1)`, [topic]);
    await until(() => got.length >= 3);
    check('a live message after the replay is not replayed',
          got.length === 3 && got[2].payload.n === 5 && !got[2].meta.replayed,
          JSON.stringify(got[2]));

    const stranger = await client(process.env.STRANGER_KEY);
    clients.push(stranger);
    const gotStranger = [];
    const sc = stranger
      .channel(topic, { config: { private: true, broadcast: { replay: { since, limit: 2 } } } })
      .on('broadcast', { event: '*' }, (m) => gotStranger.push(m));
    const refused = await channelError(sc);
    check('the stranger\'s replay is refused',
          /Unauthorized: You do not have permissions to read from this Channel topic/.test(refused || '') &&
            gotStranger.length === 0,
          `${refused}; ${gotStranger.length} received`);
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
  process.exit(failed.length === 0 && results.length >= 8 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
