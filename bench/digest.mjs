// A canonical digest of what a real `conduct serve` (the built bin/conduct.js of --root) stores and
// analyses for two fixed workloads, so that two builds can be compared for identical results:
//
// - bench: requests of bench/workload.mjs (fixed event times, so the same trace ids and times
//   every run) and attack traces of its buildAttackRequest, over OTLP/HTTP protobuf, then a flush;
// - eval: the precision benchmark's seeded world (eval/world.mjs, 2 days, the quick run) through
//   the official exporter, flushed after each hour as eval/run.mjs does.
//
// For each: every identity (kind, counts, status), every stored chain of every identity (calls as
// the API answers them, receivedMs left out: wall clock) and every alert (ids, wall-clock fields
// left out), sorted, then a SHA-256 of the whole. Prints the digests; --out writes the JSON.
//
//   node bench/digest.mjs [--root <checkout>] [--out /tmp/digest.json] [--requests 40] [--baselines]
//
// --baselines adds every identity's learned baseline (GET /api/v1/identities/{id}: entries with
// counts and event times, rate statistics) to the digest: learning must not change either.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildAttackRequest, createRequestSource } from './workload.mjs';
import { startServer } from '../eval/server.mjs';
import { Sender } from '../eval/send.mjs';
import { createWorld, seeded } from '../eval/world.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { root: { type: 'string', default: join(HERE, '..') }, out: { type: 'string' }, requests: { type: 'string', default: '40' }, only: { type: 'string' }, baselines: { type: 'boolean', default: false } } });
const ROOT = resolve(values.root);
const log = (s) => process.stderr.write(`[digest] ${s}\n`);
/** Event time of the first bench request: fixed, so trace ids and times repeat run to run. */
const BENCH_START_MS = Date.UTC(2026, 11, 1, 12);
const ATTACK_POLICY = { match: 'agent:bench-attack-*', deniedOperations: ['DELETE /admin/*'] };

/** Deterministic JSON: object keys sorted. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => value[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

const WALL_CLOCK = new Set(['receivedMs', 'receivedAt', 'id', 'createdAt', 'updatedAt', 'deliveries', 'enforcingSince', 'progress', 'observedMs']);
function strip(value) {
  if (Array.isArray(value)) return value.map(strip);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).filter(([k]) => !WALL_CLOCK.has(k)).map(([k, v]) => [k, strip(v)]));
  return value;
}

async function snapshot(server) {
  const { identities } = await server.getJson('/api/v1/identities');
  const out = { identities: [], chains: [], alerts: [], ...(values.baselines ? { baselines: [] } : {}) };
  for (const identity of identities) {
    out.identities.push(strip(identity));
    const id = encodeURIComponent(identity.id);
    // --baselines: each identity's learned baseline as the API answers it (entries with counts and event times, rates).
    if (out.baselines) out.baselines.push({ id: identity.id, baseline: strip((await server.getJson(`/api/v1/identities/${id}`)).baseline) });
    const { chains } = await server.getJson(`/api/v1/identities/${id}/chains?since=0&until=${Date.UTC(2030, 0)}&limit=5000`);
    for (const c of chains) out.chains.push(strip(c));
    for (const a of (await server.getJson(`/api/v1/alerts?identity=${id}&limit=1000`)).alerts) out.alerts.push(strip(a));
  }
  for (const key of Object.keys(out)) out[key] = out[key].map(canonical).sort();
  const digest = createHash('sha256').update(canonical(out)).digest('hex');
  return { digest, counts: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.length])), ...out };
}

async function benchWorkload() {
  const server = await startServer(ROOT, { learning: { minCalls: 100, period: '5s' }, policies: [ATTACK_POLICY], stitching: { idle: '1h', lateness: '1h' } });
  try {
    const source = createRequestSource(3);
    let at = BENCH_START_MS;
    const send = async (body) => {
      const res = await fetch(`${server.otlpHttp}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
      if (res.status !== 200) throw new Error(`bench request answered ${res.status}`);
    };
    for (let i = 0; i < Number(values.requests); i++) await send(source.next((at += 50)));
    await server.flush();
    for (let i = 0; i < 10; i++) await send(buildAttackRequest(`bench-attack-${i}`, i, (at += 50)));
    await server.flush();
    return await snapshot(server);
  } finally {
    await server.stop();
  }
}

async function evalWorkload() {
  const world = createWorld({ seed: 16, days: 2, learningHours: 12 });
  const server = await startServer(ROOT, { stitching: { idle: '120s', lateness: '6h' }, learning: { minCalls: 30, period: '12h' } });
  const sender = new Sender(server, 'http-proto', seeded(16 ^ 0x5eed));
  try {
    for (let h = 0; h < world.hours; h++) {
      for (const t of world.traces(h)) sender.trace(t.at, t.root);
      await sender.drain();
      await server.flush();
    }
    return await snapshot(server);
  } finally {
    await sender.close().catch(() => {});
    await server.stop();
  }
}

const result = {};
if (values.only !== 'eval') {
  result.bench = await benchWorkload();
  log(`bench: ${result.bench.digest} ${JSON.stringify(result.bench.counts)}`);
}
if (values.only !== 'bench') {
  result.eval = await evalWorkload();
  log(`eval: ${result.eval.digest} ${JSON.stringify(result.eval.counts)}`);
}
if (values.out) writeFileSync(values.out, JSON.stringify(result, null, 1));
process.stdout.write(`${Object.entries(result).map(([k, r]) => `${k} ${r.digest} ${JSON.stringify(r.counts)}`).join('\n')}\n`);
