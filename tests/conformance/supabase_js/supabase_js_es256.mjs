// supabase-js against rtsync configured for asymmetric keys: /auth/v1 signs ES256 and publishes
// its key at /auth/v1/.well-known/jwks.json, the server also trusts a JWKS file, and the client is
// created with an opaque publishable key (not a JWT), as current Supabase projects issue them.
//
// Environment (set by supabase_js_test.cpp):
//   RTSYNC_URL        the server's base URL
//   PUBLISHABLE_KEY   the opaque publishable key the server is configured with
//   SECRET_KEY        the opaque secret key (stands for service_role)
//   JWKS_KEY_PEM      PKCS#8 PEM of a P-256 private key whose public half is in the server's JWKS
//   JWKS_KEY_KID      its kid
//   JWKS_PATH         the JWKS file the server reads (re-read every second in this test): the
//                     rotation check rewrites it
//   PEERS_DIR         the folder holding node_modules
//
// Prints one line per check; exits 0 when every check passed.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';

import { base, client as clientWith, main, run, sleep } from './harness.mjs';

const publishableKey = process.env.PUBLISHABLE_KEY;
const client = (extra = {}, key = publishableKey) => clientWith(key, extra);

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const decodePart = (token, i) => JSON.parse(Buffer.from(token.split('.')[i], 'base64url').toString());

// An ES256 JWT signed here, with Node's own crypto (JWS signatures are raw r||s: ieee-p1363).
function signEs256(claims, privateKey, kid) {
  const input = `${b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid }))}.${b64url(JSON.stringify(claims))}`;
  const sig = crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}

