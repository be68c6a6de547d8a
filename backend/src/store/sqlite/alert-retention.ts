import type Database from 'better-sqlite3';
import { CLOSED_ALERT_STATUSES } from '../../alerts/model.js';
import type { AlertPruneCursor, AlertPruneResult, AlertRetention } from '../contracts.js';

/**
 * Alert retention in SQLite: a page of alerts last seen before the cutoff, oldest first (the
 * `alerts (last_seen_ms)` index of migration 010), and of those the closed ones with every
 * delivery done are deleted with their held chains and delivered outbox entries, in one
 * transaction. The page is bounded whatever it holds, so open alerts and alerts whose deliveries
 * wait or failed, which stay, never make a step scan the table.
 */
export function createSqliteAlertRetention(db: Database.Database): AlertRetention {
  const closed = CLOSED_ALERT_STATUSES.map(() => '?').join(', ');
  const stmt = {
    first: db.prepare('SELECT id, last_seen_ms AS lastSeenMs, status FROM alerts WHERE last_seen_ms < ? ORDER BY last_seen_ms, id LIMIT ?'),
    after: db.prepare(
      'SELECT id, last_seen_ms AS lastSeenMs, status FROM alerts WHERE last_seen_ms < ? AND (last_seen_ms, id) > (?, ?) ORDER BY last_seen_ms, id LIMIT ?',
    ),
    // Anything of the alert's not delivered yet (pending) or given up (dead, and not discarded) keeps it.
    undelivered: db.prepare("SELECT 1 FROM alert_outbox WHERE alert_id = ? AND state NOT IN ('delivered', 'discarded') LIMIT 1").pluck(),
    deleteAlert: db.prepare(`DELETE FROM alerts WHERE id = ? AND status IN (${closed})`),
    deleteHeld: db.prepare('DELETE FROM held_chains WHERE alert_id = ?'),
    deleteDeliveries: db.prepare('DELETE FROM alert_outbox WHERE alert_id = ?'),
  };
  const closedSet = new Set<string>(CLOSED_ALERT_STATUSES);

  const step = db.transaction((beforeMs: number, maxRows: number, after: AlertPruneCursor | undefined): AlertPruneResult => {
    const rows = Math.max(1, Math.floor(maxRows));
    const page = (
      after ? stmt.after.all(beforeMs, after.lastSeenMs, after.id, rows) : stmt.first.all(beforeMs, rows)
    ) as Array<{ id: string; lastSeenMs: number; status: string }>;
    const result: AlertPruneResult = { alerts: 0, held: 0, deliveries: 0 };
    for (const a of page) {
      if (!closedSet.has(a.status) || stmt.undelivered.get(a.id) !== undefined) continue;
      if (stmt.deleteAlert.run(a.id, ...CLOSED_ALERT_STATUSES).changes === 0) continue;
      result.alerts++;
      result.held += stmt.deleteHeld.run(a.id).changes;
      result.deliveries += stmt.deleteDeliveries.run(a.id).changes;
    }
    const last = page[page.length - 1];
    if (page.length === rows && last) result.next = { lastSeenMs: last.lastSeenMs, id: last.id };
    return result;
  });

  return {
    pruneAlerts: async (beforeMs, maxRows, after) => step(beforeMs, maxRows, after),
  };
}
