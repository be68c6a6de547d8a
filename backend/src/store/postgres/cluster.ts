import pg from 'pg';
import type { Logger } from '@conduct/processor';
import type { ClusterInstanceRecord, ClusterStore, HandedOff, LeaseSession, PartitionRecord } from '../contracts.js';
import { FencedError } from '../fenced-error.js';
import { CONNECT_TIMEOUT_MS, PG_TYPES, POOL_APPLICATION_NAME } from './connection.js';
import { checkpointStatements } from './detection-state.js';
import type { Sql } from './sql.js';
import { HANDOFF_CHANNEL, writeHandOff } from './handoff.js';

/** First key of the two-key advisory locks of partitions ('clus'); the second is the partition. */
export const PARTITION_LOCK_CLASS = 0x636c7573;
/** Notification channels. */
export { HANDOFF_CHANNEL };
export const FLUSH_CHANNEL = 'conduct_flush';

const secondsOf = (ms: number) => Math.max(0.001, ms / 1000);

/**
 * The cluster ability of the PostgreSQL backend (migration 040). Queries go through the store's
 * pool; a lease session is a connection of its own (session advisory locks live as long as it).
 * `retrying` is the backend's wait-and-retry for writes while the server is out of reach.
 */
export function createPostgresCluster(
  db: Sql,
  url: string,
  logger: Logger,
  retrying: <T>(write: () => Promise<T>) => Promise<T>,
): ClusterStore {
  /**
   * A process stopped between two statements of a transaction (SIGSTOP, a debugger, a VM paused)
   * keeps that transaction's row locks: an owner's fenced commit holds its partition's row, which
   * the next owner must update to take the partition; a stage-1 write holds hand-off heads and
   * identity rows. A conduct connection idle inside a transaction for a whole lease timeout is
   * taken for such a one and ended, which rolls the transaction back (when the process goes on,
   * its next statement fails and the write is retried, fenced by the new epoch).
   */
  const endStuckTransactions = async (timeoutMs: number) => {
    const ended = await db.query<{ pid: number }>(
      `WITH stuck AS MATERIALIZED (
         SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()
           AND state IN ('idle in transaction', 'idle in transaction (aborted)')
           AND state_change < now() - make_interval(secs => $2)
       )
       SELECT pid FROM stuck WHERE pg_terminate_backend(pid)`,
      [POOL_APPLICATION_NAME, secondsOf(timeoutMs)],
    );
    if (ended.length > 0) logger.warn({ sessions: ended.map((r) => r.pid) }, 'ended conduct transactions idle past cluster.leaseTimeout (a hung instance\'s)');
  };

  /** ClusterStore.commitAnalyses: one fenced transaction for the analysis of one or more partitions. */
  const commitAnalyses: ClusterStore['commitAnalyses'] = async (fences, checkpoint) => {
    // Every value is read now, before the first wait (the detection-state contract).
    const statements = checkpointStatements(checkpoint);
    const sorted = [...fences].sort((a, b) => a.lease.partition - b.lease.partition);
    const moved = sorted.filter((f) => f.offset !== undefined);
    await retrying(() =>
      db.transaction(async (tx) => {
        // Rows locked in partition order (no deadlock with another owner's commit or a taker).
        const rows = await tx.query<{ partition: number; epoch: number }>(
          'SELECT partition, epoch FROM cluster_partitions WHERE partition = ANY($1::int[]) ORDER BY partition FOR UPDATE',
          [sorted.map((f) => f.lease.partition)],
        );
        const epochs = new Map(rows.map((r) => [r.partition, r.epoch]));
        for (const { lease } of sorted) if (epochs.get(lease.partition) !== lease.epoch) throw new FencedError(lease.partition, lease.epoch);
        for (const [text, values] of statements) await tx.query(text, values);
        if (moved.length > 0) {
          const partitions = moved.map((f) => f.lease.partition);
          const offsets = moved.map((f) => f.offset!);
          await tx.query(
            'UPDATE cluster_partitions p SET committed = greatest(p.committed, o.upto) FROM unnest($1::int[], $2::int8[]) AS o(partition, upto) WHERE p.partition = o.partition',
            [partitions, offsets],
          );
          await tx.query(
            'DELETE FROM cluster_handoff c USING unnest($1::int[], $2::int8[]) AS o(partition, upto) WHERE c.partition = o.partition AND c.seq <= o.upto',
            [partitions, offsets],
          );
        }
      }),
    );
  };

  return {
    async preparePartitions(partitions, groupOf) {
      await db.transaction(async (tx) => {
        await tx.query('LOCK TABLE cluster_partitions IN EXCLUSIVE MODE');
        const [row] = await tx.query<{ n: number }>('SELECT count(*)::int8 AS n FROM cluster_partitions');
        const stored = row?.n ?? 0;
        if (stored === 0) {
          await tx.query('INSERT INTO cluster_partitions (partition) SELECT generate_series(0, $1::int - 1)', [partitions]);
          await tx.query('INSERT INTO cluster_heads (partition) SELECT generate_series(0, $1::int - 1)', [partitions]);
          const ids = (await tx.query<{ identity: string }>('SELECT identity FROM baseline_identities')).map((r) => r.identity);
          if (ids.length > 0) {
            await tx.query(
              'UPDATE baseline_identities b SET grp = g.grp FROM unnest($1::text[], $2::int[]) AS g(identity, grp) WHERE b.identity = g.identity',
              [ids, ids.map(groupOf)],
            );
          }
        } else if (stored !== partitions) {
          throw new Error(`cluster.partitions: this database's cluster has ${stored} partitions, the configuration says ${partitions} (every instance of a cluster must use the same count)`);
        }
      });
    },

    openSession: (instanceId, options = {}) => openLeaseSession(url, instanceId, logger, options),

    async register({ id, endpoint, lockPid }) {
      await db.query(
        `INSERT INTO cluster_instances (id, endpoint, lock_pid) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET endpoint = excluded.endpoint, lock_pid = excluded.lock_pid, last_heartbeat = now()`,
        [id, endpoint, lockPid],
      );
    },

    async deregister(instanceId) {
      await db.query('DELETE FROM cluster_instances WHERE id = $1', [instanceId]);
    },

    async liveInstances(timeoutMs) {
      // Alive: a recent heartbeat, and its lease session still open (a process killed with
      // SIGKILL loses its session at once: its partitions need not wait for the timeout).
      const rows = await db.query<{ id: string; endpoint: string; hb: number; flushed: number }>(
        `SELECT id, endpoint, extract(epoch FROM last_heartbeat) * 1000 AS hb, flushed FROM cluster_instances i
         WHERE last_heartbeat > now() - make_interval(secs => $1)
           AND (lock_pid IS NULL OR EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = i.lock_pid))
         ORDER BY id`,
        [secondsOf(timeoutMs)],
      );
      return rows.map((r): ClusterInstanceRecord => ({ id: r.id, endpoint: r.endpoint, lastHeartbeatMs: Number(r.hb), flushed: r.flushed }));
    },

    async fenceStale(timeoutMs) {
      const rows = await db.query<{ id: string; lock_pid: number | null }>(
        `DELETE FROM cluster_instances i
         WHERE last_heartbeat <= now() - make_interval(secs => $1)
            OR (lock_pid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = i.lock_pid))
         RETURNING id, lock_pid`,
        [secondsOf(timeoutMs)],
      );
      for (const row of rows) {
        if (row.lock_pid === null) continue;
        // A hung instance still holding its locks: its session is ended, so its locks drop.
        await db.query('SELECT pg_terminate_backend($1)', [row.lock_pid]).catch((err: unknown) =>
          logger.warn({ err: String(err), instance: row.id }, 'could not end a stale instance\'s lease session'),
        );
      }
      await endStuckTransactions(timeoutMs);
      return rows.map((r) => r.id);
    },

    async partitions() {
      const rows = await db.query<{ partition: number; owner: string | null; epoch: number; head: number; committed: number }>(
        'SELECT p.partition, p.owner, p.epoch, h.head, p.committed FROM cluster_partitions p JOIN cluster_heads h USING (partition) ORDER BY p.partition',
      );
      return rows.map((r): PartitionRecord => ({ partition: r.partition, ...(r.owner !== null ? { owner: r.owner } : {}), epoch: r.epoch, head: r.head, committed: r.committed }));
    },

    async handOff(items, fromInstance) {
      if (items.length === 0) return;
      await retrying(() => db.transaction((tx) => writeHandOff(tx, items, fromInstance)));
    },

    async readHandOff(partition, after, limit) {
      const rows = await db.query<{ seq: number; kind: string; body: unknown; handed_ms: number }>(
        'SELECT seq, kind, body, handed_ms FROM cluster_handoff WHERE partition = $1 AND seq > $2 ORDER BY seq LIMIT $3',
        [partition, after, limit],
      );
      return rows.map((r): HandedOff => ({ partition, seq: r.seq, kind: r.kind, body: r.body, handedMs: r.handed_ms }));
    },

    async readHandOffMany(from, limit) {
      if (from.length === 0) return [];
      const rows = await db.query<{ partition: number; seq: number; kind: string; body: unknown; handed_ms: number }>(
        `SELECT q.partition, h.seq, h.kind, h.body, h.handed_ms FROM unnest($1::int[], $2::int8[]) AS q(partition, after)
         CROSS JOIN LATERAL (SELECT seq, kind, body, handed_ms FROM cluster_handoff c WHERE c.partition = q.partition AND c.seq > q.after ORDER BY seq LIMIT $3) h
         ORDER BY q.partition, h.seq`,
        [from.map((f) => f.partition), from.map((f) => f.after), limit],
      );
      return rows.map((r): HandedOff => ({ partition: r.partition, seq: r.seq, kind: r.kind, body: r.body, handedMs: r.handed_ms }));
    },

    commitAnalysis: (lease, checkpoint, offset) => commitAnalyses([{ lease, ...(offset !== undefined ? { offset } : {}) }], checkpoint),

    commitAnalyses,

    async requestFlush() {
      const [row] = await db.transaction(async (tx) => {
        const rows = await tx.query<{ id: number }>('INSERT INTO cluster_flushes DEFAULT VALUES RETURNING id');
        await tx.query('SELECT pg_notify($1, $2)', [FLUSH_CHANNEL, String(rows[0]!.id)]);
        // Older requests are answered by this one's acknowledgements: keep the table short.
        await tx.query('DELETE FROM cluster_flushes WHERE id < $1', [rows[0]!.id]);
        return rows;
      });
      return row!.id;
    },

    async latestFlush() {
      const [row] = await db.query<{ id: number | null }>('SELECT max(id) AS id FROM cluster_flushes');
      return row?.id ?? 0;
    },

    async acknowledgeFlush(instanceId, id) {
      await db.query('UPDATE cluster_instances SET flushed = greatest(flushed, $2) WHERE id = $1', [instanceId, id]);
    },
  };
}

