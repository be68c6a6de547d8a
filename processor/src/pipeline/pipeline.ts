import { Counter, Gauge, type Registry } from 'prom-client';
import { columnsFromData, type AttrReader, type SpanColumns, type TracesRequestData } from '@conduct/proto';
import type { AcceptOutcome, BatchRequests, ChainBatch, ChainConsumer, IdentityRule, Logger, TraceIngest } from '../model.js';
import { silentLogger } from '../model.js';
import { K } from '../keys.js';
import { createIdentityResolver, DEFAULT_IDENTITY_RULES } from '../identity/index.js';
import { CallTable, deriveInto, settleRemembered, type DeriveOptions } from '../calls/index.js';
import type { BatchEncoder, EncodedBatch } from './batch-codec.js';
import { attributeKeepFor } from './keep.js';
import {
  createRecentClients,
  COMPLETION_REASONS,
  LATE_PARTS,
  createStitcher,
  DEFAULT_LATE_TRACE_WINDOW_MS,
  systemClock,
  type Clock,
  type CompletedTrace,
  type RecentClientsStats,
  type StitchConfig,
  type StitcherStats,
} from '../stitch/index.js';

type RefusedOutcome = Extract<AcceptOutcome, { ok: false }>;

/** Default of {@link PipelineOptions.maxQueuedBatches}. */
export const DEFAULT_MAX_QUEUED_BATCHES = 64;
/** Default of {@link PipelineOptions.maxQueuedSpans}. */
export const DEFAULT_MAX_QUEUED_SPANS = 1_000_000;
/** Default of {@link PipelineOptions.retryAfterMs}. */
export const DEFAULT_RETRY_AFTER_MS = 1_000;
/**
 * A request runs the idle check itself when the timer's last run is this many check intervals
 * ago (see acceptColumns).
 */
export const OVERDUE_CHECKS = 2;
/** Completed traces handed to the consumer in one batch at most. */
export const MAX_TRACES_PER_BATCH = 1_024;
/**
 * Batches handed to a consumer's `consumeMany` at once at most: batches that wait together are
 * stored in one write (one transaction, one detection pass and checkpoint in the backend), which
 * costs less per trace than a write each (bench/README.md, "Batches per store write").
 */
export const MAX_BATCHES_PER_WRITE = 8;
/** Spans of the batches handed to `consumeMany` at once at most (one batch may hold more alone). */
export const MAX_SPANS_PER_WRITE = 65_536;
/** Consumer and derivation errors are logged at most once per this period; all are counted. */
export const ERROR_LOG_INTERVAL_MS = 10_000;

export interface PipelineOptions {
  /** Identity rules in order; DEFAULT_IDENTITY_RULES when absent. */
  rules?: IdentityRule[];
  stitching: StitchConfig;
  /** Receives completed chains, one batch at a time, in order. */
  consumer: ChainConsumer;
  /** Registry the pipeline's metrics are registered in (one pipeline per registry). */
  registry: Registry;
  logger?: Logger;
  /** Processing-time clock; the system clock when absent. */
  clock?: Clock;
  /** Batches waiting for the consumer (or being made) at most; beyond it `accept` answers overloaded. */
  maxQueuedBatches?: number;
  /** Spans (of completed traces) waiting for the consumer (or being derived) at most; beyond it `accept` answers overloaded. */
  maxQueuedSpans?: number;
  /** Retry delay suggested to senders when overloaded (ms). */
  retryAfterMs?: number;
  /** Run the idle check on a timer (default true). Tests with a fake clock call `tick()` instead. */
  idleTimer?: boolean;
  /**
   * Called synchronously when a batch of completed traces is queued for the consumer, before it
   * is consumed (the journal uses it to know which accepted requests a batch settles). Must not throw.
   * With `encoder`, the batch's chains and summaries are in `encoded` only.
   */
  onBatch?: (batch: ChainBatch, encoded?: EncodedBatch) => void;
  /**
   * Encodes each batch as it is made (the pipeline thread, which hands batches over encoded):
   * traces are derived straight into rows the encoder reads, and the batches handed to `onBatch`
   * and the consumer have no chains or summaries of their own (`onBatch` gets them encoded).
   */
  encoder?: BatchEncoder;
  /**
   * Derive and encode completed traces in slices of about this many spans (whole traces), one
   * slice per turn of the event loop, so that requests that arrive meanwhile are not held up by a
   * long completion (e.g. DEFAULT_SLICE_SPANS). Absent: everything a stitcher call completes is
   * derived before the call that completed it returns. Batches are the same either way; flush and
   * stop derive everything at once. The pipeline thread uses DEFAULT_SLICE_SPANS (see worker.ts).
   */
  sliceSpans?: number;
}

