// What the main thread of `conduct serve` pays per chain, for small and large traces: CPU µs per
// span and per chain of the journal, the batch codec (encoding on the pipeline thread, decoding on
// the main thread), the store write, detection, and the engine (store and detection in one
// transaction, as serve runs them), on a real SQLite file and a real journal directory.
//
//   npm run build && node --expose-gc bench/per-chain.mjs [--sizes 4,40] [--spans 61440] [--reps 5] [--only STAGES]
//   cp -r backend/dist bench/.ab/backend-before   # before a change; then, after it and a build:
//   node --expose-gc bench/per-chain.mjs --before bench/.ab/backend-before --only call-codec,store,engine
//
// Stages (--only, comma-separated): journal, decode (with the pipeline's encode), call-codec (the
// store's call encoding alone), store, detect (split into analysis and the checkpoint it writes), engine. --before takes a saved backend build (inside
// this checkout, so its imports resolve): its passes alternate with this build's (ABBA), and the
// ratio after/before is printed per stage. --after takes a saved build for the other side too: the
// checkout's own build, which this script also imports statically, read 9-17% slower than a copy of
// itself in null A/Bs of the store stage; with both sides copies the null A/B read 0.95-0.98.
// --late maybe marks every trace `late: 'maybe'` (the
// steady state under sustained load, once the pipeline forgot ids within the window). --period
// sets `learning.period` (default 5s: longer than the chains' ~3 s of event time, so every identity
// stays learning; 1s: most chains are of enforcing identities, as in a long run). --min takes each stage's least CPU time instead of the
// median: on a machine loaded far beyond its cores, contention only ever adds CPU time.
//
// Traces of the wanted size are made from the bench workload's 8-span traces: a 4-span trace is
// the head half of one (entry service, its downstream call, the downstream server and its
// database call), a 40-span trace is five of them under one trace id. Chains are derived from
// them once, up front; each pass then consumes the same chains in batches of --batch-spans spans
// (at most 1,024 traces, as the pipeline hands them on). The journal takes requests of 512 spans
// whose traces each span two consecutive requests, as in the workload. Each figure is the median
// of --reps passes, each on a fresh database and journal (--grown N: the store stage's database
// is a copy of one into which that side's build first wrote N traces, taken from the same traces
// with random trace ids and earlier times, its page cache warmed by two untimed batches, and the
// measured traces get random ids too: the trace-id index of a server holding hours of real
// traffic is far larger than a fresh file's, and real ids land anywhere in it). CPU time (process.cpuUsage) includes
// the SQLite work and V8's helper threads. --group N: the store stage commits N batches per
// transaction (one unit of their chains and summaries); --group A,B (without --before) compares
// this build committing A batches a transaction against B, alternated; for the engine stage, N
// batches at a time go to the engine's consumeMany (one write, one detection pass and checkpoint),
// and the checkpoint rows each side wrote are printed; with --interleave both groupings' engines run
// side by side, chunk by chunk (less noise on a loaded machine). --pages: the store stage also counts the
// WAL frames each commit appends by the table or index of their page (SQLite's dbstat; checkpoints
// off while it runs, the counting untimed) and prints them per commit for each side.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { decodeTracesRequestColumns } from '@conduct/proto';
import { attributeKeepFor, createIdentityResolver, createStitcher, deriveTrace, DEFAULT_IDENTITY_RULES } from '@conduct/processor';
import * as backendNow from '@conduct/backend';
// The codec is the pipeline thread's own (not exported by the package).
import { createBatchDecoder, createBatchEncoder } from '../processor/dist/pipeline/batch-codec.js';
import { createRequestSource, SPANS_PER_REQUEST } from './workload.mjs';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '4,40' },
    spans: { type: 'string', default: '61440' },
    'batch-spans': { type: 'string', default: '4096' },
    reps: { type: 'string', default: '5' },
    only: { type: 'string' },
    before: { type: 'string' },
    after: { type: 'string' },
    min: { type: 'boolean', default: false },
    late: { type: 'string' },
    period: { type: 'string', default: '5s' },
    grown: { type: 'string', default: '0' },
    group: { type: 'string', default: '1' },
    interleave: { type: 'boolean', default: false },
    pages: { type: 'boolean', default: false },
  },
});
const SIZES = values.sizes.split(',').map(Number);
const SPANS = Number(values.spans);
const BATCH_SPANS = Number(values['batch-spans']);
const REPS = Number(values.reps);
const STAGES = (values.only ?? 'journal,decode,store,detect,engine').split(',');
const GROWN = Number(values.grown);
const GROUPS = values.group.split(',').map((g) => Math.max(1, Math.floor(Number(g))));
const REQUEST_SPANS = 512;
const INFLIGHT = 8;
const MAX_TRACES_PER_BATCH = 1024;
/** Event time advances as if 40k spans/s were arriving. */
const EVENT_MS_PER_REQUEST = (SPANS_PER_REQUEST / 40_000) * 1000;
const LEARNING = { minCalls: 100, period: values.period };

