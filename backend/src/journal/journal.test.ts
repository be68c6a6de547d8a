import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { Registry } from 'prom-client';
import { DEFAULT_DECODE_LIMITS, decodeTracesRequest, decodeTracesRequestJson, encodeTracesRequest, type TracesRequestData } from '@conduct/proto';
import { createCollectingConsumer, createPipeline, createPipelineThread, TraceIdBytes, traceIdTexts, type ChainBatch, type RawRequest, type TraceIngest } from '@conduct/processor';
import { createJournal, type Journal, type JournalOptions } from './journal.js';
import { encodeRequest, encodeSettled, listSegments, readSegment, RecordScratch, segmentPath, tableCrc32, type LogRecord } from './log.js';
import { createLegacyJournal } from '../store/sqlite/legacy-journal.js';
import { JOURNAL_SCHEMA } from '../store/sqlite/legacy-journal-schema.js';

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

/** The journal's directory in these tests. */
const journalDir = () => join(dir, 'conduct.db.journal');

/** A logger that keeps what it is told. */
function recordingLogger() {
  const lines: Array<{ level: string; msg: string; obj: object | string }> = [];
  const at = (level: string) => (obj: object | string, msg?: string) => void lines.push({ level, msg: msg ?? String(obj), obj });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

/**
 * One process's worth: journal, pipeline holding traces until flushed. A "crash" is a process
 * that is dropped without `stop`; the next `start` on the same directory finds its log.
 */
function start(options: Partial<JournalOptions> = {}) {
  const registry = new Registry();
  const journal = createJournal({ dir: journalDir(), registry, ...options });
  const consumer = createCollectingConsumer();
  const pipeline = createPipeline({
    stitching: { idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 100_000 },
    consumer: journal.consumer(consumer),
    onBatch: journal.onBatch,
    registry,
    idleTimer: false,
  });
  return { journal, consumer, pipeline, ingest: journal.ingest(pipeline) };
}

/** `start`, then the journal moves what an older version left in `db` into its log. */
async function startAdopting(db: Database.Database, options: Partial<JournalOptions> = {}) {
  const started = start(options);
  await started.journal.adoptLegacy(createLegacyJournal(db));
  return started;
}

/** Every intact record of the journal's log, oldest first. */
function records(): LogRecord[] {
  const out: LogRecord[] = [];
  for (const id of listSegments(journalDir())) readSegment(segmentPath(journalDir(), id), (r) => out.push(r.type === 'request' ? { ...r, body: Buffer.from(r.body) } : r));
  return out;
}

const requestRecords = () => records().filter((r): r is LogRecord & { type: 'request' } => r.type === 'request');

/** A protobuf request accepted through `ingest` with its body. */
async function acceptProtobuf(ingest: TraceIngest, traces: number[]) {
  const pb = otlpProtobuf(traces);
  return ingest.accept(decodeTracesRequest(pb), { format: 'protobuf', body: pb });
}

/** A database holding a journal as an older version left it (store migration 020's tables). */
function legacyDatabase(withFormat = true) {
  const db = new Database(join(dir, 'conduct.db'));
  dbs.push(db);
  db.exec(withFormat ? JOURNAL_SCHEMA : `CREATE TABLE journal (seq INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, spans INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE TABLE journal_traces (seq INTEGER NOT NULL, trace_id TEXT NOT NULL, PRIMARY KEY (seq, trace_id)) WITHOUT ROWID;`);
  return db;
}

/** Settles `traces` in `journal` as the store of a batch that completes them does. */
async function store(journal: Journal, traces: number[]) {
  const batch = { chains: [], traces: traces.length, spans: 2 * traces.length, traceSummaries: traces.map((t) => ({ traceId: hex(t, 16), startMs: 0, endMs: 0, spans: 2, services: [] })) } as unknown as ChainBatch;
  journal.onBatch(batch);
  await journal.consumer({ consume: async () => {} }).consume(batch);
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
    // Acknowledged means written: the bytes are in the log as they came, with their traces.
    const rows = requestRecords();
    expect(rows.map((r) => [r.format, r.spans, r.traces.length])).toEqual([['protobuf', 6, 3], ['json', 4, 2]]);
    expect(Buffer.compare(rows[0]!.body, pb)).toBe(0);
    expect(rows[1]!.body.toString('utf8')).toBe(jsonText.toString('utf8'));

    // "Crash": the first pipeline never completes its traces; a second process replays.
    const second = start();
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 2, spans: 10 });
    await second.pipeline.flush();
    expect(second.consumer.chains()).toHaveLength(5);
    expect(second.consumer.chains().every((c) => c.calls.length === 1 && c.calls[0]!.operation === 'GET /items/{id}')).toBe(true);
    // Every trace stored: nothing is left to replay, and a clean stop leaves no segment behind.
    expect(second.journal.stats().entries).toBe(0);
    await second.pipeline.stop();
    await second.journal.stop();
    await first.pipeline.flush();
    expect(chainsOf(second.consumer)).toEqual(chainsOf(first.consumer));
    await first.pipeline.stop();
    await first.journal.stop();
    expect(listSegments(journalDir())).toEqual([]);
    const third = start();
    expect(await third.journal.replay(third.pipeline)).toEqual({ requests: 0, spans: 0 });
  });

  it('journals bodies that a pipeline thread decodes (acceptRaw), settles them once stored, and replays them', async () => {
    const journal = createJournal({ dir: journalDir(), registry: new Registry() });
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
      const result = await ingest.acceptRaw!({ format: 'protobuf', body: pb }, DEFAULT_DECODE_LIMITS, (ids) => noted.push(...traceIdTexts(ids)));
      expect(result).toMatchObject({ kind: 'decoded', outcome: { ok: true }, spanCount: 6 });
      expect(noted.sort()).toEqual([hex(1, 16), hex(2, 16), hex(3, 16)]);
      // Written before the answer, with the bytes as received and the traces it waits for.
      const rows = requestRecords();
      expect(rows.map((r) => [r.format, r.spans, [...r.traces].sort()])).toEqual([['protobuf', 6, [hex(1, 16), hex(2, 16), hex(3, 16)]]]);
      expect(Buffer.compare(rows[0]!.body, pb)).toBe(0);

      // A second process replays the unsettled request through its own pipeline.
      const second = start();
      expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 6 });
      await second.pipeline.stop();

      // Stored by the first: settled, and the log says so.
      await thread.flush();
      expect(consumer.chains()).toHaveLength(3);
      expect(journal.stats()).toMatchObject({ entries: 0, appended: 1, checkpointed: 1 });
      expect(records().at(-1)).toMatchObject({ type: 'settled', seqs: [rows[0]!.seq] });
    } finally {
      await thread.stop();
      await journal.stop();
    }
  });

  it('settles a tagged request only once the batches that hold its spans are stored, not by trace id alone', async () => {
    const journal = createJournal({ dir: journalDir(), registry: new Registry() });
    // A pipeline stand-in that tags request i with tag 100 + i and lists its traces in order.
    let next = 0;
    const ingest = journal.ingest({
      accept: async () => ({ ok: true }),
      acceptRaw: async (raw, _limits, onAccepted) => {
        const traces = requestTraces[next]!;
        onAccepted?.(traces.map((t) => hex(t, 16)), 2 * traces.length, 100 + next++);
        return { kind: 'decoded', outcome: { ok: true }, spanCount: 2 * traces.length, rejectedSpans: 0, rejectMessage: '' };
      },
    });
    const requestTraces = [[1, 2], [2]];
    for (const traces of requestTraces) expect(await ingest.acceptRaw!({ format: 'protobuf', body: otlpProtobuf(traces) }, DEFAULT_DECODE_LIMITS)).toMatchObject({ outcome: { ok: true } });
    const [r1, r2] = requestRecords();
    const batchOf = (traces: number[], pairs: number[], exact = true) =>
      ({ chains: [], traces: traces.length, spans: 2, traceSummaries: traces.map((t) => ({ traceId: hex(t, 16), startMs: 0, endMs: 0, spans: 2, services: [] })), requests: { pairs: Int32Array.from(pairs), exact } }) as unknown as ChainBatch;
    const storeBatch = async (batch: ChainBatch) => {
      journal.onBatch(batch);
      await journal.consumer({ consume: async () => {} }).consume(batch);
    };
    // Traces 1 and 2 complete with the first request's spans only: the second request's span of
    // trace 2 came after that part completed (it is in the next part). Settling the second request
    // now, by trace id, would lose its span if the process died before the next part is stored.
    await storeBatch(batchOf([1, 2], [100, 0, 100, 1]));
    expect(journal.stats()).toMatchObject({ entries: 1, checkpointed: 1 });
    expect(records().at(-1)).toMatchObject({ type: 'settled', seqs: [r1!.seq] });

    // A crash now: a second process replays the second request, its trace 2 with it (left pending
    // there, so that only this journal writes to the log).
    const second = start();
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 2 });
    expect(second.pipeline.stats().stitch.pendingTraces).toBe(1);

    // Its part stored, the second request is settled too.
    await storeBatch(batchOf([2], [101, 0]));
    expect(journal.stats()).toMatchObject({ entries: 0, checkpointed: 2 });
    expect(records().at(-1)).toMatchObject({ type: 'settled', seqs: [r2!.seq] });

    // A batch that may not name every request (copies dropped at completion): the open requests
    // holding its traces are found by id.
    requestTraces.push([3]);
    expect(await ingest.acceptRaw!({ format: 'protobuf', body: otlpProtobuf([3]) }, DEFAULT_DECODE_LIMITS)).toMatchObject({ outcome: { ok: true } });
    await storeBatch(batchOf([3], [], false));
    expect(journal.stats()).toMatchObject({ entries: 0, checkpointed: 3 });
    await journal.stop();
    expect(listSegments(journalDir())).toEqual([]);
  });

  it('writes trace ids given as bytes as they are, and only those still open when it writes the request again', async () => {
    const journal = createJournal({ dir: journalDir(), registry: new Registry(), segmentBytes: 1 });
    const idBytes = (traces: number[]) => new TraceIdBytes(Buffer.concat(traces.map((t) => Buffer.from(hex(t, 16), 'hex'))));
    // A pipeline stand-in that tags request i with tag 100 + i and names its traces by their bytes.
    const requestTraces: number[][] = [];
    const ingest = journal.ingest({
      accept: async () => ({ ok: true }),
      acceptRaw: async (_raw, _limits, onAccepted) => {
        const next = requestTraces.length - 1;
        const traces = requestTraces[next]!;
        onAccepted?.(idBytes(traces), 2 * traces.length, 100 + next);
        return { kind: 'decoded', outcome: { ok: true }, spanCount: 2 * traces.length, rejectedSpans: 0, rejectMessage: '' };
      },
    });
    const accept = async (traces: number[]) => {
      requestTraces.push(traces);
      expect(await ingest.acceptRaw!({ format: 'protobuf', body: otlpProtobuf(traces) }, DEFAULT_DECODE_LIMITS)).toMatchObject({ outcome: { ok: true } });
    };
    const store = async (traces: number[], pairs: number[]) => {
      const batch = { chains: [], traces: traces.length, spans: 2, traceIds: traces.map((t) => hex(t, 16)), requests: { pairs: Int32Array.from(pairs), exact: true } } as unknown as ChainBatch;
      journal.onBatch(batch);
      await journal.consumer({ consume: async () => {} }).consume(batch);
    };
    await accept([1, 2, 3]);
    const [s1] = listSegments(journalDir());
    // The ids' bytes are in the log, not their texts, and are read back as their texts.
    const first = readFileSync(segmentPath(journalDir(), s1!));
    expect(first.includes(Buffer.from(hex(2, 16), 'hex'))).toBe(true);
    expect(first.includes(Buffer.from(hex(2, 16), 'latin1'))).toBe(false);
    const [r1] = requestRecords();
    expect(r1!.traces).toEqual([hex(1, 16), hex(2, 16), hex(3, 16)]);

    // Its trace 2 is stored; the request never settles otherwise, while the others do: it is
    // written again at the head of the log with traces 1 and 3 only.
    await store([2], [100, 1]);
    for (let t = 4; t < 20; t++) {
      await accept([t]);
      await store([t], [100 + requestTraces.length - 1, 0]);
    }
    expect(listSegments(journalDir())).not.toContain(s1);
    expect(requestRecords().filter((r) => r.seq === r1!.seq).map((r) => r.traces)).toEqual([[hex(1, 16), hex(3, 16)]]);
    await journal.stop();

    // A second process replays traces 1 and 3 of it.
    const second = start();
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 4 });
    await second.pipeline.flush();
    expect(second.consumer.chains().map((c) => c.traceId).sort()).toEqual([hex(1, 16), hex(3, 16)]);
    await second.pipeline.stop();
    await second.journal.stop();
  });

  it('commits and answers the requests waiting for a group commit before a batch is consumed', async () => {
    const journal = createJournal({ dir: journalDir(), registry: new Registry() });
    let tag = 0;
    const ingest = journal.ingest({
      accept: async () => ({ ok: true }),
      acceptRaw: async (_raw, _limits, onAccepted) => {
        onAccepted?.([hex(1, 16)], 2, tag++);
        return { kind: 'decoded', outcome: { ok: true }, spanCount: 2, rejectedSpans: 0, rejectMessage: '' };
      },
    });
    const events: string[] = [];
    // Two requests wait for the group commit when a batch arrives (as answers and batches reach
    // the main thread together); the write is synchronous work the answers must not wait behind.
    const answered = [1, 2].map((i) => ingest.acceptRaw!({ format: 'protobuf', body: otlpProtobuf([1]) }, DEFAULT_DECODE_LIMITS).then(() => events.push(`answered ${i}`)));
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    const batch = { chains: [], traces: 1, spans: 2, traceSummaries: [], requests: { pairs: Int32Array.from([0, 0, 1, 0]), exact: true } } as unknown as ChainBatch;
    journal.onBatch(batch);
    const consumer = journal.consumer({
      consume: async () => {
        events.push('consumed');
      },
    });
    await Promise.all([consumer.consume(batch), ...answered]);
    expect(events).toEqual(['answered 1', 'answered 2', 'consumed']);
    expect(requestRecords()).toHaveLength(2);
    await journal.stop();
  });

  it('replays only the traces not stored yet', async () => {
    const first = start();
    expect(await acceptProtobuf(first.ingest, [1, 2])).toEqual({ ok: true });
    // Trace 1 completes and is stored (the journal settles it) before the process dies.
    await store(first.journal, [1]);
    expect(records().at(-1)).toMatchObject({ type: 'settled', traces: [hex(1, 16)] });

    const second = start();
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 2 });
    await second.pipeline.flush();
    expect(second.consumer.chains().map((c) => c.traceId)).toEqual([hex(2, 16)]);
    await second.pipeline.stop();
  });

  it('tells the consumer when each replayed trace was first received: the latest of its requests', async () => {
    const first = start();
    expect(await acceptProtobuf(first.ingest, [1, 2])).toEqual({ ok: true });
    expect(await acceptProtobuf(first.ingest, [2, 3])).toEqual({ ok: true });
    const [a, b] = requestRecords();

    // "Crash", then a second process replays into a consumer that keeps the batches it gets.
    const batches: ChainBatch[] = [];
    const journal = createJournal({ dir: journalDir(), registry: new Registry() });
    const pipeline = createPipeline({
      stitching: { idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 100_000 },
      consumer: journal.consumer({ consume: async (batch) => void batches.push(batch) }),
      onBatch: journal.onBatch,
      registry: new Registry(),
      idleTimer: false,
    });
    await journal.replay(pipeline);
    const live = otlpProtobuf([4]);
    expect(await journal.ingest(pipeline).accept(decodeTracesRequest(live), { format: 'protobuf', body: live })).toEqual({ ok: true });
    await pipeline.flush();
    const received = new Map(batches.flatMap((batch) => [...(batch.replayedReceivedMs ?? new Map<string, number>())]));
    expect(received).toEqual(
      new Map([
        [hex(1, 16), a!.receivedMs],
        [hex(2, 16), Math.max(a!.receivedMs, b!.receivedMs)],
        [hex(3, 16), b!.receivedMs],
      ]),
    );
    // A trace that arrived live after the restart is not among them: the engine stamps it now.
    expect(batches.flatMap((batch) => batch.traceSummaries ?? []).map((t) => t.traceId)).toContain(hex(4, 16));
    await pipeline.stop();
    await journal.stop();
  });

  it('without the body, journals the decoded request, as before', async () => {
    const first = start();
    const data = decodeTracesRequest(otlpProtobuf([1, 2]));
    expect(await first.ingest.accept(data)).toEqual({ ok: true });
    expect(requestRecords().map((r) => r.format)).toEqual(['decoded']);
    const second = start();
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 4 });
    await second.pipeline.flush();
    expect(second.consumer.chains().map((c) => c.traceId).sort()).toEqual([hex(1, 16), hex(2, 16)]);
    await second.pipeline.stop();
  });

  it('skips a torn or corrupt tail with a log line, replays what precedes it, and appends to a new segment', async () => {
    const first = start();
    for (const t of [1, 2, 3]) expect(await acceptProtobuf(first.ingest, [t])).toEqual({ ok: true });
    const [segment] = listSegments(journalDir());
    const path = segmentPath(journalDir(), segment!);
    // A crash in the middle of writing the third request: its record is cut short.
    const size = statSync(path).size;
    truncateSync(path, size - 100);

    const cut = recordingLogger();
    const second = start({ logger: cut.logger });
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 2, spans: 4 });
    expect(cut.lines).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'torn journal tail skipped', obj: expect.objectContaining({ reason: 'record cut short' }) }));
    // New records go to a segment of their own, after the torn one.
    expect(await acceptProtobuf(second.ingest, [4])).toEqual({ ok: true });
    expect(listSegments(journalDir())).toEqual([segment, segment! + 1]);

    // A flipped byte in the second record's body: the CRC catches it, and reading stops there.
    const bytes = readFileSync(path);
    const second_ = requestRecords()[1]!;
    bytes[second_.offset + second_.length - 1]! ^= 0xff;
    writeFileSync(path, bytes);
    const flipped = recordingLogger();
    const third = start({ logger: flipped.logger });
    expect(await third.journal.replay(third.pipeline)).toEqual({ requests: 2, spans: 4 });
    expect(flipped.lines).toContainEqual(expect.objectContaining({ msg: 'torn journal tail skipped', obj: expect.objectContaining({ reason: 'checksum mismatch', offset: second_.offset }) }));
    await third.pipeline.flush();
    expect(third.consumer.chains().map((c) => c.traceId).sort()).toEqual([hex(1, 16), hex(4, 16)]);
    // All settled: the torn segment goes too.
    await third.pipeline.stop();
    await third.journal.stop();
    expect(listSegments(journalDir())).toEqual([]);
  });

  it('deletes a segment once every request in it and before it is settled', async () => {
    // Tiny segments: every write fills one, and the next write starts another.
    const first = start({ segmentBytes: 1 });
    for (const t of [1, 2, 3, 4]) expect(await acceptProtobuf(first.ingest, [t])).toEqual({ ok: true });
    const [s1, s2, s3, s4] = listSegments(journalDir()) as [number, number, number, number];
    expect(listSegments(journalDir())).toHaveLength(4);
    // Settling the second request deletes nothing: the first segment still holds an unsettled
    // one, and the second segment's records may be all that says which of its traces are stored.
    await store(first.journal, [2]);
    expect(listSegments(journalDir())).toEqual([s1, s2, s3, s4, s4 + 1]);
    // The first settled: the first two segments go; the third's request holds back the rest.
    await store(first.journal, [1]);
    expect(listSegments(journalDir())).toEqual([s3, s4, s4 + 1, s4 + 2]);
    await store(first.journal, [3, 4]);
    expect(listSegments(journalDir())).toEqual([]);
    expect(first.journal.stats()).toMatchObject({ entries: 0, checkpointed: 4 });
    await first.journal.stop();
  });

  it('writes the few requests left in old segments again at the head, so that those segments can go', async () => {
    const first = start({ segmentBytes: 1 });
    // Request 1 never settles (as when the store failed its batch); the others do.
    expect(await acceptProtobuf(first.ingest, [1])).toEqual({ ok: true });
    const [s1] = listSegments(journalDir());
    const sizeOf = (ids: number[]) => ids.reduce((n, id) => n + statSync(segmentPath(journalDir(), id)).size, 0);
    const request = sizeOf([s1!]);
    for (let t = 2; t < 20; t++) {
      expect(await acceptProtobuf(first.ingest, [t])).toEqual({ ok: true });
      await store(first.journal, [t]);
      // Without the copy, every segment would stay behind the first; with it, the log stays
      // within twice what is unsettled plus two (here one-byte) segments, and a few records.
      expect(sizeOf(listSegments(journalDir()))).toBeLessThanOrEqual(2 * request + 3 * 100);
    }
    expect(listSegments(journalDir())).not.toContain(s1);
    expect(requestRecords().map((r) => r.traces)).toEqual([[hex(1, 16)]]);

    const second = start();
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 2 });
    await second.pipeline.flush();
    expect(second.consumer.chains().map((c) => c.traceId)).toEqual([hex(1, 16)]);
    await second.pipeline.stop();
  });

  it('replays a journal an older version left in SQLite once, then empties its tables', async () => {
    const db = legacyDatabase();
    const pb = otlpProtobuf([1, 2]);
    db.prepare('INSERT INTO journal VALUES (7, 0, 4, ?, ?)').run(pb, 'protobuf');
    db.prepare('INSERT INTO journal_traces VALUES (7, ?)').run(hex(2, 16));
    // A request whose traces were all stored: nothing to move.
    db.prepare('INSERT INTO journal VALUES (8, 0, 2, ?, ?)').run(otlpProtobuf([9]), 'protobuf');
    // One whose body cannot be decoded: moved, then skipped at replay with a log line.
    db.prepare('INSERT INTO journal VALUES (9, 0, 1, ?, ?)').run(Buffer.from([0x0a, 0xff]), 'protobuf');
    db.prepare('INSERT INTO journal_traces VALUES (9, ?)').run(hex(5, 16));

    const log = recordingLogger();
    const first = await startAdopting(db, { logger: log.logger });
    expect(db.prepare('SELECT (SELECT count(*) FROM journal) + (SELECT count(*) FROM journal_traces) AS n').get()).toEqual({ n: 0 });
    expect(requestRecords().map((r) => r.traces)).toEqual([[hex(2, 16)], [hex(5, 16)]]);
    expect(await first.journal.replay(first.pipeline)).toEqual({ requests: 1, spans: 2 });
    expect(log.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['journal moved out of SQLite', 'unreadable journal entry skipped']));
    // Only trace 2 was unsettled.
    await first.pipeline.flush();
    expect(first.consumer.chains().map((c) => c.traceId)).toEqual([hex(2, 16)]);

    // Stored and settled: a later start, with the tables still there, replays nothing.
    const second = await startAdopting(db);
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 0, spans: 0 });
  });

  it('reads an older SQLite journal written before the format column existed', async () => {
    const db = legacyDatabase(false);
    const data = decodeTracesRequest(otlpProtobuf([3]));
    db.prepare('INSERT INTO journal VALUES (1, 0, 2, ?)').run(JSON.stringify(data));
    db.prepare('INSERT INTO journal_traces VALUES (1, ?)').run(hex(3, 16));
    // A crash after the move and before the replay: the log has it.
    await startAdopting(db);
    const second = await startAdopting(db);
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 1, spans: 2 });
    await second.pipeline.flush();
    expect(second.consumer.chains().map((c) => c.traceId)).toEqual([hex(3, 16)]);
    await second.pipeline.stop();
  });

  it('without a directory, keeps its log in a temporary one that stop removes', async () => {
    // The temporary directory is made in this test's own (other processes share the real one).
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = dir;
    let journal: Journal;
    try {
      journal = createJournal({ registry: new Registry() });
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    expect(await journal.ingest({ accept: async () => ({ ok: true }) }).accept(decodeTracesRequest(otlpProtobuf([1])))).toEqual({ ok: true });
    const [temporary, ...others] = readdirSync(dir);
    expect(others).toEqual([]);
    expect(listSegments(join(dir, temporary!))).toHaveLength(1);
    await journal.stop();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('encodes records into a reused scratch buffer byte for byte as into buffers of their own', () => {
    const scratch = new RecordScratch(256);
    const meta = (seq: number) => ({ seq, receivedMs: 1_767_000_000_000 + seq, spans: 3, format: 'protobuf' as const, traces: [hex(seq, 16), hex(seq + 1, 16)] });
    const body = randomBytes(100);
    // More records than the scratch holds before a reset: it starts a larger buffer, and the
    // headers handed out before stay as they were.
    const taken = Array.from({ length: 6 }, (_, i) => encodeRequest(meta(i + 1), body, scratch)[0]);
    taken.push(encodeSettled([1, 2], [hex(1, 16), hex(2, 16)], scratch));
    const own = [...Array.from({ length: 6 }, (_, i) => encodeRequest(meta(i + 1), body)[0]), encodeSettled([1, 2], [hex(1, 16), hex(2, 16)])];
    expect(taken.map((b) => b.toString('hex'))).toEqual(own.map((b) => b.toString('hex')));
    // After a reset the memory is taken again from the start.
    scratch.reset();
    const again = encodeRequest(meta(9), body, scratch)[0];
    expect(again.toString('hex')).toBe(encodeRequest(meta(9), body)[0].toString('hex'));
    expect(again.byteOffset).toBe(0);
  });

  it('checksums records with zlib\'s CRC-32, or the same values computed in JavaScript where Node lacks it', () => {
    for (const n of [0, 1, 7, 1000, 65_537]) {
      const data = randomBytes(n);
      expect(tableCrc32(data)).toBe(crc32(data));
      expect(tableCrc32(data.subarray(n >> 1), tableCrc32(data.subarray(0, n >> 1)))).toBe(crc32(data));
    }
  });
});
