// Garbage collection of a real `conduct serve` under the bench's load, by isolate (main thread,
// pipeline thread): scavenges, mark-compacts, bytes promoted, GC pauses and V8's background GC
// work per 100k spans (from V8's --trace-gc-nvp lines on the server's stdout, turned on by
// bench/gc-probe.cjs), CPU per span by
// thread (/proc) and peak RSS (VmHWM). Several variants (checkouts, node options, environment)
// run alternately, the order reversed every round; medians per variant.
//
//   npm run build && node bench/gc-serve.mjs [--shape 4] [--transport http] [--spans 200000] [--rounds 3] \
//     [--variant '{"name":"base","root":"../gc-base"}' --variant '{"name":"semi32","nodeOptions":"--max-semi-space-size=32"}'] \
//     [--warmup 200000] [--alloc DIR [--survivors]]
//
// --warmup N sends N spans to each server before the measured run (see warmUp below).
// --alloc DIR also samples what each thread allocates over the whole run (bench/gc-probe.cjs,
// preloaded; it costs CPU, so the figures of such a run are not for comparing) and prints the
// heaviest allocation sites by thread (the profiles stay in DIR, one server each); with
// --survivors, only what survived a scavenge (what the old generation takes in).
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServer } from '../eval/server.mjs';
import { alternateRounds, median, procStats, startLoadgen, threadCpu, threadSplit } from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    variant: { type: 'string', multiple: true },
    rounds: { type: 'string', default: '3' },
    spans: { type: 'string', default: '200000' },
    shape: { type: 'string', default: '4' },
    transport: { type: 'string', default: 'http' },
    warmup: { type: 'string', default: '0' },
    alloc: { type: 'string' },
    survivors: { type: 'boolean', default: false },
    top: { type: 'string', default: '15' },
  },
});
const variants = (values.variant ?? ['{"name":"this"}']).map((text) => {
  const v = JSON.parse(text);
  return { name: v.name, root: resolve(v.root ?? join(HERE, '..')), nodeOptions: v.nodeOptions ?? '', nodeArgs: v.nodeArgs ?? [], env: v.env ?? {} };
});

/** One `--trace-gc-nvp` line: `[pid:isolate]  t ms: key=value key=value ...`. */
const NVP = /^\[\d+:(0x[0-9a-f]+)\]\s+[\d.]+ ms: (pause=.*)$/;

/**
 * Per isolate, from `lines[from..]`, in the order the isolates first collected in all `lines` (the
 * main thread's starts, and collects, first: the pipeline thread's later).
 */