const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The workload's 8-span traces (decoded spans), at least `n` of them. */
function workloadTraces(n) {
  const source = createRequestSource(3);
  let now = Date.now() - 3_600_000;
  const stitcher = createStitcher({ idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 100_000_000 });
  const requests = Math.ceil((n * 8) / SPANS_PER_REQUEST) + 2;
  for (let i = 0; i < requests; i++) stitcher.add(decodeTracesRequestColumns(source.next((now += EVENT_MS_PER_REQUEST)), { keep: attributeKeepFor(DEFAULT_IDENTITY_RULES) }));
  return stitcher.flush().filter((t) => t.spans.length === 8);
}

const withTrace = (ts, traceId) => ({ ...ts, span: { ...ts.span, traceId } });

/** Traces of `size` spans (4 or a multiple of 8), `spans` spans in all. */
function tracesOfSize(size, spans) {
  const count = Math.floor(spans / size);
  if (size === 4) return workloadTraces(count).slice(0, count).map((t) => ({ traceId: t.traceId, spans: t.spans.slice(0, 4) }));
  if (size % 8 !== 0) throw new Error('--sizes: 4 or multiples of 8');
  const k = size / 8;
  const source = workloadTraces(count * k + 64);
  const out = [];
  let group = [];
  let ids = new Set();
  // Workload traces repeat span ids across generations: a group takes only traces whose span ids are new to it.
  for (const t of source) {
    if (out.length === count) break;
    if (t.spans.some((s) => ids.has(s.span.spanId))) continue;
    group.push(t);
    for (const s of t.spans) ids.add(s.span.spanId);
    if (group.length === k) {
      const traceId = group[0].traceId;
      out.push({ traceId, spans: group.flatMap((g) => g.spans.map((s) => withTrace(s, traceId))) });
      group = [];
      ids = new Set();
    }
  }
  if (out.length < count) throw new Error(`only ${out.length} traces of ${size} spans`);
  return out;
}

