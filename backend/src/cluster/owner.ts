import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { applyPathParameters, silentLogger, type Chain, type LearnedPathParameter, type Logger } from '@conduct/processor';
import type { Verdict } from '../alerts/model.js';
import { announce, type AlertEmitter, type Detection, type LateChange } from '../detect/index.js';
import { FencedError, type ClusterStore, type DetectionCheckpoint, type DetectionState, type HandedOff, type Lease } from '../store/index.js';
import { decodeLateChange, HANDOFF_KINDS, type FeedbackItem, type SerialLateChange } from './handoff.js';

/** Items read from a partition's queue at a time. */
export const READ_BATCH = 500;
/** Wait after a failed round before the partition is tried again (its detection reloaded). */
const RETRY_MS = 500;

/** Builds detection over the given state for the given partitions (their baselines loaded). */
export type DetectionFactory = (state: DetectionState, partitions: readonly number[]) => Promise<Detection>;

export interface OwnerOptions {
  store: ClusterStore;
  /** The backend's detection state; commits go through the fence instead of its `checkpoint`. */
  state: DetectionState;
  createDetection: DetectionFactory;
  /** Announces alerts (the engine's listeners: sinks, live UI), after their commit. */
  emitter: AlertEmitter;
  registry: Registry;
  logger?: Logger;
  /**
   * A checkpoint of this partition was refused by the epoch fence: another instance took it while
   * this one was not looking (hung past `cluster.leaseTimeout`). The owner has stopped working on
   * it; the membership gives the lease up.
   */
  onFenced?(partition: number): void;
}

