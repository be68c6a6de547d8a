import type { HandOffItem } from '../contracts.js';
import type { Queryable } from './sql.js';

/** NOTIFY channel that wakes partition owners (payload: the partitions written, comma separated). */
export const HANDOFF_CHANNEL = 'conduct_handoff';

/**
 * Appends hand-off items to their partitions' queues within the transaction `tx` (the cluster's
 * own hand-off, or the chain writer's unit that stores the chains they carry). Sequence numbers
 * come from each partition's head row, locked until commit, so they become visible in order; the
 * owners are notified when the transaction commits.
 */
export async function writeHandOff(tx: Queryable, items: readonly HandOffItem[], fromInstance: string): Promise<void> {
  if (items.length === 0) return;
  const byPartition = new Map<number, HandOffItem[]>();
  for (const item of items) {
    const list = byPartition.get(item.partition) ?? [];
    list.push(item);
    byPartition.set(item.partition, list);
  }
  // Partitions in one order for every writer: their head rows are locked without deadlocks.
  const partitions = [...byPartition.keys()].sort((a, b) => a - b);
  const now = Date.now();
  for (const partition of partitions) {
    const group = byPartition.get(partition)!;
    const [row] = await tx.query<{ head: number }>('UPDATE cluster_heads SET head = head + $2 WHERE partition = $1 RETURNING head', [partition, group.length]);
    if (!row) throw new Error(`hand-off to unknown partition ${partition}`);
    const first = row.head - group.length + 1;
    await tx.query(
      `INSERT INTO cluster_handoff (partition, seq, kind, body, from_instance, handed_ms)
       SELECT $1, first + n - 1, kind, body, $4, $5 FROM unnest($2::text[], $3::jsonb[]) WITH ORDINALITY AS t(kind, body, n), (SELECT $6::int8 AS first) f`,
      [partition, group.map((g) => g.kind), group.map((g) => JSON.stringify(g.body)), fromInstance, now, first],
    );
  }
  await tx.query('SELECT pg_notify($1, $2)', [HANDOFF_CHANNEL, partitions.join(',')]);
}