/** Everything a pass consumes, derived once: batches of chains and summaries, and the requests for the journal. */
function prepare(size) {
  const traces = tracesOfSize(size, SPANS);
  const resolver = createIdentityResolver(DEFAULT_IDENTITY_RULES);
  const batches = [];
  let current;
  let chainCount = 0;
  let callCount = 0;
  for (const trace of traces) {
    if (!current || current.spans + trace.spans.length > BATCH_SPANS || current.traces >= MAX_TRACES_PER_BATCH) {
      current = { chains: [], traceSummaries: [], traces: 0, spans: 0 };
      batches.push(current);
    }
    let startMs = Infinity;
    let endMs = -Infinity;
    const services = new Set();
    for (const { span, resource } of trace.spans) {
      startMs = Math.min(startMs, span.startMs);
      endMs = Math.max(endMs, span.endMs);
      services.add(resource['service.name']);
    }
    const summary = { traceId: trace.traceId, startMs, endMs, spans: trace.spans.length, services: [...services] };
    // --late maybe: every trace marked as serve's pipeline marks new traces once it forgot
    // completed ids within stitching.lateTraceWindow (sustained load past rememberedTraces).
    if (values.late) summary.late = values.late;
    current.traceSummaries.push(summary);
    for (const chain of deriveTrace(trace.spans, resolver).chains) {
      current.chains.push(chain);
      chainCount++;
      callCount += chain.calls.length;
    }
    current.traces++;
    current.spans += trace.spans.length;
  }
  // Requests of 512 spans in trace order; a trace belongs to the request of its first span and to
  // that of its last (two requests, as in the workload, when it straddles them).
  const requests = [];
  const lastRequestOf = [];
  let at = 0;
  for (const trace of traces) {
    const first = Math.floor(at / REQUEST_SPANS);
    at += trace.spans.length;
    const last = Math.floor((at - 1) / REQUEST_SPANS);
    for (let r = first; r <= last; r += Math.max(1, last - first)) (requests[r] ??= []).push(trace.traceId);
    lastRequestOf.push(last);
  }
  // A batch can be consumed once the requests holding its traces' last spans are in.
  let t = 0;
  const readyAfter = batches.map((b) => {
    t += b.traces;
    return lastRequestOf[t - 1];
  });
  // What serve's pipeline thread says with each batch (ChainBatch.requests): the requests its
  // traces hold, as (request tag, position of the trace in that request's ids); tag = index here.
  const holders = new Map();
  requests.forEach((ids, r) => ids.forEach((id, at) => (holders.get(id) ?? holders.set(id, []).get(id)).push(r, at)));
  const requestPairs = batches.map((b) => Int32Array.from(b.traceSummaries.flatMap((s) => holders.get(s.traceId))));
  const body = Buffer.alloc(REQUEST_SPANS * 420, 7); // about the workload's bytes per span
  return { size, batches, requests, requestPairs, readyAfter, body, chains: chainCount, calls: callCount, spans: traces.length * size, traces: traces.length };
}

/**
 * Fresh copies of the batches (the engine stamps and templates chains in place), through the
 * batch codec as serve's main thread gets them: repeated strings are then one string object each,
 * their hashes cached, as in serve.
 */
function copyBatches(batches) {
  const encoder = createBatchEncoder();
  const decoder = createBatchDecoder();
  return batches.map((b) => decoder.decode(encoder.encode(b)));
}

async function timeJournal(w, m) {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-per-chain-'));
  const journal = m.createJournal({ dir: join(dir, 'journal'), registry: new Registry() });
  const consumer = journal.consumer({ consume: async () => {} });
  const ingest = journal.ingest({
    accept: async () => ({ ok: true }),
    acceptRaw: async (raw, limits, onAccepted) => {
      onAccepted?.(w.requests[raw.index], REQUEST_SPANS, raw.index);
      return { kind: 'decoded', outcome: { ok: true }, spanCount: REQUEST_SPANS };
    },
  });
  const batches = w.batches.map((b, k) => ({ ...b, chains: [], requests: { pairs: w.requestPairs[k], exact: true } }));
  globalThis.gc?.(); // what the set-up left is not charged to the stage (node --expose-gc)
  const c0 = cpu();
  let next = 0;
  for (let i = 0; i < w.requests.length; i += INFLIGHT) {
    const group = [];
    for (let j = i; j < Math.min(i + INFLIGHT, w.requests.length); j++) group.push(ingest.acceptRaw({ format: 'protobuf', body: w.body, index: j }, {}));
    await Promise.all(group);
    while (next < batches.length && w.readyAfter[next] < i + INFLIGHT) {
      journal.onBatch(batches[next]);
      await consumer.consume(batches[next++]);
    }
  }
  const us = cpu() - c0;
  const left = journal.stats().entries;
  await journal.stop();
  rmSync(dir, { recursive: true, force: true });
  if (left !== 0) throw new Error(`journal: ${left} requests left unsettled`);
  return us;
}

function timeDecode(w) {
  const encoder = createBatchEncoder();
  const decoder = createBatchDecoder();
  let encodeUs = 0;
  let decodeUs = 0;
  globalThis.gc?.();
  for (const b of w.batches) {
    let c = cpu();
    const encoded = encoder.encode(b);
    const n = cpu();
    encodeUs += n - c;
    c = n;
    decoder.decode(encoded);
    decodeUs += cpu() - c;
  }
  return { encodeUs, decodeUs };
}

