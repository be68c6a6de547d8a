// CPU cost of the ingest journal per span on the bench workload, on real files: each request
// journaled (group commit of the requests of one turn) and settled when the batch that completes
// its traces is stored, as `conduct serve` does. The ingest behind it and the store are stand-ins
// that do nothing, so only the journal is measured.
//
//   npm run build && node bench/journal.mjs [--requests 600] [--rounds 5] [--raw] [--old PATH]
//
// Requests come in through `accept(decoded, body)`, where the journal collects the trace ids from
// the decoded request; --raw uses `acceptRaw` instead, as conduct serve's pipeline thread does,
// where the trace ids and the request's tag come with the answer, and each batch names the tagged
// requests its traces hold (ChainBatch.requests; all worked out up front here).
//
// --old takes the built backend (its dist/index.js) of another version, e.g. one with the SQLite
// journal: rounds then alternate between the two, and both medians are printed. Each journal gets
// a fresh directory and database; the old one writes to the database, this one to the directory
// (the database stays empty for it).
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Registry } from 'prom-client';
import { decodeTracesRequest } from '@conduct/proto';
import { createJournal } from '@conduct/backend';
import { createRequestSource, SPANS_PER_REQUEST } from './workload.mjs';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '600' },
    rounds: { type: 'string', default: '5' },
    inflight: { type: 'string', default: '8' },
    raw: { type: 'boolean', default: false },
    old: { type: 'string' },
  },
});
const REQUESTS = Number(values.requests);
const INFLIGHT = Number(values.inflight);
const source = createRequestSource(5);
let now = Date.now();
const bodies = Array.from({ length: REQUESTS }, () => source.next((now += 2.56)));
const decoded = bodies.map((b) => decodeTracesRequest(b));
const traceIdsOf = (d) => [...new Set(d.resourceSpans.flatMap((rs) => rs.spans.map((s) => s.traceId)))];
const idsOf = decoded.map(traceIdsOf);
const indexOf = new Map(bodies.map((b, j) => [b, j]));
// A trace spans two consecutive requests: after the group of requests i.. is in, the traces that
// request i - 1 opened and the group finished complete, as the stitcher would hand them on. Made
// up front (a fresh object per round), so the stand-in's work is not counted.
const completing = [];
for (let i = 0; i < REQUESTS; i += INFLIGHT) {
  const done = new Set();
  // Request j's every trace completes here: pairs (its tag j, the trace's position in its ids).
  const pairs = [];
  for (let j = Math.max(0, i - 1); j < Math.min(i + INFLIGHT - 1, REQUESTS); j++) {
    idsOf[j].forEach((t, at) => pairs.push(j, at));
    for (const t of idsOf[j]) done.add(t);
  }
  completing.push({ ids: [...done], pairs });
}
const batchesOf = () =>
  completing.map(({ ids, pairs }) => ({
    chains: [],
    traceSummaries: ids.map((traceId) => ({ traceId, startMs: 0, endMs: 0, spans: 8, services: [] })),
    traces: ids.length,
    spans: ids.length * 8,
    ...(values.raw ? { requests: { pairs: Int32Array.from(pairs), exact: true } } : {}),
  }));
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// This version's journal takes its directory alone (an older version's journal kept in the store
// is moved over by `adoptLegacy`, not read through an option); an older version given with --old
// takes the database its SQLite journal lives in.
const impls = [{ name: 'this version', create: createJournal, options: ({ dir, registry }) => ({ dir, registry }) }];
if (values.old) {
  const { createJournal: createOld } = await import(pathToFileURL(resolve(values.old)).href);
  impls.push({ name: 'old', create: createOld, options: ({ db, dir, registry }) => ({ db, dir, registry }) });
}

async function round(impl) {
  const work = mkdtempSync(join(tmpdir(), 'conduct-journal-bench-'));
  const db = new Database(join(work, 'conduct.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const dir = join(work, 'conduct.db.journal');
  const journal = impl.create(impl.options({ db, dir, registry: new Registry() }));
  const consumer = journal.consumer({ consume: async () => {} });
  const ingest = journal.ingest({
    accept: async () => ({ ok: true }),
    acceptRaw: async (raw, limits, onAccepted) => {
      const j = indexOf.get(raw.body);
      onAccepted?.(idsOf[j], SPANS_PER_REQUEST, j);
      return { kind: 'decoded', outcome: { ok: true }, spanCount: SPANS_PER_REQUEST };
    },
  });
  const send = values.raw
    ? (j) => ingest.acceptRaw({ format: 'protobuf', body: bodies[j] }, {})
    : (j) => ingest.accept(decoded[j], { format: 'protobuf', body: bodies[j] });
  const batches = batchesOf();
  const c0 = cpu();
  for (let i = 0, g = 0; i < REQUESTS; i += INFLIGHT, g++) {
    const group = [];
    for (let j = i; j < Math.min(i + INFLIGHT, REQUESTS); j++) group.push(send(j));
    await Promise.all(group);
    const batch = batches[g];
    journal.onBatch(batch);
    await consumer.consume(batch);
  }
  const us = (cpu() - c0) / (REQUESTS * SPANS_PER_REQUEST);
  const left = journal.stats().entries;
  const segments = existsSync(dir) ? readdirSync(dir).length : 0;
  await journal.stop();
  db.close();
  rmSync(work, { recursive: true, force: true });
  return { us, left, segments };
}

for (const impl of impls) await round(impl);
const runs = impls.map(() => []);
for (let r = 0; r < Number(values.rounds); r++) for (const [k, impl] of impls.entries()) runs[k].push(await round(impl));
for (const [k, impl] of impls.entries()) {
  const rs = runs[k];
  process.stdout.write(
    `${impl.name}: ${REQUESTS * SPANS_PER_REQUEST} spans, ${INFLIGHT} requests per group commit, ${values.raw ? 'acceptRaw' : 'accept'}; journal CPU µs per span, median of ${values.rounds}: ${median(rs.map((r) => r.us)).toFixed(2)} (entries left unsettled: ${rs[0].left}, segment files: ${rs[0].segments})\n`,
  );
}
