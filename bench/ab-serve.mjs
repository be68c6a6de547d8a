// A/B of the whole server's CPU per span between two checkouts' builds: `conduct serve` of each
// (its own process, SQLite, detection and the journal on, default limits; started as the eval
// starts it) takes the same number of workload spans over OTLP/HTTP from the bench's load
// generator, then a flush; its CPU time (every thread: main, pipeline, GC helpers; the process
// CPU counter of /metrics) divided by the spans. Sides alternate, the order
// flipping every round, so that both see the same machine load; medians and the after/before ratio.
//
//   npm run build && node bench/ab-serve.mjs --before ../columnar-base [--after .] [--rounds 5] [--spans 200000] [--shape 8] [--warmup 300000]
//
// --warmup N sends N spans to each server (and flushes) before the measured run: without it the
// figures include the server's warm-up (V8 compiling the hot code on the GC helpers' threads).
// --server-node-options "--cpu-prof --cpu-prof-dir=DIR" profiles every server (bench/profile-summary.mjs).
// --db FILE starts every server on a copy of that SQLite file instead of a fresh one: a file grown by
// bench/grow-db.mjs shows the store as a long-running server has it (run with BENCH_RANDOM_TRACE_IDS=1
// so the measured traces' ids are random too, as real ones are). With --db add --late-window 2s: for
// stitching.lateTraceWindow (5 minutes by default) after it starts on a file that holds traces, a
// server takes every trace for a possible late part of a stored one (a lookup each, batches written
// one at a time), which is a restart's cost, not a long-running server's.
// --rate N paces the measured run at N spans/s (the load generator's requests spaced evenly, up to 8
// in flight) instead of as fast as the server answers: for the requests' answer times (p50 / p99)
// below saturation, where they show what a request waits for rather than the queue at full load.
// --points a,b,c,... (checkouts, oldest first) runs every point in each round instead, the order
// reversed every round (a b c, c b a, ...), and prints each point's median and, for each step, the
// median and range of the per-round ratios to the point before (older builds without /readyz work).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServer } from '../eval/server.mjs';
import { alternateRounds, median, startLoadgen, threadCpu, threadSplit } from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    points: { type: 'string' },
    after: { type: 'string', default: join(HERE, '..') },
    rounds: { type: 'string', default: '5' },
    spans: { type: 'string', default: '200000' },
    shape: { type: 'string', default: '8' },
    transport: { type: 'string', default: 'http' },
    warmup: { type: 'string', default: '0' },
    'server-node-options': { type: 'string' },
    db: { type: 'string' },
    'late-window': { type: 'string' },
    rate: { type: 'string' },
  },
});
if (!values.before && !values.points) throw new Error('--before <checkout> (or --points a,b,...) is required');

async function once(root, loadgen, id) {
  const settings = { learning: { minCalls: 100, period: '5s' }, ...(values['late-window'] ? { stitching: { lateTraceWindow: values['late-window'] } } : {}) };
  const server = await startServer(root, settings, { nodeOptions: values['server-node-options'], ...(values.db ? { database: resolve(values.db) } : {}) });
  try {
    const target = (values.transport === 'grpc' ? server.otlpGrpc : server.otlpHttp).replace('http://', '');
    // --warmup N: N spans sent and flushed first, not counted (a fresh server also compiles its hot
    // code over its first few hundred thousand spans, on the GC helpers' threads: see gc-serve.mjs).
    if (Number(values.warmup) > 0) {
      await loadgen.run({ transport: values.transport, target, concurrency: 8, spans: Number(values.warmup), loadgenId: id, shape: Number(values.shape) });
      await server.flush();
    }
    // process_cpu_seconds_total: the whole process (every thread), from process.cpuUsage().
    const cpu0 = (await server.metrics()).process_cpu_seconds_total;
    const threads0 = threadCpu(server.pid);
    const done = await loadgen.run({ transport: values.transport, target, concurrency: 8, spans: Number(values.spans), loadgenId: id, shape: Number(values.shape), ...(values.rate ? { spansPerSec: Number(values.rate) } : {}) });
    await server.flush();
    const m = await server.metrics();
    const spans = done.spansAcked;
    // By thread (/proc, 10 ms ticks): main, pipeline, V8's GC helpers, other; µs per span.
    const split = threadSplit(server.pid, threads0, threadCpu(server.pid));
    const perSpan = (s) => (s * 1e6) / spans;
    return {
      usPerSpan: ((m.process_cpu_seconds_total - cpu0) * 1e6) / spans,
      spans,
      peakRssMB: m.process_resident_memory_bytes / 1048576,
      main: perSpan(split.main),
      pipeline: perSpan(split.pipeline),
      gc: perSpan(split.gc),
      other: perSpan(split.other),
      // Traces per batch the pipeline made, and per store write the engine made (its writes of
      // on-time chains; absent before the engine grouped batches: one a batch then).
      tracesPerBatch: m.conduct_stitch_traces_completed_total / m.conduct_pipeline_batches_total,
      tracesPerCommit: m.conduct_stitch_traces_completed_total / (m.conduct_engine_writes_total ?? m.conduct_pipeline_batches_total),
      batchesPerSec: m.conduct_pipeline_batches_total / (done.elapsedMs / 1000),
      // Acknowledged spans per second and the requests' p99 answer time (the load generator's figures).
      spansPerSec: done.spansPerSec,
      p50Ms: done.requestLatencyMs.p50,
      p99Ms: done.requestLatencyMs.p99,
    };
  } finally {
    await server.stop();
  }
}