/**
 * A slice of PipelineOptions.sliceSpans that is a few milliseconds of work, about what decoding a
 * request of 512 spans takes on the pipeline thread.
 */
export const DEFAULT_SLICE_SPANS = 2_048;

export interface PipelineStats {
  stitch: StitcherStats;
  /** The index of unmatched client spans that late server spans are stitched to. */
  recentClients: RecentClientsStats;
  /** The index of server spans whose caller's span was missing, that late client spans are stitched to. */
  recentServers: RecentClientsStats;
  queuedBatches: number;
  queuedSpans: number;
  batches: number;
  calls: number;
  chains: number;
  consumerErrors: number;
  deriveErrors: number;
  refused: number;
}

/** Traces one stitcher call completed, being derived (see `completions` in createPipeline). */
interface Completion {
  traces: CompletedTrace[];
  /** BatchRequests.exact of its batches, as of its completion. */
  exact: boolean;
  /** Whether its batches name their requests (a request was tagged before its completion). */
  tagging: boolean;
  /** The next trace to derive, and the first trace of the batch being made. */
  at: number;
  batchStart: number;
  /** Spans and calls of the batch being made so far. */
  spans: number;
  calls: number;
}

export interface Pipeline extends TraceIngest {
  /**
   * As `accept`, for a request decoded into columns with this pipeline's `keep`
   * (decodeTracesRequestColumns): the hot path. The columns belong to the pipeline afterwards.
   * With `tag`, the batches that complete its traces name it (ChainBatch.requests), each trace by
   * its entry in the columns' table of trace ids (SpanColumns.traceOf): the acceptor lists the
   * request's trace ids in that table's order (the order its spans first name them).
   */
  acceptColumns(data: SpanColumns, tag?: number): Promise<AcceptOutcome>;
  /**
   * The answer a request gets now whatever it holds (stopped, or the consumer too far behind),
   * counted as acceptColumns counts it; undefined when requests are admitted. For a caller that
   * would otherwise decode a request only to have it refused.
   */
  refusal(): RefusedOutcome | undefined;
  /** Whether the batches waiting for the consumer are at a limit now (what `refusal` answers overloaded on), not counted. */
  full(): boolean;
  readonly keep: import('@conduct/proto').AttributeKeep;
  /** Completes every pending trace; resolves once the consumer has consumed every batch queued so far. */
  flush(): Promise<void>;
  /** Stops the timer, completes pending traces and drains. Safe to call twice, and concurrently. */
  stop(): Promise<void>;
  /** Runs the idle check now (the timer does this every checkIntervalMs). */
  tick(): void;
  /** Stitcher.earlierTraces: the ids of the traces stored before the start, from the consumer's store. */
  earlierTraces(ids: Uint8Array, done: boolean): void;
  stats(): PipelineStats;
}

/**
 * The processor's core: accepts decoded requests, holds spans until their trace completes, turns
 * completed traces into chains and hands them to the consumer, refusing new spans with a
 * retryable answer while the consumer lags.
 */
