import type { SpanColumns } from '@conduct/proto';
import type { TraceSpan } from '../identity/index.js';
import { dropDuplicateSpans, SpanIndex, type SpanItems } from '../calls/trace-table.js';
import { Links, TraceSlots, WatermarkHeap } from './pending.js';
import { ID_BYTES, idHash } from './id-bytes.js';
import type { RecentClientsConfig } from './recent-clients.js';
import { Recency } from './recency.js';
import { CompletedIds } from './completed-ids.js';
import { createRecentIds, type RecentIdsSeed } from './recent-ids.js';

/**
 * Default of {@link StitchConfig.idleMs}: matches the config file's `stitching.idle`. Above the
 * OpenTelemetry SDK BatchSpanProcessor's default export delay (5 s), so that the spans one trace
 * left in several services' export batches arrive before the trace completes.
 */
export const DEFAULT_IDLE_MS = 6_000;
/** Default of {@link StitchConfig.latenessMs}: matches `stitching.lateness`. */
export const DEFAULT_LATENESS_MS = 30_000;
/** Bytes of a trace id in the columns' table of a request's distinct trace ids (SpanColumns.traceIds). */
const TRACE_ID_BYTES = 16;
/** A pending trace's `late` in its slot: an index of LATE_PARTS, or NOT_LATE (seen for the first time). */
const NOT_LATE = -1;
const JOINS = 0;
const MAYBE = 1;
const FRAGMENT = 2;
/** Share of `maxPendingSpans` freed at once when it is exceeded: early completions come in batches. */
export const EVICTION_SLACK = 0.1;
/** Default of {@link StitchConfig.maxPendingSpans}: matches `stitching.maxPendingSpans`. */
export const DEFAULT_MAX_PENDING_SPANS = 500_000;
/** Default of {@link StitchConfig.rememberedTraces}. */
export const DEFAULT_REMEMBERED_TRACES = 100_000;
/**
 * Default of {@link StitchConfig.lateTraceWindowMs}: matches `stitching.lateTraceWindow` (5m). The
 * OpenTelemetry Collector's exporters give up retrying after 5 minutes by default
 * (`retry_on_failure.max_elapsed_time` 300s), and the SDK's batch delay (5 s) and a gateway's own
 * batching add seconds: a part that arrives later than this was delayed by an outage, not by
 * ordinary batching. Remembering a trace costs its id and time (and, for its unmatched boundary
 * spans, the bounded indexes of recent-clients.ts), all within `rememberedTraces`.
 */
export const DEFAULT_LATE_TRACE_WINDOW_MS = 300_000;
/** Default of {@link StitchConfig.maxFutureSkewMs}. */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 300_000;
/**
 * The idle check runs every idleMs / CHECKS_PER_IDLE, clamped to these bounds. A trace completes
 * up to one period after it went idle, so the period is most of the detection latency beyond
 * idleMs; a check with nothing due costs next to nothing (it stops at the first active trace).
 */
export const CHECKS_PER_IDLE = 20;
export const MIN_CHECK_INTERVAL_MS = 10;
export const MAX_CHECK_INTERVAL_MS = 250;

export interface StitchConfig {
  /** A trace completes when no span arrived for it for this long, in processing time (ms). */
  idleMs: number;
  /** The event-time watermark trails the newest span end seen by this much (ms). */
  latenessMs: number;
  /**
   * Spans held in pending traces; beyond this the least recently active traces complete early,
   * until EVICTION_SLACK of the limit is free again.
   */
  maxPendingSpans: number;
  /** Ids of completed traces remembered to recognise late spans. */
  rememberedTraces?: number;
  /**
   * A part of a trace that arrives within this long (processing time, ms) after the trace last
   * completed joins it (`late: 'joins'`); later, it is a fragment of its own (`late: 'fragment'`).
   * Default DEFAULT_LATE_TRACE_WINDOW_MS.
   */
  lateTraceWindowMs?: number;
  /**
   * Parts of traces completed before this stitcher started may be stored (a restart on a
   * database with traces). While the window reaches back before the start, a trace that is not
   * remembered is marked `late: 'maybe'` so that the consumer looks for it, until the ids of those
   * traces are handed over (Stitcher.earlierTraces). Default false.
   */
  earlierPartsStored?: boolean;
  /**
   * Unmatched client spans of completed traces kept so that a late server span can still be
   * stitched to its caller (count and age bounds; see RecentClientsConfig).
   */
  recentClients?: RecentClientsConfig;
  /**
   * Span ends later than processing time plus this much advance the watermark only that far, so
   * that one span stamped in the future cannot complete every pending trace at once.
   */
  maxFutureSkewMs?: number;
}

