import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '@conduct/processor';
import type { ClusterStore, Lease, LeaseSession } from '../store/index.js';
import { HEARTBEATS_PER_TIMEOUT, type ClusterConfig } from './config.js';
import { assignPartitions, partitionOf } from './partition.js';

/** What the membership tells the owner stage. */
export interface MembershipHooks {
  /** The partitions this instance now holds (with their lease epochs) after a change. */
  onLeases(leases: ReadonlyMap<number, Lease>): Promise<void> | void;
  /** Called before partitions are given back: the owner stops working on them first. */
  beforeRelease(partitions: readonly number[]): Promise<void>;
  /** Hand-off items arrived for these partitions (a notification). */
  onHandOff(partitions: readonly number[]): void;
  /** A cluster flush was requested. */
  onFlushRequest(id: number): void;
}

export interface Membership {
  readonly instanceId: string;
  /** Held leases by partition. */
  leases(): ReadonlyMap<number, Lease>;
  /** Why the leases are not settled (this instance holds exactly its share), or undefined when they are. */
  unsettled(): string | undefined;
  /** Runs one round now (register or heartbeat, fence stale instances, rebalance). */
  tick(): Promise<void>;
  /**
   * The owner's commit on this partition was fenced: the lease is lost (another instance holds a
   * newer epoch). It is dropped and a round runs now (this instance was probably fenced out).
   */
  forfeit(partition: number): void;
  /** Resolves after the next completed round. */
  nextRound(): Promise<void>;
  /** Gives every partition back, leaves the cluster, closes the session. Safe twice. */
  stop(): Promise<void>;
}

export interface MembershipOptions {
  store: ClusterStore;
  config: ClusterConfig;
  instanceId: string;
  /** This instance's API address, announced to the others. */
  endpoint: string;
  registry: Registry;
  logger: Logger;
  hooks: MembershipHooks;
}

/**
 * One instance's membership of the cluster: a heartbeat every leaseTimeout/5, and in each round
 * the instances that are alive decide the assignment (partition.ts); this instance gives back
 * what is no longer its share and takes what is, each through the lease session's advisory lock
 * and a new epoch. Instances silent for `leaseTimeout` are fenced out (their session ended).
 */
