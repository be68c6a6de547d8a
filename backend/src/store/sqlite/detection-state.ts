import { alertListSql } from './alert-query.js';
import type Database from 'better-sqlite3';
import type { Alert } from '../../alerts/model.js';
import type {
  AlertListFilter,
  BaselineScope,
  DetectionCheckpoint,
  DetectionState,
  HeldChain,
  OutboxEvent,
  SuppressionRecord,
} from '../contracts.js';
import { baselineEntryFromRow, baselineFromRow, type BaselineEntryRow, type BaselineRow } from '../rows.js';
import { decodeHeldChain, encodeHeldChain } from '../held-chain.js';
import { DETECTION_SCHEMA, numberBaselineEntries } from './detection-schema.js';
import { createRowInserter } from './multi-row.js';

/** For a database without the outbox tables: refuses events rather than dropping them. */
const noOutbox = {
  enqueue(): void {
    throw new Error('this detection state has no alert outbox');
  },
};

/** The scope's groups as a JSON array bound to `json_each`, or null for every group. */
const groupsOf = (scope: BaselineScope | undefined): string | null => (scope?.groups ? JSON.stringify(scope.groups) : null);

/**
 * Detection state in the store's SQLite database (tables of migration 010, groups of 040, entries
 * by number of 091). Every statement is prepared once; answers are synchronous underneath, and a
 * checkpoint is one transaction.
 */
/** The SQLite detection state, with its checkpoint also callable inside a caller's transaction. */
export interface SqliteDetectionState extends DetectionState {
  /**
   * Applies a checkpoint now, synchronously: in its own transaction, or inside the caller's open
   * one with no savepoint of its own. A caller whose transaction is open must roll it back when this
   * throws (the batch's `commitBatch` does), or it would keep part of the checkpoint.
   */
  applyCheckpoint(checkpoint: DetectionCheckpoint): void;
}