/** Processing time, in ms. Injected so that tests can drive it. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export type CompletionReason = 'idle' | 'watermark' | 'flush' | 'evicted';
export const COMPLETION_REASONS: readonly CompletionReason[] = ['idle', 'watermark', 'flush', 'evicted'];

/**
 * How a completed trace relates to earlier parts of it:
 * - `joins`: its trace completed before, within `lateTraceWindowMs`: every span arrived late,
 *   and the consumer merges the part into what it stored of the trace;
 * - `maybe`: not remembered exactly, but it may have completed within `lateTraceWindowMs` (an id
 *   forgotten to stay within `rememberedTraces` has that hash, or a restart): the consumer looks
 *   the trace up in its store;
 * - `fragment`: its trace completed longer than `lateTraceWindowMs` ago: stored on its own.
 * Absent for a trace seen for the first time.
 */
export type LatePart = 'joins' | 'maybe' | 'fragment';
export const LATE_PARTS: readonly LatePart[] = ['joins', 'maybe', 'fragment'];

/**
 * A trace whose spans are complete: its spans as (columns, index) pairs, the first of each span
 * id, for derivation to read in place (`deriveItems`). No object per span is made at completion.
 */
export class CompletedTrace {
  constructor(
    readonly traceId: string,
    readonly items: SpanItems,
    readonly reason: CompletionReason,
    /** Absent when no earlier part of the trace is known or possible (see LatePart). */
    readonly late?: LatePart,
  ) {}

  get spanCount(): number {
    return this.items.length >> 1;
  }

  /** The spans as objects, made on each read (tests, and callers of the object API). */
  get spans(): TraceSpan[] {
    const spans: TraceSpan[] = [];
    for (let k = 0; k < this.items.length; k += 2) {
      const cols = this.items[k] as SpanColumns;
      const i = this.items[k + 1] as number;
      spans.push({ span: cols.span(i, this.traceId), resource: cols.resourceAttrs(cols.resourceOf[i]!) });
    }
    return spans;
  }
}

export interface StitcherStats {
  pendingTraces: number;
  pendingSpans: number;
  completed: Record<CompletionReason, number>;
  /** Spans that arrived after their trace had completed (parts that join and fragments). */
  lateSpans: number;
  /** Spans dropped at completion because their trace already held a span of that id (a resent copy). */
  duplicateSpans: number;
  /** Traces completed with a `late` mark, by mark (LatePart). */
  lateTraces: Record<LatePart, number>;
  /** Newest span end seen minus latenessMs; -Infinity before the first span. */
  watermarkMs: number;
}

/**
 * Holds spans by trace until the trace is complete. Pure: no timers, no I/O; the caller runs
 * {@link Stitcher.tick} every {@link Stitcher.checkIntervalMs}. Each method returns the traces it
 * completed.
 */
