// Peak RSS and CPU per span by thread of server variants under the same fixed load, rounds
// interleaved (the order rotating every round), medians: for memory settings (admission bounds,
// V8 heap flags) whose effect the sustained-rate windows of `npm run bench` cannot show on a
// shared machine. Each round starts a fresh `conduct serve` per variant (SQLite, detection and the
// journal on), sends `--spans` spans of the workload shape as fast as the load generator's
// `--concurrency` requests in flight allow, flushes, and reads: RSS sampled every 250 ms during the
// load, what the server held at the sampled peak, the kernel's high-water mark (flush included),
// CPU µs per span by thread kind over load and flush (harness.mjs threadSplit) and the senders'
// retries (refused requests).
//
//   npm run build && node bench/ab-memory.mjs --variants 'default={};g50={"nodeOptions":["--heap-growing-percent=50"]}' \
//     [--rounds 3] [--spans 400000] [--shape 4] [--transport http] [--idle 6s] [--concurrency 8]
// A variant is name=JSON: config overrides, optional "nodeOptions" (node flags) and "root" (another
// checkout's built tree, to compare builds).
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { MILLION, median, parseVariants, procStats, sleep, startConduct, startLoadgen, threadCpu, threadSplit } from './harness.mjs';

const { values } = parseArgs({
  options: {
    variants: { type: 'string', default: 'default={}' },
    rounds: { type: 'string', default: '3' },
    spans: { type: 'string', default: '400000' },
    shape: { type: 'string', default: '4' },
    transport: { type: 'string', default: 'http' },
    idle: { type: 'string', default: '6s' },
    concurrency: { type: 'string', default: '8' },
  },
});
const variants = parseVariants(values.variants, '--variants');
const shape = Number(values.shape);
const SAMPLE_MS = 250;

async function sample(server) {
  const rssMB = procStats(server.pid).rssMB;
  try {
    const m = await server.metrics();
    return {
      rssMB,
      pending: m.conduct_stitch_pending_spans ?? 0,
      queued: m.conduct_pipeline_queued_spans ?? 0,
      mainHeapMB: (m.nodejs_heap_size_used_bytes ?? 0) / 2 ** 20,
      pipelineHeapMB: (m.conduct_pipeline_thread_heap_used_bytes ?? 0) / 2 ** 20,
    };
  } catch {
    return { rssMB, pending: NaN, queued: NaN, mainHeapMB: NaN, pipelineHeapMB: NaN };
  }
}

async function once(v, loadgen, round) {
  const overrides = { ...v.overrides, stitching: { idle: values.idle, ...(v.overrides.stitching ?? {}) } };
  const server = await startConduct(`abmem-${v.name}-${round}`, overrides, v.nodeOptions, v.root);
  try {
    await loadgen.prepare(shape);
    const threads0 = threadCpu(server.pid);
    const t0 = performance.now();
    const samples = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push(await sample(server));
        await sleep(SAMPLE_MS);
      }
    })();
    const res = await loadgen.run({ transport: values.transport, shape, target: server.target(values.transport), concurrency: Number(values.concurrency), spans: Number(values.spans) });
    const loadMs = performance.now() - t0;
    // Sustained load, as the bench's e2e phase samples it: the flush (every pending trace at
    // once) is in the CPU figures and the kernel's high-water mark, not in the sampled peak.
    sampling = false;
    await sampler;
    await server.flush();
    const split = threadSplit(server.pid, threads0, threadCpu(server.pid));
    const m = await server.metrics();
    const peak = samples.reduce((a, b) => (b.rssMB > a.rssMB ? b : a));
    const per = (s) => (s / res.spansAcked) * MILLION;
    return {
      peakRssMB: peak.rssMB,
      hwmMB: procStats(server.pid).peakRssMB,
      peak,
      maxPending: Math.max(...samples.map((x) => x.pending).filter(Number.isFinite)),
      maxQueued: Math.max(...samples.map((x) => x.queued).filter(Number.isFinite)),
      cpu: per(split.main + split.pipeline + split.gc + split.other),
      main: per(split.main),
      pipeline: per(split.pipeline),
      gc: per(split.gc),
      ackedPerSec: res.spansAcked / (loadMs / 1000),
      retries: res.retries ?? 0,
      acked: res.spansAcked,
      processed: m.conduct_spans_processed_total ?? 0,
    };
  } finally {
    await server.close();
  }
}

const loadgen = await startLoadgen();
const runs = new Map(variants.map((v) => [v.name, []]));
for (let r = 0; r < Number(values.rounds); r++) {
  const order = variants.map((_, i) => variants[(i + r) % variants.length]);
  for (const v of order) {
    const x = await once(v, loadgen, r);
    runs.get(v.name).push(x);
    const f = (n) => n.toFixed(1);
    process.stdout.write(
      `round ${r + 1} ${v.name}: peak RSS ${x.peakRssMB.toFixed(0)} MB (high-water ${x.hwmMB.toFixed(0)}; then pending ${(x.peak.pending / 1000).toFixed(0)}k, queued ${(x.peak.queued / 1000).toFixed(0)}k spans, heap main ${x.peak.mainHeapMB.toFixed(0)} / pipeline ${x.peak.pipelineHeapMB.toFixed(0)} MB; max pending ${(x.maxPending / 1000).toFixed(0)}k, queued ${(x.maxQueued / 1000).toFixed(0)}k); ` +
        `CPU µs/span ${f(x.cpu)} = main ${f(x.main)} + pipeline ${f(x.pipeline)} + GC helpers ${f(x.gc)} + other; ${x.ackedPerSec.toFixed(0)} spans/s acknowledged, ${x.retries} retries, acked ${x.acked} processed ${x.processed}\n`,
    );
  }
}
loadgen.close();
const base = variants[0].name;
const med = (name, k) => median(runs.get(name).map((x) => x[k]));
for (const v of variants) {
  const ratio = (k) => (med(v.name, k) / med(base, k)).toFixed(2);
  process.stdout.write(
    `median ${v.name}: peak RSS ${med(v.name, 'peakRssMB').toFixed(0)} MB (x${ratio('peakRssMB')}), high-water ${med(v.name, 'hwmMB').toFixed(0)} MB, CPU µs/span ${med(v.name, 'cpu').toFixed(1)} (x${ratio('cpu')}; main ${med(v.name, 'main').toFixed(1)}, pipeline ${med(v.name, 'pipeline').toFixed(1)}, GC ${med(v.name, 'gc').toFixed(1)}), acknowledged ${med(v.name, 'ackedPerSec').toFixed(0)} spans/s (x${ratio('ackedPerSec')}), retries ${med(v.name, 'retries')}\n`,
  );
}
