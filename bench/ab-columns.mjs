// A/B of the pipeline thread's hot path (decode, stitch, derive) between another checkout's build
// (--before, e.g. a worktree of the commit before the columnar form) and this one, interleaved in
// one process so that both see the same machine load. Each pass decodes the same bench-workload
// requests with the pipeline's keep (objects before, columns after when the build has them), holds
// every span pending in a stitcher, then completes and derives every trace. Reports CPU µs per
// span by stage (median of the rounds), the heap held per pending span (after a full collection)
// and the after/before ratios. The `copy` stage copies every client and producer span out of its
// request (one copy each: copySpans of one span, copySpan in builds before it) and reports the heap
// each copy holds. `derive` derives every trace into call and chain objects (deriveItems); `derive+encode`
// derives and encodes them in batches of 1,024 traces, as the pipeline thread does before it hands
// a batch over (since issue 19's third pass straight into the encoder's rows, with no call objects).
//
// `--decode-only` runs the decode stage alone (more rounds in the same time: a change to the scanner).
//
//   npm run build && node --expose-gc bench/ab-columns.mjs --before ../columnar-base [--rounds 7] [--requests 300] [--shape 4|8|40] [--decode-only]
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as protoNow from '@conduct/proto';
import * as processorNow from '@conduct/processor';
import { createRequestSource, SPANS_PER_REQUEST } from './workload.mjs';

const { values } = parseArgs({ options: { before: { type: 'string' }, rounds: { type: 'string', default: '7' }, requests: { type: 'string', default: '300' }, shape: { type: 'string', default: '8' }, 'decode-only': { type: 'boolean', default: false } } });
if (!values.before) throw new Error('--before <checkout> is required');
if (!globalThis.gc) throw new Error('run with node --expose-gc');
const load = (pkg, file = 'index.js') => import(pathToFileURL(join(resolve(values.before), pkg, 'dist', file)).href);
const sides = {
  before: { proto: await load('proto'), processor: await load('processor'), codec: await load('processor', 'pipeline/batch-codec.js') },
  after: { proto: protoNow, processor: processorNow, codec: await import('../processor/dist/pipeline/batch-codec.js') },
};
const rounds = Number(values.rounds);
const requests = Number(values.requests);
const spans = requests * SPANS_PER_REQUEST;

const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const source = createRequestSource(5, Number(values.shape));
let now = Date.UTC(2026, 11, 1);
const bodies = Array.from({ length: requests }, () => source.next((now += 2.56)));

/** Traces per batch, as the pipeline makes them (MAX_TRACES_PER_BATCH). */
const BATCH_TRACES = 1_024;

/**
 * The pipeline thread's hand-off: every trace derived and encoded in batches of BATCH_TRACES, as
 * the pipeline does, into rows the encoder reads (deriveInto, encodeRows) when the build has them,
 * else into chain objects that the encoder reads.
 */
function deriveAndEncode(processor, codec, resolver, traces) {
  const encoder = codec.createBatchEncoder();
  const rows = processor.CallTable ? new processor.CallTable() : undefined;
  let refs = 0;
  for (let i = 0; i < traces.length; i += BATCH_TRACES) {
    const slice = traces.slice(i, i + BATCH_TRACES);
    let encoded;
    if (rows) {
      rows.clear();
      for (const trace of slice) processor.deriveInto(trace, resolver, {}, rows);
      encoded = encoder.encodeRows(rows, [], slice.length, 0);
    } else {
      const chains = [];
      for (const trace of slice) for (const chain of processor.deriveItems(trace, resolver).chains) chains.push(chain);
      encoded = encoder.encode({ chains, traceSummaries: [], traces: slice.length, spans: 0 });
    }
    refs += encoded.refs.length;
  }
  return refs;
}