export interface Stitcher {
  /** Adds the spans of one request (its columns: pending spans refer to them, no copy is made). */
  add(data: SpanColumns): CompletedTrace[];
  /** Completes traces idle for idleMs or more. */
  tick(): CompletedTrace[];
  /** Completes every pending trace. */
  flush(): CompletedTrace[];
  stats(): StitcherStats;
  /**
   * Takes the ids of the traces stored within the window before this stitcher started (with
   * `earlierPartsStored`; a consumer reads them from its store): 16 bytes each, one after another
   * in `ids`, over as many calls as it takes; `done` on the last. From then on a trace not
   * remembered is `maybe` only when its id may be among them (or among the ids forgotten since),
   * where until then every such trace was. Ids after `done` are ignored.
   */
  earlierTraces(ids: Uint8Array, done: boolean): void;
  readonly checkIntervalMs: number;
}

export function createStitcher(config: StitchConfig, clock: Clock = systemClock): Stitcher {
  const { idleMs, latenessMs, maxPendingSpans } = config;
  // Completing only what goes over the limit would, once the limit is reached under steady load,
  // complete a request's worth of traces on every request: batches of a few dozen traces, each
  // paying a store transaction and a hand-over of its own.
  const evictTo = maxPendingSpans - Math.floor(maxPendingSpans * EVICTION_SLACK);
  const remembered = Math.max(0, config.rememberedTraces ?? DEFAULT_REMEMBERED_TRACES);
  const windowMs = Math.max(0, config.lateTraceWindowMs ?? DEFAULT_LATE_TRACE_WINDOW_MS);
  const startedMs = clock.now();
  const futureSkewMs = config.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS;
  // Each pending trace's state, in a slot found by the trace id's bytes (no text made for it until it completes).
  const slots = new TraceSlots();
  // Least recently active first, for the idle check, early completion and flush (items are slots).
  const activity = new Recency<number>();
  const isLatestActivity = (slot: number, seq: number) => slots.touch[slot] === seq;
  const activityByAge = () => slots.inOpeningOrder().sort((a, b) => slots.touch[a]! - slots.touch[b]!).map((slot) => [slot, slots.touch[slot]!] as const);
  // Recently completed trace ids (to tell late spans), each with the time of its latest completion.
  const completedIds = new CompletedIds();
  /** Completion time of the newest id forgotten to stay within `remembered`. */
  let forgottenMs = -Infinity;
  /**
   * The ids forgotten within the window, by hash (recent-ids.ts): under sustained load the exact
   * memory reaches back seconds, not the window, and without these every new trace was `maybe`
   * (a later part as far as the stitcher could tell): derived as one, and each batch written on its
   * own by the backend, 1.14x the CPU per span (bench/README.md, "Parts that may be later parts").
   */
  const forgotten = createRecentIds(windowMs);
  /**
   * Whether every trace not remembered is `maybe` (started within a window on a store with traces)
   * until the stored ids are known (earlierTraces).
   */
  let earlierUnknown = config.earlierPartsStored === true;
  let earlierSeed: RecentIdsSeed | undefined;
  const earlierTraces = (ids: Uint8Array, done: boolean) => {
    if (!earlierUnknown) return;
    // The stored ids become the forgotten filter's oldest generation, as if forgotten at the start.
    earlierSeed ??= forgotten.seed(startedMs);
    for (let at = 0; at + ID_BYTES <= ids.length; at += ID_BYTES) earlierSeed.add(idHash(ids, at));
    if (!done) return;
    earlierSeed.close();
    earlierSeed = undefined;
    forgottenMs = Math.max(forgottenMs, startedMs);
    earlierUnknown = false;
  };
  const rememberCompleted = (slot: number, now: number) => {
    completedIds.note(slots.ids, slot * TRACE_ID_BYTES, now, slots.hashes[slot]);
    while (completedIds.size > remembered) {
      forgottenMs = completedIds.forgetOldest();
      if (forgottenMs >= now - windowMs) forgotten.add(completedIds.forgottenHash, forgottenMs);
    }
  };
  /** What is known of earlier parts of a trace whose span arrives with no pending entry (an index of LATE_PARTS, or NOT_LATE). */
  const latePartOf = (bytes: Uint8Array, at: number, hash: number, now: number): number => {
    const doneMs = remembered > 0 ? completedIds.timeOf(bytes, at, hash) : undefined;
    if (doneMs !== undefined) return now - doneMs <= windowMs ? JOINS : FRAGMENT;
    const since = now - windowMs;
    if (earlierUnknown && startedMs > since) return MAYBE;
    return forgottenMs >= since && forgotten.mayHold(hash, now) ? MAYBE : NOT_LATE;
  };
  // Every pending trace sits in the heap once, under a key that may trail its maxEndMs: when it
  // comes up, a trace whose spans extended it since goes back in under its current maxEndMs.
  const heap = new WatermarkHeap();
  const completed: Record<CompletionReason, number> = { idle: 0, watermark: 0, flush: 0, evicted: 0 };
  /** Traces completed with a late mark, by its index in LATE_PARTS. */
  const lateTraces = [0, 0, 0];
  let pendingSpans = 0;
  let lateSpans = 0;
  let duplicateSpans = 0;
  let newestEndMs = -Infinity;
  const ids = new SpanIndex();
  /**
   * The traces one `add` touched, in the order first touched, and the slot of each of the
   * request's distinct trace ids (by its index in the columns' trace table; -1 not yet looked up):
   * a trace id is made text and looked up once per request, not per run of spans (a request
   * groups spans by service, so a trace's spans come in several runs), and no Set per request
   * lists the traces touched. Both reused from request to request.
   */
  const touched: number[] = [];
  const byTrace: number[] = [];

  const complete = (slot: number, reason: CompletionReason, out: CompletedTrace[]) => {
    const late = slots.late[slot]!;
    const held = slots.count[slot]!;
    const items = slots.takeItems(slot);
    // Its id as text, made once now from its first span (the spans of a trace share the id).
    const traceId = (items[0] as SpanColumns).traceId(items[1] as number);
    if (remembered > 0) rememberCompleted(slot, clock.now());
    slots.close(slot);
    // A span id seen twice in a trace is the same span sent again (a sender's retry after an
    // answer it never got, replayed by the journal too): it is kept once.
    duplicateSpans += dropDuplicateSpans(items, ids);
    pendingSpans -= held;
    completed[reason]++;
    if (late !== NOT_LATE) lateTraces[late]!++;
    out.push(new CompletedTrace(traceId, items, reason, late === NOT_LATE ? undefined : LATE_PARTS[late]));
  };

  const watermark = () => newestEndMs - latenessMs;

  const completeByWatermark = (out: CompletedTrace[]) => {
    const mark = watermark();
    while (heap.length > 0 && heap.keys[0]! < mark) {
      const slot = heap.slots[0]!;
      const serial = heap.serials[0]!;
      heap.removeTop();
      if (slots.serial[slot] !== serial) continue;
      const maxEndMs = slots.maxEndMs[slot]!;
      if (maxEndMs < mark) complete(slot, 'watermark', out);
      else heap.push(maxEndMs, slot, serial);
    }
    if (heap.length > 2 * slots.size + 1024) {
      heap.length = 0;
      // Pushed in the order the traces were opened (a Map's insertion order did it before): ties
      // between keys then come out as they did.
      for (const slot of slots.inOpeningOrder()) heap.push(slots.maxEndMs[slot]!, slot, slots.serial[slot]!);
    }
  };

  const add = (data: SpanColumns): CompletedTrace[] => {
    const now = clock.now();
    const ceiling = now + futureSkewMs;
    let touchedCount = 0;
    const links = new Links(data);
    const traceOf = data.traceOf;
    const traceIds = data.traceIds;
    const traces = data.traceIds.length / TRACE_ID_BYTES;
    const ends = data.ends;
    const starts = data.starts;
    while (byTrace.length < traces) byTrace.push(-1);
    // The slots' columns in locals, read again after a slot is opened (opening may grow them):
    // loads through `slots` on every span made adding 40-span traces ~1.5x slower.
    let { late, count, first, last, maxEndMs, firstOf, lastOf } = slots;
    // Kept in a local through the loop: a double stored in the closure's variable is a new heap number each time.
    let newest = newestEndMs;
    for (let i = 0; i < data.spanCount; i++) {
      let slot = byTrace[traceOf[i]!]!;
      if (slot < 0) {
        const at = traceOf[i]! * TRACE_ID_BYTES;
        const hash = idHash(traceIds, at);
        slot = slots.find(traceIds, at, hash);
        if (slot < 0) {
          slot = slots.open(traceIds, at, hash, latePartOf(traceIds, at, hash, now));
          ({ late, count, first, last, maxEndMs, firstOf, lastOf } = slots);
        }
        byTrace[traceOf[i]!] = slot;
        touched[touchedCount++] = slot;
      }
      if (late[slot] === JOINS || late[slot] === FRAGMENT) lateSpans++;
      // Linked after the trace's last span (see Links).
      if (count[slot]! > 0) {
        const tail = lastOf[slot]!;
        const at = last[slot]!;
        tail.nextOf[at] = links;
        tail.next[at] = i;
      } else {
        firstOf[slot] = links;
        first[slot] = i;
      }
      lastOf[slot] = links;
      last[slot] = i;
      count[slot]++;
      pendingSpans++;
      const endMs = ends[i]!;
      const startMs = starts[i]!;
      const end = Number.isFinite(endMs) ? endMs : Number.isFinite(startMs) ? startMs : -Infinity;
      if (end > maxEndMs[slot]!) maxEndMs[slot] = end;
      const markEnd = end > ceiling ? ceiling : end;
      if (markEnd > newest) newest = markEnd;
    }
    newestEndMs = newest;
    byTrace.fill(-1, 0, traces);
    for (let t = 0; t < touchedCount; t++) {
      const slot = touched[t]!;
      slots.lastArrivalMs[slot] = now;
      slots.touch[slot] = activity.note(slot);
      if (slots.queued[slot] === 0) {
        slots.queued[slot] = 1;
        heap.push(slots.maxEndMs[slot]!, slot, slots.serial[slot]!);
      }
    }
    const out: CompletedTrace[] = [];
    completeByWatermark(out);
    if (pendingSpans > maxPendingSpans) {
      for (let slot = activity.oldest(isLatestActivity); slot !== undefined && pendingSpans > evictTo; slot = activity.oldest(isLatestActivity)) {
        complete(slot, 'evicted', out);
      }
    }
    activity.compact(slots.size, activityByAge);
    return out;
  };

  const tick = (): CompletedTrace[] => {
    const cutoff = clock.now() - idleMs;
    const out: CompletedTrace[] = [];
    for (let slot = activity.oldest(isLatestActivity); slot !== undefined && slots.lastArrivalMs[slot]! <= cutoff; slot = activity.oldest(isLatestActivity)) {
      complete(slot, 'idle', out);
    }
    activity.compact(slots.size, activityByAge);
    return out;
  };

  const flush = (): CompletedTrace[] => {
    const out: CompletedTrace[] = [];
    // Every pending trace has its latest entry in `activity`: completed least recently active first.
    for (let slot = activity.oldest(isLatestActivity); slot !== undefined; slot = activity.oldest(isLatestActivity)) complete(slot, 'flush', out);
    heap.clear();
    activity.clear();
    slots.reset();
    return out;
  };

  return {
    add,
    tick,
    flush,
    earlierTraces,
    stats: () => ({ pendingTraces: slots.size, pendingSpans, completed: { ...completed }, lateSpans, duplicateSpans, lateTraces: { joins: lateTraces[JOINS]!, maybe: lateTraces[MAYBE]!, fragment: lateTraces[FRAGMENT]! }, watermarkMs: watermark() }),
    checkIntervalMs: Math.min(MAX_CHECK_INTERVAL_MS, Math.max(MIN_CHECK_INTERVAL_MS, Math.floor(idleMs / CHECKS_PER_IDLE))),
  };
}
