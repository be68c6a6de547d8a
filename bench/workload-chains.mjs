// The bench workload's chains in batches, derived once by this checkout's processor: `requests`
// requests (event time 2.56 ms apart from now), stitched whole, then `tracesPerBatch` traces a
// batch, as the A/B tools (ab-batches, ab-learn, ab-checkpoint) feed them to both builds.
// `options.randomTraceIds`: as createRequestSource's (default off, or env BENCH_RANDOM_TRACE_IDS=1).
import { decodeTracesRequestColumns } from '@conduct/proto';
import { attributeKeepFor, createIdentityResolver, createStitcher, deriveTrace, DEFAULT_IDENTITY_RULES } from '@conduct/processor';
import { createRequestSource } from './workload.mjs';

export function workloadChainBatches(requests, tracesPerBatch = 1024, options = {}) {
  const source = createRequestSource(7, undefined, options);
  let now = Date.now();
  const stitcher = createStitcher({ idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 10_000_000 });
  for (let i = 0; i < requests; i++) stitcher.add(decodeTracesRequestColumns(source.next((now += 2.56)), { keep: attributeKeepFor(DEFAULT_IDENTITY_RULES) }));
  const traces = stitcher.flush();
  const resolver = createIdentityResolver(DEFAULT_IDENTITY_RULES);
  const batches = [];
  for (let i = 0; i < traces.length; i += tracesPerBatch) batches.push(traces.slice(i, i + tracesPerBatch).flatMap((t) => deriveTrace(t.spans, resolver).chains));
  return batches;
}