export function createPipeline(options: PipelineOptions): Pipeline {
  const {
    rules = DEFAULT_IDENTITY_RULES,
    stitching,
    consumer,
    registry,
    logger = silentLogger,
    clock = systemClock,
    maxQueuedBatches = DEFAULT_MAX_QUEUED_BATCHES,
    maxQueuedSpans = DEFAULT_MAX_QUEUED_SPANS,
    retryAfterMs = DEFAULT_RETRY_AFTER_MS,
    idleTimer = true,
    encoder,
    sliceSpans,
  } = options;
  /** The calls and chains of the batch being made. */
  const rows = new CallTable();
  const resolver = createIdentityResolver(rules);
  const stitcher = createStitcher(stitching, clock);
  // The boundary spans of completed traces, for their later parts: unmatched client spans (by
  // span id) and server spans whose caller's span is missing (by that span's id). Both are kept
  // for the late-trace window unless configured otherwise.
  const windowMs = stitching.lateTraceWindowMs ?? DEFAULT_LATE_TRACE_WINDOW_MS;
  const recentConfig = { maxAgeMs: windowMs, ...stitching.recentClients };
  const recentClients = createRecentClients(recentConfig, clock);
  const recentServers = createRecentClients(recentConfig, clock);
  const onTimeDerive: DeriveOptions = { remember: recentClients.remember, rememberServer: recentServers.remember };
  const lateDerive: DeriveOptions = { ...onTimeDerive, takeParent: recentClients.take, takeChild: recentServers.take, boundary: true };
  const metrics = createMetrics(
    registry,
    () => stitcher.stats(),
    () => ({ depth: queue.length + completingBatches, spans: queuedSpans + completingSpans }),
    () => recentClients.stats(),
    () => recentServers.stats(),
  );

  const queue: ChainBatch[] = [];
  let queuedSpans = 0;
  let enqueued = 0;
  let consumed = 0;
  let draining = false;
  let stopped = false;
  let stopping: Promise<void> | undefined;
  const waiters: Array<{ seq: number; resolve: () => void }> = [];
  const totals = { batches: 0, calls: 0, chains: 0, consumerErrors: 0, deriveErrors: 0, refused: 0 };
  let lastLateSpans = 0;
  let lastDuplicateSpans = 0;
  const lastCompleted = { idle: 0, watermark: 0, flush: 0, evicted: 0 };
  const lastLateTraces = { joins: 0, maybe: 0, fragment: 0 };
  /** The tag of each tagged request whose columns pending spans may still refer to. */
  const tags = new WeakMap<SpanColumns, number>();
  /** Set once a request was tagged: from then on every batch says which tagged requests it holds. */
  let tagging = false;
  const lastRecent = { hits: 0, misses: 0, expired: 0, evicted: 0 };
  const lastServers = { hits: 0, misses: 0 };
  let lastErrorLogMs = -Infinity;
  let suppressedErrors = 0;

  const reportError = (what: string, err: unknown) => {
    const now = clock.now();
    if (now - lastErrorLogMs < ERROR_LOG_INTERVAL_MS) {
      suppressedErrors++;
      return;
    }
    lastErrorLogMs = now;
    logger.error({ err: err instanceof Error ? err.message : String(err), suppressed: suppressedErrors }, what);
    suppressedErrors = 0;
  };

  const drain = async () => {
    if (draining) return;
    draining = true;
    try {
      while (queue.length > 0) {
        const group = takeGroup(queue, consumer);
        const failures = await consumeGroup(consumer, group);
        group.forEach((batch, i) => {
          const failure = failures[i];
          if (failure) {
            totals.consumerErrors++;
            metrics.consumerErrors.inc();
            reportError('chain consumer failed; batch dropped', failure.err);
          }
          queuedSpans -= batch.spans;
          consumed++;
        });
        while (waiters.length > 0 && waiters[0]!.seq <= consumed) waiters.shift()!.resolve();
      }
    } finally {
      draining = false;
    }
  };

  /**
   * Completions whose traces are not all derived yet, oldest first. Each completion is cut into
   * batches of MAX_TRACES_PER_BATCH traces, as when it was derived at once, and each batch is
   * queued as soon as it is made, so that a consumer on another thread stores one batch while the
   * next is derived (holding a completion's batches to hand them over together acknowledged less
   * in the bench: bench/README.md, "Pipeline thread slices (issue 19, 2026-12-07, fourth)").
   */
  const completions: Completion[] = [];
  /** Spans and batches of `completions`, counted against maxQueuedSpans and maxQueuedBatches. */
  let completingSpans = 0;
  let completingBatches = 0;
  let sliceScheduled = false;
  let completing = false;
  /** Spans accepted since the last slice: the next slice derives as many more (see nextSlice). */
  let acceptedSinceSlice = 0;

  const enqueue = (traces: CompletedTrace[], now = sliceSpans === undefined) => {
    const { lateSpans: late, duplicateSpans, completed, lateTraces } = stitcher.stats();
    // Counted from the stitcher's totals, one increment per reason: a labelled increment per trace
    // (prom-client hashes the labels each time) was 0.3% of the pipeline thread in the bench.
    for (const reason of COMPLETION_REASONS) {
      if (completed[reason] > lastCompleted[reason]) metrics.completed.inc({ reason }, completed[reason] - lastCompleted[reason]);
      lastCompleted[reason] = completed[reason];
    }
    for (const part of LATE_PARTS) {
      if (lateTraces[part] > lastLateTraces[part]) metrics.lateTraces.inc({ late: part }, lateTraces[part] - lastLateTraces[part]);
      lastLateTraces[part] = lateTraces[part];
    }
    if (late > lastLateSpans) metrics.lateSpans.inc(late - lastLateSpans);
    lastLateSpans = late;
    // Copies dropped at completion may have been all a request held of a trace (see BatchRequests).
    const exact = duplicateSpans === lastDuplicateSpans;
    lastDuplicateSpans = duplicateSpans;
    if (traces.length > 0) {
      let spans = 0;
      for (let t = 0; t < traces.length; t++) spans += traces[t]!.spanCount;
      completions.push({ traces, exact, tagging, at: 0, batchStart: 0, spans: 0, calls: 0 });
      completingSpans += spans;
      completingBatches += Math.ceil(traces.length / MAX_TRACES_PER_BATCH);
    }
    if (now) complete(Infinity);
    else if (completions.length > 0 && !sliceScheduled) {
      sliceScheduled = true;
      setImmediate(nextSlice);
    }
  };

  // One slice per turn of the event loop: the messages that arrived meanwhile (requests, and the
  // host's word that a batch was consumed) are handled before the next one. A slice derives
  // sliceSpans more than the spans accepted since the last one, so that derivation keeps ahead of
  // intake however many requests a turn brings (with a fixed slice a thread short of CPU took in
  // requests faster than it derived, and the traces waiting to be derived filled the queue's limit).
  const nextSlice = () => {
    sliceScheduled = false;
    const budget = sliceSpans! + acceptedSinceSlice;
    acceptedSinceSlice = 0;
    complete(budget);
    if (completions.length > 0 && !sliceScheduled) {
      sliceScheduled = true;
      setImmediate(nextSlice);
    }
  };

  /**
   * Derives and encodes the traces of `completions` in order, about `budget` spans of them (whole
   * traces; Infinity for all), and queues the batches of each completion it finishes.
   */
  const complete = (budget: number) => {
    // Not re-entered from a hook (onBatch) that feeds the pipeline: `rows` holds the batch being made.
    if (completing) return;
    completing = true;
    try {
      while (completions.length > 0 && budget > 0) {
        const c = completions[0]!;
        const { traces } = c;
        const end = Math.min(traces.length, c.batchStart + MAX_TRACES_PER_BATCH);
        // Derived into rows, made objects only for a consumer that wants them (see `encoder`).
        if (c.at === c.batchStart) rows.clear();
        while (c.at < end && budget > 0) {
          const trace = traces[c.at++]!;
          budget -= trace.spanCount;
          c.spans += trace.spanCount;
          summarise(trace, rows);
          try {
            c.calls += deriveInto(trace, resolver, trace.late === 'joins' || trace.late === 'maybe' ? lateDerive : onTimeDerive, rows);
          } catch (err) {
            totals.deriveErrors++;
            metrics.deriveErrors.inc();
            reportError('could not derive calls from a trace; trace dropped', err);
          }
        }
        if (c.at < end) break;
        const made = makeBatch(c, end);
        queueBatch(made.batch, made.encoded);
        c.batchStart = end;
        c.spans = 0;
        c.calls = 0;
        if (c.at < traces.length) continue;
        completions.shift();
        countRecent();
      }
    } finally {
      // The boundary spans these traces left for their later parts, copied out of their requests.
      settleRemembered();
      completing = false;
    }
    if (queue.length > 0) void drain();
  };

  /** The batch of the traces of `c` from its batchStart to `end`, derived into `rows`. */
  const makeBatch = (c: Completion, end: number): { batch: ChainBatch; encoded: EncodedBatch | undefined } => {
    const slice = c.batchStart === 0 && end === c.traces.length ? c.traces : c.traces.slice(c.batchStart, end);
    const { spans, calls } = c;
    // One increment per batch: prom-client's inc allocates (1.4% of the pipeline thread's bytes
    // when each trace counted its calls).
    totals.calls += calls;
    metrics.calls.inc(calls);
    totals.chains += rows.chains;
    totals.batches++;
    metrics.chains.inc(rows.chains);
    metrics.batches.inc();
    const encoded = encoder?.encodeRows(rows, slice.length, spans);
    const batch: ChainBatch = encoded
      ? { chains: [], traceSummaries: [], traces: slice.length, spans }
      : { chains: rows.chainObjects(rows.callObjects()), traceSummaries: rows.summaryObjects(), traces: slice.length, spans };
    rows.clear();
    if (c.tagging) batch.requests = requestsOf(slice, tags, c.exact);
    return { batch, encoded };
  };

  const queueBatch = (batch: ChainBatch, encoded: EncodedBatch | undefined) => {
    completingSpans -= batch.spans;
    completingBatches--;
    if (options.onBatch) {
      try {
        options.onBatch(batch, encoded);
      } catch (err) {
        reportError('onBatch hook failed', err);
      }
    }
    queue.push(batch);
    queuedSpans += batch.spans;
    enqueued++;
  };

  const countRecent = () => {
    const recent = recentClients.stats();
    metrics.lateParents.inc({ result: 'stitched' }, recent.hits - lastRecent.hits);
    metrics.lateParents.inc({ result: 'missed' }, recent.misses - lastRecent.misses);
    metrics.recentForgotten.inc({ reason: 'expired' }, recent.expired - lastRecent.expired);
    metrics.recentForgotten.inc({ reason: 'evicted' }, recent.evicted - lastRecent.evicted);
    Object.assign(lastRecent, { hits: recent.hits, misses: recent.misses, expired: recent.expired, evicted: recent.evicted });
    const servers = recentServers.stats();
    metrics.lateChildren.inc({ result: 'stitched' }, servers.hits - lastServers.hits);
    metrics.lateChildren.inc({ result: 'missed' }, servers.misses - lastServers.misses);
    Object.assign(lastServers, { hits: servers.hits, misses: servers.misses });
  };

  const settled = (): Promise<void> => {
    const seq = enqueued;
    if (consumed >= seq) return Promise.resolve();
    return new Promise((resolve) => waiters.push({ seq, resolve }));
  };

  const keep = attributeKeepFor(rules);

  const full = (): boolean => queue.length + completingBatches >= maxQueuedBatches || queuedSpans + completingSpans >= maxQueuedSpans;

  const refusal = (): RefusedOutcome | undefined => {
    if (stopped) {
      metrics.refused.inc({ reason: 'stopped' });
      totals.refused++;
      return { ok: false, reason: 'stopped', retryAfterMs };
    }
    if (full()) {
      metrics.refused.inc({ reason: 'overloaded' });
      totals.refused++;
      return { ok: false, reason: 'overloaded', retryAfterMs };
    }
    return undefined;
  };

  const acceptColumns = async (data: SpanColumns, tag?: number): Promise<AcceptOutcome> => {
    const refused = refusal();
    if (refused) return refused;
    if (tag !== undefined) {
      tags.set(data, tag);
      tagging = true;
    }
    if (data.spanCount === 0 && data.resourceCount === 0) return { ok: true };
    // The idle check is due but its timer has not run: a thread whose message queue never empties
    // does not get to its timers (Node's MessagePort handles up to 1,000 messages per turn of the
    // event loop), so under sustained load traces would wait seconds past `idle` and pile up.
    if (timer !== undefined && clock.now() - lastTickMs >= OVERDUE_CHECKS * stitcher.checkIntervalMs) tick();
    metrics.spans.inc(data.spanCount);
    if (sliceScheduled) acceptedSinceSlice += data.spanCount;
    enqueue(stitcher.add(data));
    return { ok: true };
  };

  // A request decoded into objects (OTLP/JSON in a receiver, audit records) is read through the
  // same columns, with the keep its decoder applied or would have applied.
  const accept = async (data: TracesRequestData): Promise<AcceptOutcome> => acceptColumns(columnsFromData(data, keep));

  let lastTickMs = clock.now();
  const tick = () => {
    lastTickMs = clock.now();
    if (!stopped) enqueue(stitcher.tick());
  };

  const timer = idleTimer ? setInterval(tick, stitcher.checkIntervalMs) : undefined;
  timer?.unref();
  logger.info(
    { idleMs: stitching.idleMs, latenessMs: stitching.latenessMs, maxPendingSpans: stitching.maxPendingSpans, rules: rules.length, maxQueuedBatches },
    'pipeline started',
  );

  return {
    accept,
    acceptColumns,
    refusal,
    full,
    keep,
    tick,
    earlierTraces: (ids, done) => stitcher.earlierTraces(ids, done),
    flush: async () => {
      enqueue(stitcher.flush(), true);
      await settled();
    },
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        if (timer) clearInterval(timer);
        enqueue(stitcher.flush(), true);
        await settled();
        logger.info({ ...totals }, 'pipeline stopped');
      })()),
    stats: () => ({ stitch: stitcher.stats(), recentClients: recentClients.stats(), recentServers: recentServers.stats(), queuedBatches: queue.length + completingBatches, queuedSpans: queuedSpans + completingSpans, ...totals }),
  };
}