export function createSqliteDetectionState(
  db: Database.Database,
  /** Enqueues the checkpoint's outbox events (inside its transaction); without it, a checkpoint with events fails. */
  outbox: { enqueue(events: readonly OutboxEvent[]): void } = noOutbox,
): SqliteDetectionState {
  // A database the numbered migrations did not bring to 091 (opened on its own connection).
  if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'baseline_counts'").get() === undefined) {
    db.transaction(() => numberBaselineEntries(db))();
  }
  const numbers = createEntryNumbers(db);
  // Baseline rows are written whole (every column but the key), and their tables have no other
  // index or trigger: replacing a row is the same as updating it, and cheaper than an upsert.
  const stmt = {
    upsertIdentity: db.prepare(`INSERT OR REPLACE INTO baseline_identities
      (identity, kind, display_name, grp, first_ms, last_ms, calls, enforcing_since_ms, compromised, dropped, last_sweep_ms, rate, recent_sources, num)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    deleteEntry: db.prepare('DELETE FROM baseline_counts WHERE identity_num = ? AND kind_code = ? AND key = ?'),
    insertAlert: db.prepare(`INSERT INTO alerts (id, identity, detector, severity, status, trace_id, event_ms, last_seen_ms, dedup_key, body)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET identity = excluded.identity, detector = excluded.detector, severity = excluded.severity,
        status = excluded.status, trace_id = excluded.trace_id, event_ms = excluded.event_ms, last_seen_ms = excluded.last_seen_ms,
        dedup_key = excluded.dedup_key, body = excluded.body`),
    getAlert: db.prepare('SELECT body FROM alerts WHERE id = ?').pluck(),
    findRepeat: db
      .prepare(`SELECT body FROM alerts WHERE dedup_key = ? AND last_seen_ms >= ? AND event_ms <= ?
        AND status NOT IN ('expected', 'superseded') ORDER BY last_seen_ms DESC LIMIT 1`)
      .pluck(),
    alertsOfChain: db.prepare('SELECT body FROM alerts WHERE trace_id = ? AND identity = ?').pluck(),
    isHeld: db.prepare('SELECT 1 FROM held_chains WHERE identity = ? AND trace_id = ? LIMIT 1').pluck(),
    hold: db.prepare('INSERT OR REPLACE INTO held_chains (identity, trace_id, alert_id, start_ms, chain) VALUES (?, ?, ?, ?, ?)'),
    heldByAlert: db.prepare('SELECT identity, trace_id, alert_id, chain FROM held_chains WHERE alert_id = ?'),
    // A chain is held once per alert it raised: count it once on the graph.
    heldByIdentity: db
      .prepare(`SELECT h.chain FROM held_chains h JOIN alerts a ON a.id = h.alert_id
        WHERE h.identity = ? AND a.status <> 'expected' GROUP BY h.trace_id, h.chain ORDER BY max(h.start_ms) DESC LIMIT ?`)
      .pluck(),
    release: db.prepare('DELETE FROM held_chains WHERE identity = ? AND trace_id = ?'),
    suppress: db.prepare('INSERT OR IGNORE INTO finding_suppressions (identity, detector, key, alert_id) VALUES (?, ?, ?, ?)'),
    identities: db.prepare('SELECT * FROM baseline_identities WHERE @groups IS NULL OR grp IN (SELECT value FROM json_each(@groups))'),
    // In the order of migration 010's table (its key: identity, kind, key), which restarts relied on.
    entries: db.prepare(`SELECT i.identity, k.kind, c.key, c.count, c.first_ms, c.last_ms
      FROM baseline_identities i JOIN baseline_counts c ON c.identity_num = i.num JOIN baseline_kinds k ON k.code = c.kind_code
      WHERE @groups IS NULL OR i.grp IN (SELECT value FROM json_each(@groups))
      ORDER BY i.identity, k.kind, c.key`),
    suppressions: db.prepare(`SELECT identity, detector, key, alert_id FROM finding_suppressions WHERE @groups IS NULL
      OR identity IN (SELECT identity FROM baseline_identities WHERE grp IN (SELECT value FROM json_each(@groups)))`),
    openAlerts: db.prepare(`SELECT detector, severity, COUNT(*) AS count FROM alerts WHERE status = 'open' GROUP BY detector, severity`),
    // Enforcing is sticky (enforcing_since_ms) or due: enough calls and enough event time, the
    // rule of learn/baseline.ts, so a count between two analyses agrees with the API.
    baselineCounts: db.prepare(`SELECT
        COALESCE(SUM(CASE WHEN enforcing_since_ms IS NOT NULL OR (calls > 0 AND calls >= ? AND last_ms - first_ms >= ?) THEN 1 ELSE 0 END), 0) AS enforcing,
        COUNT(*) AS total
      FROM baseline_identities`),
  };
  const upsertEntries = createEntryWriter(db);
  let raiseSeqStatement: Database.Statement | undefined;
  const raiseSeq = () => (raiseSeqStatement ??= db.prepare('UPDATE alerts SET delivery_seq = max(delivery_seq, ?) WHERE id = ?'));
  /** `listAlerts` statements by the filters present and the order (a few hundred shapes at most). */
  const listStatements = new Map<string, Database.Statement>();
  const listStatement = (filter: AlertListFilter): { statement: Database.Statement; params: unknown[] } => {
    const q = alertListSql(filter);
    let statement = listStatements.get(q.shape);
    if (!statement) {
      statement = db.prepare(q.sql).pluck();
      listStatements.set(q.shape, statement);
    }
    return { statement, params: q.params };
  };

  const apply = (cp: DetectionCheckpoint): void => {
    // Rows a failed checkpoint left unwritten were rolled back with it.
    upsertEntries.clear();
    if (cp.baselines?.length) numbers.assertKinds();
    for (const delta of cp.baselines ?? []) {
      const b = delta.baseline;
      // The identity's row carries its number, so every checkpoint writing its entries writes it too.
      const num = numbers.identity(b.identity);
      stmt.upsertIdentity.run(
        b.identity, b.kind, b.displayName ?? null, b.group, b.firstMs, b.lastMs, b.calls, b.enforcingSinceMs ?? null,
        b.compromised ? 1 : 0, b.dropped, b.lastSweepMs, JSON.stringify(b.rate), JSON.stringify(b.recentSources), num,
      );
      for (const e of delta.entries) upsertEntries.add(num, numbers.kind(e.kind), e.key, e.count, e.firstMs, e.lastMs);
      if (delta.removed.length > 0) upsertEntries.flush();
      for (const r of delta.removed) {
        const code = numbers.knownKind(r.kind);
        if (code !== undefined) stmt.deleteEntry.run(num, code, r.key);
      }
    }
    upsertEntries.flush();
    for (const { alert: a, dedupKey, deliverySeq } of cp.alerts ?? []) {
      stmt.insertAlert.run(
        a.id, a.identity, a.detector, a.severity, a.status, a.traceId, Date.parse(a.firstSeen), Date.parse(a.lastSeen), dedupKey, JSON.stringify(a),
      );
      // Only a copy carries a sequence (the column is migration 060's; older schemas never get one).
      if (deliverySeq) raiseSeq().run(Math.floor(deliverySeq), a.id);
    }
    for (const h of cp.held ?? []) stmt.hold.run(h.identity, h.traceId, h.alertId, h.chain.startMs, encodeHeldChain(h.chain));
    for (const r of cp.released ?? []) stmt.release.run(r.identity, r.traceId);
    for (const s of cp.suppressions ?? []) stmt.suppress.run(s.identity, s.detector, s.key, s.alertId);
    if (cp.outbox?.length) outbox.enqueue(cp.outbox);
  };
  const checkpoint = db.transaction(apply);
  // Inside the batch's transaction a savepoint would copy every page the checkpoint first touches
  // to the sub-journal: the pages of nearly every baseline entry, each batch. Measured with the
  // recorded checkpoints of bench/ab-checkpoint.mjs: entries written in a savepoint cost 1.49x
  // those written without one (bench/README.md, "Detection checkpoint, second pass").
  const applyCheckpoint = (cp: DetectionCheckpoint): void => (db.inTransaction ? apply(cp) : checkpoint(cp));

  const alertOf = (body: string | undefined): Alert | undefined => (body === undefined ? undefined : (JSON.parse(body) as Alert));

  return {
    async loadBaselines(visitor, scope) {
      const groups = groupsOf(scope);
      for (const row of stmt.identities.iterate({ groups }) as Iterable<BaselineRow>) visitor.baseline(baselineFromRow(row));
      for (const row of stmt.entries.iterate({ groups }) as Iterable<BaselineEntryRow>) visitor.entry(row.identity, baselineEntryFromRow(row));
    },
    async loadSuppressions(scope) {
      const rows = stmt.suppressions.all({ groups: groupsOf(scope) }) as Array<{ identity: string; detector: string; key: string; alert_id: string }>;
      return rows.map((r): SuppressionRecord => ({ identity: r.identity, detector: r.detector, key: r.key, alertId: r.alert_id }));
    },
    async getAlert(id) {
      return alertOf(stmt.getAlert.get(id) as string | undefined);
    },
    async listAlerts(filter) {
      const { statement, params } = listStatement(filter);
      return (statement.all(...params, Math.max(1, Math.floor(filter.limit))) as string[]).map((body) => JSON.parse(body) as Alert);
    },
    async findRepeat(dedupKey, fromMs, toMs) {
      return alertOf(stmt.findRepeat.get(dedupKey, fromMs, toMs) as string | undefined);
    },
    async alertsOfChain(traceId, identity) {
      return (stmt.alertsOfChain.all(traceId.toLowerCase(), identity) as string[]).map((body) => JSON.parse(body) as Alert);
    },
    async isHeld(identity, traceId) {
      return stmt.isHeld.get(identity, traceId) !== undefined;
    },
    async heldByAlert(alertId) {
      const rows = stmt.heldByAlert.all(alertId) as Array<{ identity: string; trace_id: string; alert_id: string; chain: string | Uint8Array }>;
      return rows.map((r): HeldChain => ({ identity: r.identity, traceId: r.trace_id, alertId: r.alert_id, chain: decodeHeldChain(r.chain) }));
    },
    async heldChainsOf(identity, limit) {
      return (stmt.heldByIdentity.all(identity, Math.max(1, Math.floor(limit))) as Array<string | Uint8Array>).map(decodeHeldChain);
    },
    async openAlertCounts() {
      return stmt.openAlerts.all() as Array<{ detector: string; severity: string; count: number }>;
    },
    async baselineCounts({ minCalls, periodMs }) {
      return stmt.baselineCounts.get(minCalls, periodMs) as { total: number; enforcing: number };
    },
    async checkpoint(cp) {
      checkpoint(cp);
    },
    applyCheckpoint,
  };
}

/**
 * Numbers of identities and codes of entry kinds (migration 091), kept in memory for the life of
 * the state. A number or code given out inside a checkpoint that is later rolled back (by itself or
 * with the caller's transaction) stays valid: an identity's number is written with its row by every
 * checkpoint that writes its entries, and a kind coded here is written again (if missing) by every
 * checkpoint. Numbers only grow, so a rolled-back one is never given to another identity.
 */
function createEntryNumbers(db: Database.Database): {
  identity(identity: string): number;
  kind(kind: string): number;
  knownKind(kind: string): number | undefined;
  assertKinds(): void;
} {
  const identities = new Map<string, number>();
  let nextNum = 1;
  for (const r of db.prepare('SELECT identity, num FROM baseline_identities WHERE num IS NOT NULL').iterate() as Iterable<{ identity: string; num: number }>) {
    identities.set(r.identity, r.num);
    if (r.num >= nextNum) nextNum = r.num + 1;
  }
  const kinds = new Map<string, number>();
  let nextCode = 1;
  for (const r of db.prepare('SELECT code, kind FROM baseline_kinds').iterate() as Iterable<{ code: number; kind: string }>) {
    kinds.set(r.kind, r.code);
    if (r.code >= nextCode) nextCode = r.code + 1;
  }
  /** Kinds coded by this state: written again by each checkpoint in case the first write was rolled back. */
  const coded: Array<[number, string]> = [];
  const addKind = db.prepare('INSERT OR IGNORE INTO baseline_kinds (code, kind) VALUES (?, ?)');
  return {
    identity(identity) {
      let num = identities.get(identity);
      if (num === undefined) identities.set(identity, (num = nextNum++));
      return num;
    },
    kind(kind) {
      let code = kinds.get(kind);
      if (code === undefined) {
        kinds.set(kind, (code = nextCode++));
        coded.push([code, kind]);
        addKind.run(code, kind);
      }
      return code;
    },
    knownKind: (kind) => kinds.get(kind),
    assertKinds() {
      for (const [code, kind] of coded) addKind.run(code, kind);
    },
  };
}

/**
 * Writes baseline entry rows several to a statement (createRowInserter, `INSERT OR REPLACE`): every
 * batch rewrites each entry its chains touched (about three rows per chain of the bench workload),
 * and one statement of 64 rows cost 0.7-0.8 of 64 single-row ones (measured on a WITHOUT ROWID
 * table like this one, 15 interleaved rounds). Call `flush` before anything else touches the table.
 */
function createEntryWriter(db: Database.Database): {
  add(identityNum: number, kindCode: number, key: string, count: number, firstMs: number, lastMs: number): void;
  flush(): void;
  clear(): void;
} {
  const rows = createRowInserter(db, 'baseline_counts (identity_num, kind_code, key, count, first_ms, last_ms)', 6, 'OR REPLACE');
  return {
    add(identityNum, kindCode, key, count, firstMs, lastMs) {
      rows.values.push(identityNum, kindCode, key, count, firstMs, lastMs);
      rows.queued();
    },
    flush() {
      try {
        rows.flush();
      } finally {
        // Written, or rolled back with the checkpoint's transaction: never carried into the next one.
        rows.clear();
      }
    },
    clear: () => rows.clear(),
  };
}

/** Creates the detection tables when missing (for a database the numbered migrations did not make). */
export function applyDetectionSchema(db: Database.Database): void {
  db.exec(DETECTION_SCHEMA);
}
