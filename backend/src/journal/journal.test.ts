import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { Registry } from 'prom-client';
import { DEFAULT_DECODE_LIMITS, decodeTracesRequest, decodeTracesRequestJson, encodeTracesRequest, type TracesRequestData } from '@conduct/proto';
import { createCollectingConsumer, createPipeline, createPipelineThread, type RawRequest } from '@conduct/processor';
import { createJournal } from './journal.js';

const T0_NS = 1_767_000_000_000_000_000n;
const hex = (n: number, bytes: number) => n.toString(16).padStart(bytes * 2, '0');

/** A request with one trace per id in `traces`: a client span of `deployer` and the server span of `api` it called. */
function otlpJson(traces: number[]) {
  const res = (name: string) => ({ attributes: [{ key: 'service.name', value: { stringValue: name } }, { key: 'process.pid', value: { intValue: 7 } }] });
  const spansOf = (server: boolean) =>
    traces.map((t) => ({
      traceId: hex(t, 16),
      spanId: hex(t * 2 + (server ? 1 : 0), 8),
      ...(server ? { parentSpanId: hex(t * 2, 8) } : {}),
      name: server ? 'GET /items/{id}' : 'GET',
      kind: server ? 2 : 3,
      startTimeUnixNano: String(T0_NS + BigInt(t) * 1_000_000n),
      endTimeUnixNano: String(T0_NS + BigInt(t) * 1_000_000n + 500_000n),
      attributes: [
        { key: 'enduser.id', value: { stringValue: `spiffe://prod/sa/u${t % 3}` } },
        { key: 'http.request.method', value: { stringValue: 'GET' } },
        { key: server ? 'http.route' : 'url.full', value: { stringValue: server ? '/items/{id}' : `http://api/items/${t}` } },
      ],
    }));
  return {
    resourceSpans: [
      { resource: res('deployer'), scopeSpans: [{ spans: spansOf(false) }] },
      { resource: res('api'), scopeSpans: [{ spans: spansOf(true) }] },
    ],
  };
}

/** The same request as OTLP/protobuf bytes. */
function otlpProtobuf(traces: number[]): Buffer {
  const json = otlpJson(traces);
  const msg = {
    resourceSpans: json.resourceSpans.map((rs) => ({
      resource: { attributes: rs.resource.attributes },
      scopeSpans: rs.scopeSpans.map((ss) => ({
        spans: ss.spans.map((s) => ({
          ...s,
          traceId: Buffer.from(s.traceId, 'hex'),
          spanId: Buffer.from(s.spanId, 'hex'),
          parentSpanId: 'parentSpanId' in s ? Buffer.from(s.parentSpanId as string, 'hex') : undefined,
        })),
      })),
    })),
  };
  return Buffer.from(encodeTracesRequest(msg as never));
}

