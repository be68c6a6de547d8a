import type Database from 'better-sqlite3';
import type { AlertOutbox, DeadDeliveries, DeliveryState, OutboxEvent } from '../contracts.js';
import { deliveryFromRow, MAX_DELIVERY_ERROR_CHARS, outboxEntryFromRow, type OutboxRow } from '../rows.js';


/**
 * The alert outbox in SQLite (migration 060). `enqueue` runs inside the detection checkpoint's
 * transaction; the worker's calls are single statements (each its own transaction).
 */
export function createSqliteOutbox(db: Database.Database): AlertOutbox & { enqueue(events: readonly OutboxEvent[]): void } {
  const stmt = {
    nextSeq: db.prepare('UPDATE alerts SET delivery_seq = delivery_seq + 1 WHERE id = ? RETURNING delivery_seq').pluck(),
    insert: db.prepare(`INSERT INTO alert_outbox (alert_id, seq, sink, event, payload, state, attempts, due_ms, created_ms)
      VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)`),
    claim: db.prepare(`UPDATE alert_outbox SET attempts = attempts + 1, due_ms = @until
      WHERE id IN (SELECT id FROM alert_outbox WHERE state = 'pending' AND sink = @sink AND due_ms <= @now ORDER BY due_ms, id LIMIT @limit)
      RETURNING *`),
    delivered: db.prepare(`UPDATE alert_outbox SET state = 'delivered', done_ms = ?, due_ms = 0
      WHERE alert_id = ? AND seq = ? AND sink = ? AND state = 'pending'`),
    retry: db.prepare(`UPDATE alert_outbox SET last_error = ?, due_ms = ? WHERE alert_id = ? AND seq = ? AND sink = ? AND state = 'pending'`),
    dead: db.prepare(`UPDATE alert_outbox SET state = 'dead', last_error = ?, done_ms = ?, due_ms = 0
      WHERE alert_id = ? AND seq = ? AND sink = ? AND state = 'pending'`),
    resume: db.prepare(`UPDATE alert_outbox SET due_ms = ? WHERE state = 'pending' AND sink = ? AND due_ms > ?`),
    pending: db.prepare(`SELECT count(*) AS count, min(due_ms) AS due FROM alert_outbox WHERE state = 'pending' AND sink = ?`),
    sequence: db.prepare('SELECT delivery_seq FROM alerts WHERE id = ?').pluck(),
    deliveries: db.prepare('SELECT * FROM alert_outbox WHERE alert_id = ? ORDER BY seq DESC, sink LIMIT ?'),
    counts: db.prepare('SELECT sink, state, count(*) AS count FROM alert_outbox GROUP BY sink, state ORDER BY sink, state'),
    prune: db.prepare(`DELETE FROM alert_outbox WHERE id IN
      (SELECT id FROM alert_outbox WHERE state = 'delivered' AND done_ms < ? ORDER BY done_ms LIMIT ?)`),
    redrive: db.prepare(`UPDATE alert_outbox SET state = 'pending', attempts = 0, due_ms = @now, done_ms = NULL
      WHERE alert_id = @alertId AND state = 'dead' AND (@sink IS NULL OR sink = @sink) AND (@seq IS NULL OR seq = @seq)
      RETURNING alert_id, seq, sink`),
    discard: db.prepare(`UPDATE alert_outbox SET state = 'discarded', done_ms = @now
      WHERE alert_id = @alertId AND state = 'dead' AND (@sink IS NULL OR sink = @sink) AND (@seq IS NULL OR seq = @seq)
      RETURNING alert_id, seq, sink`),
  };
  const chosen = (which: DeadDeliveries, nowMs: number) => ({ alertId: which.alertId, sink: which.sink ?? null, seq: which.seq ?? null, now: nowMs });
  const keys = (rows: unknown[]) =>
    (rows as Array<{ alert_id: string; seq: number; sink: string }>).map((r) => ({ alertId: r.alert_id, seq: r.seq, sink: r.sink }));
  const clipError = (error: string) => error.slice(0, MAX_DELIVERY_ERROR_CHARS);

  return {
    enqueue(events) {
      for (const e of events) {
        if (e.sinks.length === 0) continue;
        const seq = stmt.nextSeq.get(e.alert.id) as number | undefined;
        if (seq === undefined) continue;
        const payload = JSON.stringify(e.alert);
        for (const sink of new Set(e.sinks)) stmt.insert.run(e.alert.id, seq, sink, e.event, payload, e.atMs, e.atMs);
      }
    },
    async claim(sink, nowMs, limit, leaseMs) {
      const rows = stmt.claim.all({ sink, now: nowMs, until: nowMs + leaseMs, limit: Math.max(1, Math.floor(limit)) }) as OutboxRow[];
      return rows.sort((a, b) => a.created_ms - b.created_ms || a.seq - b.seq).map((r) => outboxEntryFromRow(r));
    },
    async delivered(key, nowMs) {
      return stmt.delivered.run(nowMs, key.alertId, key.seq, key.sink).changes > 0;
    },
    async failed(key, error, retryAtMs, nowMs) {
      const r =
        retryAtMs === undefined
          ? stmt.dead.run(clipError(error), nowMs, key.alertId, key.seq, key.sink)
          : stmt.retry.run(clipError(error), retryAtMs, key.alertId, key.seq, key.sink);
      return r.changes > 0;
    },
    async resume(sink, nowMs) {
      stmt.resume.run(nowMs, sink, nowMs);
      return (stmt.pending.get(sink) as { count: number }).count;
    },
    async pending(sink) {
      const row = stmt.pending.get(sink) as { count: number; due: number | null };
      return row.due === null ? { count: row.count } : { count: row.count, nextDueMs: row.due };
    },
    async sequence(alertId) {
      return (stmt.sequence.get(alertId) as number | undefined) ?? 0;
    },
    async deliveries(alertId, limit) {
      return (stmt.deliveries.all(alertId, Math.max(1, Math.floor(limit))) as OutboxRow[]).map((r) => deliveryFromRow(r));
    },
    async counts() {
      return stmt.counts.all() as Array<{ sink: string; state: DeliveryState; count: number }>;
    },
    async pruneDelivered(beforeMs, maxRows) {
      return stmt.prune.run(beforeMs, Math.max(1, Math.floor(maxRows))).changes;
    },
    async redrive(which, nowMs) {
      return keys(stmt.redrive.all(chosen(which, nowMs)));
    },
    async discard(which, nowMs) {
      return keys(stmt.discard.all(chosen(which, nowMs)));
    },
  };
}
