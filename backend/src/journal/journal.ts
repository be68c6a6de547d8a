import { getHeapStatistics } from 'node:v8';
import type { Database } from 'better-sqlite3';
import { Counter, Gauge, type Registry } from 'prom-client';
import { decodeTracesRequest, decodeTracesRequestJson, type DecodeLimits, type TracesRequestData } from '@conduct/proto';
import {
  silentLogger,
  type AcceptOutcome,
  type ChainBatch,
  type ChainConsumer,
  type Logger,
  type RawAcceptResult,
  type RawRequest,
  type TraceIngest,
} from '@conduct/processor';
import { applyJournalSchema, type JournalBodyFormat } from './schema.js';

/** Default of {@link JournalOptions.retryAfterMs}: the delay suggested when memory is over the limit. */
export const DEFAULT_MEMORY_RETRY_AFTER_MS = 2_000;
/** Heap use is read at most this often; in between the last reading stands. */
export const MEMORY_CHECK_INTERVAL_MS = 100;
/** Trace rows written by one INSERT statement of the group commit. */
const TRACE_ROWS_PER_INSERT = 16;
/** During replay, a refused request is offered again after this long (the pipeline drains meanwhile). */
export const REPLAY_RETRY_MS = 50;

export interface JournalOptions {
  /** Open database (the store's); the journal tables are created when missing. */
  db: Database;
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
 * Write-ahead journal for ingest: a request is acknowledged only once it is committed to SQLite,
 * and stays there until every trace it touched has been stored. Requests that arrive together
 * share one transaction (group commit). After a crash, `replay` feeds the unsettled part back
 * through the pipeline so pending traces are rebuilt and stitched.
 *
 * Wiring: `createPipeline({consumer: journal.consumer(engine), onBatch: journal.onBatch})`, then
 * `await journal.replay(pipeline)`, then give the receivers `journal.ingest(pipeline)`.
 */
export interface Journal {
  /** A TraceIngest that journals each request the next ingest accepts before answering ok. */
  ingest(next: TraceIngest): TraceIngest;
  /** A consumer that settles journal entries once `next` has stored a batch. */
  consumer(next: ChainConsumer): ChainConsumer;
  /** The pipeline's `onBatch` hook: notes which journaled requests a queued batch settles. */
  onBatch(batch: ChainBatch): void;
  /** Feeds every unsettled journaled request (only its unstored traces) to `into`, oldest first. */
  replay(into: TraceIngest): Promise<JournalReplayResult>;
  stats(): JournalStats;
  /** Commits the group in flight. Safe twice. */
  stop(): Promise<void>;
}

/** One journaled request as the journal tracks it in memory. */
interface Entry {
  seq: number;
  /** Traces of this request not stored yet. */
  traces: Set<string>;
  /** Written to SQLite (false while it waits for its group commit). */
  committed: boolean;
  /** Pending write: the body (see JournalBodyFormat), dropped once committed. */
  body?: string | Uint8Array;
  format: JournalBodyFormat;
  spans: number;
  receivedMs: number;
  /** Resolvers of the requests waiting for this entry's group commit. */
  waiters: Array<(err?: unknown) => void>;
}

const settledBatches = new WeakMap<ChainBatch, Entry[]>();

export function createJournal(options: JournalOptions): Journal {
  const { db, registry } = options;
  const logger = options.logger ?? silentLogger;
  const maxMemory = options.maxMemoryBytes ?? 0;
  const retryAfterMs = options.retryAfterMs ?? DEFAULT_MEMORY_RETRY_AFTER_MS;
  const heapUsed = options.heapUsed ?? (() => getHeapStatistics().used_heap_size);
  applyJournalSchema(db);

  const stmt = {
    insert: db.prepare('INSERT INTO journal (seq, received_ms, spans, body, format) VALUES (?, ?, ?, ?, ?)'),
    insertTrace: db.prepare('INSERT OR IGNORE INTO journal_traces (seq, trace_id) VALUES (?, ?)'),
    insertTraces: db.prepare(
      `INSERT OR IGNORE INTO journal_traces (seq, trace_id) VALUES ${Array.from({ length: TRACE_ROWS_PER_INSERT }, () => '(?, ?)').join(', ')}`,
    ),
    deleteTrace: db.prepare('DELETE FROM journal_traces WHERE seq = ? AND trace_id = ?'),
    delete: db.prepare('DELETE FROM journal WHERE seq = ?'),
    deleteTraces: db.prepare('DELETE FROM journal_traces WHERE seq = ?'),
    maxSeq: db.prepare('SELECT coalesce(max(seq), 0) AS seq FROM journal'),
    seqs: db.prepare('SELECT seq FROM journal ORDER BY seq').pluck(),
    one: db.prepare('SELECT seq, received_ms, spans, body, format FROM journal WHERE seq = ?'),
    tracesOf: db.prepare('SELECT trace_id FROM journal_traces WHERE seq = ?'),
  };

  const stats: JournalStats = { entries: 0, appended: 0, commits: 0, checkpointed: 0, replayed: 0, refusedMemory: 0 };
  /** Unsettled entries by trace id: the requests a trace's completion settles. */
  const openByTrace = new Map<string, Set<Entry>>();
  const entries = new Map<number, Entry>();
  let nextSeq = (stmt.maxSeq.get() as { seq: number }).seq + 1;
  let group: Entry[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  let memory = { at: -Infinity, over: false };

  const appended = new Counter({ name: 'conduct_journal_appended_total', help: 'Requests journaled before acknowledgement.', registers: [registry] });
  const commits = new Counter({ name: 'conduct_journal_commits_total', help: 'Group commits of the journal (one transaction each).', registers: [registry] });
  const checkpointed = new Counter({ name: 'conduct_journal_checkpointed_total', help: 'Journaled requests settled (every trace stored) and deleted.', registers: [registry] });
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
    for (const t of entry.traces) {
      let set = openByTrace.get(t);
      if (!set) openByTrace.set(t, (set = new Set()));
      set.add(entry);
    }
  };

  const unregister = (entry: Entry) => {
    entries.delete(entry.seq);
    for (const t of entry.traces) {
      const set = openByTrace.get(t);
      set?.delete(entry);
      if (set?.size === 0) openByTrace.delete(t);
    }
  };

  const commitGroup = db.transaction((batch: Entry[]) => {
    for (const e of batch) {
      // Settled before its commit (its traces were stored already): nothing left to keep.
      if (e.traces.size === 0 || !entries.has(e.seq)) continue;
      stmt.insert.run(e.seq, e.receivedMs, e.spans, e.body!, e.format);
      // Trace rows go TRACE_ROWS_PER_INSERT to a statement (one statement per row cost ~1 µs a span).
      const params: Array<number | string> = [];
      for (const t of e.traces) {
        params.push(e.seq, t);
        if (params.length === 2 * TRACE_ROWS_PER_INSERT) stmt.insertTraces.run(params.splice(0));
      }
      for (let i = 0; i < params.length; i += 2) stmt.insertTrace.run(params[i], params[i + 1]);
    }
  });

  const commit = () => {
    scheduled = undefined;
    const batch = group;
    group = [];
    if (batch.length === 0) return;
    let failure: unknown;
    try {
      commitGroup(batch);
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
      if (e.traces.size === 0 && e.committed) unregister(e);
      for (const w of e.waiters.splice(0)) w(failure);
    }
  };

  const overMemory = (): boolean => {
    if (maxMemory <= 0) return false;
    const now = Date.now();
    if (now - memory.at >= MEMORY_CHECK_INTERVAL_MS) memory = { at: now, over: heapUsed() > maxMemory };
    return memory.over;
  };

  const settleTrace = db.transaction((traceIds: readonly string[], owners: readonly Entry[]) => {
    for (const e of owners) {
      const removed: string[] = [];
      for (const t of traceIds) if (e.traces.delete(t)) removed.push(t);
      // Per-trace rows are deleted only for a request that stays open; one that is settled now
      // goes with all its rows in two statements below.
      if (e.committed && e.traces.size > 0) for (const t of removed) stmt.deleteTrace.run(e.seq, t);
      if (removed.length > 0 && e.traces.size === 0) {
        if (e.committed) {
          stmt.delete.run(e.seq);
          stmt.deleteTraces.run(e.seq);
          unregister(e);
        }
        stats.checkpointed++;
        checkpointed.inc();
      }
    }
  });

  const memoryRefusal = (): AcceptOutcome & { ok: false } => {
    stats.refusedMemory++;
    refused.inc();
    return { ok: false, reason: 'memory', retryAfterMs };
  };

  /** Queues the entry for the next group commit and waits for it; undefined once durable. */
  const append = async (entry: Entry): Promise<unknown> => {
    group.push(entry);
    stats.appended++;
    appended.inc();
    scheduled ??= setImmediate(commit);
    return new Promise<unknown>((resolve) => entry.waiters.push(resolve));
  };

  return {
    ingest(next) {
      const acceptRaw = next.acceptRaw?.bind(next);
      return {
        ...(next.keep ? { keep: next.keep } : {}),
        ...(acceptRaw
          ? {
              async acceptRaw(raw: RawRequest, limits: DecodeLimits, onAccepted?: (traceIds: readonly string[], spans: number) => void): Promise<RawAcceptResult> {
                if (overMemory()) return { kind: 'refused', outcome: memoryRefusal() };
                let entry: Entry | undefined;
                // Registered as the spans go in, before any batch can complete their traces.
                const result = await acceptRaw(raw, limits, (traceIds, spans) => {
                  entry = { seq: nextSeq++, traces: new Set(traceIds), committed: false, spans, receivedMs: Date.now(), format: raw.format, body: raw.body, waiters: [] };
                  register(entry);
                  onAccepted?.(traceIds, spans);
                });
                if (entry === undefined) return result;
                const failure = await append(entry);
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
          const entry: Entry = { seq: nextSeq++, traces, committed: false, spans: data.spanCount, receivedMs: Date.now(), format: 'decoded', waiters: [] };
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
          const failure = await append(entry);
          // The spans are in the pipeline but not durable: answer retryable so the sender resends.
          if (failure !== undefined) return { ok: false, reason: 'journal-error', retryAfterMs };
          return { ok: true };
        },
      };
    },

    consumer(next) {
      return {
        async consume(batch) {
          await next.consume(batch);
          const owners = settledBatches.get(batch);
          settledBatches.delete(batch);
          if (!owners || owners.length === 0) return;
          const traceIds = (batch.traceSummaries ?? []).map((t) => t.traceId);
          settleTrace(traceIds, owners);
        },
      };
    },

    onBatch(batch) {
      const owners = new Set<Entry>();
      for (const summary of batch.traceSummaries ?? []) {
        const set = openByTrace.get(summary.traceId);
        if (!set) continue;
        // Requests that arrive later for this trace belong to the next completion.
        openByTrace.delete(summary.traceId);
        for (const e of set) owners.add(e);
      }
      if (owners.size) settledBatches.set(batch, [...owners]);
    },

    async replay(into) {
      const result: JournalReplayResult = { requests: 0, spans: 0 };
      const limits: Partial<DecodeLimits> = { ...options.decodeLimits, ...(into.keep ? { keep: into.keep } : {}) };
      // One body in memory at a time.
      for (const seq of stmt.seqs.all() as number[]) {
        const row = stmt.one.get(seq) as { seq: number; received_ms: number; spans: number; body: string | Buffer; format: string } | undefined;
        if (row === undefined) continue;
        const traces = new Set((stmt.tracesOf.all(row.seq) as { trace_id: string }[]).map((r) => r.trace_id));
        let data: TracesRequestData;
        try {
          data = readBody(row.body, row.format, limits);
        } catch (err) {
          logger.error({ seq: row.seq, err: String(err) }, 'unreadable journal entry skipped');
          traces.clear();
        }
        if (traces.size === 0) {
          stmt.delete.run(row.seq);
          stmt.deleteTraces.run(row.seq);
          continue;
        }
        const filtered = onlyTraces(data!, traces);
        const entry: Entry = { seq: row.seq, traces, committed: true, spans: filtered.spanCount, receivedMs: row.received_ms, format: row.format as JournalBodyFormat, waiters: [] };
        register(entry);
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
      if (result.requests) logger.info({ ...result }, 'journal replayed');
      return result;
    },

    stats: () => ({ ...stats, entries: entries.size }),

    async stop() {
      if (scheduled) clearImmediate(scheduled);
      commit();
    },
  };
}

/** A journaled body back as a decoded request. @throws for a body that cannot be read. */
function readBody(body: string | Buffer, format: string, limits: Partial<DecodeLimits>): TracesRequestData {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  switch (format as JournalBodyFormat) {
    case 'protobuf':
      return decodeTracesRequest(bytes, limits);
    case 'json':
      return decodeTracesRequestJson(bytes, limits);
    case 'decoded':
      return JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as TracesRequestData;
    default:
      throw new Error(`unknown journal body format ${JSON.stringify(format)}`);
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
