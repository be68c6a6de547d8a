import type { AlertOutbox, DeadDeliveries, DeliveryState, OutboxEvent } from '../contracts.js';
import { deliveryFromRow, MAX_DELIVERY_ERROR_CHARS, outboxEntryFromRow, type OutboxRow } from '../rows.js';
import type { Sql } from './sql.js';
import { fromColumn, toColumn } from './text.js';


const COLUMNS = 'alert_id, seq, sink, event, payload, state, attempts, due_ms, last_error, created_ms, done_ms';

/**
 * The statements that enqueue a checkpoint's outbox events, one per event: the alert's next
 * delivery sequence number and a pending row per sink (run in the checkpoint's transaction).
 */
export function enqueueStatements(events: readonly OutboxEvent[]): Array<[string, unknown[]]> {
  return events
    .filter((e) => e.sinks.length > 0)
    .map((e) => [
      `WITH s AS (UPDATE alerts SET delivery_seq = delivery_seq + 1 WHERE id = $1 RETURNING delivery_seq)
       INSERT INTO alert_outbox (alert_id, seq, sink, event, payload, state, attempts, due_ms, created_ms)
       SELECT $1, s.delivery_seq, k.sink, $2, $3, 'pending', 0, $4::float8, $4::float8 FROM s CROSS JOIN (SELECT DISTINCT unnest($5::text[]) AS sink) k`,
      [toColumn(e.alert.id), e.event, JSON.stringify(e.alert), e.atMs, e.sinks.map(toColumn)],
    ]);
}

/**
 * The alert outbox in PostgreSQL (migration 020). Claims skip rows another instance holds locked
 * (`FOR UPDATE SKIP LOCKED`), so workers of one sink on several instances never claim a delivery
 * twice within its lease.
 */
export function createPostgresOutbox(db: Sql): AlertOutbox {
  const key = (k: { alertId: string; seq: number; sink: string }) => [toColumn(k.alertId), k.seq, toColumn(k.sink)];
  return {
    async claim(sink, nowMs, limit, leaseMs) {
      const rows = await db.query<OutboxRow>(
        `UPDATE alert_outbox SET attempts = attempts + 1, due_ms = $3::float8
         WHERE id IN (SELECT id FROM alert_outbox WHERE state = 'pending' AND sink = $1 AND due_ms <= $2::float8
                      ORDER BY due_ms, id LIMIT $4 FOR UPDATE SKIP LOCKED)
         RETURNING ${COLUMNS}`,
        [toColumn(sink), nowMs, nowMs + leaseMs, Math.max(1, Math.floor(limit))],
      );
      return rows.sort((a, b) => a.created_ms - b.created_ms || a.seq - b.seq).map((r) => outboxEntryFromRow(r, fromColumn));
    },
    async delivered(k, nowMs) {
      const rows = await db.query(
        `UPDATE alert_outbox SET state = 'delivered', done_ms = $4::float8, due_ms = 0
         WHERE alert_id = $1 AND seq = $2 AND sink = $3 AND state = 'pending' RETURNING 1`,
        [...key(k), nowMs],
      );
      return rows.length > 0;
    },
    async failed(k, error, retryAtMs, nowMs) {
      const rows =
        retryAtMs === undefined
          ? await db.query(
              `UPDATE alert_outbox SET state = 'dead', last_error = $4, done_ms = $5::float8, due_ms = 0
               WHERE alert_id = $1 AND seq = $2 AND sink = $3 AND state = 'pending' RETURNING 1`,
              [...key(k), toColumn(error.slice(0, MAX_DELIVERY_ERROR_CHARS)), nowMs],
            )
          : await db.query(
              `UPDATE alert_outbox SET last_error = $4, due_ms = $5::float8
               WHERE alert_id = $1 AND seq = $2 AND sink = $3 AND state = 'pending' RETURNING 1`,
              [...key(k), toColumn(error.slice(0, MAX_DELIVERY_ERROR_CHARS)), retryAtMs],
            );
      return rows.length > 0;
    },
    async resume(sink, nowMs) {
      await db.query(`UPDATE alert_outbox SET due_ms = $2::float8 WHERE state = 'pending' AND sink = $1 AND due_ms > $2::float8`, [toColumn(sink), nowMs]);
      const [row] = await db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM alert_outbox WHERE state = 'pending' AND sink = $1`, [toColumn(sink)]);
      return row?.n ?? 0;
    },
    async pending(sink) {
      const [row] = await db.query<{ count: number; due: number | null }>(
        `SELECT count(*)::int8 AS count, min(due_ms) AS due FROM alert_outbox WHERE state = 'pending' AND sink = $1`,
        [toColumn(sink)],
      );
      const count = row?.count ?? 0;
      return row?.due === null || row?.due === undefined ? { count } : { count, nextDueMs: row.due };
    },
    async sequence(alertId) {
      const [row] = await db.query<{ seq: number }>('SELECT delivery_seq AS seq FROM alerts WHERE id = $1', [toColumn(alertId)]);
      return row?.seq ?? 0;
    },
    async deliveries(alertId, limit) {
      const rows = await db.query<OutboxRow>(`SELECT ${COLUMNS} FROM alert_outbox WHERE alert_id = $1 ORDER BY seq DESC, sink LIMIT $2`, [
        toColumn(alertId),
        Math.max(1, Math.floor(limit)),
      ]);
      return rows.map((r) => deliveryFromRow(r, fromColumn));
    },
    async counts() {
      const rows = await db.query<{ sink: string; state: string; count: number }>(
        'SELECT sink, state, count(*)::int8 AS count FROM alert_outbox GROUP BY sink, state ORDER BY sink, state',
      );
      return rows.map((r) => ({ sink: fromColumn(r.sink), state: r.state as DeliveryState, count: r.count }));
    },
    async pruneDelivered(beforeMs, maxRows) {
      const rows = await db.query(
        `DELETE FROM alert_outbox WHERE id IN
           (SELECT id FROM alert_outbox WHERE state = 'delivered' AND done_ms < $1::float8 ORDER BY done_ms LIMIT $2) RETURNING 1`,
        [beforeMs, Math.max(1, Math.floor(maxRows))],
      );
      return rows.length;
    },
    async redrive(which, nowMs) {
      return keysOf(
        await db.query<KeyRow>(
          `UPDATE alert_outbox SET state = 'pending', attempts = 0, due_ms = $4::float8, done_ms = NULL
           WHERE alert_id = $1 AND state = 'dead' AND ($2::text IS NULL OR sink = $2::text) AND ($3::int8 IS NULL OR seq = $3::int8)
           RETURNING alert_id, seq, sink`,
          [...chosen(which), nowMs],
        ),
      );
    },
    async discard(which, nowMs) {
      return keysOf(
        await db.query<KeyRow>(
          `UPDATE alert_outbox SET state = 'discarded', done_ms = $4::float8
           WHERE alert_id = $1 AND state = 'dead' AND ($2::text IS NULL OR sink = $2::text) AND ($3::int8 IS NULL OR seq = $3::int8)
           RETURNING alert_id, seq, sink`,
          [...chosen(which), nowMs],
        ),
      );
    },
  };
}

interface KeyRow {
  alert_id: string;
  seq: number | string;
  sink: string;
}

/** An operator's choice as bound values: alert id, sink or null, sequence or null. */
const chosen = (which: DeadDeliveries) => [toColumn(which.alertId), which.sink === undefined ? null : toColumn(which.sink), which.seq ?? null];

const keysOf = (rows: KeyRow[]) => rows.map((r) => ({ alertId: fromColumn(r.alert_id), seq: Number(r.seq), sink: fromColumn(r.sink) }));