function gcFigures(lines, from) {
  const byIsolate = new Map();
  for (const line of lines) {
    const m = NVP.exec(line);
    if (m && !byIsolate.has(m[1])) byIsolate.set(m[1], { scavenges: 0, markCompacts: 0, promotedMB: 0, survivedMB: 0, pauseMs: 0, maxPauseMs: 0, bgScavengeMs: 0, bgMarkMs: 0, bgOtherMs: 0 });
  }
  for (const line of lines.slice(from)) {
    const m = NVP.exec(line);
    if (!m) continue;
    const f = byIsolate.get(m[1]);
    const kv = {};
    for (const pair of m[2].split(' ')) {
      const eq = pair.indexOf('=');
      kv[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    if (kv.gc === 's') f.scavenges++;
    else if (kv.gc === 'mc') f.markCompacts++;
    f.promotedMB += Number(kv.promoted ?? 0) / 1048576;
    f.survivedMB += Number(kv.new_space_survived ?? 0) / 1048576;
    f.pauseMs += Number(kv.pause ?? 0);
    f.maxPauseMs = Math.max(f.maxPauseMs, Number(kv.pause ?? 0));
    // V8's helper threads: parallel scavenging, concurrent marking, the rest (sweeping, evacuation).
    for (const [k, v] of Object.entries(kv)) {
      if (!k.startsWith('background.')) continue;
      if (k === 'background.scavenge.parallel') f.bgScavengeMs += Number(v);
      else if (k === 'background.mark') f.bgMarkMs += Number(v);
      else f.bgOtherMs += Number(v);
    }
  }
  return [...byIsolate.values()];
}

/**
 * --warmup N: N spans sent and flushed before the measured run, not counted. A fresh server spends
 * its first few hundred thousand spans also compiling (V8's optimising compiler runs on the same
 * platform threads as the GC helpers: ~8 µs per span of a 200k-span run on them with no GC on them
 * at all, under 1.5 after 400k spans), so without it a short run measures warm-up too.
 */
async function warmUp(server, loadgen, target, id) {
  const spans = Number(values.warmup);
  if (spans <= 0) return;
  await loadgen.run({ transport: values.transport, target, concurrency: 8, spans, loadgenId: id, shape: Number(values.shape) });
  await server.flush();
}

async function once(variant, loadgen, id) {
  let out = '';
  const lines = [];
  const onStdout = (chunk) => {
    out += chunk;
    const cut = out.lastIndexOf('\n');
    if (cut < 0) return;
    lines.push(...out.slice(0, cut).split('\n'));
    out = out.slice(cut + 1);
  };
  const env = { ...variant.env, GC_PROBE_NVP: '1', ...(values.alloc ? { GC_PROBE_DIR: resolve(values.alloc), GC_PROBE_SURVIVORS: values.survivors ? '1' : '0' } : {}) };
  const nodeOptions = `--require=${join(HERE, 'gc-probe.cjs')} ${variant.nodeOptions}`;
  const server = await startServer(variant.root, { learning: { minCalls: 100, period: '5s' } }, { nodeOptions, nodeArgs: variant.nodeArgs, env, onStdout });
  try {
    const target = (values.transport === 'grpc' ? server.otlpGrpc : server.otlpHttp).replace('http://', '');
    await warmUp(server, loadgen, target, id);
    const threads0 = threadCpu(server.pid);
    const startLine = lines.length;
    const done = await loadgen.run({ transport: values.transport, target, concurrency: 8, spans: Number(values.spans), loadgenId: id, shape: Number(values.shape) });
    await server.flush();
    const split = threadSplit(server.pid, threads0, threadCpu(server.pid));
    const { peakRssMB } = procStats(server.pid);
    const spans = done.spansAcked;
    const [main, pipeline] = gcFigures(lines, startLine);
    const per100k = (f) => Object.fromEntries(Object.entries(f ?? {}).map(([k, v]) => [k, k === 'maxPauseMs' ? v : (v * 1e5) / spans]));
    const us = (s) => (s * 1e6) / spans;
    return { spans, peakRssMB, spansPerSec: done.spansPerSec, p99Ms: done.requestLatencyMs.p99, total: us(split.main + split.pipeline + split.gc + split.other), main: us(split.main), pipeline: us(split.pipeline), gc: us(split.gc), gcMain: per100k(main), gcPipeline: per100k(pipeline) };
  } finally {
    await server.stop();
  }
}

const show = (f) =>
  `scav ${f.scavenges.toFixed(1)} mc ${f.markCompacts.toFixed(2)} promoted ${f.promotedMB.toFixed(1)} MB survived ${f.survivedMB.toFixed(1)} MB pause ${f.pauseMs.toFixed(0)} ms (longest ${f.maxPauseMs.toFixed(1)}), helpers: scavenge ${f.bgScavengeMs.toFixed(0)} mark ${f.bgMarkMs.toFixed(0)} other ${f.bgOtherMs.toFixed(0)} ms`;
const line = (x) =>
  `${x.total.toFixed(2)} µs/span (main ${x.main.toFixed(2)} / pipeline ${x.pipeline.toFixed(2)} / gc helpers ${x.gc.toFixed(2)}), peak RSS ${x.peakRssMB.toFixed(0)} MB, ` +
  `${(x.spansPerSec / 1000).toFixed(1)}k spans/s acked, p99 ${x.p99Ms.toFixed(0)} ms\n` +
  `    per 100k spans: main [${show(x.gcMain)}]\n                    pipeline [${show(x.gcPipeline)}]`;

if (values.alloc) mkdirSync(values.alloc, { recursive: true });
const loadgen = await startLoadgen();
let id = 1;
const runs = await alternateRounds(variants.length, Number(values.rounds), async (i, r) => {
  const x = await once(variants[i], loadgen, id++);
  process.stdout.write(`round ${r + 1} ${variants[i].name}: ${line(x)}\n`);
  return x;
});
loadgen.close();

const medianOf = (xs, pick) => median(xs.map(pick));
const medianRun = (xs) => {
  const m = (pick) => medianOf(xs, pick);
  const gcOf = (key) => Object.fromEntries(Object.keys(xs[0][key]).map((k) => [k, m((x) => x[key][k])]));
  return { spans: m((x) => x.spans), peakRssMB: m((x) => x.peakRssMB), spansPerSec: m((x) => x.spansPerSec), p99Ms: m((x) => x.p99Ms), total: m((x) => x.total), main: m((x) => x.main), pipeline: m((x) => x.pipeline), gc: m((x) => x.gc), gcMain: gcOf('gcMain'), gcPipeline: gcOf('gcPipeline') };
};
variants.forEach((v, i) => {
  process.stdout.write(`median ${v.name}: ${line(medianRun(runs[i]))}\n`);
  if (i > 0) {
    const ratio = (pick) => median(runs[i].map((x, r) => pick(x) / pick(runs[0][r]))).toFixed(2);
    process.stdout.write(`  per-round ratio to ${variants[0].name}: total ${ratio((x) => x.total)}, main ${ratio((x) => x.main)}, pipeline ${ratio((x) => x.pipeline)}, gc helpers ${ratio((x) => x.gc)}, peak RSS ${ratio((x) => x.peakRssMB)}, spans/s ${ratio((x) => x.spansPerSec)}, p99 ${ratio((x) => x.p99Ms)}, main-thread GC pause ${ratio((x) => x.gcMain.pauseMs)}\n`);
  }
});
if (values.alloc) printAllocationSites(resolve(values.alloc));

/** The heaviest allocation sites (self bytes sampled) of each thread's profiles in `dir`. */
function printAllocationSites(dir) {
  for (const thread of ['main', 'worker']) {
    const bySite = new Map();
    let total = 0;
    const walk = (node) => {
      // The probe's own work (the inspector session, writing the profiles) is not the server's.
      if (node.callFrame.url === 'node:inspector' || node.callFrame.url.endsWith('gc-probe.cjs')) return;
      const self = node.selfSize ?? 0;
      if (self > 0) {
        const f = node.callFrame;
        const site = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(\w+\/(src|dist)\/)/, '$1')}:${f.lineNumber + 1}`;
        bySite.set(site, (bySite.get(site) ?? 0) + self);
        total += self;
      }
      for (const child of node.children ?? []) walk(child);
    };
    for (const file of readdirSync(dir).filter((f) => f.startsWith(`${thread}-`) && f.endsWith('.heapprofile'))) walk(JSON.parse(readFileSync(join(dir, file), 'utf8')).head);
    process.stdout.write(`\n${values.survivors ? 'sites of allocations that survived a scavenge' : 'allocation sites'}, ${thread === 'main' ? 'main' : 'pipeline'} thread (${(total / 1048576).toFixed(0)} MB sampled):\n`);
    for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) process.stdout.write(`  ${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${site}\n`);
  }
}
