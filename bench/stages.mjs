// Cost of each stage of the hot path, in CPU microseconds per span and per chain, measured in one
// process on the bench workload, for each trace size (issue 19: small traces make the per-chain
// costs the larger part):
//
//   decode   the wire scanner into a request's columns (decodeTracesRequestColumns)
//   stitch   add + complete (createStitcher, flushed at the end)
//   derive   identity, calls, chains (deriveItems, as the pipeline), in batches of MAX_TRACES_PER_BATCH traces
//   encode   the batch codec both ways, as between the pipeline thread and the main thread
//            (createBatchEncoder / createBatchDecoder; the string lists' structured clone not counted)
//   journal  the ingest journal on real files: every request appended (acceptRaw, group commit of
//            BENCH in-flight requests), then every batch settled (onBatch + consume), as `serve` does;
//            here all requests are in before the first batch settles
//   store    SQLite writeChains on a temporary file
//   detect   learn + detectors (createDetection over the same backend)
//
// CPU time, not wall time, so the figures hold up better than throughput on a busy machine.
//
//   npm run build && node bench/stages.mjs [--requests 400] [--reps 3] [--sizes 4,40]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { attributeKeyId, decodeTracesRequestColumns } from '@conduct/proto';
import { attributeKeepFor, createIdentityResolver, createStitcher, deriveItems, DEFAULT_IDENTITY_RULES, MAX_TRACES_PER_BATCH } from '@conduct/processor';
import { createDetection, createJournal, openSqliteBackend } from '@conduct/backend';
import { createBatchDecoder, createBatchEncoder } from '../processor/dist/pipeline/batch-codec.js';
import { SHAPES, createRequestSource, SPANS_PER_REQUEST } from './workload.mjs';

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '400' }, reps: { type: 'string', default: '3' }, sizes: { type: 'string', default: '4,40' }, inflight: { type: 'string', default: '8' } },
});
const REQUESTS = Number(values.requests);
const REPS = Number(values.reps);
const SIZES = values.sizes.split(',');
const INFLIGHT = Number(values.inflight);
for (const size of SIZES) if (!SHAPES[size]) throw new Error(`--sizes: one of ${Object.keys(SHAPES).join(', ')}, not ${size}`);
/** Event time advances as if 200k spans/s were arriving. */
const EVENT_MS_PER_REQUEST = (SPANS_PER_REQUEST / 200_000) * 1000;

const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A completed trace's summary as the pipeline sends it with a batch (the journal settles by it). */
function summarise(trace) {
  const services = new Set();
  for (let k = 0; k < trace.items.length; k += 2) {
    const cols = trace.items[k];
    const name = cols.resourceAttrs(cols.resourceOf[trace.items[k + 1]]).get(SERVICE_NAME);
    if (typeof name === 'string' && services.size < 8) services.add(name);
  }
  return { traceId: trace.traceId, startMs: 0, endMs: 0, spans: trace.spanCount, services: [...services] };
}

/** Trace ids of a decoded request (what the pipeline thread tells the journal with its answer). */
const traceIdsOf = (cols) => [...new Set(Array.from({ length: cols.spanCount }, (_, i) => cols.traceId(i)))];
const KEEP = attributeKeepFor(DEFAULT_IDENTITY_RULES);
const SERVICE_NAME = attributeKeyId('service.name');

