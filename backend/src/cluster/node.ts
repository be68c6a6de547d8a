import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import type { Logger } from '@conduct/processor';
import { silentLogger } from '@conduct/processor';
import type { Alert, Verdict } from '../alerts/model.js';
import type { AlertEmitter } from '../detect/index.js';
import type { Analyser } from '../engine/index.js';
import type { ClusterStore, DetectionState } from '../store/index.js';
import { HANDOFF_POLL_MS, type ClusterConfig } from './config.js';
import { createHandOffAnalyser, type FeedbackItem } from './handoff.js';
import { createClusterInsights, type ClusterInsights } from './insights.js';
import { startMembership, type Membership } from './membership.js';
import { createOwnerStage, type DetectionFactory, type OwnerStage } from './owner.js';
import { partitionOf } from './partition.js';
import { clusterView, type ClusterView } from './view.js';

/** Polls of a waiting flush or verdict (ms). */
const WAIT_POLL_MS = 25;

export interface ClusterNodeOptions {
  store: ClusterStore;
  config: ClusterConfig;
  /** The backend's detection state (the owner commits through it, fenced; the API reads it). */
  state: DetectionState;
  createDetection: DetectionFactory;
  emitter: AlertEmitter;
  registry: Registry;
  logger?: Logger;
  /** This instance's id; host name, pid and a random suffix by default. */
  instanceId?: string;
}

/** One instance's part in the cluster, before it joins (the hand-off analyser goes into the engine first). */
export interface ClusterNode {
  readonly instanceId: string;
  /** Stage 1's end, for the engine. */
  readonly handOff: Analyser;
  /** Identity learning state read from the owners' checkpoints (the API of any instance). */
  readonly insights: ClusterInsights;
  /**
   * Joins the cluster with this API endpoint: membership, leases, the owner loop. `localFlush`
   * completes every pending trace of this instance and hands its chains off.
   */
  join(endpoint: string, localFlush: () => Promise<void>): Promise<void>;
  /** Why the leases are not settled yet, or undefined (readiness). */
  unsettled(): string | undefined;
  /** `GET /api/v1/cluster`. */
  view(): Promise<ClusterView>;
  /**
   * Cluster-wide flush: resolves when every live instance has stitched and handed off what it had
   * acknowledged before the call, and every owner has analysed what was handed to it by then.
   * Rejects with a FlushIncompleteError naming the instances and partitions not caught up when
   * that takes longer than `timeoutMs` (by default twice `cluster.leaseTimeout` and 30 s: time
   * enough for a hung or dead instance's partitions to move and be caught up).
   */
  flush(timeoutMs?: number): Promise<void>;
  /** An operator's verdict, applied by the owner of the alert's identity in order with its chains. */
  feedback(alertId: string, verdict: Verdict): Promise<Alert | undefined>;
  /** Leaves the cluster (partitions given back at once). Safe twice. */
  stop(): Promise<void>;
}

