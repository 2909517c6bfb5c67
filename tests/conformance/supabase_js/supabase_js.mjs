// Conformance of rtsync's /auth/v1, /rest/v1 and realtime with the official client:
// @supabase/supabase-js (tests/peers, lock file committed).
//
// Environment (set by supabase_js_test.cpp):
//   RTSYNC_URL  the `rtsync server` base URL: realtime, /rest/v1 and /auth/v1 on one listener,
//               exactly as supabase-js addresses a Supabase project
//   ANON_KEY    the anon key (HS256, the server's secret)
//   PEERS_DIR   the folder holding node_modules
//   REALTIME    "0" skips the realtime checks
//
// Prints one line per check; exits 0 when every check passed.
import assert from 'node:assert/strict';

import { client as clientWith, main, run, sleep } from './harness.mjs';

const anonKey = process.env.ANON_KEY;
const client = () => clientWith(anonKey);
const stamp = Date.now();

main(async () => {
  const a = client();
  const b = client();
  const emailA = `alice-${stamp}@example.com`;
  const emailB = `bob-${stamp}@example.com`;
  let userA, userB, projectA, projectB, firstSession;

  await run('signUp returns a session and the user', async () => {
    const { data, error } = await a.auth.signUp({ email: emailA, password: 'alice-password' });
    assert.equal(error, null);
    assert.ok(data.session && data.session.access_token);
    assert.equal(data.user.email, emailA);
    userA = data.user;
  });

  await run('signInWithPassword refuses a wrong password', async () => {
    const { data, error } = await a.auth.signInWithPassword({ email: emailA, password: 'nope-nope' });
    assert.ok(error);
    assert.equal(error.status, 400);
    assert.equal(error.code, 'invalid_credentials');
    assert.equal(data.session, null);
  });

  await run('signInWithPassword', async () => {
    const { data, error } = await a.auth.signInWithPassword({ email: emailA, password: 'alice-password' });
    assert.equal(error, null);
    assert.equal(data.user.id, userA.id);
    assert.ok(data.session.expires_at > Date.now() / 1000);
    firstSession = data.session;
    const { data: got, error: e2 } = await a.auth.getUser();
    assert.equal(e2, null);
    assert.equal(got.user.email, emailA);
  });

  await run('insert a project and select it back as a single object', async () => {
    const { data, error } = await a.from('projects').insert({ name: 'A', user_id: userA.id }).select().single();
    assert.equal(error, null);
    assert.equal(data.name, 'A');
    projectA = data.id;
  });

  const statuses = ['Queued', 'In Progress', 'Complete', 'Failed', 'Cancelled'];
  await run('insert an array of tasks', async () => {
    const rows = [];
    for (let i = 0; i < 12; i++) {
      rows.push({
        task_type: `t${i}`,
        params: { i },
        status: statuses[i % 5],
        project_id: projectA,
        created_at: new Date(Date.UTC(2025, 0, 1, 0, i)).toISOString(),
      });
    }
    const { data, error, status } = await a.from('tasks').insert(rows).select('id,task_type');
    assert.equal(error, null);
    assert.equal(status, 201);
    assert.equal(data.length, 12);
  });

  await run('select with eq, in, order, range and count exact', async () => {
    const { data, error, count, status } = await a
      .from('tasks')
      .select('task_type,status', { count: 'exact' })
      .eq('project_id', projectA)
      .in('status', ['Queued', 'In Progress'])
      .order('created_at', { ascending: false })
      .range(1, 3);
    assert.equal(error, null);
    assert.equal(count, 6); // i % 5 in {0, 1} for i < 12
    assert.equal(status, 206);
    assert.deepEqual(data.map((r) => r.task_type), ['t10', 't6', 't5']);
  });

  await run('head with count exact', async () => {
    const { count, error, data } = await a
      .from('tasks')
      .select('*', { count: 'exact', head: true })
      .eq('status', 'Failed');
    assert.equal(error, null);
    assert.equal(count, 2);
    assert.equal(data, null);
  });

  await run('update and delete with filters', async () => {
    const { data, error } = await a.from('tasks').update({ status: 'Complete' }).eq('task_type', 't0').select();
    assert.equal(error, null);
    assert.equal(data.length, 1);
    assert.equal(data[0].status, 'Complete');
    const del = await a.from('tasks').delete().eq('task_type', 't11').select('task_type');
    assert.equal(del.error, null);
    assert.deepEqual(del.data, [{ task_type: 't11' }]);
  });

  await run('rpc task_status_counts', async () => {
    const { data, error } = await a.rpc('task_status_counts', { p_project_id: projectA });
    assert.equal(error, null);
    assert.equal(data.complete, 3);
    assert.equal(data.processing, 4);
  });

  await run('errors keep PostgREST codes', async () => {
    const missing = await a.from('nope').select();
    assert.equal(missing.status, 404);
    assert.equal(missing.error.code, 'PGRST205');
    const badCol = await a.from('tasks').select('nope');
    assert.equal(badCol.status, 400);
    assert.equal(badCol.error.code, '42703');
  });

  await run('a second user can neither read nor change the first user\'s rows', async () => {
    const up = await b.auth.signUp({ email: emailB, password: 'bob-password' });
    assert.equal(up.error, null);
    userB = up.data.user;
    const mine = await b.from('projects').insert({ name: 'B', user_id: userB.id }).select().single();
    assert.equal(mine.error, null);
    projectB = mine.data.id;
    const read = await b.from('tasks').select('*', { count: 'exact' }).eq('project_id', projectA);
    assert.equal(read.error, null);
    assert.deepEqual(read.data, []);
    assert.equal(read.count, 0);
    const change = await b.from('tasks').update({ status: 'Cancelled' }).eq('project_id', projectA).select();
    assert.equal(change.error, null);
    assert.deepEqual(change.data, []);
    const steal = await b.from('tasks').insert({ task_type: 'x', params: {}, project_id: projectA });
    assert.equal(steal.status, 403);
    const still = await a.from('tasks').select('status', { count: 'exact' }).eq('status', 'Cancelled');
    assert.equal(still.count, 2);
  });

  await run('refreshSession rotates; a lost answer is given again, an older token is refused', async () => {
    const { data, error } = await a.auth.refreshSession();
    assert.equal(error, null);
    // Rotation: a new refresh token (the access token may be byte-identical within one second).
    assert.notEqual(data.session.refresh_token, firstSession.refresh_token);
    // The used token again, as from a client that never got the answer: GoTrue gives the token
    // issued in its place back instead of treating it as a replay.
    const c = client();
    const again = await c.auth.refreshSession({ refresh_token: firstSession.refresh_token });
    assert.equal(again.error, null);
    assert.equal(again.data.session.refresh_token, data.session.refresh_token);
    // One more rotation and the first token is two behind: a replay, refused.
    const next = await a.auth.refreshSession();
    assert.equal(next.error, null);
    const d = client();
    const reuse = await d.auth.refreshSession({ refresh_token: firstSession.refresh_token });
    assert.ok(reuse.error);
    assert.equal(reuse.data.session, null);
    // The refreshed session still opens /rest/v1.
    const ok = await a.from('projects').select('id');
    assert.equal(ok.error, null);
    assert.equal(ok.data.length, 1);
  });

  if (process.env.REALTIME !== '0') {
    await run('realtime delivers changes of the user\'s own project only', async () => {
      const received = [];
      let subscribedResolve;
      const subscribed = new Promise((resolve, reject) => {
        subscribedResolve = resolve;
        setTimeout(() => reject(new Error('not SUBSCRIBED within 8 s')), 8000);
      });
      const channel = a
        .channel(`tasks-${stamp}`)
        .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'tasks' }, (payload) => {
          received.push(payload.new);
        })
        .subscribe((status, err) => {
          if (status === 'SUBSCRIBED') subscribedResolve();
          if (status === 'CHANNEL_ERROR') console.log('channel error', err && err.message);
        });
      await subscribed;
      const other = await b.from('tasks').insert({ task_type: 'theirs', params: {}, project_id: projectB });
      assert.equal(other.error, null);
      const own = await a.from('tasks').insert({ task_type: 'ours', params: {}, project_id: projectA });
      assert.equal(own.error, null);
      const deadline = Date.now() + 8000;
      while (!received.some((r) => r.task_type === 'ours') && Date.now() < deadline) await sleep(50);
      await sleep(1000); // room for a stray delivery of B's row
      assert.deepEqual(received.map((r) => r.task_type), ['ours']);
      assert.equal(received[0].project_id, projectA);
      await a.removeChannel(channel);
    });
  } else {
    console.log('skip realtime checks (REALTIME=0)');
  }

  await run('signOut revokes the session', async () => {
    // A fresh session (the reuse above revoked the earlier one on the server).
    const fresh = await a.auth.signInWithPassword({ email: emailA, password: 'alice-password' });
    assert.equal(fresh.error, null);
    const refreshToken = fresh.data.session.refresh_token;
    const { error } = await a.auth.signOut();
    assert.equal(error, null);
    const c = client();
    const after = await c.auth.refreshSession({ refresh_token: refreshToken });
    assert.ok(after.error);
  });

  await a.removeAllChannels();
  await b.removeAllChannels();
});
