// The SQLite store in a steady state with retention: CPU µs per chain written and per chain
// retention deleted, with real (random) trace ids. Each pass opens a fresh file, writes batches of
// 1,024 4-span traces (two chains each, 45 identities, random W3C trace ids), and after each batch
// runs retention steps until the store holds the newest --keep traces again, as a long-running
// server does once its retention period is full; the second half of the batches is measured.
//
//   npm run build && node bench/store-steady.mjs [--keep 150000] [--batches 300] [--reps 3]
//   cp -r backend/dist bench/.ab/backend-before   # before a change; then, after it and a build:
//   node bench/store-steady.mjs --before bench/.ab/backend-before
//
// --before (and --after, default this checkout's build) take saved backend builds inside this
// checkout; their passes alternate (ABBA) and the medians and the least of each side are printed
// with their ratio. CPU time is the process's (process.cpuUsage), which holds SQLite's work.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    keep: { type: 'string', default: '150000' },
    batches: { type: 'string', default: '300' },
    reps: { type: 'string', default: '3' },
    before: { type: 'string' },
    after: { type: 'string' },
  },
});
const KEEP = Number(values.keep);
const BATCHES = Number(values.batches);
const REPS = Number(values.reps);
const TRACES_PER_BATCH = 1024;
const IDENTITIES = 45;
const here = new URL('.', import.meta.url).pathname;
const build = (dir) => ({ dir: resolve(dir), name: dir });
const sides = values.before ? [build(values.before), build(values.after ?? join(here, '../backend/dist'))] : [build(values.after ?? join(here, '../backend/dist'))];

/** One pass on a fresh file: µs per chain written, per chain pruned, and per chain written of both. */
async function pass(side) {
  const { openStore } = await import(pathToFileURL(join(side.dir, 'store/sqlite/store.js')).href);
  const dir = mkdtempSync(join(tmpdir(), 'conduct-steady-'));
  const store = await openStore({ path: join(dir, 'steady.db') });
  const cpu = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  let n = 0;
  const chainOf = (i, traceId) => {
    const identity = `svc:steady-${i % IDENTITIES}`;
    // A call as derive makes it, which the store keeps in its binary form.
    const call = {
      traceId,
      spanId: randomBytes(8).toString('hex'),
      parentSpanId: '',
      identity,
      identityKind: 'workload',
      service: 'steady',
      peer: 'db.internal',
      peerKind: 'service',
      external: false,
      operation: 'GET /x',
      protocol: 'http',
      startMs: 1e12 + n,
      durationMs: 1,
      status: 'ok',
      name: 'GET /x',
      source: {},
    };
    return { traceId, identity, identityKind: 'workload', startMs: 1e12 + n, endMs: 1e12 + n + 5, calls: [call] };
  };
  let writeUs = 0;
  let pruneUs = 0;
  let written = 0;
  let pruned = 0;
  for (let b = 0; b < BATCHES; b++) {
    const chains = [];
    const traces = [];
    for (let i = 0; i < TRACES_PER_BATCH; i++) {
      n++;
      const traceId = randomBytes(16).toString('hex');
      chains.push(chainOf(i, traceId), chainOf(i + 1, traceId));
      traces.push({ traceId, startMs: 1e12 + n, endMs: 1e12 + n + 5, spans: 4, services: ['steady'] });
    }
    const measured = b >= BATCHES / 2;
    let t = cpu();
    store.writeChains(chains, traces);
    if (measured) {
      writeUs += cpu() - t;
      written += chains.length;
    }
    t = cpu();
    for (;;) {
      const step = store.pruneStep(1e12 + n - KEEP, 5000);
      if (measured) pruned += step.chains;
      if (step.chains + step.traces < 5000 && !step.more) break;
    }
    if (measured) pruneUs += cpu() - t;
  }
  store.close();
  rmSync(dir, { recursive: true, force: true });
  return { write: writeUs / written, prune: pruneUs / Math.max(1, pruned), total: (writeUs + pruneUs) / written };
}

const results = sides.map(() => []);
process.stdout.write(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; keep ${KEEP} traces, ${BATCHES} batches of ${TRACES_PER_BATCH}, ${REPS} passes per side${sides.length > 1 ? ' (ABBA)' : ''}\n`);
for (let r = 0; r < REPS; r++) {
  const order = sides.map((_, i) => i);
  if (r % 2 === 1) order.reverse();
  for (const i of order) results[i].push(await pass(sides[i]));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const least = (xs) => Math.min(...xs);
const fields = ['write', 'prune', 'total'];
for (const [i, side] of sides.entries()) {
  const line = fields.map((f) => `${f} ${median(results[i].map((x) => x[f])).toFixed(2)} (least ${least(results[i].map((x) => x[f])).toFixed(2)})`).join(', ');
  process.stdout.write(`${side.name}: µs per chain, median of ${REPS}: ${line}\n`);
}
if (sides.length > 1) {
  const ratio = (f, agg) => (agg(results[1].map((x) => x[f])) / agg(results[0].map((x) => x[f]))).toFixed(3);
  process.stdout.write(`after/before: ${fields.map((f) => `${f} ${ratio(f, median)} (least ${ratio(f, least)})`).join(', ')}\n`);
}
