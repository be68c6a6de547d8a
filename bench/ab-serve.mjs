// A/B of the whole server's CPU per span between two checkouts' builds: `conduct serve` of each
// (its own process, SQLite, detection and the journal on, default limits; started as the eval
// starts it) takes the same number of workload spans over OTLP/HTTP from the bench's load
// generator, then a flush; its CPU time (every thread: main, pipeline, GC helpers; the process
// CPU counter of /metrics) divided by the spans. Sides alternate, the order
// flipping every round, so that both see the same machine load; medians and the after/before ratio.
//
//   npm run build && node bench/ab-serve.mjs --before ../columnar-base [--after .] [--rounds 5] [--spans 200000] [--shape 8]
import { fork } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServer } from '../eval/server.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    after: { type: 'string', default: join(HERE, '..') },
    rounds: { type: 'string', default: '5' },
    spans: { type: 'string', default: '200000' },
    shape: { type: 'string', default: '8' },
    transport: { type: 'string', default: 'http' },
  },
});
if (!values.before) throw new Error('--before <checkout> is required');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function once(root, loadgen, id) {
  const server = await startServer(root, { learning: { minCalls: 100, period: '5s' } });
  try {
    // process_cpu_seconds_total: the whole process (every thread), from process.cpuUsage().
    const cpu0 = (await server.metrics()).process_cpu_seconds_total;
    const answer = new Promise((r) => loadgen.once('message', r));
    const target = (values.transport === 'grpc' ? server.otlpGrpc : server.otlpHttp).replace('http://', '');
    loadgen.send({ cmd: 'run', transport: values.transport, target, concurrency: 8, spans: Number(values.spans), loadgenId: id, shape: Number(values.shape) });
    const done = await answer;
    if (done.type !== 'done') throw new Error(`load generator: ${done.message}`);
    await server.flush();
    const m = await server.metrics();
    const spans = done.spansAcked;
    return { usPerSpan: ((m.process_cpu_seconds_total - cpu0) * 1e6) / spans, spans, peakRssMB: m.process_resident_memory_bytes / 1048576 };
  } finally {
    await server.stop();
  }
}

const loadgen = fork(join(HERE, 'loadgen.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
await new Promise((r) => loadgen.once('message', r));
const roots = { before: resolve(values.before), after: resolve(values.after) };
const runs = { before: [], after: [] };
let id = 1;
for (let r = 0; r < Number(values.rounds); r++) {
  for (const side of r % 2 ? ['after', 'before'] : ['before', 'after']) {
    const x = await once(roots[side], loadgen, id++);
    runs[side].push(x);
    process.stdout.write(`round ${r + 1} ${side}: ${x.usPerSpan.toFixed(2)} µs CPU/span over ${x.spans} spans, RSS after the flush ${x.peakRssMB.toFixed(0)} MB\n`);
  }
}
loadgen.send({ cmd: 'exit' });
const med = (side, k) => median(runs[side].map((x) => x[k]));
process.stdout.write(
  `median server CPU µs/span: before ${med('before', 'usPerSpan').toFixed(2)}, after ${med('after', 'usPerSpan').toFixed(2)}, ratio ${(med('after', 'usPerSpan') / med('before', 'usPerSpan')).toFixed(2)}; ` +
    `RSS MB after the flush: before ${med('before', 'peakRssMB').toFixed(0)}, after ${med('after', 'peakRssMB').toFixed(0)}\n`,
);