/** A connection of its own holding the instance's partition locks and listening for notifications. */
async function openLeaseSession(
  url: string,
  instanceId: string,
  logger: Logger,
  options: { onHandOff?(partitions: readonly number[]): void; onFlushRequest?(id: number): void; onBroken?(err: Error): void },
): Promise<LeaseSession> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: `conduct-lease ${instanceId}`, types: PG_TYPES } as pg.ClientConfig);
  let alive = true;
  const broken = (err: Error) => {
    if (!alive) return;
    alive = false;
    options.onBroken?.(err);
  };
  client.on('error', (err) => {
    logger.warn({ err: String(err) }, 'cluster lease session lost');
    broken(err);
  });
  client.on('end', () => broken(new Error('the lease session ended')));
  client.on('notification', (msg) => {
    const payload = msg.payload ?? '';
    if (msg.channel === HANDOFF_CHANNEL) {
      const partitions = payload.split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 0);
      options.onHandOff?.(partitions);
    } else if (msg.channel === FLUSH_CHANNEL) {
      const id = Number(payload);
      if (Number.isInteger(id)) options.onFlushRequest?.(id);
    }
  });
  try {
    await client.connect();
    await client.query(`LISTEN ${HANDOFF_CHANNEL}`);
    await client.query(`LISTEN ${FLUSH_CHANNEL}`);
  } catch (err) {
    alive = false;
    await client.end().catch(() => undefined);
    throw err;
  }
  const [pidRow] = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows;
  let closed = false;
  return {
    pid: pidRow!.pid,
    get alive() {
      return alive && !closed;
    },
    async tryAcquire(partition) {
      const { rows } = await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS got', [PARTITION_LOCK_CLASS, partition]);
      if (!rows[0]?.got) return undefined;
      try {
        // The row is skipped, not waited for, while a transaction holds it (a hung owner's commit,
        // until it is ended): the lease session must never block, its heartbeats go over it.
        const moved = await client.query<{ epoch: number }>(
          `UPDATE cluster_partitions p SET epoch = p.epoch + 1, owner = $2, moved_at = now()
           FROM (SELECT partition FROM cluster_partitions WHERE partition = $1 FOR UPDATE SKIP LOCKED) free
           WHERE p.partition = free.partition RETURNING p.epoch`,
          [partition, instanceId],
        );
        if (!moved.rows[0]) {
          await client.query('SELECT pg_advisory_unlock($1, $2)', [PARTITION_LOCK_CLASS, partition]);
          return undefined;
        }
        return { partition, epoch: moved.rows[0].epoch };
      } catch (err) {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [PARTITION_LOCK_CLASS, partition]).catch(() => undefined);
        throw err;
      }
    },
    async heartbeat() {
      const { rows } = await client.query('UPDATE cluster_instances SET last_heartbeat = now() WHERE id = $1 RETURNING 1', [instanceId]);
      return rows.length > 0;
    },
    async release(partition) {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [PARTITION_LOCK_CLASS, partition]);
    },
    async close() {
      if (closed) return;
      closed = true;
      alive = false;
      await client.end().catch(() => undefined);
    },
  };
}