/**
 * The batches again with other trace ids and all times `shiftMs` earlier, as the traces of another
 * stretch of event time. Each id is a hash of the id and the round: random, as real trace ids are
 * (W3C Trace Context), unlike the workload's, whose first 4 bytes count up (a trace-id index fed
 * those only ever grows at its end).
 */
function shiftedBatches(batches, round, shiftMs) {
  const id = (traceId) => createHash('sha256').update(`${round}:${traceId}`).digest('hex').slice(0, 32);
  return batches.map((b) => ({
    ...b,
    chains: b.chains.map((c) => ({
      ...c,
      traceId: id(c.traceId),
      startMs: c.startMs - shiftMs,
      endMs: c.endMs - shiftMs,
      calls: c.calls.map((call) => ({ ...call, startMs: call.startMs - shiftMs })),
    })),
    traceSummaries: b.traceSummaries.map((t) => ({ ...t, traceId: id(t.traceId), startMs: t.startMs - shiftMs, endMs: t.endMs - shiftMs })),
  }));
}

/** A database file into which `m`'s build wrote GROWN traces before the measured ones (made once per build and size). */
async function grownFile(w, m) {
  m.grown ??= new Map();
  let file = m.grown.get(w);
  if (file) return file;
  file = join(mkdtempSync(join(tmpdir(), 'conduct-per-chain-grown-')), 'conduct.db');
  const backend = await m.openSqliteBackend({ path: file });
  const first = Math.min(...w.batches.map((b) => b.traceSummaries[0].startMs));
  const last = Math.max(...w.batches.flatMap((b) => b.traceSummaries.map((t) => t.endMs)));
  const rounds = Math.ceil(GROWN / w.traces);
  for (let round = 1; round <= rounds; round++) {
    const shift = (rounds - round + 1) * (last - first + 1);
    for (const b of shiftedBatches(w.batches, round, shift)) await backend.chainWriter.commitBatch({ chains: b.chains, traces: b.traceSummaries });
  }
  await backend.close();
  m.grown.set(w, file);
  return file;
}

/** --group N: every N consecutive batches as one unit (one transaction). */
function grouped(batches, group) {
  if (group === 1) return batches;
  const out = [];
  for (let i = 0; i < batches.length; i += group) {
    const some = batches.slice(i, i + group);
    out.push({ ...some[0], chains: some.flatMap((b) => b.chains), traceSummaries: some.flatMap((b) => b.traceSummaries) });
  }
  return out;
}

/** --pages: the WAL frames each commit appends, counted by the table or index their page belongs to (dbstat). */
function createPageCount(db, walPath) {
  db.pragma('wal_autocheckpoint = 0');
  db.pragma('wal_checkpoint(TRUNCATE)');
  const FRAME = 24 + db.pragma('page_size', { simple: true });
  const pageOwner = db.prepare('SELECT pageno, name FROM dbstat');
  let seen = statSync(walPath).size;
  const byName = new Map();
  let commits = 0;
  return {
    /** Counts the frames appended since the last call by owner. */
    note() {
      const size = statSync(walPath).size;
      const bytes = readFileSync(walPath).subarray(Math.max(seen, 32), size);
      seen = size;
      commits++;
      const owner = new Map(pageOwner.raw().all());
      for (let at = 0; at + FRAME <= bytes.length; at += FRAME) {
        const name = owner.get(bytes.readUInt32BE(at)) ?? '(free or new)';
        byName.set(name, (byName.get(name) ?? 0) + 1);
      }
    },
    /** Frames per commit by owner, most first. */
    report: () => [...byName].sort((a, b) => b[1] - a[1]).map(([name, n]) => [name, n / commits]),
  };
}

/** Checkpoint rows the engine stage wrote, per pass (side and size). */
const checkpointRows = [];

/** What --pages counted, per side and size. */
const pageReports = [];

