import { CLOSED_ALERT_STATUSES } from '../../alerts/model.js';
import type { AlertPruneResult, AlertRetention } from '../contracts.js';
import type { Queryable } from './sql.js';
import { fromColumn, toColumn } from './text.js';

/**
 * Alert retention in PostgreSQL, one statement a step: a page of alerts last seen before the
 * cutoff in (last seen, id) order (migration 056's index), and of those the closed ones with every
 * delivery done deleted with their held chains and delivered outbox entries.
 *
 * Instances sharing the database sweep side by side, and owners write checkpoints meanwhile. Rows
 * a checkpoint holds are skipped (`SKIP LOCKED`: the next sweep sees them as committed). A
 * checkpoint that committed after this statement's snapshot changed the alert's row: a verdict its
 * status, a repeat its last seen, an enqueued event its `delivery_seq` (every enqueue raises it);
 * the lock re-reads the row and the conditions on it, so such an alert is not deleted under a
 * delivery this statement could not see.
 */
export function createPostgresAlertRetention(db: Queryable): AlertRetention {
  return {
    async pruneAlerts(beforeMs, maxRows, after) {
      const rows = Math.max(1, Math.floor(maxRows));
      // Last seen is whole ms: before a fraction is before its ceiling. The cursor's condition is
      // one of two fixed texts (no value is spliced in).
      const [r] = await db.query<{
        read: number;
        last_ms: number | null;
        last_id: string | null;
        alerts: number;
        held: number;
        deliveries: number;
      }>(
        `WITH page AS (
           SELECT id, last_seen_ms, delivery_seq FROM alerts
           WHERE last_seen_ms < $1::int8 ${after ? 'AND (last_seen_ms, id) > ($4::int8, $5::text)' : ''}
           ORDER BY last_seen_ms, id LIMIT $2
         ), doomed AS (
           SELECT a.id FROM alerts a JOIN page p ON p.id = a.id
           WHERE a.delivery_seq = p.delivery_seq AND a.last_seen_ms < $1::int8 AND a.status = ANY($3::text[])
             AND NOT EXISTS (SELECT 1 FROM alert_outbox o WHERE o.alert_id = a.id AND o.state NOT IN ('delivered', 'discarded'))
           FOR UPDATE OF a SKIP LOCKED
         ), gone AS (
           DELETE FROM alerts a USING doomed d WHERE a.id = d.id RETURNING a.id
         ), held AS (
           DELETE FROM held_chains WHERE alert_id IN (SELECT id FROM gone) RETURNING 1
         ), sent AS (
           DELETE FROM alert_outbox WHERE alert_id IN (SELECT id FROM gone) RETURNING 1
         ), last AS (
           SELECT last_seen_ms, id FROM page ORDER BY last_seen_ms DESC, id DESC LIMIT 1
         )
         SELECT (SELECT count(*) FROM page)::int AS read, (SELECT last_seen_ms FROM last) AS last_ms, (SELECT id FROM last) AS last_id,
           (SELECT count(*) FROM gone)::int AS alerts, (SELECT count(*) FROM held)::int AS held, (SELECT count(*) FROM sent)::int AS deliveries`,
        [Math.ceil(beforeMs), rows, [...CLOSED_ALERT_STATUSES], ...(after ? [after.lastSeenMs, toColumn(after.id)] : [])],
      );
      const result: AlertPruneResult = { alerts: r?.alerts ?? 0, held: r?.held ?? 0, deliveries: r?.deliveries ?? 0 };
      if (r && r.read === rows && r.last_ms !== null && r.last_id !== null) {
        result.next = { lastSeenMs: Number(r.last_ms), id: fromColumn(r.last_id) };
      }
      return result;
    },
  };
}