const loadgen = await startLoadgen();
if (values.points) await comparePoints(values.points.split(',').map((p) => resolve(p)));
else await compareTwo();
loadgen.close();

async function compareTwo() {
  const roots = { before: resolve(values.before), after: resolve(values.after) };
  const runs = { before: [], after: [] };
  let id = 1;
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const side of r % 2 ? ['after', 'before'] : ['before', 'after']) {
      const x = await once(roots[side], loadgen, id++);
      runs[side].push(x);
      process.stdout.write(`round ${r + 1} ${side}: ${x.usPerSpan.toFixed(2)} µs CPU/span (${threadsOf(x)}) over ${x.spans} spans, RSS after the flush ${x.peakRssMB.toFixed(0)} MB, ${batchesOf(x)}\n`);
    }
  }
  const med = (side, k) => median(runs[side].map((x) => x[k]));
  // Per-round ratios (the two sides of a round saw the same machine load).
  const ratios = runs.after.map((x, r) => x.usPerSpan / runs.before[r].usPerSpan);
  process.stdout.write(`after / before by round: ${ratios.map((v) => v.toFixed(3)).join(', ')}; median ${median(ratios).toFixed(3)}\n`);
  process.stdout.write(
    `median server CPU µs/span: before ${med('before', 'usPerSpan').toFixed(2)}, after ${med('after', 'usPerSpan').toFixed(2)}, ratio ${(med('after', 'usPerSpan') / med('before', 'usPerSpan')).toFixed(2)}; ` +
      `RSS MB after the flush: before ${med('before', 'peakRssMB').toFixed(0)}, after ${med('after', 'peakRssMB').toFixed(0)}; ` +
      `answer ms p50 / p99: before ${med('before', 'p50Ms').toFixed(1)} / ${med('before', 'p99Ms').toFixed(1)}, after ${med('after', 'p50Ms').toFixed(1)} / ${med('after', 'p99Ms').toFixed(1)}\n`,
  );
}

function batchesOf(x) {
  return `${x.tracesPerBatch.toFixed(0)} traces a batch, ${x.tracesPerCommit.toFixed(0)} a commit, ${x.batchesPerSec.toFixed(1)} batches/s; ${(x.spansPerSec / 1000).toFixed(1)}k spans/s acked, p50 ${x.p50Ms.toFixed(1)} ms, p99 ${x.p99Ms.toFixed(0)} ms`;
}

function threadsOf(x) {
  return `main ${x.main.toFixed(1)} / pipeline ${x.pipeline.toFixed(1)} / gc ${x.gc.toFixed(1)} / other ${x.other.toFixed(1)}`;
}

async function comparePoints(roots) {
  let id = 1;
  const runs = await alternateRounds(roots.length, Number(values.rounds), async (i, r) => {
    const x = await once(roots[i], loadgen, id++);
    process.stdout.write(`round ${r + 1} ${roots[i]}: ${x.usPerSpan.toFixed(2)} µs CPU/span (${threadsOf(x)}) over ${x.spans} spans, ${batchesOf(x)}\n`);
    return x;
  });
  const kinds = ['usPerSpan', 'main', 'pipeline', 'gc', 'other'];
  roots.forEach((root, i) => {
    const med = (k) => median(runs[i].map((x) => x[k]));
    let line = `${root}: median ${med('usPerSpan').toFixed(2)} µs/span (main ${med('main').toFixed(1)} / pipeline ${med('pipeline').toFixed(1)} / gc ${med('gc').toFixed(1)} / other ${med('other').toFixed(1)})`;
    if (i > 0) {
      // Per-round ratios to the point before (same round, so the same machine load).
      const ratios = (k) => runs[i].map((x, r) => x[k] / runs[i - 1][r][k]).filter(Number.isFinite);
      const show = (k) => {
        const rs = ratios(k);
        if (rs.length === 0) return '-';
        return `${median(rs).toFixed(2)} (${Math.min(...rs).toFixed(2)}-${Math.max(...rs).toFixed(2)})`;
      };
      line += `\n  ratio to the previous point, median (range) of rounds: total ${show('usPerSpan')}, ` + kinds.slice(1).map((k) => `${k} ${show(k)}`).join(', ');
    }
    process.stdout.write(line + '\n');
  });
}