async function timeStore(w, m) {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-per-chain-'));
  if (GROWN > 0) copyFileSync(await grownFile(w, m), join(dir, 'conduct.db'));
  const backend = await m.openSqliteBackend({ path: join(dir, 'conduct.db') });
  // On a grown file the measured traces have random ids too, and two untimed batches of the same
  // traces (other ids) warm the page cache first.
  const batches = grouped(copyBatches(GROWN > 0 ? shiftedBatches(w.batches, 0, 0) : w.batches), m.group ?? GROUPS[0]);
  if (GROWN > 0) for (const b of shiftedBatches(w.batches.slice(0, 2), -1, 0)) await backend.chainWriter.commitBatch({ chains: b.chains, traces: b.traceSummaries });
  // Counting pages stops the checkpoints (the WAL keeps every frame) and is not timed.
  const pages = values.pages ? createPageCount(backend.store.db, join(dir, 'conduct.db-wal')) : undefined;
  globalThis.gc?.(); // what the set-up left is not charged to the stage (node --expose-gc)
  let us = 0;
  let c0 = cpu();
  for (const b of batches) {
    await backend.chainWriter.commitBatch({ chains: b.chains, traces: b.traceSummaries });
    if (!pages) continue;
    us += cpu() - c0;
    pages.note();
    c0 = cpu();
  }
  us += cpu() - c0;
  if (pages) pageReports.push({ w, m, rows: pages.report() });
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
  return us;
}

async function timeDetect(w, m) {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-per-chain-'));
  const backend = await m.openSqliteBackend({ path: join(dir, 'conduct.db') });
  // The checkpoint's share is timed on its own (a wrapper of the state's `checkpoint`).
  let checkpointUs = 0;
  const state = {
    ...backend.detection,
    async checkpoint(cp) {
      const c = cpu();
      await backend.detection.checkpoint(cp);
      checkpointUs += cpu() - c;
    },
  };
  const detection = await m.createDetection({ state, learning: m.parseConfig({ learning: LEARNING }).learning, traceUrl: 'http://localhost/{traceId}' });
  const batches = copyBatches(w.batches);
  globalThis.gc?.(); // what the set-up left is not charged to the stage (node --expose-gc)
  const c0 = cpu();
  let alerts = 0;
  for (const b of batches) alerts += (await detection.analyse(b.chains)).alerts.length;
  await detection.flush();
  const us = cpu() - c0;
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
  return { us, alerts, checkpointUs };
}

async function timeEngine(w, m) {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-per-chain-'));
  const config = m.parseConfig({ storage: { path: join(dir, 'conduct.db') }, learning: LEARNING });
  const core = await m.assembleBackend(config, { registry: new Registry(), sinks: false });
  const batches = copyBatches(w.batches);
  // Checkpoint rows: the baseline rows (identity and entries, written or forgotten) each write carries.
  const writer = core.storage.chainWriter;
  const commitBatch = writer.commitBatch.bind(writer);
  let rows = 0;
  core.storage.chainWriter = {
    ...writer,
    accepts: writer.accepts.bind(writer),
    commitBatch: (unit) => {
      for (const d of unit.checkpoint?.baselines ?? []) rows += 1 + d.entries.length + d.removed.length;
      return commitBatch(unit);
    },
  };
  const group = m.group ?? GROUPS[0];
  globalThis.gc?.(); // what the set-up left is not charged to the stage (node --expose-gc)
  const c0 = cpu();
  // --group N: N batches at a time to consumeMany (stored in one write), as serve hands over batches that wait together.
  for (let i = 0; i < batches.length; i += group) {
    if (group === 1) await core.engine.consume(batches[i]);
    else for (const failed of await core.engine.consumeMany(batches.slice(i, i + group))) if (failed) throw failed.err;
  }
  const us = cpu() - c0;
  checkpointRows.push({ w, m, rows });
  const stats = core.engine.stats();
  await core.stop();
  rmSync(dir, { recursive: true, force: true });
  if (stats.chains !== w.chains) throw new Error(`engine stored ${stats.chains} chains of ${w.chains}`);
  return { us, alerts: stats.alerts };
}