/** Stage 2 of the partitions this instance owns: learn, detect and alert, in hand-off order. */
export interface OwnerStage {
  /** The leases held now: detection is rebuilt over their baselines when the set changes (in the background: resolves once they are in place). */
  setLeases(leases: ReadonlyMap<number, Lease>): Promise<void>;
  /** Finishes the work in progress on these partitions and stops working on them. */
  release(partitions: readonly number[]): Promise<void>;
  /** Items may be waiting on these partitions (all owned ones when absent). */
  wake(partitions?: readonly number[]): void;
  /** The detection over the owned partitions' baselines, undefined while it is being rebuilt. */
  detection(): Detection | undefined;
  /** Resolves when every owned partition's queue, as it was when called, has been analysed. */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The owner loop. One round reads each woken partition's items after its committed offset and
 * analyses them in order: consecutive chains as one batch, later parts of traces, verdicts. Each
 * analysis commits its detection checkpoint together with the partition's new offset, fenced by
 * the lease epoch (ClusterStore.commitAnalysis); its alerts are announced after that commit. A
 * failed round (the database out of reach, the lease taken over) throws the in-memory state away:
 * detection is rebuilt from the store and the partition goes on from its committed offset, so
 * nothing is learned twice.
 */
export function createOwnerStage(options: OwnerOptions): OwnerStage {
  const { store, emitter } = options;
  const logger = options.logger ?? silentLogger;
  const metrics = ownerMetrics(options.registry);
  let leases = new Map<number, Lease>();
  let detection: Detection | undefined;
  /** The leases `detection` was built over (their partitions' baselines as committed then). */
  let built: ReadonlyMap<number, Lease> = new Map();
  let stale = true;
  const committed = new Map<number, number>();
  const woken = new Set<number>();
  let loop: Promise<void> | undefined;
  /** The round in progress (the loop runs rounds back to back while items keep coming). */
  let current: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  /** The leases and offsets the next checkpoint commits with (set around each analysis). */
  let fence: Array<{ lease: Lease; offset?: number }> | undefined;

  const fencedState: DetectionState = {
    ...options.state,
    checkpoint: (cp: DetectionCheckpoint) => {
      if (!fence) return Promise.reject(new Error('a detection checkpoint outside an owned partition\'s analysis'));
      const started = performance.now();
      return store.commitAnalyses(fence, cp).then(() => metrics.checkpoint.observe((performance.now() - started) / 1000));
    },
  };

  const rebuild = async () => {
    const snapshot = leases;
    const owned = [...snapshot.keys()].sort((a, b) => a - b);
    detection = owned.length > 0 ? await options.createDetection(fencedState, owned) : undefined;
    committed.clear();
    for (const p of await store.partitions()) if (snapshot.has(p.partition)) committed.set(p.partition, p.committed);
    for (const p of owned) woken.add(p);
    built = snapshot;
    // Leases that changed meanwhile (setLeases, release, a fence) need another rebuild.
    stale = leases !== snapshot;
  };

  const analyseRun = async (partition: number, lease: Lease, run: HandedOff[]) => {
    const d = detection!;
    const last = run[run.length - 1]!.seq;
    fence = [{ lease, offset: last }];
    try {
      const kind = run[0]!.kind;
      if (kind === 'chains') {
        announce(await d.analyse(run.flatMap((i) => i.body as Chain[])), emitter);
      } else if (kind === 'late') {
        const changes: LateChange[] = run.flatMap((i) => (i.body as SerialLateChange[]).map(decodeLateChange));
        announce(await d.analyseLate(changes), emitter);
      } else if (kind === 'feedback') {
        for (const [i, item] of run.entries()) {
          fence = [{ lease, offset: i === run.length - 1 ? last : item.seq }];
          const f = item.body as FeedbackItem;
          const alert = await d.feedback(f.alertId, f.verdict as Verdict);
          if (alert) emitter.emit(alert, 'feedback');
        }
      } else if (kind === 'parameters') {
        const learned = run.flatMap((i) => i.body as LearnedPathParameter[]);
        await d.renameOperations((op, peer) => applyPathParameters(learned, op, peer));
        // The renamed baselines (when any) and the offset, fenced.
        await d.flush();
        await store.commitAnalysis(lease, {}, last);
      } else {
        // An item of a newer version: skipped with its offset (counted in the log).
        logger.warn({ partition, kind }, 'hand-off item of an unknown kind skipped');
        await store.commitAnalysis(lease, {}, last);
      }
    } finally {
      fence = undefined;
    }
    committed.set(partition, last);
  };

  /** Consecutive items of one kind are analysed together ('feedback' one by one inside). */
  const runsOf = (items: HandedOff[]): HandedOff[][] => {
    const runs: HandedOff[][] = [];
    for (const item of items) {
      const kind = (HANDOFF_KINDS as readonly string[]).includes(item.kind) ? item.kind : `?${item.kind}`;
      const prev = runs.at(-1);
      if (prev && prev[0]!.kind === kind && kind !== '?') prev.push(item);
      else runs.push([item]);
    }
    return runs;
  };

  /** The fence refused a commit: what it analysed is thrown away (never announced) and the partition left to its new owner. */
  const fenced = (partition: number) => {
    metrics.fenced.inc();
    const next = new Map(leases);
    next.delete(partition);
    leases = next;
    logger.warn({ partition }, 'owner checkpoint refused by the lease epoch: another instance took the partition; its analysis is dropped and the partition given up');
    options.onFenced?.(partition);
  };

  const processPartition = async (partition: number) => {
    for (;;) {
      const lease = leases.get(partition);
      // Only with the lease the detection was built for: a partition taken (again) since waits
      // for the rebuild that loads its committed baselines.
      if (!lease || built.get(partition)?.epoch !== lease.epoch || stopped) return;
      const after = committed.get(partition) ?? 0;
      const items = await store.readHandOff(partition, after, READ_BATCH);
      if (items.length === 0) return;
      metrics.backlogSeconds.set(Math.max(0, (Date.now() - items[0]!.handedMs) / 1000));
      for (const run of runsOf(items)) await analyseRun(partition, lease, run);
      if (items.length < READ_BATCH) return;
    }
  };

  /**
   * Partitions whose waiting items are all chain batches (the usual case) are analysed as one
   * batch with one fenced checkpoint over all their offsets, instead of one transaction each.
   * Returns the partitions left to processPartition (other kinds of items waiting, or more than
   * one read's worth).
   */
  const analyseTogether = async (todo: readonly number[]): Promise<number[]> => {
    const ready = todo.filter((p) => {
      const lease = leases.get(p);
      return lease !== undefined && built.get(p)?.epoch === lease.epoch;
    });
    if (ready.length < 2 || stopped) return [...todo];
    const items = await store.readHandOffMany(ready.map((p) => ({ partition: p, after: committed.get(p) ?? 0 })), READ_BATCH);
    const byPartition = new Map<number, HandedOff[]>();
    for (const item of items) {
      const list = byPartition.get(item.partition);
      if (list) list.push(item);
      else byPartition.set(item.partition, [item]);
    }
    const rest = todo.filter((p) => !ready.includes(p));
    const together: number[] = [];
    for (const [p, list] of byPartition) {
      if (list.length < READ_BATCH && list.every((i) => i.kind === 'chains')) together.push(p);
      else rest.push(p);
    }
    if (together.length === 0) return rest;
    const oldest = Math.min(...together.map((p) => byPartition.get(p)![0]!.handedMs));
    metrics.backlogSeconds.set(Math.max(0, (Date.now() - oldest) / 1000));
    fence = together.map((p) => ({ lease: leases.get(p)!, offset: byPartition.get(p)!.at(-1)!.seq }));
    try {
      announce(await detection!.analyse(together.flatMap((p) => byPartition.get(p)!.flatMap((i) => i.body as Chain[]))), emitter);
    } finally {
      fence = undefined;
    }
    for (const p of together) committed.set(p, byPartition.get(p)!.at(-1)!.seq);
    return rest;
  };

  /** A failed analysis: detection is rebuilt; a fenced partition is given up, the others go on from their committed offsets. */
  const failed = (err: unknown, partitions: readonly number[]): unknown => {
    stale = true;
    const refused = fencedPartition(err);
    for (const p of partitions) {
      if (p === refused) fenced(p);
      else if (leases.has(p)) woken.add(p);
    }
    if (refused === undefined) {
      logger.warn({ err: String(err), partitions }, 'owner round failed; detection is reloaded and the partitions go on from their committed offsets');
    }
    return err;
  };

  const round = async () => {
    if (stale) await rebuild();
    // Partitions with a backlog by the stored heads (the polling fallback) and those woken.
    for (const p of await store.partitions()) {
      if (leases.has(p.partition) && p.head > (committed.get(p.partition) ?? p.committed)) woken.add(p.partition);
    }
    let backlog = 0;
    const todo = [...woken].filter((p) => leases.has(p)).sort((a, b) => a - b);
    woken.clear();
    let rest: number[];
    try {
      rest = await analyseTogether(todo);
    } catch (err) {
      throw failed(err, todo);
    }
    for (const p of rest) {
      try {
        await processPartition(p);
      } catch (err) {
        throw failed(err, [p]);
      }
    }
    for (const p of await store.partitions()) if (leases.has(p.partition)) backlog += Math.max(0, p.head - p.committed);
    metrics.backlogItems.set(backlog);
    if (backlog === 0) metrics.backlogSeconds.set(0);
  };

  function kick(): Promise<void> {
    if (stopped) return Promise.resolve();
    if (loop) {
      again = true;
      return loop;
    }
    loop = (async () => {
      do {
        again = false;
        try {
          current = round();
          await current;
        } catch {
          clearTimeout(retryTimer);
          retryTimer = setTimeout(() => void kick(), RETRY_MS);
          retryTimer.unref();
          break;
        }
      } while (again && !stopped);
      loop = undefined;
    })();
    return loop;
  }

  return {
    async setLeases(next) {
      const same = next.size === leases.size && [...next].every(([p, l]) => leases.get(p)?.epoch === l.epoch);
      if (same) return;
      // As in release: the round in progress, not the loop, is waited for.
      if (loop) await current?.catch(() => undefined);
      leases = new Map(next);
      stale = true;
      // Not awaited: under steady traffic the loop runs on, and the membership's round must not wait for it.
      void kick();
    },
    async release(partitions) {
      // Later rounds leave these partitions alone; the round in progress may be analysing one of
      // them, and is waited for (not the loop: under steady traffic it runs round after round).
      const next = new Map(leases);
      for (const p of partitions) next.delete(p);
      leases = next;
      stale = true;
      if (loop) await current?.catch(() => undefined);
    },
    wake(partitions) {
      for (const p of partitions ?? [...leases.keys()]) if (leases.has(p)) woken.add(p);
      void kick();
    },
    detection: () => (stale ? undefined : detection),
    async drain() {
      for (const p of leases.keys()) woken.add(p);
      await kick();
      // A run already going when called may have missed items handed off just before: once more.
      await kick();
    },
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      if (loop) await loop.catch(() => undefined);
    },
  };
}

function ownerMetrics(registry: Registry) {
  return {
    backlogItems: new Gauge({
      name: 'conduct_cluster_handoff_backlog',
      help: 'Hand-off items (chain batches, later parts, verdicts) waiting for this instance in its partitions.',
      registers: [registry],
    }),
    backlogSeconds: new Gauge({
      name: 'conduct_cluster_handoff_backlog_seconds',
      help: 'Age of the oldest hand-off item this instance read last (0 when none waits).',
      registers: [registry],
    }),
    fenced: new Counter({
      name: 'conduct_cluster_fenced_commits_total',
      help: 'Owner checkpoints refused because the partition\'s lease epoch had moved (this instance was taken for dead and another owns the partition).',
      registers: [registry],
    }),
    checkpoint: new Histogram({
      name: 'conduct_cluster_checkpoint_seconds',
      help: 'Time of one fenced checkpoint (baseline deltas, alerts and the partition offset in one transaction).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}

/** The partition whose epoch fence refused the commit, when the error (or what it wraps) is that refusal. */
function fencedPartition(err: unknown): number | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof FencedError || (e as { name?: unknown }).name === 'FencedError') return (e as FencedError).partition;
  }
  return undefined;
}