function pass({ proto, processor, codec }) {
  const keep = processor.attributeKeepFor(processor.DEFAULT_IDENTITY_RULES);
  const decode = proto.decodeTracesRequestColumns ?? proto.decodeTracesRequest;
  globalThis.gc();
  globalThis.gc();
  const mem0 = process.memoryUsage();
  const heap0 = mem0.heapUsed;
  const t = {};
  let c = cpu();
  const lap = (name) => {
    const n = cpu();
    t[name] = (n - c) / spans;
    c = n;
  };
  const decoded = bodies.map((b) => decode(b, { keep }));
  lap('decode');
  if (values['decode-only']) return { t, held: 0, heldAll: 0, calls: 0, copyHeld: 0, copyCount: 0 };
  const stitcher = processor.createStitcher({ idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 10_000_000 });
  for (const d of decoded) stitcher.add(d);
  lap('stitch');
  const decodedForCopies = decoded.slice();
  decoded.length = 0;
  globalThis.gc();
  globalThis.gc();
  const mem1 = process.memoryUsage();
  const held = (mem1.heapUsed - heap0) / spans;
  // The columns' typed arrays live outside the heap (array buffers).
  const heldAll = (mem1.heapUsed + mem1.arrayBuffers - heap0 - mem0.arrayBuffers) / spans;
  // A copy of each client span (copySpans of one span: columns of its own), for every
  // client and producer span of the requests, held until the pass ends.
  let copies = [];
  const heapBeforeCopies = process.memoryUsage().heapUsed;
  c = cpu();
  for (const d of decodedForCopies) for (let i = 0; i < d.spanCount; i++) if (d.kinds[i] === 3 || d.kinds[i] === 4) copies.push(d.copySpans ? d.copySpans([i]) : d.copySpan(i));
  lap('copy');
  decodedForCopies.length = 0;
  globalThis.gc();
  globalThis.gc();
  const copyHeld = (process.memoryUsage().heapUsed - heapBeforeCopies) / copies.length;
  const copyCount = copies.length;
  copies = [];
  c = cpu();
  const traces = stitcher.flush();
  lap('complete');
  const resolver = processor.createIdentityResolver(processor.DEFAULT_IDENTITY_RULES);
  let calls = 0;
  // A build with deriveItems derives a completed trace in place (issue 19); older ones from its span objects.
  const derive = processor.deriveItems ? (trace) => processor.deriveItems(trace, resolver) : (trace) => processor.deriveTrace(trace.spans, resolver);
  for (const trace of traces) calls += derive(trace).calls.length;
  lap('derive');
  deriveAndEncode(processor, codec, resolver, traces);
  lap('derive+encode');
  return { t, held, heldAll, calls, copyHeld, copyCount };
}

const results = { before: [], after: [] };
pass(sides.before);
pass(sides.after);
for (let r = 0; r < rounds; r++) {
  for (const name of r % 2 ? ['after', 'before'] : ['before', 'after']) results[name].push(pass(sides[name]));
}
const calls = new Set([...results.before, ...results.after].map((x) => x.calls));
const stages = values['decode-only'] ? ['decode'] : ['decode', 'stitch', 'copy', 'complete', 'derive', 'derive+encode'];
const row = (label, f) => `${label.padEnd(22)} ${f('before').padStart(9)} ${f('after').padStart(9)}`;
const med = (name, stage) => median(results[name].map((x) => x.t[stage]));
const total = (name) => median(results[name].map((x) => stages.reduce((n, s) => n + x.t[s], 0)));
const out = [`${spans} spans per pass, ${rounds} rounds interleaved; calls derived per pass: ${[...calls].join(', ')}`, row('µs/span', (n) => n)];
for (const s of stages) out.push(row(s, (n) => med(n, s).toFixed(2)) + `   ratio ${(med('after', s) / med('before', s)).toFixed(2)}`);
out.push(row('total', (n) => total(n).toFixed(2)) + `   ratio ${(total('after') / total('before')).toFixed(2)}`);
if (values['decode-only']) {
  process.stdout.write(`${out.join('\n')}\n`);
  process.exit(0);
}
const heldMed = (n) => median(results[n].map((x) => x.held));
out.push(row('heap bytes/pending span', (n) => heldMed(n).toFixed(0)) + `   ratio ${(heldMed('after') / heldMed('before')).toFixed(2)}`);
const allMed = (n) => median(results[n].map((x) => x.heldAll));
out.push(row('+ array buffers', (n) => allMed(n).toFixed(0)) + `   ratio ${(allMed('after') / allMed('before')).toFixed(2)}`);
const copyMed = (n) => median(results[n].map((x) => x.copyHeld));
out.push(row(`heap bytes/copy (${results.after[0].copyCount})`, (n) => copyMed(n).toFixed(0)) + `   ratio ${(copyMed('after') / copyMed('before')).toFixed(2)}`);
process.stdout.write(`${out.join('\n')}\n`);