export async function startMembership(options: MembershipOptions): Promise<Membership> {
  const { store, config, instanceId, logger, hooks } = options;
  const periodMs = Math.max(50, Math.floor(config.leaseTimeout / HEARTBEATS_PER_TIMEOUT));
  const metrics = membershipMetrics(options.registry);
  const leases = new Map<number, Lease>();
  let target: number[] = [];
  let session: LeaseSession | undefined;
  let registered = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  /** Heartbeats on their own timer: a round waiting for the owner to finish a partition must not look like silence. */
  let beat: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let roundWaiters: Array<() => void> = [];
  let lastError: string | undefined;

  await store.preparePartitions(config.partitions, (identity) => partitionOf(identity, config.partitions));

  const openSession = async () => {
    const s = await store.openSession(instanceId, {
      onHandOff: (partitions) => hooks.onHandOff(partitions),
      onFlushRequest: (id) => hooks.onFlushRequest(id),
      onBroken: () => schedule(0),
    });
    session = s;
    registered = false;
  };

  /** The session broke: every lock it held is gone. */
  const dropAll = async () => {
    if (leases.size > 0) {
      metrics.moves.inc({ kind: 'lost' }, leases.size);
      logger.warn({ partitions: leases.size }, 'cluster lease session lost: partitions dropped until it is back');
      leases.clear();
      metrics.owned.set(0);
      await hooks.onLeases(new Map(leases));
    }
    await session?.close();
    session = undefined;
  };

  const rebalance = async (s: LeaseSession) => {
    const live = await store.liveInstances(config.leaseTimeout);
    const ids = live.map((i) => i.id);
    if (!ids.includes(instanceId)) ids.push(instanceId);
    const owners = new Map<number, string>();
    for (const record of await store.partitions()) if (record.owner !== undefined) owners.set(record.partition, record.owner);
    for (const p of leases.keys()) owners.set(p, instanceId);
    target = assignPartitions(ids, config.partitions, owners).get(instanceId) ?? [];
    const wanted = new Set(target);
    const giving = [...leases.keys()].filter((p) => !wanted.has(p));
    let changed = false;
    if (giving.length > 0) {
      await hooks.beforeRelease(giving);
      for (const p of giving) {
        await s.release(p);
        leases.delete(p);
      }
      metrics.moves.inc({ kind: 'released' }, giving.length);
      changed = true;
    }
    let taken = 0;
    for (const p of target) {
      if (leases.has(p)) continue;
      const lease = await s.tryAcquire(p);
      if (lease) {
        leases.set(p, lease);
        taken++;
      }
    }
    if (taken > 0) {
      metrics.moves.inc({ kind: 'acquired' }, taken);
      changed = true;
    }
    metrics.owned.set(leases.size);
    if (changed) {
      logger.info({ owned: leases.size, share: target.length, instances: ids.length, released: giving.length, acquired: taken }, 'cluster partitions moved');
      await hooks.onLeases(new Map(leases));
    }
  };

  const round = async () => {
    try {
      if (session && !session.alive) await dropAll();
      if (!session) await openSession();
      const s = session!;
      if (!registered || !(await s.heartbeat())) {
        await store.register({ id: instanceId, endpoint: options.endpoint, lockPid: s.pid });
        registered = true;
      }
      const fenced = await store.fenceStale(config.leaseTimeout);
      if (fenced.length > 0) logger.warn({ instances: fenced }, 'cluster instances silent past cluster.leaseTimeout were fenced out');
      await rebalance(s);
      lastError = undefined;
    } catch (err) {
      if (lastError === undefined) logger.warn({ err: String(err) }, 'cluster round failed; trying again');
      lastError = String(err);
    }
  };

  function schedule(delayMs: number) {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void runRound(), delayMs);
    timer.unref();
  }

  async function runRound(): Promise<void> {
    if (running) return running;
    running = (async () => {
      await round();
      running = undefined;
      const waiters = roundWaiters;
      roundWaiters = [];
      for (const w of waiters) w();
      schedule(periodMs);
    })();
    return running;
  }

  await runRound();
  beat = setInterval(() => {
    const s = session;
    if (!s || !s.alive || !registered) return;
    s.heartbeat().then(
      (known) => {
        if (known) return;
        // Fenced out (taken for dead): register again and rebalance now.
        registered = false;
        schedule(0);
      },
      () => schedule(0),
    );
  }, periodMs);
  beat.unref();

  return {
    instanceId,
    leases: () => leases,
    unsettled() {
      if (lastError !== undefined) return `cluster coordination failing: ${lastError}`;
      const missing = target.filter((p) => !leases.has(p)).length;
      if (missing > 0) return `holding ${target.length - missing} of the ${target.length} partitions assigned to this instance`;
      return undefined;
    },
    tick: async () => {
      if (running) await running;
      await runRound();
    },
    forfeit(partition) {
      if (!leases.delete(partition)) return;
      metrics.moves.inc({ kind: 'lost' });
      metrics.owned.set(leases.size);
      // Its advisory lock, when the session still holds it, goes with the session the round finds broken, or here.
      if (session?.alive) void session.release(partition).catch(() => undefined);
      schedule(0);
    },
    nextRound: () => new Promise<void>((resolve) => roundWaiters.push(resolve)),
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      clearInterval(beat);
      if (running) await running.catch(() => undefined);
      try {
        if (leases.size > 0) await hooks.beforeRelease([...leases.keys()]);
        await store.deregister(instanceId);
      } catch (err) {
        logger.warn({ err: String(err) }, 'leaving the cluster failed (the others fence this instance out after cluster.leaseTimeout)');
      }
      metrics.moves.inc({ kind: 'released' }, leases.size);
      leases.clear();
      metrics.owned.set(0);
      // Closing the session drops every lock at once.
      await session?.close();
      for (const w of roundWaiters.splice(0)) w();
    },
  };
}

function membershipMetrics(registry: Registry) {
  const owned = new Gauge({ name: 'conduct_cluster_partitions_owned', help: 'Partitions this instance holds the lease of.', registers: [registry] });
  const moves = new Counter({
    name: 'conduct_cluster_lease_moves_total',
    help: 'Partition leases this instance acquired, released (rebalance or stop) or lost (its lease session broke).',
    labelNames: ['kind'],
    registers: [registry],
  });
  for (const kind of ['acquired', 'released', 'lost']) moves.inc({ kind }, 0);
  return { owned, moves };
}