// A JWT with the given header, signed by `sign(input)` (a Buffer) or unsigned when it is null.
function jwt(header, claims, sign) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${sign ? b64url(sign(Buffer.from(input))) : ''}`;
}

// Subscribes to INSERTs on tasks; resolves to the status reached: SUBSCRIBED or an error.
function subscribe(c, name, received) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('TIMED_OUT'), 8000);
    const channel = c
      .channel(name)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'tasks' }, (p) => received.push(p.new))
      .subscribe((status) => {
        if (status === 'SUBSCRIBED' || status === 'CHANNEL_ERROR' || status === 'CLOSED') {
          clearTimeout(timer);
          resolve(status);
        }
      });
    c.__channel = channel;
  });
}

main(async () => {
  const stamp = Date.now();
  const a = client();
  let jwks, session, userId, projectId;

  await run('the publishable key (not a JWT) opens /rest/v1 as anon', async () => {
    const { data, error, status } = await a.from('projects').select('id');
    assert.equal(error, null);
    assert.equal(status, 200);
    assert.deepEqual(data, []); // anon sees no one's projects
    const wrong = await client({}, publishableKey + 'x').from('projects').select('id');
    assert.ok(wrong.error);
    assert.equal(wrong.status, 401);
  });

  await run('/auth/v1/.well-known/jwks.json serves one ES256 public key', async () => {
    const res = await fetch(`${base}/auth/v1/.well-known/jwks.json`);
    assert.equal(res.status, 200);
    jwks = await res.json();
    assert.equal(jwks.keys.length, 1);
    const [k] = jwks.keys;
    assert.equal(k.kty, 'EC');
    assert.equal(k.crv, 'P-256');
    assert.equal(k.alg, 'ES256');
    assert.ok(k.kid);
    assert.equal(k.d, undefined, 'the private part must never be published');
  });

  await run('signUp returns an ES256 access token Node verifies with the published key', async () => {
    const { data, error } = await a.auth.signUp({ email: `es256-${stamp}@example.com`, password: 'es256-password' });
    assert.equal(error, null);
    session = data.session;
    userId = data.user.id;
    const header = decodePart(session.access_token, 0);
    assert.equal(header.alg, 'ES256');
    assert.equal(header.kid, jwks.keys[0].kid);
    const [h, p, s] = session.access_token.split('.');
    const key = crypto.createPublicKey({ key: jwks.keys[0], format: 'jwk' });
    const ok = crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' },
      Buffer.from(s, 'base64url'));
    assert.equal(ok, true);
    assert.equal(decodePart(session.access_token, 1).sub, userId);
    const { data: got, error: e2 } = await a.auth.getUser();
    assert.equal(e2, null);
    assert.equal(got.user.id, userId);
  });

  await run('/rest/v1 accepts the ES256 session', async () => {
    const { data, error } = await a.from('projects').insert({ name: 'ES', user_id: userId }).select().single();
    assert.equal(error, null);
    projectId = data.id;
  });

  await run('realtime: subscribe with the ES256 token and receive an insert', async () => {
    const received = [];
    const status = await subscribe(a, `es256-${stamp}`, received);
    assert.equal(status, 'SUBSCRIBED');
    const ins = await a.from('tasks').insert({ task_type: 'es256', params: {}, project_id: projectId });
    assert.equal(ins.error, null);
    const deadline = Date.now() + 8000;
    while (!received.some((r) => r.task_type === 'es256') && Date.now() < deadline) await sleep(50);
    assert.deepEqual(received.map((r) => r.task_type), ['es256']);
    await a.removeChannel(a.__channel);
  });

  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: userId, role: 'authenticated', aud: 'authenticated', exp: now + 600, iat: now };

  await run('a token signed by a key of the JWKS file opens /rest/v1 and realtime', async () => {
    const token = signEs256(claims, process.env.JWKS_KEY_PEM, process.env.JWKS_KEY_KID);
    const c = client({ global: { headers: { Authorization: `Bearer ${token}` } } });
    const { data, error } = await c.from('projects').select('id');
    assert.equal(error, null);
    assert.deepEqual(data.map((r) => r.id), [projectId]);
    c.realtime.setAuth(token);
    const status = await subscribe(c, `jwks-${stamp}`, []);
    assert.equal(status, 'SUBSCRIBED');
    await c.removeAllChannels();
  });

  await run('a token signed by a key not in any key set is refused by /rest/v1 and realtime', async () => {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (const kid of [process.env.JWKS_KEY_KID, jwks.keys[0].kid, 'attacker']) {
      const token = signEs256(claims, privateKey, kid);
      const c = client({ global: { headers: { Authorization: `Bearer ${token}` } } });
      const { error, status } = await c.from('projects').select('id');
      assert.ok(error, kid);
      assert.equal(status, 401, kid);
      c.realtime.setAuth(token);
      const joined = await subscribe(c, `attacker-${kid}-${stamp}`, []);
      assert.notEqual(joined, 'SUBSCRIBED', kid);
      await c.removeAllChannels();
    }
  });

  // What a token opens: the /rest/v1 status and the realtime join's status.
  const opens = async (token, label) => {
    const c = client({ global: { headers: { Authorization: `Bearer ${token}` } } });
    const { status } = await c.from('projects').select('id');
    c.realtime.setAuth(token);
    const joined = await subscribe(c, `${label}-${stamp}`, []);
    await c.removeAllChannels();
    return { rest: status, realtime: joined };
  };

  // The file's key is replaced by a new ES256 key and an RS256 key, as an operator rotates keys:
  // no restart, the server's next read of the file (every second here) decides.
  const rotated = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rotatedKid = `rotated-${stamp}`;
  const rsaKid = `rsa-${stamp}`;
  const es256 = (c, key, kid) => signEs256(c, key, kid);
  const rs256 = (c, key, kid) =>
    jwt({ alg: 'RS256', typ: 'JWT', kid }, c, (input) => crypto.sign('sha256', input, key));

  await run('the opaque secret key stands for service_role: it reads every project, realtime too', async () => {
    const admin = client({}, process.env.SECRET_KEY);
    const { data, error, status } = await admin.from('projects').select('id');
    assert.equal(error, null);
    assert.equal(status, 200);
    assert.ok(data.some((r) => r.id === projectId), 'service_role bypasses row-level security');
    const status2 = await subscribe(admin, `secret-${stamp}`, []);
    assert.equal(status2, 'SUBSCRIBED');
    await admin.removeAllChannels();
    const wrong = await client({}, process.env.SECRET_KEY + 'x').from('projects').select('id');
    assert.equal(wrong.status, 401);
  });

  await run('a key rotation through the JWKS file: the new keys open, the removed one no longer does', async () => {
    const keys = [
      { ...rotated.publicKey.export({ format: 'jwk' }), kid: rotatedKid, alg: 'ES256', use: 'sig' },
      { ...rsa.publicKey.export({ format: 'jwk' }), kid: rsaKid, alg: 'RS256', use: 'sig' },
    ];
    fs.writeFileSync(`${process.env.JWKS_PATH}.tmp`, JSON.stringify({ keys }));
    fs.renameSync(`${process.env.JWKS_PATH}.tmp`, process.env.JWKS_PATH);
    const fresh = es256(claims, rotated.privateKey, rotatedKid);
    const deadline = Date.now() + 10000;
    let status = 0;
    while (Date.now() < deadline) {
      const c = client({ global: { headers: { Authorization: `Bearer ${fresh}` } } });
      ({ status } = await c.from('projects').select('id'));
      if (status === 200) break;
      await sleep(100);
    }
    assert.equal(status, 200, 'the rotated ES256 key is trusted within the reload interval');
    assert.deepEqual(await opens(fresh, 'rotated'), { rest: 200, realtime: 'SUBSCRIBED' });
    assert.deepEqual(await opens(rs256(claims, rsa.privateKey, rsaKid), 'rs256'), { rest: 200, realtime: 'SUBSCRIBED' });
    const removed = es256(claims, process.env.JWKS_KEY_PEM, process.env.JWKS_KEY_KID);
    const r = await opens(removed, 'removed');
    assert.equal(r.rest, 401);
    assert.notEqual(r.realtime, 'SUBSCRIBED');
  });

  await run('alg confusion is refused: the RS256 public key as an HS256 secret, alg none, a key used with another alg', async () => {
    const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
    const hmacWith = (secret) => (input) => crypto.createHmac('sha256', secret).update(input).digest();
    const forged = {
      'hs256-rsa-pem-kid': jwt({ alg: 'HS256', typ: 'JWT', kid: rsaKid }, claims, hmacWith(publicPem)),
      'hs256-rsa-pem': jwt({ alg: 'HS256', typ: 'JWT' }, claims, hmacWith(publicPem)),
      'hs256-rsa-jwk': jwt({ alg: 'HS256', typ: 'JWT', kid: rsaKid }, claims,
        hmacWith(JSON.stringify(rsa.publicKey.export({ format: 'jwk' })))),
      'none-kid': jwt({ alg: 'none', typ: 'JWT', kid: rsaKid }, claims, null),
      'none': jwt({ alg: 'none', typ: 'JWT' }, claims, null),
      'NONE': jwt({ alg: 'NONE', typ: 'JWT' }, claims, null),
      // A genuine RS256 signature presented under the ES256 key's kid: keys are pinned to their alg.
      'rs256-under-es256-kid': rs256(claims, rsa.privateKey, rotatedKid),
      'es256-under-rs256-kid': es256(claims, rotated.privateKey, rsaKid),
    };
    for (const [label, token] of Object.entries(forged)) {
      const r = await opens(token, label.toLowerCase());
      assert.equal(r.rest, 401, label);
      assert.notEqual(r.realtime, 'SUBSCRIBED', label);
    }
  });

  await a.removeAllChannels();
});
