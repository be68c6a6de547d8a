// Sustained chain writes per second of the PostgreSQL store alone: the batches `conduct serve`
// commits (ChainWriter.commitBatch: chains, trace summaries and, in the `serve` shape, the hand-off
// items of a cluster of one), written back to back into an embedded PostgreSQL 18 with fsync and
// synchronous commit on, as deployed. After `npm run build`:
//
//   node bench/pg-store.mjs [--seconds 15] [--rounds 3] [--batch 256] [--shape store,serve]
//                           [--writers 1] [--before bench/.ab/pg-before]
//
// The chains are the bench workload's (bench/workload.mjs: 45 identities, 8 spans a trace),
// decoded, stitched and derived once, then written with fresh trace ids each time. Shapes:
//   store   commitBatch({chains, traces}): what the store itself writes per batch
//   serve   the same plus one hand-off item per partition the batch's identities fall in (64
//           partitions), as the cluster's stage 1 commits them on PostgreSQL
// `--writers N` runs N batches at once (several pipelines or instances on one database).
// `--before DIR` (a copy of an older backend/dist inside this checkout, e.g. bench/.ab/pg-before)
// alternates that build with the current one, round by round in both orders, on the same server.
//
// Reported per shape and build: chains/s (median of rounds), PostgreSQL CPU seconds per 1000
// chains and chains per PostgreSQL CPU second (every process of the server, from /proc), this
// process's CPU µs per chain, and the statements sent per batch (counted on `pg`'s Client). The
// load average is printed with every round: on a shared machine compare only within a session.
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { attributeKeyId, decodeTracesRequestColumns } from '@conduct/proto';
import { attributeKeepFor, createIdentityResolver, createStitcher, deriveTrace, DEFAULT_IDENTITY_RULES } from '@conduct/processor';
import { createRequestSource } from './workload.mjs';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '3' },
    batch: { type: 'string', default: '256' },
    shape: { type: 'string', default: 'store,serve' },
    writers: { type: 'string', default: '1' },
    before: { type: 'string' },
    requests: { type: 'string', default: '400' },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const BATCH_TRACES = Number(values.batch);
const SHAPES = values.shape.split(',');
const WRITERS = Math.max(1, Number(values.writers));
const PARTITIONS = 64;
const TICKS = 100;

