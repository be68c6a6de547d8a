import { mkdirSync, mkdtempSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { Counter, Gauge, type Registry } from 'prom-client';
import { decodeTracesRequest, decodeTracesRequestJson, type DecodeLimits, type TracesRequestData } from '@conduct/proto';
import {
  silentLogger,
  traceIdCount,
  TraceIdBytes,
  type AcceptedTraceIds,
  type AcceptOutcome,
  type ChainBatch,
  type ChainConsumer,
  type Logger,
  type RawAcceptResult,
  type RawRequest,
  type TraceIngest,
} from '@conduct/processor';
import { failpoint } from '../failpoint.js';
import type { LegacyJournal } from '../store/index.js';
import { encodeRequest, encodeSettled, listSegments, readRequest, readSegment, RecordScratch, segmentPath, SegmentWriter, TRACE_ID_BYTES } from './log.js';
import { JOURNAL_BODY_FORMATS, type JournalBodyFormat } from './schema.js';

/** Default of {@link JournalOptions.retryAfterMs}: the delay suggested when memory is over the limit. */
export const DEFAULT_MEMORY_RETRY_AFTER_MS = 2_000;
/** Heap use is read at most this often; in between the last reading stands. */
export const MEMORY_CHECK_INTERVAL_MS = 100;
/** During replay, a refused request is offered again after this long (the pipeline drains meanwhile). */
export const REPLAY_RETRY_MS = 50;
/** Default of {@link JournalOptions.segmentBytes}. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** After a failed attempt to write old requests again at the head of the log, the next waits this long. */
export const RELOCATE_RETRY_MS = 1_000;

export interface JournalOptions {
  /**
   * Directory of the journal's segment files, created when missing. Absent: a temporary
   * directory that `stop` removes (a journal as durable as an in-memory store).
   */
  dir?: string;
  /** A segment is closed, and the next one started, once it holds this many bytes. Default DEFAULT_SEGMENT_BYTES. */
  segmentBytes?: number;
  /** Where `conduct_journal_*` metrics are registered. */
  registry: Registry;
  logger?: Logger;
  /** Heap in use above which `accept` answers overloaded; 0 or absent turns the check off. */
  maxMemoryBytes?: number;
  /** Retry delay suggested when memory is over the limit. Default DEFAULT_MEMORY_RETRY_AFTER_MS. */
  retryAfterMs?: number;
  /** Heap in use, in bytes (tests pass a fake). Default: V8's used heap size. */
  heapUsed?: () => number;
  /**
   * Limits that journaled request bodies are decoded with again on replay: those the receivers
   * use (default: the decoders' defaults). The `keep` set is the replay target's own.
   */
  decodeLimits?: Partial<DecodeLimits>;
}

export interface JournalReplayResult {
  requests: number;
  spans: number;
}

export interface JournalStats {
  /** Requests journaled and not yet settled (some trace not stored). */
  entries: number;
  appended: number;
  commits: number;
  checkpointed: number;
  replayed: number;
  refusedMemory: number;
}

/**
 * Write-ahead journal for ingest: a request is acknowledged only once it is written to the
 * journal's log (log.ts), and is kept there until every trace it touched has been stored.
 * Requests that arrive together share one write (group commit). After a crash, `replay` feeds
 * the unsettled part back through the pipeline so pending traces are rebuilt and stitched.
 *
 * Wiring: `createPipeline({consumer: journal.consumer(engine), onBatch: journal.onBatch})`, then
 * `await journal.replay(pipeline)`, then give the receivers `journal.ingest(pipeline)`.
 */
export interface Journal {
  /** A TraceIngest that journals each request the next ingest accepts before answering ok. */
  ingest(next: TraceIngest): TraceIngest;
  /** A consumer that settles journal entries once `next` has stored a batch. */
  consumer(next: ChainConsumer): ChainConsumer;
  /**
   * The pipeline's `onBatch` hook: notes which journaled requests a queued batch settles, and marks
   * the replayed traces it completes (ChainBatch.replayed) for the consumer.
   */
  onBatch(batch: ChainBatch): void;
  /**
   * Moves the requests of a journal an older version kept in the store (`legacyJournalOf` the
   * backend) into the log and empties it there; `replay` then feeds them like the others. Call it
   * before `replay`. Resolves with the requests moved.
   */
  adoptLegacy(legacy: LegacyJournal): Promise<number>;
  /** Feeds every unsettled journaled request (only its unstored traces) to `into`, oldest first. */
  replay(into: TraceIngest): Promise<JournalReplayResult>;
  stats(): JournalStats;
  /** Commits the group in flight and closes the log (deleting it when nothing is left unsettled). Safe twice. */
  stop(): Promise<void>;
}

/** One journaled request as the journal tracks it in memory. */
interface Entry {
  seq: number;
  /**
   * The request's trace ids, each once (for a request in the log: those open when it was written):
   * texts, or as the pipeline thread decoded them, bytes (written to the log as they are).
   */
  traces: AcceptedTraceIds;
  /** How many trace ids `traces` holds. */
  count: number;
  /** The texts of `traces` when they are bytes, made when first needed (textsOf). */
  texts?: readonly string[];
  /** How many of `traces` are not stored yet. */
  open: number;
  /** 1 at the position of each trace stored (made at the first). */
  stored?: Uint8Array;
  /** Position of each trace id in `traces`, made when a trace is first looked up by id. */
  positions?: Map<string, number>;
  /**
   * The pipeline's tag of the request (TraceIngest.acceptRaw): the batches that complete its
   * traces name it (ChainBatch.requests). Untagged requests are found through their trace ids.
   */
  tag?: number;
  /** Written to the log (false while it waits for its group commit). */
  committed: boolean;
  /** Pending write: the body (see JournalBodyFormat), dropped once committed. */
  body?: string | Uint8Array;
  format: JournalBodyFormat;
  spans: number;
  receivedMs: number;
  /** Resolvers of the requests waiting for this entry's group commit. */
  waiters: Array<(err?: unknown) => void>;
  /** Where its request record is, while it is unsettled. */
  segment?: Segment;
  offset?: number;
  length?: number;
}

/** A segment file and the unsettled requests whose records it holds. */
interface Segment {
  id: number;
  path: string;
  bytes: number;
  live: number;
  liveBytes: number;
}

/** The journaled requests a queued batch settles, each with the positions of the batch's traces it holds. */
const settledBatches = new WeakMap<ChainBatch, Map<Entry, number[]>>();

/** A batch's trace ids: read back alone on the pipeline thread (ChainBatch.traceIds), else from its summaries. */
function traceIdsOf(batch: ChainBatch): readonly string[] {
  return batch.traceIds ?? (batch.traceSummaries ?? []).map((t) => t.traceId);
}

/** An entry's fields for the trace ids a request was accepted with. */
function tracesFields(traces: AcceptedTraceIds): Pick<Entry, 'traces' | 'count' | 'open'> {
  const count = traceIdCount(traces);
  return { traces, count, open: count };
}

/** The texts of the entry's trace ids (made from their bytes the first time). */
function textsOf(e: Entry): readonly string[] {
  return e.traces instanceof TraceIdBytes ? (e.texts ??= e.traces.texts()) : e.traces;
}

/** The entry's traces not stored yet, as texts. */
function openTraces(e: Entry): readonly string[] {
  const texts = textsOf(e);
  if (e.open === e.count) return texts;
  return texts.filter((_, i) => e.stored![i] === 0);
}

/** The entry's traces not stored yet, as the log writes them: bytes when it has them, else texts. */
function openTraceIds(e: Entry): readonly string[] | Uint8Array {
  if (!(e.traces instanceof TraceIdBytes)) return openTraces(e);
  const bytes = e.traces.bytes;
  if (e.open === e.count) return bytes;
  const open = new Uint8Array(e.open * TRACE_ID_BYTES);
  let at = 0;
  for (let i = 0; i < e.count; i++) {
    if (e.stored![i] === 1) continue;
    open.set(bytes.subarray(i * TRACE_ID_BYTES, (i + 1) * TRACE_ID_BYTES), at);
    at += TRACE_ID_BYTES;
  }
  return open;
}

/** The position of trace `id` in the entry's traces, or -1. */
function positionOf(e: Entry, id: string): number {
  if (e.positions === undefined) {
    const texts = textsOf(e);
    e.positions = new Map();
    for (let i = 0; i < texts.length; i++) e.positions.set(texts[i]!, i);
  }
  return e.positions.get(id) ?? -1;
}

/** Marks the trace at `at` stored; false when it was already (or is not one of the entry's). */
function markStored(e: Entry, at: number): boolean {
  if (at < 0 || at >= e.count) return false;
  const stored = (e.stored ??= new Uint8Array(e.count));
  if (stored[at] === 1) return false;
  stored[at] = 1;
  e.open--;
  return true;
}

/** The entry's request record, with the traces still open (its header in `scratch`, until the next append). */
function recordOf(e: Entry, body: Uint8Array, scratch: RecordScratch): [Buffer, Uint8Array] {
  return encodeRequest({ seq: e.seq, receivedMs: e.receivedMs, spans: e.spans, format: e.format, traces: openTraceIds(e) }, body, scratch);
}

export function createJournal(options: JournalOptions): Journal {
  const { registry } = options;
  const logger = options.logger ?? silentLogger;
  const maxMemory = options.maxMemoryBytes ?? 0;
  const retryAfterMs = options.retryAfterMs ?? DEFAULT_MEMORY_RETRY_AFTER_MS;
  const heapUsed = options.heapUsed ?? (() => getHeapStatistics().used_heap_size);
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const temporary = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'conduct-journal-'));
  mkdirSync(dir, { recursive: true });

  const stats: JournalStats = { entries: 0, appended: 0, commits: 0, checkpointed: 0, replayed: 0, refusedMemory: 0 };
  /**
   * Unsettled untagged entries by trace id: the requests a trace's completion settles. Most traces
   * are in one request: that entry is the value itself, an array only for a trace in several (a Set
   * per trace was 1.3% of the main thread's CPU in the bench, and garbage per trace). An entry is
   * registered once, so the arrays hold no repeats. Tagged requests (the pipeline thread's, the hot
   * path) are not here: the batches name them (`byTag`), which costs no lookup by trace id (this
   * map was 3.4% of the main thread's CPU in the bench; bench/README.md, issue 19 journal part).
   */
  const openByTrace = new Map<string, Entry | Entry[]>();
  /** Unsettled tagged entries by tag. */
  const byTag = new Map<number, Entry>();
  const entries = new Map<number, Entry>();
  /** Unsettled requests found in the log at open, until `replay` takes them. */
  const recovered = new Map<number, Entry>();
  /**
   * Traces `replay` fed again, until a batch completes them, with the latest time a request of
   * theirs was first received: the engine is told (ChainBatch.replayed) that they may be stored
   * already, so that it stores and learns each call once, and stamps that time on their chains
   * (ChainBatch.replayedReceivedMs) instead of the time of the replay.
   */
  const replaying = new Map<string, number>();
  /** The log's segments, oldest first; the last one is appended to while `active` is set. */
  const segments: Segment[] = [];
  let active: { segment: Segment; writer: SegmentWriter } | undefined;
  /** Where records are encoded until they are appended (each append takes it back). */
  const scratch = new RecordScratch();
  /** Bytes of all segments, and of the records of unsettled requests in them. */
  let logBytes = 0;
  let liveBytes = 0;
  let relocateAfter = 0;
  let nextSeq = 1;
  let group: Entry[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  let memory = { at: -Infinity, over: false };

  const appended = new Counter({ name: 'conduct_journal_appended_total', help: 'Requests journaled before acknowledgement.', registers: [registry] });
  const commits = new Counter({ name: 'conduct_journal_commits_total', help: 'Group commits of the journal (one write each).', registers: [registry] });
  const checkpointed = new Counter({ name: 'conduct_journal_checkpointed_total', help: 'Journaled requests settled (every trace stored).', registers: [registry] });
  const replayed = new Counter({ name: 'conduct_journal_replayed_total', help: 'Journaled requests replayed after a restart.', registers: [registry] });
  const refused = new Counter({ name: 'conduct_ingest_memory_refused_total', help: 'Requests refused because heap use was over limits.maxMemoryBytes.', registers: [registry] });
  new Gauge({
    name: 'conduct_journal_entries',
    help: 'Journaled requests waiting for their traces to be stored.',
    registers: [registry],
    collect() {
      this.set(entries.size);
    },
  });

  const register = (entry: Entry) => {
    entries.set(entry.seq, entry);
    if (entry.tag !== undefined) {
      byTag.set(entry.tag, entry);
      return;
    }
    for (const t of openTraces(entry)) {
      const open = openByTrace.get(t);
      if (open === undefined) openByTrace.set(t, entry);
      else if (Array.isArray(open)) open.push(entry);
      else openByTrace.set(t, [open, entry]);
    }
  };

  const unregister = (entry: Entry) => {
    entries.delete(entry.seq);
    if (entry.tag !== undefined) {
      if (byTag.get(entry.tag) === entry) byTag.delete(entry.tag);
      return;
    }
    for (const t of openTraces(entry)) {
      const open = openByTrace.get(t);
      if (open === entry) openByTrace.delete(t);
      else if (Array.isArray(open)) {
        const at = open.indexOf(entry);
        if (at >= 0) open.splice(at, 1);
        if (open.length === 0) openByTrace.delete(t);
      }
    }
  };

  /** Notes that the entry's request record is at `offset` of `segment`. */
  const place = (e: Entry, segment: Segment, offset: number, length: number) => {
    release(e);
    e.segment = segment;
    e.offset = offset;
    e.length = length;
    segment.live++;
    segment.liveBytes += length;
    liveBytes += length;
  };

  /** The entry's record is needed no more (settled, or written again elsewhere). */
  const release = (e: Entry) => {
    if (e.segment === undefined) return;
    e.segment.live--;
    e.segment.liveBytes -= e.length!;
    liveBytes -= e.length!;
    e.segment = undefined;
  };

  const closeActive = () => {
    if (!active) return;
    const { segment, writer } = active;
    active = undefined;
    try {
      writer.close();
    } catch (err) {
      logger.warn({ segment: segment.path, err: String(err) }, 'journal segment close failed');
    }
  };

  /**
   * Deletes the oldest segments while none of their requests is unsettled. Only from the oldest
   * on: a segment's settled records may be all that marks traces of an older segment's request
   * as stored. When the log is more than twice its unsettled records (plus two segments), the
   * oldest segment's unsettled requests are first written again at the head: a few requests that
   * never settle (a batch the store failed) then hold back nothing, and the disk used stays
   * within that bound, each byte copied paid for by at least as many freed.
   */
  const collect = () => {
    for (;;) {
      const oldest = segments[0];
      if (oldest === undefined || oldest === active?.segment) return;
      if (oldest.live > 0 && (logBytes <= 2 * (liveBytes + segmentBytes) || Date.now() < relocateAfter || !relocate(oldest))) return;
      segments.shift();
      logBytes -= oldest.bytes;
      try {
        unlinkSync(oldest.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn({ segment: oldest.path, err: String(err) }, 'journal segment not deleted');
      }
    }
  };

  /**
   * Appends records to the active segment (a new one when there is none) and returns where they
   * start; closes the segment once it is full (the caller then places its records and collects).
   * @throws after closing the segment (a failed write may have left it a torn tail).
   */
  const append = (buffers: Uint8Array[]): { segment: Segment; offset: number } => {
    if (!active) {
      const id = (segments.at(-1)?.id ?? 0) + 1;
      const writer = new SegmentWriter(segmentPath(dir, id));
      active = { segment: { id, path: writer.path, bytes: writer.size, live: 0, liveBytes: 0 }, writer };
      segments.push(active.segment);
      logBytes += writer.size;
    }
    const { segment, writer } = active;
    const offset = writer.size;
    try {
      writer.append(buffers);
    } catch (err) {
      closeActive();
      throw err;
    } finally {
      scratch.reset();
      logBytes += writer.size - segment.bytes;
      segment.bytes = writer.size;
    }
    if (writer.size >= segmentBytes) closeActive();
    return { segment, offset };
  };

  /** Writes the unsettled requests of `segment` again at the head of the log; false if that failed. */
  const relocate = (segment: Segment): boolean => {
    // Every unsettled request is in one of the two maps (replay moves them over without a pause).
    const moving = [...recovered.values(), ...entries.values()].filter((e) => e.segment === segment);
    try {
      for (const e of moving) {
        const { body } = readRequest(segment.path, e.offset!, e.length!);
        const record = recordOf(e, body, scratch);
        const { segment: to, offset } = append(record);
        place(e, to, offset, record[0].length + record[1].length);
      }
      return true;
    } catch (err) {
      logger.error({ segment: segment.path, err: String(err) }, 'journal segment not compacted');
      relocateAfter = Date.now() + RELOCATE_RETRY_MS;
      return false;
    }
  };

  const commit = () => {
    scheduled = undefined;
    const batch = group;
    group = [];
    if (batch.length === 0) return;
    let failure: unknown;
    try {
      const buffers: Uint8Array[] = [];
      const placed: Array<[Entry, number, number]> = [];
      let at = 0;
      for (const e of batch) {
        // Settled before its commit (its traces were stored already): nothing left to keep.
        if (e.open === 0 || !entries.has(e.seq)) continue;
        const record = recordOf(e, typeof e.body === 'string' ? Buffer.from(e.body, 'utf8') : e.body!, scratch);
        const length = record[0].length + record[1].length;
        buffers.push(...record);
        placed.push([e, at, length]);
        at += length;
      }
      if (buffers.length > 0) {
        const { segment, offset } = append(buffers);
        for (const [e, at, length] of placed) place(e, segment, offset + at, length);
        collect();
        failpoint('journal.appended');
      }
      stats.commits++;
      commits.inc();
    } catch (err) {
      failure = err;
      logger.error({ err: String(err), requests: batch.length }, 'journal commit failed; requests refused');
    }
    for (const e of batch) {
      e.committed = failure === undefined;
      e.body = undefined;
      if (failure !== undefined) unregister(e);
      if (e.open === 0 && e.committed) unregister(e);
      for (const w of e.waiters.splice(0)) w(failure);
    }
  };

  const overMemory = (): boolean => {
    if (maxMemory <= 0) return false;
    const now = Date.now();
    if (now - memory.at >= MEMORY_CHECK_INTERVAL_MS) memory = { at: now, over: heapUsed() > maxMemory };
    return memory.over;
  };

  /**
   * Marks stored traces in the log. Those records only spare a replay traces already stored; what
   * frees disk space is the in-memory state, so a failed write is logged and forgotten.
   */
  const writeSettled = (record: Buffer) => {
    try {
      append([record]);
    } catch (err) {
      logger.warn({ err: String(err) }, 'journal settle record not written');
    }
  };

  /**
   * Settles the traces of a stored batch (`traceIds`) in the requests that hold them (`owners`,
   * with the positions of the traces each holds): each request marks only its own.
   */
  const settleTrace = (traceIds: readonly string[], owners: ReadonlyMap<Entry, readonly number[]>) => {
    const seqs: number[] = [];
    for (const [e, own] of owners) {
      let removed = false;
      for (const at of own) if (markStored(e, at)) removed = true;
      if (!removed) continue;
      // A request not committed yet is written with the traces it still has.
      if (e.committed) seqs.push(e.seq);
      if (e.open > 0) continue;
      if (e.committed) {
        unregister(e);
        release(e);
      }
      stats.checkpointed++;
      checkpointed.inc();
    }
    if (seqs.length > 0) {
      writeSettled(encodeSettled(seqs, traceIds, scratch));
      failpoint('journal.settled');
    }
    collect();
  };

  // Open: read the log for the requests left unsettled, then move in an older version's journal.
  for (const id of listSegments(dir)) {
    const path = segmentPath(dir, id);
    const segment: Segment = { id, path, bytes: statSync(path).size, live: 0, liveBytes: 0 };
    segments.push(segment);
    logBytes += segment.bytes;
    const torn = readSegment(segment.path, (r) => {
      if (r.type === 'request') {
        nextSeq = Math.max(nextSeq, r.seq + 1);
        const earlier = recovered.get(r.seq);
        if (earlier) release(earlier);
        const entry: Entry = { seq: r.seq, ...tracesFields(r.traces), committed: true, spans: r.spans, receivedMs: r.receivedMs, format: r.format, waiters: [] };
        recovered.set(r.seq, entry);
        place(entry, segment, r.offset, r.length);
        return;
      }
      for (const seq of r.seqs) {
        const e = recovered.get(seq);
        if (e === undefined) continue;
        for (const t of r.traces) markStored(e, positionOf(e, t));
        if (e.open > 0) continue;
        recovered.delete(seq);
        release(e);
      }
    });
    if (torn) logger.warn({ segment: segment.path, ...torn }, 'torn journal tail skipped');
  }
  collect();

  const memoryRefusal = (): AcceptOutcome & { ok: false } => {
    stats.refusedMemory++;
    refused.inc();
    return { ok: false, reason: 'memory', retryAfterMs };
  };

  /** Queues the entry for the next group commit and waits for it; undefined once durable. */
  const enqueue = async (entry: Entry): Promise<unknown> => {
    group.push(entry);
    stats.appended++;
    appended.inc();
    scheduled ??= setImmediate(commit);
    return new Promise<unknown>((resolve) => entry.waiters.push(resolve));
  };
  /**
   * Marks the replayed traces a batch completes (ChainBatch.replayed), each in the first batch
   * that holds it: a later part of the trace is new. Done as the batch is queued, in order, so the
   * marks travel with it (to another thread, too) before it is consumed.
   */
  const markReplayed = (batch: ChainBatch) => {
    const again = traceIdsOf(batch).filter((id) => replaying.has(id));
    if (again.length === 0) return;
    batch.replayed = again;
    batch.replayedReceivedMs = new Map(again.map((id) => [id.toLowerCase(), replaying.get(id)!]));
    for (const id of again) replaying.delete(id);
  };
  /**
   * Commits the requests waiting for the next group commit now, and lets their answers go out,
   * before a batch is consumed: a write is one long stretch of synchronous store and detection
   * work (tens of ms), and the group commit queued behind it would hold those requests' answers
   * (and so the senders' next requests) until it ends.
   */
  const answerFirst = async (): Promise<void> => {
    if (scheduled === undefined) return;
    clearImmediate(scheduled);
    commit();
    // A turn of the event loop: the answers run through several promise steps to the socket.
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  return {
    ingest(next) {
      const acceptRaw = next.acceptRaw?.bind(next);
      return {
        ...(next.keep ? { keep: next.keep } : {}),
        ...(acceptRaw
          ? {
              async acceptRaw(
                raw: RawRequest,
                limits: DecodeLimits,
                onAccepted?: (traceIds: AcceptedTraceIds, spans: number, tag?: number) => void,
              ): Promise<RawAcceptResult> {
                if (overMemory()) return { kind: 'refused', outcome: memoryRefusal() };
                let entry: Entry | undefined;
                // Registered as the spans go in, before any batch can complete their traces.
                const result = await acceptRaw(raw, limits, (traceIds, spans, tag) => {
                  const e: Entry = { seq: nextSeq++, ...tracesFields(traceIds), committed: false, spans, receivedMs: Date.now(), format: raw.format, body: raw.body, waiters: [] };
                  if (tag !== undefined) e.tag = tag;
                  register((entry = e));
                  onAccepted?.(traceIds, spans, tag);
                });
                if (entry === undefined) return result;
                const failure = await enqueue(entry);
                if (failure !== undefined && result.kind === 'decoded') return { ...result, outcome: { ok: false, reason: 'journal-error', retryAfterMs } };
                return result;
              },
            }
          : {}),
        async accept(data: TracesRequestData, raw?: RawRequest): Promise<AcceptOutcome> {
          if (overMemory()) return memoryRefusal();
          if (data.spanCount === 0) return next.accept(data, raw);
          const traces = new Set<string>();
          for (const rs of data.resourceSpans) for (const s of rs.spans) traces.add(s.traceId);
          const entry: Entry = { seq: nextSeq++, ...tracesFields([...traces]), committed: false, spans: data.spanCount, receivedMs: Date.now(), format: 'decoded', waiters: [] };
          if (raw !== undefined) {
            // The bytes as received: decoded again on replay. Held (not copied) until the group
            // commit, which comes before this accept answers.
            entry.body = raw.body;
            entry.format = raw.format;
          } else {
            // Serialised before the pipeline may touch the request.
            entry.body = JSON.stringify(data);
          }
          // Registered before the pipeline sees the spans: a trace completed by this very
          // request is then settled against this entry.
          register(entry);
          const outcome = await next.accept(data, raw);
          if (!outcome.ok) {
            unregister(entry);
            return outcome;
          }
          const failure = await enqueue(entry);
          // The spans are in the pipeline but not durable: answer retryable so the sender resends.
          if (failure !== undefined) return { ok: false, reason: 'journal-error', retryAfterMs };
          return { ok: true };
        },
      };
    },

    consumer(next) {
      /** Settles the requests of a stored batch: called only once `next` has stored it. */
      const settle = (batch: ChainBatch) => {
        const owners = settledBatches.get(batch);
        settledBatches.delete(batch);
        if (!owners || owners.size === 0) return;
        const traceIds = traceIdsOf(batch);
        settleTrace(traceIds, owners);
      };
      const consumeMany = next.consumeMany?.bind(next);
      return {
        async consume(batch) {
          await answerFirst();
          await next.consume(batch);
          settle(batch);
        },
        // Batches stored together: each one's requests are settled once that write has returned.
        ...(consumeMany
          ? {
              async consumeMany(batches: readonly ChainBatch[]) {
                await answerFirst();
                const failures = await consumeMany(batches);
                batches.forEach((batch, i) => {
                  if (failures[i] === undefined) settle(batch);
                });
                return failures;
              },
            }
          : {}),
      };
    },

    onBatch(batch) {
      const owners = new Map<Entry, number[]>();
      const own = (e: Entry, at: number) => {
        const positions = owners.get(e);
        if (positions) positions.push(at);
        else owners.set(e, [at]);
      };
      if (byTag.size > 0) {
        const requests = batch.requests;
        if (requests !== undefined) {
          const pairs = requests.pairs;
          for (let k = 0; k + 1 < pairs.length; k += 2) {
            const e = byTag.get(pairs[k]!);
            if (e !== undefined) own(e, pairs[k + 1]!);
          }
        }
        // Not named exactly (see BatchRequests.exact): each tagged request's open traces by id.
        if (requests === undefined || !requests.exact) {
          const ids = new Set(traceIdsOf(batch));
          for (const e of byTag.values()) {
            const texts = textsOf(e);
            for (let i = 0; i < texts.length; i++) if (e.stored?.[i] !== 1 && ids.has(texts[i]!)) own(e, i);
          }
        }
      }
      if (openByTrace.size > 0) {
        for (const traceId of traceIdsOf(batch)) {
          const open = openByTrace.get(traceId);
          if (open === undefined) continue;
          // Requests that arrive later for this trace belong to the next completion.
          openByTrace.delete(traceId);
          if (Array.isArray(open)) for (const e of open) own(e, positionOf(e, traceId));
          else own(open, positionOf(open, traceId));
        }
      }
      if (owners.size) settledBatches.set(batch, owners);
      if (replaying.size > 0) markReplayed(batch);
    },

    async adoptLegacy(legacy) {
      let moved = 0;
      await legacy.read((row, seq) => {
        if (!(JOURNAL_BODY_FORMATS as readonly string[]).includes(row.format)) {
          logger.error({ seq, format: row.format }, 'unreadable journal entry skipped');
          return;
        }
        const format = row.format as JournalBodyFormat;
        const entry: Entry = { seq: nextSeq++, ...tracesFields([...row.traces]), committed: true, spans: row.spans, receivedMs: row.receivedMs, format, waiters: [] };
        const record = recordOf(entry, row.body, scratch);
        const { segment, offset } = append(record);
        place(entry, segment, offset, record[0].length + record[1].length);
        recovered.set(entry.seq, entry);
        moved++;
      });
      await legacy.clear();
      if (moved > 0) logger.info({ requests: moved }, 'journal moved out of SQLite');
      collect();
      return moved;
    },

    async replay(into) {
      const result: JournalReplayResult = { requests: 0, spans: 0 };
      const limits: Partial<DecodeLimits> = { ...options.decodeLimits, ...(into.keep ? { keep: into.keep } : {}) };
      const pending = [...recovered.values()].sort((a, b) => a.seq - b.seq);
      // One body in memory at a time.
      for (const e of pending) {
        recovered.delete(e.seq);
        let data: TracesRequestData;
        try {
          const record = readRequest(e.segment!.path, e.offset!, e.length!);
          data = readBody(record.body, record.format, limits);
        } catch (err) {
          logger.error({ seq: e.seq, err: String(err) }, 'unreadable journal entry skipped');
          writeSettled(encodeSettled([e.seq], openTraces(e), scratch));
          release(e);
          continue;
        }
        const open = openTraces(e);
        const filtered = onlyTraces(data, new Set(open));
        e.spans = filtered.spanCount;
        for (const t of open) replaying.set(t, Math.max(replaying.get(t) ?? 0, e.receivedMs));
        register(e);
        for (;;) {
          const outcome = await into.accept(filtered);
          if (outcome.ok) break;
          await new Promise((r) => setTimeout(r, Math.min(REPLAY_RETRY_MS, outcome.retryAfterMs)));
        }
        result.requests++;
        result.spans += filtered.spanCount;
        stats.replayed++;
        replayed.inc();
      }
      collect();
      if (result.requests) logger.info({ ...result }, 'journal replayed');
      return result;
    },

    stats: () => ({ ...stats, entries: entries.size }),

    async stop() {
      if (scheduled) clearImmediate(scheduled);
      commit();
      closeActive();
      collect();
      // Closes the segment that copying requests forward may have started.
      closeActive();
      if (temporary) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A journaled body back as a decoded request. @throws for a body that cannot be read. */
function readBody(body: Buffer, format: JournalBodyFormat, limits: Partial<DecodeLimits>): TracesRequestData {
  switch (format) {
    case 'protobuf':
      return decodeTracesRequest(body, limits);
    case 'json':
      return decodeTracesRequestJson(body, limits);
    case 'decoded':
      return JSON.parse(body.toString('utf8')) as TracesRequestData;
  }
}

/** The request with only the spans of the given traces. */
function onlyTraces(data: TracesRequestData, traces: ReadonlySet<string>): TracesRequestData {
  let spanCount = 0;
  const resourceSpans = (Array.isArray(data.resourceSpans) ? data.resourceSpans : [])
    .map((rs) => {
      const spans = (Array.isArray(rs.spans) ? rs.spans : []).filter((s) => traces.has(s.traceId));
      spanCount += spans.length;
      return { resource: rs.resource ?? {}, spans };
    })
    .filter((rs) => rs.spans.length > 0);
  return { resourceSpans, spanCount, rejectedSpans: 0, rejectMessage: '' };
}