export function createClusterNode(options: ClusterNodeOptions): ClusterNode {
  const { store, config, state } = options;
  const logger = options.logger ?? silentLogger;
  const instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const waitLimitMs = defaultFlushTimeout(config);
  const owner: OwnerStage = createOwnerStage({
    store,
    state,
    createDetection: options.createDetection,
    emitter: options.emitter,
    registry: options.registry,
    logger,
    onFenced: (partition) => membership?.forfeit(partition),
  });
  const insights = createClusterInsights({
    store,
    state,
    partitions: config.partitions,
    createDetection: options.createDetection,
  });
  let membership: Membership | undefined;
  let poller: NodeJS.Timeout | undefined;
  let localFlush: () => Promise<void> = async () => undefined;
  /** Flush requests answered, and the answer in progress. */
  let answered = 0;
  let answering: Promise<void> = Promise.resolve();
  let stopped = false;

  const answerFlush = (id: number): Promise<void> => {
    answering = answering.then(async () => {
      if (id <= answered || stopped) return;
      await localFlush();
      await store.acknowledgeFlush(instanceId, id);
      answered = id;
    });
    return answering.catch((err: unknown) => logger.warn({ err: String(err), id }, 'answering a cluster flush failed'));
  };

  /** Polling fallback of the notifications: flush requests and hand-off items. */
  const poll = async () => {
    try {
      const latest = await store.latestFlush();
      if (latest > answered) await answerFlush(latest);
      owner.wake();
    } catch {
      // The database is out of reach: the next poll tries again.
    }
  };

  const waitFor = async (what: string, done: () => Promise<boolean>) => {
    const deadline = Date.now() + waitLimitMs;
    for (;;) {
      if (await done()) return;
      if (Date.now() > deadline) throw new Error(`cluster: ${what} did not happen within ${waitLimitMs} ms`);
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
    }
  };

  /** The cluster flush's steps, each bounded by the deadline; what is not caught up at it is named. */
  const flushBy = async (deadline: number, limitMs: number) => {
    const incomplete = (lagging: Lagging) => new FlushIncompleteError(limitMs, lagging);
    const id = await beforeDeadline(store.requestFlush(), deadline, () => incomplete({ instances: [], partitions: [] }));
    await beforeDeadline(answerFlush(id), deadline, () => incomplete({ instances: [{ id: instanceId, ageMs: 0 }], partitions: [] }));
    for (;;) {
      const live = await store.liveInstances(config.leaseTimeout);
      const behind = live.filter((i) => i.flushed < id);
      if (behind.length === 0) break;
      if (Date.now() > deadline) throw incomplete({ instances: behind.map((i) => ({ id: i.id, ageMs: Date.now() - i.lastHeartbeatMs })), partitions: [] });
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
    }
    const heads = new Map((await store.partitions()).map((p) => [p.partition, p.head]));
    owner.wake();
    await beforeDeadline(owner.drain(), deadline, () => incomplete({ instances: [], partitions: [] })).catch((err: unknown) => {
      // This instance's own partitions are judged with the others below.
      if (!(err instanceof FlushIncompleteError)) throw err;
    });
    for (;;) {
      const rows = await store.partitions();
      const behind = rows.filter((p) => p.committed < (heads.get(p.partition) ?? 0));
      if (behind.length === 0) return;
      if (Date.now() > deadline) {
        throw incomplete({
          instances: [],
          partitions: behind.map((p) => ({ partition: p.partition, owner: p.owner, items: (heads.get(p.partition) ?? 0) - p.committed })),
        });
      }
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
    }
  };

  return {
    instanceId,
    handOff: createHandOffAnalyser(store, instanceId, config.partitions),
    insights,
    async join(endpoint, flushLocal) {
      localFlush = flushLocal;
      membership = await startMembership({
        store,
        config,
        instanceId,
        endpoint,
        registry: options.registry,
        logger,
        hooks: {
          onLeases: (leases) => owner.setLeases(leases),
          beforeRelease: (partitions) => owner.release(partitions),
          onHandOff: (partitions) => owner.wake(partitions),
          onFlushRequest: (id) => void answerFlush(id),
        },
      });
      insights.useOwner((partition) => membership?.leases().has(partition) ?? false, owner);
      answered = await store.latestFlush();
      poller = setInterval(() => void poll(), HANDOFF_POLL_MS);
      poller.unref();
      logger.info({ instance: instanceId, partitions: config.partitions, leaseTimeoutMs: config.leaseTimeout }, 'joined the cluster');
    },
    unsettled: () => (membership ? membership.unsettled() : 'not joined yet'),
    async view() {
      const [instances, partitions] = await Promise.all([store.liveInstances(config.leaseTimeout), store.partitions()]);
      return clusterView(instances, partitions);
    },
    async flush(timeoutMs = waitLimitMs) {
      await flushBy(Date.now() + timeoutMs, timeoutMs);
      insights.invalidate();
    },
    async feedback(alertId, verdict) {
      const alert = await state.getAlert(alertId);
      if (!alert) return undefined;
      const partition = partitionOf(alert.identity, config.partitions);
      const item: FeedbackItem = { alertId, verdict, requestId: randomBytes(8).toString('hex') };
      await store.handOff([{ partition, kind: 'feedback', body: item }], instanceId);
      // The item's number is at most the head read after its commit.
      const head = (await store.partitions()).find((r) => r.partition === partition)?.head ?? 0;
      owner.wake([partition]);
      await waitFor('the verdict reaching the owner', async () => ((await store.partitions()).find((r) => r.partition === partition)?.committed ?? 0) >= head);
      const applied = await state.getAlert(alertId);
      insights.invalidate();
      return applied;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(poller);
      await answering.catch(() => undefined);
      await membership?.stop();
      await owner.stop();
    },
  };
}

/** The default bound of a cluster flush: a hung instance is fenced after one lease timeout, its stuck transactions ended after another. */
export const defaultFlushTimeout = (config: ClusterConfig) => 2 * config.leaseTimeout + 30_000;

/** What a flush found not caught up at its deadline. */
export interface Lagging {
  /** Live instances that had not stitched what they acknowledged (with their heartbeat's age). */
  instances: Array<{ id: string; ageMs: number }>;
  /** Partitions whose owner had not analysed what was handed off before the flush. */
  partitions: Array<{ partition: number; owner?: string; items: number }>;
}

/** Partitions named in the message at most (the error's `lagging` has them all). */
const NAMED_PARTITIONS = 16;

/** A cluster flush that did not complete within its bound, naming what was not caught up. */
export class FlushIncompleteError extends Error {
  override readonly name = 'FlushIncompleteError';
  constructor(
    readonly timeoutMs: number,
    readonly lagging: Lagging,
  ) {
    super(describeLagging(timeoutMs, lagging));
  }
}

function describeLagging(timeoutMs: number, lagging: Lagging): string {
  const parts: string[] = [];
  if (lagging.instances.length > 0) {
    parts.push(
      `instances that have not stitched what they acknowledged: ${lagging.instances.map((i) => `${i.id} (last heartbeat ${(i.ageMs / 1000).toFixed(1)} s ago)`).join(', ')}`,
    );
  }
  if (lagging.partitions.length > 0) {
    const named = lagging.partitions.slice(0, NAMED_PARTITIONS).map((p) => `${p.partition} (owner ${p.owner ?? 'none'}, ${p.items} items behind)`);
    const more = lagging.partitions.length > NAMED_PARTITIONS ? ` and ${lagging.partitions.length - NAMED_PARTITIONS} more` : '';
    parts.push(`partitions not analysed up to the flush: ${named.join(', ')}${more}`);
  }
  if (parts.length === 0) parts.push('this instance could not reach the database');
  return `cluster flush not complete within ${timeoutMs} ms: ${parts.join('; ')}`;
}

/** `work`, or the error `late()` makes once the deadline passes first. */
async function beforeDeadline<T>(work: Promise<T>, deadline: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
