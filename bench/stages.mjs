// Cost of each stage of the hot path, in CPU microseconds per span, measured in one process on the
// bench workload: decode (wire scanner), stitch (add + complete), derive (identity, calls,
// chains), store (SQLite writeChains on a temporary file) and detect (learn + detectors).
// CPU time, not wall time, so the figures hold up better than throughput on a busy machine.
//
//   npm run build && node bench/stages.mjs [--requests 400] [--reps 3]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeTracesRequest } from '@conduct/proto';
import { createIdentityResolver, createStitcher, deriveTrace, DEFAULT_IDENTITY_RULES } from '@conduct/processor';
import { createDetection, openSqliteBackend } from '@conduct/backend';
import { createRequestSource, SPANS_PER_REQUEST } from './workload.mjs';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '400' }, reps: { type: 'string', default: '3' } } });
const REQUESTS = Number(values.requests);
const REPS = Number(values.reps);
/** Event time advances as if 200k spans/s were arriving. */
const EVENT_MS_PER_REQUEST = (SPANS_PER_REQUEST / 200_000) * 1000;
const BATCH_TRACES = 1024;

const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function once(rep) {
  const source = createRequestSource(rep);
  let now = Date.now();
  const bodies = Array.from({ length: REQUESTS }, () => source.next((now += EVENT_MS_PER_REQUEST)));
  const spans = REQUESTS * SPANS_PER_REQUEST;
  const t = {};
  let c = cpu();
  const lap = (name) => {
    const n = cpu();
    t[name] = (t[name] ?? 0) + (n - c);
    c = n;
  };

  const decoded = bodies.map((b) => decodeTracesRequest(b));
  lap('decode');
  const stitcher = createStitcher({ idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 10_000_000 });
  for (const d of decoded) stitcher.add(d);
  const traces = stitcher.flush();
  lap('stitch');
  const resolver = createIdentityResolver(DEFAULT_IDENTITY_RULES);
  const batches = [];
  for (let i = 0; i < traces.length; i += BATCH_TRACES) {
    const chains = [];
    for (const trace of traces.slice(i, i + BATCH_TRACES)) for (const chain of deriveTrace(trace.spans, resolver).chains) chains.push(chain);
    batches.push(chains);
  }
  lap('derive');
  const dir = mkdtempSync(join(tmpdir(), 'conduct-stages-'));
  const backend = await openSqliteBackend({ path: join(dir, 'conduct.db') });
  const store = backend.store;
  const detection = await createDetection({ state: backend.detection, learning: { minCalls: 100, period: 1_000, forgetAfter: 30 * 86_400_000 }, traceUrl: 'http://localhost/{traceId}' });
  c = cpu();
  for (const chains of batches) store.writeChains(chains);
  lap('store');
  let alerts = 0;
  for (const chains of batches) alerts += (await detection.analyse(chains)).alerts.length;
  lap('detect');
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
  const perSpan = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v / spans]));
  return { perSpan, traces: traces.length, chains: batches.reduce((n, b) => n + b.length, 0), alerts, spans };
}

await once(99); // warm-up
const runs = [];
for (let r = 0; r < REPS; r++) runs.push(await once(r));
const stages = Object.keys(runs[0].perSpan);
const med = Object.fromEntries(stages.map((s) => [s, median(runs.map((r) => r.perSpan[s]))]));
const total = Object.values(med).reduce((a, b) => a + b, 0);
process.stdout.write(`${runs[0].spans} spans, ${runs[0].traces} traces, ${runs[0].chains} chains, ${runs[0].alerts} alerts; median of ${REPS}\n`);
for (const s of stages) process.stdout.write(`${s.padEnd(8)} ${med[s].toFixed(2).padStart(7)} µs/span  ${((med[s] / total) * 100).toFixed(0).padStart(3)}%\n`);
process.stdout.write(`${'total'.padEnd(8)} ${total.toFixed(2).padStart(7)} µs/span  = ${Math.round(1e6 / total).toLocaleString('en-US')} spans per CPU-second\n`);
