// Heap held per pending span: decodes the bench workload (with the pipeline's attribute keep set,
// as `conduct serve` does) into a stitcher that completes nothing, and reads V8's used heap after
// a full GC before and after. Optionally writes a heap snapshot of the held state.
//
//   npm run build && node --expose-gc bench/pending-heap.mjs [--traces 100000] [--snapshot file]
import { writeHeapSnapshot } from 'node:v8';
import { parseArgs } from 'node:util';
import { decodeTracesRequestColumns } from '@conduct/proto';
import { attributeKeepFor, createStitcher, DEFAULT_IDENTITY_RULES } from '@conduct/processor';
import { createRequestSource, SPANS_PER_REQUEST, TRACES_PER_REQUEST } from './workload.mjs';

const { values } = parseArgs({ options: { traces: { type: 'string', default: '100000' }, snapshot: { type: 'string' } } });
if (typeof gc !== 'function') throw new Error('run with node --expose-gc');
const requests = Math.ceil(Number(values.traces) / TRACES_PER_REQUEST) + 1;
const limits = { keep: attributeKeepFor(DEFAULT_IDENTITY_RULES) };
const source = createRequestSource(0);
const used = () => {
  gc();
  gc();
  return process.memoryUsage();
};

const before = used();
const stitcher = createStitcher({ idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 100_000_000 });
let now = Date.now();
for (let i = 0; i < requests; i++) stitcher.add(decodeTracesRequestColumns(source.next((now += 2.56)), limits));
const after = used();
const { pendingSpans, pendingTraces } = stitcher.stats();
const mb = (n) => (n / 1048576).toFixed(1);
process.stdout.write(
  `${pendingSpans} spans in ${pendingTraces} traces (${requests} requests of ${SPANS_PER_REQUEST})\n` +
    `heap used ${mb(before.heapUsed)} -> ${mb(after.heapUsed)} MB: ${((after.heapUsed - before.heapUsed) / pendingSpans).toFixed(1)} B per span\n` +
    `rss ${mb(before.rss)} -> ${mb(after.rss)} MB, external ${mb(after.external)} MB, array buffers ${mb(after.arrayBuffers)} MB\n`,
);
if (values.snapshot) writeHeapSnapshot(values.snapshot);