/** The call codec's binary form alone (the store's part of the write that is no SQL), texts numbered in a Map. */
async function timeCallCodec(w, m) {
  const { encodeCallsBinary } = await import(pathToFileURL(join(m.dir, 'store/call-codec.js')).href);
  const ids = new Map();
  const texts = { idOf: (t) => ids.get(t) ?? (ids.set(t, ids.size), ids.size - 1), textOf: () => '' };
  const batches = copyBatches(w.batches);
  globalThis.gc?.(); // what the set-up left is not charged to the stage (node --expose-gc)
  const c0 = cpu();
  // Five times over: one pass alone is too short to measure on a busy machine.
  for (let i = 0; i < 5; i++) for (const b of batches) for (const chain of b.chains) encodeCallsBinary(chain.calls, chain.startMs, texts);
  return (cpu() - c0) / 5;
}

async function pass(w, m) {
  const r = {};
  if (STAGES.includes('call-codec')) r['call codec (in store)'] = await timeCallCodec(w, m);
  if (STAGES.includes('journal')) r.journal = await timeJournal(w, m);
  if (STAGES.includes('decode')) {
    const { encodeUs, decodeUs } = timeDecode(w);
    r['encode (pipeline)'] = encodeUs;
    r.decode = decodeUs;
  }
  if (STAGES.includes('store')) r.store = await timeStore(w, m);
  if (STAGES.includes('detect')) {
    const d = await timeDetect(w, m);
    r.detect = d.us;
    r['  analyse (detect)'] = d.us - d.checkpointUs;
    r['  checkpoint (detect)'] = d.checkpointUs;
  }
  if (STAGES.includes('engine')) r['engine (store+detect)'] = (await timeEngine(w, m)).us;
  return r;
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

const here = join(import.meta.dirname, '../backend/dist');
/** A saved backend build (inside this checkout, so its imports resolve), loaded as the package is not. */
const saved = async (dir) => ({ ...(await import(pathToFileURL(join(resolve(dir), 'index.js')).href)), dir: resolve(dir) });
const sides = [{ name: 'after', m: values.after ? await saved(values.after) : { ...backendNow, dir: here } }];
if (GROUPS.length === 2 && !values.before) {
  // --group A,B: this build committing A batches a transaction against B, on the same grown file.
  const grown = new Map();
  sides.splice(0, 1, ...GROUPS.map((group) => ({ name: `group ${group}`, m: { ...backendNow, dir: here, group, grown } })));
} else if (values.before) {
  sides.unshift({ name: 'before', m: await saved(values.before) });
}

/**
 * --interleave (with --group A,B, engine stage): both groupings' engines open at once on fresh files,
 * each chunk of max(A,B) batches consumed by one then the other, the order alternating chunk by
 * chunk, so that both see the same machine load within milliseconds; CPU per side summed over the pass.
 */
async function interleavedEngines(w) {
  const sidesNow = GROUPS.map((group) => {
    const dir = mkdtempSync(join(tmpdir(), 'conduct-per-chain-'));
    return { group, dir, batches: copyBatches(w.batches), us: 0 };
  });
  for (const side of sidesNow) {
    const config = backendNow.parseConfig({ storage: { path: join(side.dir, 'conduct.db') }, learning: LEARNING });
    side.core = await backendNow.assembleBackend(config, { registry: new Registry(), sinks: false });
  }
  const chunk = Math.max(...GROUPS);
  globalThis.gc?.();
  for (let i = 0, round = 0; i < w.batches.length; i += chunk, round++) {
    for (const side of round % 2 ? [...sidesNow].reverse() : sidesNow) {
      const some = side.batches.slice(i, i + chunk);
      const c0 = cpu();
      for (let j = 0; j < some.length; j += side.group) {
        if (side.group === 1) await side.core.engine.consume(some[j]);
        else for (const failed of await side.core.engine.consumeMany(some.slice(j, j + side.group))) if (failed) throw failed.err;
      }
      side.us += cpu() - c0;
    }
  }
  for (const side of sidesNow) {
    await side.core.stop();
    rmSync(side.dir, { recursive: true, force: true });
  }
  return sidesNow.map((side) => side.us);
}

if (values.interleave) {
  process.stdout.write(`load average ${load()}; engine stage, groups ${GROUPS.join(' and ')} interleaved chunk by chunk, ${REPS} passes\n`);
  for (const size of SIZES) {
    const w = prepare(size);
    await interleavedEngines(w); // warm-up
    const ratios = [];
    const per = GROUPS.map(() => []);
    for (let r = 0; r < REPS; r++) {
      const us = await interleavedEngines(w);
      us.forEach((u, k) => per[k].push(u / w.spans));
      ratios.push(us[1] / us[0]);
    }
    process.stdout.write(
      `${size}-span traces, ${w.batches.length} batches: engine µs/span group ${GROUPS[0]} ${median(per[0]).toFixed(2)}, group ${GROUPS[1]} ${median(per[1]).toFixed(2)}; ` +
        `ratio per pass median ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}); load ${load()}\n`,
    );
  }
  process.exit(0);
}

process.stdout.write(`load average ${load()}; ${values.min ? 'least' : 'median'} of ${REPS} passes${sides.length > 1 ? ' per side, sides alternating (ABBA)' : ''}, batches of up to ${BATCH_SPANS} spans\n`);
for (const size of SIZES) {
  const w = prepare(size);
  for (const side of sides) await pass(w, side.m); // warm-up
  const runs = sides.map(() => []);
  for (let r = 0; r < REPS; r++) {
    const order = r % 2 === 0 ? sides.keys() : [...sides.keys()].reverse();
    for (const k of order) runs[k].push(await pass(w, sides[k].m));
  }
  process.stdout.write(
    `\n${size}-span traces: ${w.spans} spans, ${w.traces} traces, ${w.chains} chains (${(w.chains / w.traces).toFixed(2)} per trace, ${(w.calls / w.chains).toFixed(2)} calls each), ${w.batches.length} batches\n`,
  );
  const head = sides.map((side) => `${`${side.name} µs/span`.padStart(16)} ${'µs/chain'.padStart(9)}`).join(' ');
  process.stdout.write(`${'stage'.padEnd(28)} ${head}${sides.length > 1 ? `  ${sides[1].name}/${sides[0].name}` : ''}\n`);
  const main = sides.map(() => 0);
  for (const stage of Object.keys(runs[0][0])) {
    const us = runs.map((rs) => (values.min ? Math.min(...rs.map((x) => x[stage])) : median(rs.map((x) => x[stage]))));
    if (stage === 'journal' || stage === 'decode' || stage.startsWith('engine')) us.forEach((u, k) => (main[k] += u));
    const cols = us.map((u) => `${(u / w.spans).toFixed(2).padStart(16)} ${(u / w.chains).toFixed(2).padStart(9)}`).join(' ');
    process.stdout.write(`${stage.padEnd(28)} ${cols}${sides.length > 1 ? `  ${(us[1] / us[0]).toFixed(3).padStart(12)}` : ''}\n`);
  }
  if (STAGES.includes('engine') && STAGES.includes('journal') && STAGES.includes('decode')) {
    const cols = main.map((u) => `${(u / w.spans).toFixed(2).padStart(16)} ${(u / w.chains).toFixed(2).padStart(9)}`).join(' ');
    process.stdout.write(`${'main (journal+decode+engine)'.padEnd(28)} ${cols}${sides.length > 1 ? `  ${(main[1] / main[0]).toFixed(3).padStart(12)}` : ''}\n`);
  }
  if (STAGES.includes('engine')) {
    for (const side of sides) {
      const last = checkpointRows.filter((p) => p.w === w && p.m === side.m).at(-1);
      process.stdout.write(`checkpoint rows (${side.name}, ${side.m.group ?? GROUPS[0]} batch(es) a write): ${last.rows}, ${(last.rows / w.spans).toFixed(3)} per span\n`);
    }
  }
  if (values.pages) {
    for (const side of sides) {
      const last = pageReports.filter((p) => p.w === w && p.m === side.m).at(-1);
      const total = last.rows.reduce((sum, [, n]) => sum + n, 0);
      const group = side.m.group ?? GROUPS[0];
      process.stdout.write(`WAL pages per commit (${side.name}, ${group} batch${group > 1 ? 'es' : ''} a commit): ${total.toFixed(0)}: ${last.rows.map(([name, n]) => `${name} ${n.toFixed(0)}`).join(', ')}\n`);
    }
  }
}
process.stdout.write(`\nload average ${load()}\n`);