/**
 * The tagged requests of completed traces, as ChainBatch.requests: a trace's spans come as
 * (columns, index) pairs, and a request's spans of a trace are one run of the same columns (one
 * `add` links them in a row), so a request is looked up once per trace it holds, not per span.
 * This replaced a map by trace id on the journal's side (bench/README.md, issue 19 journal part).
 */
function requestsOf(traces: readonly CompletedTrace[], tags: WeakMap<SpanColumns, number>, exact: boolean): BatchRequests {
  // Pairs gathered in a reused scratch array and copied out at their number (a list grown by push
  // and then copied was 2.4% of the pipeline thread's allocated bytes).
  let pairs = pairScratch;
  let count = 0;
  for (let t = 0; t < traces.length; t++) {
    const items = traces[t]!.items;
    let last: SpanColumns | undefined;
    for (let k = 0; k < items.length; k += 2) {
      const cols = items[k] as SpanColumns;
      if (cols === last) continue;
      last = cols;
      const tag = tags.get(cols);
      if (tag === undefined) continue;
      if (count + 2 > pairs.length) {
        const grown = new Int32Array(2 * pairs.length);
        grown.set(pairs);
        pairs = pairScratch = grown;
      }
      pairs[count++] = tag;
      // The trace's position among the request's ids is its entry in the trace table (see acceptColumns).
      pairs[count++] = cols.traceOf[items[k + 1] as number]!;
    }
  }
  return { pairs: pairs.slice(0, count), exact };
}