async function once(size, rep) {
  const source = createRequestSource(rep, size);
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

  const decoded = bodies.map((b) => decodeTracesRequestColumns(b, { keep: KEEP }));
  lap('decode');
  const stitcher = createStitcher({ idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 10_000_000 });
  for (const d of decoded) stitcher.add(d);
  const traces = stitcher.flush();
  lap('stitch');
  const resolver = createIdentityResolver(DEFAULT_IDENTITY_RULES);
  const batches = [];
  for (let i = 0; i < traces.length; i += MAX_TRACES_PER_BATCH) {
    const slice = traces.slice(i, i + MAX_TRACES_PER_BATCH);
    const chains = [];
    // As the pipeline derives a completed trace: in place from its columns (deriveItems).
    for (const trace of slice) for (const chain of deriveItems(trace, resolver).chains) chains.push(chain);
    batches.push({ chains, traceSummaries: slice.map(summarise), traces: slice.length, spans: slice.reduce((n, tr) => n + tr.spanCount, 0) });
  }
  lap('derive');
  const encoder = createBatchEncoder();
  const decoder = createBatchDecoder();
  for (const b of batches) decoder.decode(encoder.encode(b));
  lap('encode');

  const dir = mkdtempSync(join(tmpdir(), 'conduct-stages-'));
  const idsOf = new Map(bodies.map((b, j) => [b, traceIdsOf(decoded[j])]));
  c = cpu();
  const journal = createJournal({ dir: join(dir, 'journal'), registry: new Registry() });
  const settle = journal.consumer({ consume: async () => {} });
  const ingest = journal.ingest({
    accept: async () => ({ ok: true }),
    acceptRaw: async (raw, limits, onAccepted) => {
      onAccepted?.(idsOf.get(raw.body), SPANS_PER_REQUEST);
      return { kind: 'decoded', outcome: { ok: true }, spanCount: SPANS_PER_REQUEST };
    },
  });
  for (let i = 0; i < REQUESTS; i += INFLIGHT) await Promise.all(bodies.slice(i, i + INFLIGHT).map((body) => ingest.acceptRaw({ format: 'protobuf', body }, {})));
  for (const b of batches) {
    journal.onBatch(b);
    await settle.consume(b);
  }
  await journal.stop();
  lap('journal');

  const backend = await openSqliteBackend({ path: join(dir, 'conduct.db') });
  const store = backend.store;
  const detection = await createDetection({ state: backend.detection, learning: { minCalls: 100, period: 1_000, forgetAfter: 30 * 86_400_000 }, traceUrl: 'http://localhost/{traceId}' });
  c = cpu();
  for (const b of batches) store.writeChains(b.chains);
  lap('store');
  let alerts = 0;
  for (const b of batches) alerts += (await detection.analyse(b.chains)).alerts.length;
  lap('detect');
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
  const chains = batches.reduce((n, b) => n + b.chains.length, 0);
  return { micros: t, traces: traces.length, chains, calls: batches.reduce((n, b) => n + b.chains.reduce((m, ch) => m + ch.calls.length, 0), 0), alerts, spans };
}

for (const size of SIZES) {
  await once(size, 99); // warm-up
  const runs = [];
  for (let r = 0; r < REPS; r++) runs.push(await once(size, r));
  const { spans, traces, chains, calls, alerts } = runs[0];
  const stages = Object.keys(runs[0].micros);
  const med = Object.fromEntries(stages.map((s) => [s, median(runs.map((r) => r.micros[s]))]));
  const total = Object.values(med).reduce((a, b) => a + b, 0);
  process.stdout.write(
    `\n${SHAPES[size].label} (${size}): ${spans} spans, ${traces} traces, ${chains} chains (${(spans / chains).toFixed(2)} spans, ${(calls / chains).toFixed(2)} calls per chain), ${alerts} alerts; median of ${REPS}\n`,
  );
  process.stdout.write(`${'stage'.padEnd(8)} ${'µs/span'.padStart(8)} ${'µs/chain'.padStart(9)}  share\n`);
  for (const s of stages) process.stdout.write(`${s.padEnd(8)} ${(med[s] / spans).toFixed(2).padStart(8)} ${(med[s] / chains).toFixed(2).padStart(9)}  ${((med[s] / total) * 100).toFixed(0).padStart(4)}%\n`);
  process.stdout.write(`${'total'.padEnd(8)} ${(total / spans).toFixed(2).padStart(8)} ${(total / chains).toFixed(2).padStart(9)}  = ${Math.round((1e6 * spans) / total).toLocaleString('en-US')} spans per CPU-second\n`);
}
