// The @tanstack/query-core side of bench_query: the same workload, in browser mode
// (environmentManager.setIsServer(() => false): gcTime 5 min, retry 3, timers on), one thread.
//   N cached queries in N/100 families, keys ["family-NNNN","paginated","project-P",page,50,"Queued"],
//   data {id, status:"Queued", page}, 10 % observed (10 per family, staleTime Infinity),
//   no-op query functions returning the same data.
// Measures per size: build (setQueryData creating a query), lookup (getQueryData, key built per
// call), set (setQueryData on an existing query, changed data), invalidate (invalidateQueries of one
// family, awaited: 100 matches, 10 active refetched), bytes per cached query (V8 heapUsed delta after
// gc, cache without observers). Times are process CPU time per operation.
// Invalidation is slow at 100k queries, so the number of invalidations per size is capped by a CPU
// budget (INVALIDATE_SECONDS, default 20 s) and reported.
// Usage: node --expose-gc tanstack_peer.mjs [sizes=1000,10000,100000] [invalidations=10000]
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const core = join(here, '../../tests/peers/node_modules/@tanstack/query-core');
const { QueryClient, QueryObserver, environmentManager, notifyManager } = await import(
  join(core, 'build/modern/index.js')
);
const version = require(join(core, 'package.json')).version;
environmentManager.setIsServer(() => false);
// Observer notifications run on the next loop turn, as rtsync's do; the default setTimeout(0) is
// clamped to 1 ms in Node, so setImmediate is used and each iteration yields one turn so that the
// listener work is part of the measurement (on both sides).
notifyManager.setScheduler((cb) => setImmediate(cb));
const turn = () => new Promise((r) => setImmediate(r));

const sizes = (process.argv[2] ?? '1000,10000,100000').split(',').map(Number);
const maxInvalidations = Number(process.argv[3] ?? 10000);
const budget = Number(process.env.INVALIDATE_SECONDS ?? 20);

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const gc = () => {
  if (globalThis.gc) {
    globalThis.gc();
    globalThis.gc();
  }
};
const familyName = (f) => `family-${String(f).padStart(4, '0')}`;
const keyOf = (families, i) => {
  const f = i % families;
  const q = Math.floor(i / families);
  return [familyName(f), 'paginated', `project-${q % 10}`, q, 50, 'Queued'];
};
const dataOf = (i, families, status) => ({ id: i, status, page: Math.floor(i / families) });

async function run(n, invalidations = maxInvalidations) {
  const families = Math.max(1, Math.floor(n / 100));
  const out = { queries: n, families, version };

  // memory: the cache alone
  {
    gc();
    const before = process.memoryUsage().heapUsed;
    let client = new QueryClient();
    client.mount();
    for (let i = 0; i < n; i++) client.setQueryData(keyOf(families, i), dataOf(i, families, 'Queued'));
    gc();
    const after = process.memoryUsage().heapUsed;
    out.bytes_per_query = (after - before) / n;
    client.clear();
    client.unmount();
    client = null;
    gc();
  }

  const client = new QueryClient();
  client.mount();

  // build
  {
    const keys = [];
    const datas = [];
    for (let i = 0; i < n; i++) {
      keys.push(keyOf(families, i));
      datas.push(dataOf(i, families, 'Queued'));
    }
    const t0 = cpu();
    for (let i = 0; i < n; i++) client.setQueryData(keys[i], datas[i]);
    const t1 = cpu();
    out.build_ns = ((t1 - t0) * 1e9) / n;
  }

  // lookup (key built per call)
  {
    const ops = Math.max(n, 100000);
    const keys = [];
    for (let k = 0; k < ops; k++) keys.push(keyOf(families, (k * 7919) % n));
    let hits = 0;
    const t0 = cpu();
    for (let k = 0; k < ops; k++) if (client.getQueryData(keys[k]) !== undefined) hits++;
    const t1 = cpu();
    if (hits !== ops) console.error(`lookup misses: ${ops - hits}`);
    out.lookup_ns = ((t1 - t0) * 1e9) / ops;
  }

  // setQueryData on existing queries (changed data)
  {
    const ops = Math.max(n, 100000);
    const keys = [];
    const datas = [];
    for (let k = 0; k < ops; k++) {
      const i = (k * 7919) % n;
      keys.push(keyOf(families, i));
      datas.push(dataOf(i, families, Math.floor(k / n) % 2 === 0 ? 'Running' : 'Queued'));
    }
    const t0 = cpu();
    for (let k = 0; k < ops; k++) client.setQueryData(keys[k], datas[k]);
    const t1 = cpu();
    out.set_ns = ((t1 - t0) * 1e9) / ops;
  }

  // invalidate one family at a time
  {
    const unsubscribers = [];
    let fetches = 0;
    for (let i = 0; i < n; i++) {
      if (Math.floor(i / families) >= 10) continue;
      const queryKey = keyOf(families, i);
      const value = client.getQueryData(queryKey);
      const observer = new QueryObserver(client, {
        queryKey,
        queryFn: () => {
          fetches++;
          return Promise.resolve(value);
        },
        staleTime: Infinity,
      });
      unsubscribers.push(observer.subscribe(() => {}));
    }
    await turn();
    const filters = [];
    for (let f = 0; f < families; f++) filters.push({ queryKey: [familyName(f)] });
    let k = 0;
    const t0 = cpu();
    for (; k < invalidations; k++) {
      await client.invalidateQueries(filters[k % families]);
      await turn();
      if ((k & 15) === 15 && cpu() - t0 > budget) {
        k++;
        break;
      }
    }
    const t1 = cpu();
    out.invalidations = k;
    out.invalidate_us = ((t1 - t0) * 1e6) / k;
    out.refetched_per_call = fetches / k;
    out.fetches = fetches;
    unsubscribers.forEach((u) => u());
  }
  client.clear();
  client.unmount();
  return out;
}

// Warm the JIT on a small cache first (not reported).
await run(1000, 500);
for (const n of sizes) {
  gc();
  console.log(JSON.stringify(await run(n)));
}
process.exit(0);