/** requestsOf's scratch (reused: batches are made one at a time). */
let pairScratch = new Int32Array(1_024);

/**
 * Takes the batches that go to the consumer next, in order: the first one alone for a consumer
 * without `consumeMany`; for one with it, every batch waiting now up to MAX_BATCHES_PER_WRITE and
 * MAX_SPANS_PER_WRITE spans (always at least one).
 */
export function takeGroup<T extends { spans: number }>(queue: T[], consumer: ChainConsumer): T[] {
  if (!consumer.consumeMany) return [queue.shift()!];
  let n = 1;
  let spans = queue[0]!.spans;
  while (n < queue.length && n < MAX_BATCHES_PER_WRITE && spans + queue[n]!.spans <= MAX_SPANS_PER_WRITE) spans += queue[n++]!.spans;
  return queue.splice(0, n);
}

/** Hands a group of batches to the consumer (see takeGroup): each batch's failure, undefined when it was consumed. */
export async function consumeGroup(consumer: ChainConsumer, batches: readonly ChainBatch[]): Promise<Array<{ err: unknown } | undefined>> {
  try {
    if (batches.length > 1 && consumer.consumeMany) return await consumer.consumeMany(batches);
    await consumer.consume(batches[0]!);
    return [undefined];
  } catch (err) {
    // consumeMany never rejects by contract; a consumer that does anyway failed every batch.
    return batches.map(() => ({ err }));
  }
}

