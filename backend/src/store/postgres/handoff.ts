import type { HandOffItem } from '../contracts.js';
import type { Queryable } from './sql.js';

/** NOTIFY channel that wakes partition owners (payload: the partitions written, comma separated). */
export const HANDOFF_CHANNEL = 'conduct_handoff';

/**
 * Appends hand-off items to their partitions' queues within the transaction `tx` (the cluster's
 * own hand-off, or the chain writer's unit that stores the chains they carry). Sequence numbers
 * come from each partition's head row, locked until commit, so they become visible in order; the
 * owners are notified when the transaction commits.
 *
 * One statement for every partition of the batch (a batch of a cluster of one touches most of
 * them): the head rows are locked in partition order (the same order for every writer, so no
 * deadlocks; every row the update touches is joined to a row `locked` has produced, in order,
 * whatever join the planner picks), advanced by their item counts, and each item takes the
 * sequence number of its place within its partition.
 */
export async function writeHandOff(tx: Queryable, items: readonly HandOffItem[], fromInstance: string): Promise<void> {
  if (items.length === 0) return;
  const partitions = new Set<number>();
  for (const item of items) partitions.add(item.partition);
  const [row] = await tx.query<{ partitions: number; items: number }>(
    `WITH locked AS MATERIALIZED (
       SELECT partition FROM cluster_heads WHERE partition = ANY($1::int[]) ORDER BY partition FOR UPDATE
     ), item AS MATERIALIZED (
       SELECT partition, kind, body, row_number() OVER (PARTITION BY partition ORDER BY n) AS k, count(*) OVER (PARTITION BY partition) AS of
       FROM unnest($1::int[], $2::text[], $3::jsonb[]) WITH ORDINALITY AS t(partition, kind, body, n)
     ), advanced AS (
       UPDATE cluster_heads h SET head = h.head + c.of
       FROM locked JOIN (SELECT DISTINCT partition, of FROM item) c USING (partition)
       WHERE h.partition = locked.partition
       RETURNING h.partition, h.head - c.of AS before
     ), inserted AS (
       INSERT INTO cluster_handoff (partition, seq, kind, body, from_instance, handed_ms)
       SELECT i.partition, a.before + i.k, i.kind, i.body, $4, $5 FROM item i JOIN advanced a USING (partition)
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM advanced)::int AS partitions, (SELECT count(*) FROM inserted)::int AS items`,
    [items.map((i) => i.partition), items.map((i) => i.kind), items.map((i) => JSON.stringify(i.body)), fromInstance, Date.now()],
  );
  if (!row || row.partitions !== partitions.size) {
    const known = row?.partitions ?? 0;
    throw new Error(`hand-off to an unknown partition (${partitions.size - known} of ${[...partitions].sort((a, b) => a - b).join(', ')} have no head row)`);
  }
  await tx.query('SELECT pg_notify($1, $2)', [HANDOFF_CHANNEL, [...partitions].sort((a, b) => a - b).join(',')]);
}