let dir: string;
let dbs: Database.Database[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'conduct-journal-'));
  dbs = [];
});
afterEach(() => {
  for (const db of dbs) db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One process's worth: database connection, journal, pipeline holding traces until flushed. */
function start() {
  const db = new Database(join(dir, 'conduct.db'));
  db.pragma('journal_mode = WAL');
  dbs.push(db);
  const registry = new Registry();
  const journal = createJournal({ db, registry });
  const consumer = createCollectingConsumer();
  const pipeline = createPipeline({
    stitching: { idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 100_000 },
    consumer: journal.consumer(consumer),
    onBatch: journal.onBatch,
    registry,
    idleTimer: false,
  });
  return { db, journal, consumer, pipeline, ingest: journal.ingest(pipeline) };
}

/** Chains without the order-free parts, for comparing two runs. */
const chainsOf = (c: ReturnType<typeof createCollectingConsumer>) => c.chains().sort((a, b) => (a.traceId + a.identity).localeCompare(b.traceId + b.identity));

describe('journal', () => {
  it('keeps the request body as received, and replay after a crash rebuilds the pending traces', async () => {
    const first = start();
    const pb = otlpProtobuf([1, 2, 3]);
    const jsonText = Buffer.from(JSON.stringify(otlpJson([4, 5])));
    const inputs: Array<[TracesRequestData, RawRequest]> = [
      [decodeTracesRequest(pb, { keep: first.pipeline.keep }), { format: 'protobuf', body: pb }],
      [decodeTracesRequestJson(jsonText, { keep: first.pipeline.keep }), { format: 'json', body: jsonText }],
    ];
    for (const [data, raw] of inputs) expect(await first.ingest.accept(data, raw)).toEqual({ ok: true });
    // Acknowledged means committed: the bytes are in the table as they came.
    const rows = first.db.prepare('SELECT format, body, spans FROM journal ORDER BY seq').all() as Array<{ format: string; body: Buffer; spans: number }>;
    expect(rows.map((r) => [r.format, r.spans])).toEqual([['protobuf', 6], ['json', 4]]);
    expect(Buffer.compare(rows[0]!.body, pb)).toBe(0);
    expect(rows[1]!.body.toString('utf8')).toBe(jsonText.toString('utf8'));

    // "Crash": the first pipeline never completes its traces; a second process replays.
    const second = start();
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 2, spans: 10 });
    await second.pipeline.flush();
    await first.pipeline.flush();
    expect(chainsOf(second.consumer)).toEqual(chainsOf(first.consumer));
    expect(second.consumer.chains()).toHaveLength(5);
    expect(second.consumer.chains().every((c) => c.calls.length === 1 && c.calls[0]!.operation === 'GET /items/{id}')).toBe(true);
    // Every trace stored: the journal is empty again.
    expect(second.db.prepare('SELECT count(*) AS n FROM journal').get()).toEqual({ n: 0 });
    await second.pipeline.stop();
    await first.pipeline.stop();
  });

  it('journals bodies that a pipeline thread decodes (acceptRaw), settles them once stored, and replays them', async () => {
    const db = new Database(join(dir, 'conduct.db'));
    db.pragma('journal_mode = WAL');
    dbs.push(db);
    const journal = createJournal({ db, registry: new Registry() });
    const consumer = createCollectingConsumer();
    const thread = createPipelineThread({
      stitching: { idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 100_000 },
      consumer: journal.consumer(consumer),
      onBatch: journal.onBatch,
    });
    try {
      const ingest = journal.ingest(thread);
      const pb = otlpProtobuf([1, 2, 3]);
      const noted: string[] = [];
      const result = await ingest.acceptRaw!({ format: 'protobuf', body: pb }, DEFAULT_DECODE_LIMITS, (ids) => noted.push(...ids));
      expect(result).toMatchObject({ kind: 'decoded', outcome: { ok: true }, spanCount: 6 });
      expect(noted.sort()).toEqual([hex(1, 16), hex(2, 16), hex(3, 16)]);
      // Committed before the answer, with the bytes as received and the traces it waits for.
      const rows = db.prepare('SELECT format, body, spans FROM journal').all() as Array<{ format: string; body: Buffer; spans: number }>;
      expect(rows.map((r) => [r.format, r.spans])).toEqual([['protobuf', 6]]);
      expect(Buffer.compare(rows[0]!.body, pb)).toBe(0);
      expect(db.prepare('SELECT count(*) AS n FROM journal_traces').get()).toEqual({ n: 3 });

      // A second process replays the unsettled request through its own pipeline.
      const second = start();
      expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 6 });
      await second.pipeline.stop();

      // Stored by the first: settled and deleted.
      await thread.flush();
      expect(consumer.chains()).toHaveLength(3);
      expect(db.prepare('SELECT count(*) AS n FROM journal').get()).toEqual({ n: 0 });
      expect(journal.stats()).toMatchObject({ entries: 0, appended: 1, checkpointed: 1 });
    } finally {
      await thread.stop();
    }
  });

  it('replays only the traces not stored yet', async () => {
    const first = start();
    const pb = otlpProtobuf([1, 2]);
    expect(await first.ingest.accept(decodeTracesRequest(pb, { keep: first.pipeline.keep }), { format: 'protobuf', body: pb })).toEqual({ ok: true });
    // As if trace 1 had completed and been stored (the journal settles it) before the process died.
    expect(first.db.prepare('SELECT trace_id FROM journal_traces ORDER BY trace_id').all()).toEqual([{ trace_id: hex(1, 16) }, { trace_id: hex(2, 16) }]);
    first.db.prepare('DELETE FROM journal_traces WHERE trace_id = ?').run(hex(1, 16));

    const second = start();
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 2 });
    await second.pipeline.flush();
    expect(second.consumer.chains().map((c) => c.traceId)).toEqual([hex(2, 16)]);
    await second.pipeline.stop();
    await first.pipeline.stop();
  });

  it('without the body, journals the decoded request, as before', async () => {
    const first = start();
    const data = decodeTracesRequest(otlpProtobuf([1, 2]));
    expect(await first.ingest.accept(data)).toEqual({ ok: true });
    expect(first.db.prepare('SELECT format FROM journal').all()).toEqual([{ format: 'decoded' }]);
    const second = start();
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 4 });
    await second.pipeline.flush();
    expect(second.consumer.chains().map((c) => c.traceId).sort()).toEqual([hex(1, 16), hex(2, 16)]);
    await second.pipeline.stop();
    await first.pipeline.stop();
  });

  it('reads a journal written before the format column existed', async () => {
    const db = new Database(join(dir, 'conduct.db'));
    dbs.push(db);
    db.exec(`CREATE TABLE journal (seq INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, spans INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE TABLE journal_traces (seq INTEGER NOT NULL, trace_id TEXT NOT NULL, PRIMARY KEY (seq, trace_id)) WITHOUT ROWID;`);
    const data = decodeTracesRequest(otlpProtobuf([3]));
    db.prepare('INSERT INTO journal VALUES (1, 0, 2, ?)').run(JSON.stringify(data));
    db.prepare('INSERT INTO journal_traces VALUES (1, ?)').run(hex(3, 16));
    const second = start();
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 2 });
    await second.pipeline.flush();
    expect(second.consumer.chains().map((c) => c.traceId)).toEqual([hex(3, 16)]);
    await second.pipeline.stop();
  });

  it('skips an entry whose body cannot be decoded, and replays the rest', async () => {
    const first = start();
    const pb = otlpProtobuf([4]);
    await first.ingest.accept(decodeTracesRequest(pb), { format: 'protobuf', body: pb });
    first.db.prepare('INSERT INTO journal VALUES (100, 0, 1, ?, ?)').run(Buffer.from([0x0a, 0xff]), 'protobuf');
    first.db.prepare('INSERT INTO journal_traces VALUES (100, ?)').run(hex(5, 16));
    const second = start();
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 2 });
    expect(second.db.prepare('SELECT seq FROM journal ORDER BY seq').all()).toEqual([{ seq: 1 }]);
    await second.pipeline.stop();
    await first.pipeline.stop();
  });
});