/** Services listed in a trace summary at most. */
export const MAX_SUMMARY_SERVICES = 16;

/** The services of the trace being summarised (reused: derivation and summaries are synchronous). */
const serviceScratch: string[] = [];

/**
 * Every completed trace is summarised in its batch (so a consumer knows which traces it got), as
 * a summary row of the batch's rows (no summary object or list of services per trace on this
 * thread: they were 3-5% of the bytes it allocated, bench/README.md "Garbage collection by thread").
 * Its services are gathered in a scratch array first.
 */
function summarise(trace: CompletedTrace, rows: CallTable): void {
  let startMs = Infinity;
  let endMs = -Infinity;
  // At most MAX_SUMMARY_SERVICES, so a scan finds a service already listed: no Set per trace.
  let count = 0;
  // A trace's spans come in runs of one request's resource: its service is read once per run.
  let lastResource: AttrReader | undefined;
  const items = trace.items;
  for (let k = 0; k < items.length; k += 2) {
    const cols = items[k] as SpanColumns;
    const i = items[k + 1] as number;
    const start = cols.starts[i]!;
    const end = cols.ends[i]!;
    if (start < startMs) startMs = start;
    if (end > endMs) endMs = end;
    if (count < MAX_SUMMARY_SERVICES) {
      const resource = cols.resourceAttrs(cols.resourceOf[i]!);
      if (resource === lastResource) continue;
      lastResource = resource;
      const name = resource.get(K.SERVICE_NAME);
      if (typeof name === 'string' && !listed(serviceScratch, count, name)) serviceScratch[count++] = name;
    }
  }
  rows.addSummary(trace.traceId, trace.late || undefined, Number.isFinite(startMs) ? startMs : 0, Number.isFinite(endMs) ? endMs : 0, trace.spanCount, serviceScratch, count);
}