const log = (s) => process.stderr.write(`[pg-store] ${s}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

// --- builds -------------------------------------------------------------------------------------
const current = await import('../backend/dist/index.js');
const builds = [{ name: 'current', m: current }];
if (values.before) builds.unshift({ name: 'before', m: await import(pathToFileURL(join(resolve(values.before), 'index.js')).href) });
const { startEmbeddedPostgres } = await import('../backend/dist/store/postgres/embedded.js');
const { partitionOf } = current;

// --- statements per batch: every query through pg's Client is counted ----------------------------
let statements = 0;
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function counted(...args) {
  statements++;
  return query.apply(this, args);
};

// --- CPU of the server ------------------------------------------------------------------------
function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS;
}
/** CPU seconds of the server's processes (the postmaster and its children, live ones). */
function postgresCpu(dir) {
  const pid = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  let total = cpuOf(pid);
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) total += cpuOf(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}
const ownCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// --- the workload's chains, derived once --------------------------------------------------------
const source = createRequestSource(11);
let now = Date.now() - 3_600_000;
const stitcher = createStitcher({ idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 10_000_000 });
for (let i = 0; i < Number(values.requests); i++) stitcher.add(decodeTracesRequestColumns(source.next((now += 5)), { keep: attributeKeepFor(DEFAULT_IDENTITY_RULES) }));
const resolver = createIdentityResolver(DEFAULT_IDENTITY_RULES);
const SERVICE_NAME = attributeKeyId('service.name');
const traces = stitcher.flush().map((t) => {
  const services = [...new Set(t.spans.map((s) => String(s.resource.get(SERVICE_NAME) ?? '')))];
  const chains = deriveTrace(t.spans, resolver).chains;
  const start = Math.min(...chains.map((c) => c.startMs));
  const end = Math.max(...chains.map((c) => c.endMs));
  return { chains, summary: { traceId: t.traceId, startMs: start, endMs: end, spans: t.spans.length, services: services.slice(0, 8) } };
});
const chainsPerTrace = traces.reduce((n, t) => n + t.chains.length, 0) / traces.length;
log(`${traces.length} traces, ${chainsPerTrace.toFixed(2)} chains a trace, ${BATCH_TRACES} traces a batch`);

const hex = (n) => {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[(Math.random() * 16) | 0];
  return s;
};
let cursor = 0;
let shift = 0;
/** The next batch: traces of the workload with a fresh trace id each, times moved on. */
function nextBatch() {
  const chains = [];
  const summaries = [];
  for (let i = 0; i < BATCH_TRACES; i++) {
    const t = traces[cursor++];
    if (cursor === traces.length) {
      cursor = 0;
      shift += 60_000;
    }
    const traceId = hex(32);
    for (const c of t.chains) {
      chains.push({ ...c, traceId, startMs: c.startMs + shift, endMs: c.endMs + shift, calls: c.calls.map((call) => ({ ...call, traceId, startMs: call.startMs + shift })) });
    }
    summaries.push({ ...t.summary, traceId, startMs: t.summary.startMs + shift, endMs: t.summary.endMs + shift });
  }
  return { chains, traces: summaries };
}
/** The hand-off items of a batch, as the cluster's stage 1 builds them (one per partition). */
function handOffOf(chains) {
  const byPartition = new Map();
  for (const chain of chains) {
    const p = partitionOf(chain.identity, PARTITIONS);
    const list = byPartition.get(p);
    if (list) list.push(chain);
    else byPartition.set(p, [chain]);
  }
  return { items: [...byPartition].map(([partition, body]) => ({ partition, kind: 'chains', body })), fromInstance: 'bench' };
}

// --- one run ----------------------------------------------------------------------------------
async function run(server, build, shape) {
  const url = await server.createDatabase();
  const backend = await build.m.openPostgresBackend({ url });
  try {
    if (shape === 'serve') await backend.cluster.preparePartitions(PARTITIONS, (id) => partitionOf(id, PARTITIONS));
    const unitOf = () => {
      const b = nextBatch();
      return shape === 'serve' ? { ...b, handOff: handOffOf(b.chains) } : b;
    };
    // Warm-up: the texts numbered, the statements prepared by the server's caches.
    for (let i = 0; i < 3; i++) await backend.chainWriter.commitBatch(unitOf());
    const units = Array.from({ length: 64 }, unitOf);
    let n = 0;
    let chains = 0;
    let batches = 0;
    const s0 = statements;
    const pg0 = postgresCpu(server.dir);
    const c0 = ownCpu();
    const t0 = performance.now();
    const end = t0 + SECONDS * 1000;
    const writer = async () => {
      while (performance.now() < end) {
        const unit = units[n++ % units.length];
        // Fresh trace ids for a unit used again (the trace index sees new keys, as in serve).
        if (n > units.length) units[(n - 1) % units.length] = unitOf();
        const written = await backend.chainWriter.commitBatch(unit);
        chains += written.chains;
        batches++;
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, writer));
    const wall = (performance.now() - t0) / 1000;
    const pgCpu = postgresCpu(server.dir) - pg0;
    const clientCpu = ownCpu() - c0;
    return {
      chainsPerSec: chains / wall,
      batches,
      pgCpuPer1000: (pgCpu / chains) * 1000,
      chainsPerPgCpuSec: chains / pgCpu,
      clientUsPerChain: (clientCpu / chains) * 1e6,
      statementsPerBatch: (statements - s0) / batches,
    };
  } finally {
    await backend.close();
  }
}

const server = await startEmbeddedPostgres({ fast: false });
log(`embedded PostgreSQL 18 on port ${server.port}, fsync and synchronous_commit on; load average ${load()}`);
const results = {};
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const shape of SHAPES) {
      const order = round % 2 === 0 ? builds : [...builds].reverse();
      for (const build of order) {
        const r = await run(server, build, shape);
        ((results[shape] ??= {})[build.name] ??= []).push(r);
        log(`round ${round + 1} ${shape} ${build.name}: ${r.chainsPerSec.toFixed(0)} chains/s, ${r.statementsPerBatch.toFixed(1)} statements a batch, ` +
          `PostgreSQL ${r.pgCpuPer1000.toFixed(3)} CPU s / 1000 chains; load average ${load()}`);
      }
    }
  }
} finally {
  await server.destroy();
}

const fmt = (v, d = 0) => v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
process.stdout.write(`\n${WRITERS} writer(s), ${BATCH_TRACES} traces (${fmt(BATCH_TRACES * chainsPerTrace)} chains) a batch, ${SECONDS} s a run, median of ${ROUNDS}; load average ${load()}\n\n`);
process.stdout.write('| shape | build | chains/s | statements a batch | PostgreSQL CPU s / 1000 chains | chains per PostgreSQL CPU s | client CPU µs / chain |\n|---|---|---:|---:|---:|---:|---:|\n');
for (const shape of SHAPES) {
  for (const build of builds) {
    const rs = results[shape][build.name];
    const m = (k) => median(rs.map((r) => r[k]));
    process.stdout.write(`| ${shape} | ${build.name} | ${fmt(m('chainsPerSec'))} | ${fmt(m('statementsPerBatch'), 1)} | ${fmt(m('pgCpuPer1000'), 3)} | ${fmt(m('chainsPerPgCpuSec'))} | ${fmt(m('clientUsPerChain'))} |\n`);
  }
}
