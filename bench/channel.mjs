// Cost of handing derived chains from the pipeline thread to the consumer's thread, in CPU µs per
// span on each side: V8's structured clone (what postMessage does with plain objects) against the
// batch codec (processor/src/pipeline/batch-codec.ts), on the bench workload, interleaved rounds.
//
//   npm run build && node bench/channel.mjs [--rounds 7]
import { serialize, deserialize } from 'node:v8';
import { parseArgs } from 'node:util';
import { decodeTracesRequestColumns } from '@conduct/proto';
import { attributeKeepFor, createIdentityResolver, createStitcher, deriveTrace, DEFAULT_IDENTITY_RULES, MAX_TRACES_PER_BATCH } from '@conduct/processor';
import { createBatchDecoder, createBatchEncoder } from '../processor/dist/pipeline/batch-codec.js';
import { createRequestSource, SPANS_PER_REQUEST } from './workload.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, requests: { type: 'string', default: '200' } } });
const source = createRequestSource(3);
let now = Date.now();
const requests = Number(values.requests);
const stitcher = createStitcher({ idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 10_000_000 });
for (let i = 0; i < requests; i++) stitcher.add(decodeTracesRequestColumns(source.next((now += 2.56)), { keep: attributeKeepFor(DEFAULT_IDENTITY_RULES) }));
const traces = stitcher.flush();
const resolver = createIdentityResolver(DEFAULT_IDENTITY_RULES);
const batches = [];
for (let i = 0; i < traces.length; i += MAX_TRACES_PER_BATCH) {
  const slice = traces.slice(i, i + MAX_TRACES_PER_BATCH);
  const chains = slice.flatMap((t) => deriveTrace(t.spans, resolver).chains);
  const traceSummaries = slice.map((t) => ({ traceId: t.traceId, startMs: 0, endMs: 0, spans: t.spans.length, services: ['a', 'b'] }));
  batches.push({ chains, traceSummaries, traces: slice.length, spans: slice.reduce((n, t) => n + t.spans.length, 0) });
}
const spans = requests * SPANS_PER_REQUEST;
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r = { cloneSend: [], cloneReceive: [], codecSend: [], codecReceive: [] };
for (let round = 0; round < Number(values.rounds); round++) {
  let c = cpu();
  const wire = batches.map((b) => serialize(b));
  r.cloneSend.push((cpu() - c) / spans);
  c = cpu();
  for (const w of wire) deserialize(w);
  r.cloneReceive.push((cpu() - c) / spans);
  const encoder = createBatchEncoder();
  const decoder = createBatchDecoder();
  c = cpu();
  // The string lists still go by structured clone; the numbers are moved (not counted here).
  const encoded = batches.map((b) => {
    const e = encoder.encode(b);
    return { nums: e.nums, refs: e.refs, reset: e.reset, strings: serialize([e.adds, e.literals]) };
  });
  r.codecSend.push((cpu() - c) / spans);
  c = cpu();
  for (const e of encoded) {
    const [adds, literals] = deserialize(e.strings);
    decoder.decode({ nums: e.nums, refs: e.refs, reset: e.reset, adds, literals });
  }
  r.codecReceive.push((cpu() - c) / spans);
}
process.stdout.write(`${spans} spans, ${batches.reduce((n, b) => n + b.chains.length, 0)} chains; CPU µs per span, median of ${values.rounds} rounds\n`);
for (const [k, v] of Object.entries(r)) process.stdout.write(`${k.padEnd(14)} ${median(v).toFixed(2)}\n`);
