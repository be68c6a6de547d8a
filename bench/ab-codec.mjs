// The batch codec between the pipeline thread and the main thread (processor/src/pipeline/
// batch-codec.ts) of another checkout against this one's, alternated round by round (ABBA) in one
// process: CPU µs per span of encoding (pipeline thread), of the copy postMessage makes of the
// message's strings (its typed arrays are moved), of decoding (main thread), and the bytes of the
// typed arrays a batch waits in the main thread's queue as, and the heap its decoded chains take.
//
//   npm run build && node --expose-gc bench/ab-codec.mjs --before /path/to/other/checkout [--shape 4] [--requests 300] [--rounds 9]
//
// Batches are the bench workload's (--shape: 4, 8 or 40 spans a trace), stitched whole and cut
// into the pipeline's batches (1,024 traces at most), derived once by this checkout's processor.
import { deserialize, serialize } from 'node:v8';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { decodeTracesRequestColumns } from '@conduct/proto';
import { attributeKeepFor, createIdentityResolver, createStitcher, deriveTrace, DEFAULT_IDENTITY_RULES, MAX_TRACES_PER_BATCH } from '@conduct/processor';
import { createRequestSource } from './workload.mjs';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    shape: { type: 'string', default: '4' },
    requests: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '9' },
  },
});
if (!values.before) throw new Error('--before <checkout> is required');

const codecOf = async (root) => import(pathToFileURL(join(resolve(root), 'processor/dist/pipeline/batch-codec.js')).href);
const sides = [
  { name: 'before', codec: await codecOf(values.before) },
  { name: 'after', codec: await codecOf(join(import.meta.dirname, '..')) },
];

const source = createRequestSource(3, Number(values.shape));
let now = Date.now();
const stitcher = createStitcher({ idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 100_000_000 });
for (let i = 0; i < Number(values.requests); i++) stitcher.add(decodeTracesRequestColumns(source.next((now += 2.56)), { keep: attributeKeepFor(DEFAULT_IDENTITY_RULES) }));
const traces = stitcher.flush();
const resolver = createIdentityResolver(DEFAULT_IDENTITY_RULES);
const batches = [];
let spans = 0;
let calls = 0;
for (let i = 0; i < traces.length; i += MAX_TRACES_PER_BATCH) {
  const slice = traces.slice(i, i + MAX_TRACES_PER_BATCH);
  const chains = slice.flatMap((t) => deriveTrace(t.spans, resolver).chains);
  const traceSummaries = slice.map((t) => ({ traceId: t.traceId, startMs: 0, endMs: 0, spans: t.spans.length, services: ['a', 'b'] }));
  const batchSpans = slice.reduce((n, t) => n + t.spans.length, 0);
  spans += batchSpans;
  for (const c of chains) calls += c.calls.length;
  batches.push({ chains, traceSummaries, traces: slice.length, spans: batchSpans });
}

const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const heap = () => {
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
};

/** One pass of a side: every batch encoded, its strings copied as postMessage does, opened and decoded. */
function pass({ codec }) {
  const encoder = codec.createBatchEncoder();
  const decoder = codec.createBatchDecoder();
  globalThis.gc?.();
  let c = cpu();
  const encoded = batches.map((b) => encoder.encode({ ...b }));
  const encodeUs = cpu() - c;
  c = cpu();
  // The typed arrays are moved (transfer list); the string lists are cloned.
  const copied = encoded.map((e) => ({ ...e, ...deserialize(serialize({ adds: e.adds, literals: e.literals, reset: e.reset })) }));
  const copyUs = cpu() - c;
  let arrayBytes = 0;
  for (const e of copied) for (const v of Object.values(e)) if (ArrayBuffer.isView(v)) arrayBytes += v.byteLength;
  const before = heap();
  c = cpu();
  const opened = copied.map((e) => decoder.open(e));
  const decoded = opened.map((o) => o.chains());
  const decodeUs = cpu() - c;
  const heldBytes = heap() - before;
  if (decoded.length !== batches.length) throw new Error('lost batches');
  return { encodeUs, copyUs, decodeUs, arrayBytes, heldBytes };
}

process.stdout.write(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${traces.length} traces of shape ${values.shape}, ${spans} spans, ${calls} calls, ${batches.length} batches\n`);
for (const side of sides) pass(side); // warm-up
const runs = sides.map(() => []);
for (let r = 0; r < Number(values.rounds); r++) {
  const order = r % 2 === 0 ? [0, 1] : [1, 0];
  for (const k of order) runs[k].push(pass(sides[k]));
}
const row = (label, key, per, digits = 3) => {
  const v = runs.map((rs) => median(rs.map((x) => x[key])) / per);
  process.stdout.write(`${label.padEnd(34)} ${v[0].toFixed(digits).padStart(10)} ${v[1].toFixed(digits).padStart(10)} ${(v[1] / v[0]).toFixed(3).padStart(8)}\n`);
};
process.stdout.write(`${''.padEnd(34)} ${'before'.padStart(10)} ${'after'.padStart(10)} ${'ratio'.padStart(8)}\n`);
row('encode, CPU µs per span', 'encodeUs', spans);
row('strings copied, CPU µs per span', 'copyUs', spans);
row('decode, CPU µs per span', 'decodeUs', spans);
row('typed arrays, bytes per call', 'arrayBytes', calls, 1);
row('decoded chains, heap bytes per call', 'heldBytes', calls, 1);
process.stdout.write(`per round (after/before, encode+copy+decode): ${runs[0].map((b, i) => ((runs[1][i].encodeUs + runs[1][i].copyUs + runs[1][i].decodeUs) / (b.encodeUs + b.copyUs + b.decodeUs)).toFixed(3)).join(' ')}\n`);
process.stdout.write(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