/** Whether `name` is among the first `count` entries of `list`. */
function listed(list: readonly string[], count: number, name: string): boolean {
  for (let i = 0; i < count; i++) if (list[i] === name) return true;
  return false;
}

function createMetrics(
  registry: Registry,
  stitch: () => StitcherStats,
  queue: () => { depth: number; spans: number },
  recent: () => RecentClientsStats,
  servers: () => RecentClientsStats,
) {
  const registers = [registry];
  return {
    lateChildren: new Counter({
      name: 'conduct_stitch_late_children_total',
      help: 'Outbound spans of late-arriving trace parts with no server span in their part, by result: stitched to a remembered server span of an earlier part, or missed.',
      labelNames: ['result'] as const,
      registers,
    }),
    recentServers: new Gauge({
      name: 'conduct_stitch_recent_server_spans',
      help: 'Server spans of completed traces whose caller span was missing, remembered for late client spans.',
      registers,
      collect() {
        this.set(servers().spans);
      },
    }),
    lateParents: new Counter({
      name: 'conduct_stitch_late_parents_total',
      help: 'Spans of late-arriving trace parts whose parent was missing, by result: stitched to a remembered client span of an earlier part, or missed.',
      labelNames: ['result'] as const,
      registers,
    }),
    recentClients: new Gauge({
      name: 'conduct_stitch_recent_client_spans',
      help: 'Unmatched client spans of completed traces remembered for late server spans.',
      registers,
      collect() {
        this.set(recent().spans);
      },
    }),
    recentForgotten: new Counter({
      name: 'conduct_stitch_recent_client_spans_forgotten_total',
      help: 'Remembered client spans forgotten without a late server span, by reason (expired, evicted).',
      labelNames: ['reason'] as const,
      registers,
    }),
    pendingTraces: new Gauge({
      name: 'conduct_stitch_pending_traces',
      help: 'Traces held while waiting for their spans.',
      registers,
      collect() {
        this.set(stitch().pendingTraces);
      },
    }),
    pendingSpans: new Gauge({
      name: 'conduct_stitch_pending_spans',
      help: 'Spans held in pending traces.',
      registers,
      collect() {
        this.set(stitch().pendingSpans);
      },
    }),
    completed: new Counter({
      name: 'conduct_stitch_traces_completed_total',
      help: 'Traces completed, by reason (idle, watermark, flush, evicted).',
      labelNames: ['reason'] as const,
      registers,
    }),
    lateSpans: new Counter({ name: 'conduct_stitch_late_spans_total', help: 'Spans that arrived after their trace had completed.', registers }),
    lateTraces: new Counter({
      name: 'conduct_stitch_late_traces_total',
      help: 'Traces completed as a possible later part of an earlier one, by mark: joins (its trace completed within stitching.lateTraceWindow), maybe (it may have; the consumer looks it up), fragment.',
      labelNames: ['late'] as const,
      registers,
    }),
    spans: new Counter({ name: 'conduct_pipeline_spans_total', help: 'Spans accepted into the pipeline.', registers }),
    refused: new Counter({
      name: 'conduct_pipeline_refused_total',
      help: 'Requests refused with a retryable answer, by reason (overloaded, stopped).',
      labelNames: ['reason'] as const,
      registers,
    }),
    calls: new Counter({ name: 'conduct_pipeline_calls_total', help: 'Calls derived from completed traces.', registers }),
    chains: new Counter({ name: 'conduct_pipeline_chains_total', help: 'Chains handed to the consumer.', registers }),
    batches: new Counter({ name: 'conduct_pipeline_batches_total', help: 'Batches handed to the consumer.', registers }),
    consumerErrors: new Counter({ name: 'conduct_pipeline_consumer_errors_total', help: 'Batches the consumer failed on (dropped).', registers }),
    deriveErrors: new Counter({ name: 'conduct_pipeline_derive_errors_total', help: 'Traces that could not be turned into calls (dropped).', registers }),
    queueDepth: new Gauge({
      name: 'conduct_pipeline_queue_depth',
      help: 'Batches waiting for the consumer.',
      registers,
      collect() {
        this.set(queue().depth);
      },
    }),
    queuedSpans: new Gauge({
      name: 'conduct_pipeline_queued_spans',
      help: 'Spans of completed traces waiting for the consumer.',
      registers,
      collect() {
        this.set(queue().spans);
      },
    }),
  };
}
