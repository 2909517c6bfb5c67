// Set-up shared by the supabase-js conformance scripts (supabase_js.mjs, supabase_js_es256.mjs):
// the official client from tests/peers, one printed line per check, and the exit status.
//
// Environment: RTSYNC_URL (the server's base URL) and PEERS_DIR (the folder holding
// node_modules), set by supabase_js_test.cpp.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.PEERS_DIR}/package.json`);
const { createClient } = require('@supabase/supabase-js');
const WebSocket = require('ws');

export const base = process.env.RTSYNC_URL;
const results = [];

// Records one check and prints "ok  <name>" or "FAIL <name> — <detail>".
export function check(name, ok, detail = '') {
  results.push({ name, ok });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ' — ' + detail : ''}`);
}

// Runs one named check: it passes when `fn` resolves, fails (with the first stack lines) when it
// throws.
export async function run(name, fn) {
  try {
    await fn();
    check(name, true);
  } catch (e) {
    check(name, false, e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : String(e));
  }
}

// A supabase-js client of the server with `key`: no stored session, no background refresh,
// realtime over `ws` (Node 20 has no global WebSocket). `extra` is spread into the options.
export function client(key, extra = {}) {
  return createClient(base, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket, timeout: 5000 },
    ...extra,
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Runs `body`, prints the tally and exits: 0 when every check passed, 1 when one failed, 2 when
// `body` itself threw.
export function main(body) {
  body()
    .then(() => {
      const failed = results.filter((r) => !r.ok);
      console.log(`${results.length - failed.length}/${results.length} checks passed`);
      process.exit(failed.length === 0 ? 0 : 1);
    })
    .catch((e) => {
      console.error(e);
      process.exit(2);
    });
}
