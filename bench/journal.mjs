// CPU cost of the ingest journal per span on the bench workload, on a real SQLite file: each
// request journaled (group commit of the requests of one turn) and settled when the batch that
// completes its traces is stored, as `conduct serve` does. The ingest behind it and the store are
// stand-ins that do nothing, so only the journal is measured.
//
//   npm run build && node bench/journal.mjs [--requests 600] [--rounds 5]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Registry } from 'prom-client';
import { decodeTracesRequest } from '@conduct/proto';
import { createJournal } from '@conduct/backend';
import { createRequestSource, SPANS_PER_REQUEST } from './workload.mjs';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '600' }, rounds: { type: 'string', default: '5' }, inflight: { type: 'string', default: '8' } } });
const REQUESTS = Number(values.requests);
const INFLIGHT = Number(values.inflight);
const source = createRequestSource(5);
let now = Date.now();
const bodies = Array.from({ length: REQUESTS }, () => source.next((now += 2.56)));
const decoded = bodies.map((b) => decodeTracesRequest(b));
const traceIdsOf = (d) => [...new Set(d.resourceSpans.flatMap((rs) => rs.spans.map((s) => s.traceId)))];
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function round() {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-journal-bench-'));
  const db = new Database(join(dir, 'conduct.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const journal = createJournal({ db, registry: new Registry() });
  const consumer = journal.consumer({ consume: async () => {} });
  const ingest = journal.ingest({ accept: async () => ({ ok: true }) });
  const c0 = cpu();
  // A trace spans two consecutive requests: after request i is in, the traces that request i - 1
  // opened and request i finished complete, as the stitcher would hand them on.
  for (let i = 0; i < REQUESTS; i += INFLIGHT) {
    const group = [];
    for (let j = i; j < Math.min(i + INFLIGHT, REQUESTS); j++) group.push(ingest.accept(decoded[j], { format: "protobuf", body: bodies[j] }));
    await Promise.all(group);
    const done = new Set();
    for (let j = Math.max(0, i - 1); j < Math.min(i + INFLIGHT - 1, REQUESTS); j++) for (const t of traceIdsOf(decoded[j])) done.add(t);
    const batch = { chains: [], traceSummaries: [...done].map((traceId) => ({ traceId, startMs: 0, endMs: 0, spans: 8, services: [] })), traces: done.size, spans: done.size * 8 };
    journal.onBatch(batch);
    await consumer.consume(batch);
  }
  const us = (cpu() - c0) / (REQUESTS * SPANS_PER_REQUEST);
  const left = db.prepare('SELECT count(*) AS n FROM journal').get().n;
  await journal.stop();
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { us, left };
}

await round();
const runs = [];
for (let r = 0; r < Number(values.rounds); r++) runs.push(await round());
process.stdout.write(`${REQUESTS * SPANS_PER_REQUEST} spans, ${INFLIGHT} requests per group commit; journal CPU µs per span, median of ${values.rounds}: ${median(runs.map((r) => r.us)).toFixed(2)} (entries left unsettled: ${runs[0].left})\n`);
