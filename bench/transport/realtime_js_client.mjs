// The comparison client: @supabase/realtime-js (Node, `ws` transport, its default vsn 2.0.0)
// subscribed to postgres_changes on public.tasks, counting the events its callback receives.
//
//   node realtime_js_client.mjs <http://127.0.0.1:port> <count>
// Prints one JSON line: events, seconds (first to last event), events_per_s, cpu_seconds.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/peers/package.json', import.meta.url));
const { RealtimeClient } = require('@supabase/realtime-js');
const WebSocket = require('ws');

const [base, countArg, timeoutArg] = process.argv.slice(2);
const COUNT = Number(countArg);
const TIMEOUT_MS = Number(timeoutArg ?? '120000');

const client = new RealtimeClient(base.replace(/^http/, 'ws') + '/realtime/v1', {
  params: { apikey: 'bench-key' },
  transport: WebSocket,
});
const channel = client.channel('bench');

let events = 0;
let t0 = 0;
let cpu0 = null;
let lastBytes = 0;

function finish() {
  const seconds = events > 1 ? (performance.now() - t0) / 1000 : 0;
  const cpu = cpu0 ? process.cpuUsage(cpu0) : { user: 0, system: 0 };
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  console.log(
    JSON.stringify({
      client: 'realtime-js',
      events,
      expected: COUNT,
      seconds,
      events_per_s: seconds > 0 ? (events - 1) / seconds : 0,
      cpu_seconds: cpuSeconds,
      events_per_cpu_s: cpuSeconds > 0 ? (events - 1) / cpuSeconds : 0,
    }),
  );
  client.disconnect();
  process.exit(events === COUNT ? 0 : 1);
}

channel.on('postgres_changes', { event: '*', schema: 'public', table: 'tasks' }, (payload) => {
  if (events === 0) {
    t0 = performance.now();
    cpu0 = process.cpuUsage();
  }
  events += 1;
  lastBytes += payload.new.params.seed; // touch the decoded record, like an application would
  if (events === COUNT) finish();
});
channel.subscribe((status, err) => {
  if (status !== 'SUBSCRIBED') console.error(`[realtime-js] ${status} ${err ?? ''}`);
});
setTimeout(finish, TIMEOUT_MS);
