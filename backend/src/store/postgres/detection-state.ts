import type { Alert } from '../../alerts/model.js';
import type {
  AlertListFilter,
  AlertRecord,
  BaselineEntryRecord,
  BaselineRecord,
  BaselineScope,
  DetectionCheckpoint,
  DetectionState,
  HeldChain,
  SuppressionRecord,
} from '../contracts.js';
import { baselineEntryFromRow, baselineFromRow, type BaselineEntryRow, type BaselineRow } from '../rows.js';
import { decodeHeldChain, encodeHeldChain } from '../held-chain.js';
import type { Queryable, Sql } from './sql.js';
import { enqueueStatements } from './outbox.js';
import { fromColumn, toColumn, toColumnOrNull } from './text.js';

/** Rows read per round trip while baselines load (keyset pages: no cursor held open). */
const LOAD_PAGE = 2_000;

const SEVERITY_RANK = `CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END`;

/** Filter fields, their clause (`?` stands for the value's parameter) and how the value binds. */
const ALERT_FILTERS: ReadonlyArray<[Exclude<keyof AlertListFilter, 'limit' | 'sort'>, string, (v: never) => unknown]> = [
  ['identity', 'identity = ?', (v: string) => toColumn(v)],
  // Any finding of an incident.
  ['detector', '? = ANY(detectors)', (v: string) => toColumn(v)],
  ['status', 'status = ?', (v: string) => toColumn(v)],
  ['sinceMs', 'last_seen_ms >= ?', (v: number) => v],
  ['untilMs', 'event_ms < ?', (v: number) => v],
  ['traceId', 'trace_id = ?', (v: string) => toColumn(v.toLowerCase())],
  ['severities', 'severity = ANY(?::text[])', (v: readonly string[]) => v.map(String).map(toColumn)],
  ['text', 'strpos(search, ?) > 0', (v: string) => searchable(v)],
];

const ALERT_ORDERS: Record<NonNullable<AlertListFilter['sort']>, string> = {
  time: 'last_seen_ms DESC, event_ms DESC, id DESC',
  score: 'score DESC, last_seen_ms DESC, id DESC',
  severity: `${SEVERITY_RANK} DESC, score DESC, last_seen_ms DESC, id DESC`,
};

/** The statement of an alert list: the filters present, every value bound, the order asked for. */
function alertListSql(filter: AlertListFilter): { sql: string; values: unknown[] } {
  const values: unknown[] = [];
  const where: string[] = [];
  for (const [field, clause, bind] of ALERT_FILTERS) {
    const v = filter[field];
    if (v === undefined || v === '' || ((field === 'sinceMs' || field === 'untilMs') && !Number.isFinite(v))) continue;
    values.push((bind as (x: unknown) => unknown)(v));
    where.push(clause.replace('?', `$${values.length}`));
  }
  values.push(Math.max(1, Math.floor(filter.limit)));
  const order = ALERT_ORDERS[filter.sort && filter.sort in ALERT_ORDERS ? filter.sort : 'time'];
  return { sql: `SELECT body FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT $${values.length}`, values };
}

/** Text as searched: ASCII lower-cased (as SQLite's lower()), without NUL. */
function searchable(text: string): string {
  return text.replace(/[A-Z]/g, (c) => c.toLowerCase()).replace(/\u0000/g, '');
}

/** The searched text of an alert: ids, detector, title, explanation and its findings (as JSON). */
function searchTextOf(a: Alert): string {
  const body = a as unknown as Record<string, unknown>;
  const findings = body.findings === undefined ? '' : JSON.stringify(body.findings);
  return searchable([a.id, a.identity, a.detector, a.traceId, body.title ?? '', body.explanation ?? '', findings].map((v) => (typeof v === 'string' ? v : '')).join(' '));
}

const groupsOf = (scope: BaselineScope | undefined): number[] | null => (scope?.groups ? scope.groups.map((g) => Math.floor(g)) : null);

/**
 * Detection state in PostgreSQL (migration 002). A checkpoint is one transaction of at most seven
 * statements, and one per outbox event (alerts are rare), each binding every row of its table as arrays; several changes to one key within a
 * checkpoint are folded first into what applying them in order leaves, as SQLite's statement by
 * statement transaction would.
 */
export function createPostgresDetectionState(
  db: Sql,
  /** Runs the checkpoint's transaction (and tries it again while the server is out of reach). */
  retrying: <T>(write: () => Promise<T>) => Promise<T> = (write) => write(),
): DetectionState {
  const alertOf = (rows: Array<{ body: string }>): Alert | undefined => (rows[0] ? (JSON.parse(rows[0].body) as Alert) : undefined);

  return {
    async loadBaselines(visitor, scope) {
      const groups = groupsOf(scope);
      // Keyset pages; the first has no lower bound (null).
      let after: string | null = null;
      for (;;) {
        const rows: BaselineRow[] = await db.query<BaselineRow>(
          `SELECT * FROM baseline_identities WHERE ($1::int[] IS NULL OR grp = ANY($1)) AND ($2::text IS NULL OR identity > $2)
           ORDER BY identity LIMIT $3`,
          [groups, after, LOAD_PAGE],
        );
        for (const row of rows) visitor.baseline(baselineFromRow(row, fromColumn));
        if (rows.length < LOAD_PAGE) break;
        after = rows.at(-1)!.identity;
      }
      let last: [string, string, string] | [null, null, null] = [null, null, null];
      for (;;) {
        const rows: BaselineEntryRow[] = await db.query<BaselineEntryRow>(
          `SELECT e.* FROM baseline_entries e
           WHERE ($1::int[] IS NULL OR e.identity IN (SELECT identity FROM baseline_identities WHERE grp = ANY($1)))
             AND ($2::text IS NULL OR (e.identity, e.kind, e.key) > ($2::text, $3::text, $4::text))
           ORDER BY e.identity, e.kind, e.key LIMIT $5`,
          [groups, ...last, LOAD_PAGE],
        );
        for (const row of rows) visitor.entry(fromColumn(row.identity), baselineEntryFromRow(row, fromColumn));
        if (rows.length < LOAD_PAGE) break;
        const end = rows.at(-1)!;
        last = [end.identity, end.kind, end.key];
      }
    },
    async loadSuppressions(scope) {
      const rows = await db.query<{ identity: string; detector: string; key: string; alert_id: string }>(
        `SELECT identity, detector, key, alert_id FROM finding_suppressions WHERE $1::int[] IS NULL
           OR identity IN (SELECT identity FROM baseline_identities WHERE grp = ANY($1))`,
        [groupsOf(scope)],
      );
      return rows.map((r): SuppressionRecord => ({ identity: fromColumn(r.identity), detector: fromColumn(r.detector), key: fromColumn(r.key), alertId: fromColumn(r.alert_id) }));
    },
    async getAlert(id) {
      return alertOf(await db.query<{ body: string }>('SELECT body FROM alerts WHERE id = $1', [toColumn(id)]));
    },
    async listAlerts(filter) {
      const { sql, values } = alertListSql(filter);
      const rows = await db.query<{ body: string }>(sql, values);
      return rows.map((r) => JSON.parse(r.body) as Alert);
    },
    async findRepeat(dedupKey, fromMs, toMs) {
      return alertOf(
        await db.query<{ body: string }>(
          `SELECT body FROM alerts WHERE dedup_key = $1 AND last_seen_ms >= $2::float8 AND event_ms <= $3::float8 AND status NOT IN ('expected', 'superseded')
           ORDER BY last_seen_ms DESC LIMIT 1`,
          [toColumn(dedupKey), fromMs, toMs],
        ),
      );
    },
    async alertsOfChain(traceId, identity) {
      const rows = await db.query<{ body: string }>('SELECT body FROM alerts WHERE trace_id = $1 AND identity = $2', [
        toColumn(traceId.toLowerCase()),
        toColumn(identity),
      ]);
      return rows.map((r) => JSON.parse(r.body) as Alert);
    },
    async isHeld(identity, traceId) {
      const rows = await db.query('SELECT 1 FROM held_chains WHERE identity = $1 AND trace_id = $2 LIMIT 1', [toColumn(identity), toColumn(traceId)]);
      return rows.length > 0;
    },
    async heldByAlert(alertId) {
      const rows = await db.query<{ identity: string; trace_id: string; alert_id: string; chain: Buffer }>(
        'SELECT identity, trace_id, alert_id, chain FROM held_chains WHERE alert_id = $1',
        [toColumn(alertId)],
      );
      return rows.map((r): HeldChain => ({ identity: fromColumn(r.identity), traceId: fromColumn(r.trace_id), alertId: fromColumn(r.alert_id), chain: decodeHeldChain(r.chain) }));
    },
    async heldChainsOf(identity, limit) {
      // A chain is held once per alert it raised: count it once on the graph.
      const rows = await db.query<{ chain: Buffer }>(
        `SELECT h.chain FROM held_chains h JOIN alerts a ON a.id = h.alert_id
         WHERE h.identity = $1 AND a.status <> 'expected'
         GROUP BY h.trace_id, h.chain ORDER BY max(h.start_ms) DESC LIMIT $2`,
        [toColumn(identity), Math.max(1, Math.floor(limit))],
      );
      return rows.map((r) => decodeHeldChain(r.chain));
    },
    async openAlertCounts() {
      const rows = await db.query<{ detector: string; severity: string; count: number }>(
        `SELECT detector, severity, count(*)::int8 AS count FROM alerts WHERE status = 'open' GROUP BY detector, severity`,
      );
      return rows.map((r) => ({ detector: fromColumn(r.detector), severity: fromColumn(r.severity), count: r.count }));
    },
    async baselineCounts({ minCalls, periodMs }) {
      // Enforcing is sticky (enforcing_since_ms) or due: learn/baseline.ts's rule.
      const [row] = await db.query<{ enforcing: number; total: number }>(
        `SELECT coalesce(sum(CASE WHEN enforcing_since_ms IS NOT NULL OR (calls > 0 AND calls >= $1::float8 AND last_ms - first_ms >= $2::float8) THEN 1 ELSE 0 END), 0)::int8 AS enforcing,
           count(*)::int8 AS total
         FROM baseline_identities`,
        [minCalls, periodMs],
      );
      return { total: row?.total ?? 0, enforcing: row?.enforcing ?? 0 };
    },
    async checkpoint(cp) {
      // Every value is read now, before the first wait: the caller may change its objects after.
      const statements = checkpointStatements(cp);
      if (statements.length === 0) return;
      await retrying(() =>
        db.transaction(async (tx: Queryable) => {
          for (const [text, values] of statements) await tx.query(text, values);
        }),
      );
    },
  };
}

/** One statement of a checkpoint: its text and bound values. */
export type Statement = [string, unknown[]];

/** The checkpoint's statements, in the order SQLite applies its parts; empty parts are left out. */
export function checkpointStatements(cp: DetectionCheckpoint): Statement[] {
  const out: Statement[] = [];
  const baselines = new Map<string, BaselineRecord>();
  // Entry state after the deltas in order: the record written last, or null when removed last.
  const entries = new Map<string, { identity: string; kind: string; key: string; entry: BaselineEntryRecord | null }>();
  for (const delta of cp.baselines ?? []) {
    const b = delta.baseline;
    baselines.set(b.identity, b);
    for (const e of delta.entries) entries.set(JSON.stringify([b.identity, e.kind, e.key]), { identity: b.identity, kind: e.kind, key: e.key, entry: e });
    for (const r of delta.removed) entries.set(JSON.stringify([b.identity, r.kind, r.key]), { identity: b.identity, kind: r.kind, key: r.key, entry: null });
  }
  if (baselines.size > 0) out.push(baselineStatement([...baselines.values()]));
  const kept = [...entries.values()].filter((e) => e.entry !== null);
  const removed = [...entries.values()].filter((e) => e.entry === null);
  if (kept.length > 0) {
    out.push([
      `INSERT INTO baseline_entries (identity, kind, key, count, first_ms, last_ms)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[])
       ON CONFLICT (identity, kind, key) DO UPDATE SET count = excluded.count, first_ms = excluded.first_ms, last_ms = excluded.last_ms`,
      [
        kept.map((e) => toColumn(e.identity)), kept.map((e) => toColumn(e.kind)), kept.map((e) => toColumn(e.key)),
        kept.map((e) => e.entry!.count), kept.map((e) => e.entry!.firstMs), kept.map((e) => e.entry!.lastMs),
      ],
    ]);
  }
  if (removed.length > 0) {
    out.push([
      `DELETE FROM baseline_entries e USING unnest($1::text[], $2::text[], $3::text[]) AS r (identity, kind, key)
       WHERE e.identity = r.identity AND e.kind = r.kind AND e.key = r.key`,
      [removed.map((e) => toColumn(e.identity)), removed.map((e) => toColumn(e.kind)), removed.map((e) => toColumn(e.key))],
    ]);
  }
  if (cp.alerts?.length) out.push(alertStatement(cp.alerts));
  if (cp.held?.length) {
    const held = new Map<string, HeldChain>();
    for (const h of cp.held) held.set(JSON.stringify([h.identity, h.traceId, h.alertId]), h);
    const rows = [...held.values()];
    out.push([
      `INSERT INTO held_chains (identity, trace_id, alert_id, start_ms, chain)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::bytea[])
       ON CONFLICT (identity, trace_id, alert_id) DO UPDATE SET start_ms = excluded.start_ms, chain = excluded.chain`,
      [
        rows.map((h) => toColumn(h.identity)), rows.map((h) => toColumn(h.traceId)), rows.map((h) => toColumn(h.alertId)),
        rows.map((h) => h.chain.startMs), rows.map((h) => encodeHeldChain(h.chain)),
      ],
    ]);
  }
  if (cp.released?.length) {
    out.push([
      `DELETE FROM held_chains h USING unnest($1::text[], $2::text[]) AS r (identity, trace_id)
       WHERE h.identity = r.identity AND h.trace_id = r.trace_id`,
      [cp.released.map((r) => toColumn(r.identity)), cp.released.map((r) => toColumn(r.traceId))],
    ]);
  }
  if (cp.suppressions?.length) {
    const s = cp.suppressions;
    // The first of a key is kept, within the checkpoint as against the table.
    out.push([
      `INSERT INTO finding_suppressions (identity, detector, key, alert_id)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`,
      [s.map((r) => toColumn(r.identity)), s.map((r) => toColumn(r.detector)), s.map((r) => toColumn(r.key)), s.map((r) => toColumn(r.alertId))],
    ]);
  }
  if (cp.outbox?.length) out.push(...enqueueStatements(cp.outbox));
  return out;
}

/** Baselines written whole, the last of an identity in the checkpoint. */
function baselineStatement(rows: readonly BaselineRecord[]): Statement {
  return [
    `INSERT INTO baseline_identities
       (identity, kind, display_name, grp, first_ms, last_ms, calls, enforcing_since_ms, compromised, dropped, last_sweep_ms, rate, recent_sources)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::bool[],
       $10::float8[], $11::float8[], $12::text[], $13::text[])
     ON CONFLICT (identity) DO UPDATE SET kind = excluded.kind, display_name = excluded.display_name, grp = excluded.grp,
       first_ms = excluded.first_ms, last_ms = excluded.last_ms, calls = excluded.calls, enforcing_since_ms = excluded.enforcing_since_ms,
       compromised = excluded.compromised, dropped = excluded.dropped, last_sweep_ms = excluded.last_sweep_ms,
       rate = excluded.rate, recent_sources = excluded.recent_sources`,
    [
      rows.map((b) => toColumn(b.identity)), rows.map((b) => toColumn(b.kind)), rows.map((b) => toColumnOrNull(b.displayName)),
      rows.map((b) => b.group), rows.map((b) => b.firstMs), rows.map((b) => b.lastMs), rows.map((b) => b.calls),
      rows.map((b) => b.enforcingSinceMs ?? null), rows.map((b) => b.compromised), rows.map((b) => b.dropped),
      rows.map((b) => b.lastSweepMs), rows.map((b) => JSON.stringify(b.rate)), rows.map((b) => JSON.stringify(b.recentSources)),
    ],
  ];
}

/** Alerts inserted, or replaced whole by id (a repeat, a verdict); of several records of one id, the last. */
function alertStatement(records: readonly AlertRecord[]): Statement {
  const byId = new Map<string, AlertRecord>();
  for (const r of records) byId.set(r.alert.id, r);
  const rows = [...byId.values()];
  // Absent values stay null, and the NOT NULL columns refuse them (the checkpoint fails whole).
  const text = (v: string | null | undefined) => (typeof v === 'string' ? toColumn(v) : null);
  return [
    `INSERT INTO alerts (id, identity, detector, severity, status, trace_id, event_ms, last_seen_ms, dedup_key, body, detectors, score, search, delivery_seq)
     SELECT a.id, a.identity, a.detector, a.severity, a.status, a.trace_id, a.event_ms, a.last_seen_ms, a.dedup_key, a.body,
       ARRAY(SELECT json_array_elements_text(a.detectors::json)), a.score, a.search, a.delivery_seq
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::float8[], $9::text[], $10::text[],
       $11::text[], $12::float8[], $13::text[], $14::int4[])
       AS a (id, identity, detector, severity, status, trace_id, event_ms, last_seen_ms, dedup_key, body, detectors, score, search, delivery_seq)
     ON CONFLICT (id) DO UPDATE SET identity = excluded.identity, detector = excluded.detector, severity = excluded.severity,
       status = excluded.status, trace_id = excluded.trace_id, event_ms = excluded.event_ms, last_seen_ms = excluded.last_seen_ms,
       dedup_key = excluded.dedup_key, body = excluded.body, detectors = excluded.detectors, score = excluded.score, search = excluded.search,
       delivery_seq = greatest(alerts.delivery_seq, excluded.delivery_seq)`,
    [
      rows.map((r) => toColumn(r.alert.id)), rows.map((r) => text(r.alert.identity)), rows.map((r) => text(r.alert.detector)),
      rows.map((r) => text(r.alert.severity)), rows.map((r) => text(r.alert.status)), rows.map((r) => text(r.alert.traceId)),
      rows.map((r) => finiteOrNull(Date.parse(r.alert.firstSeen))), rows.map((r) => finiteOrNull(Date.parse(r.alert.lastSeen))),
      rows.map((r) => text(r.dedupKey)), rows.map((r) => JSON.stringify(r.alert)),
      rows.map((r) => JSON.stringify(detectorsOf(r.alert).map(toColumn))),
      rows.map((r) => (typeof r.alert.score === 'number' && Number.isFinite(r.alert.score) ? r.alert.score : 0)),
      rows.map((r) => searchTextOf(r.alert)),
      rows.map((r) => Math.max(0, Math.floor(r.deliverySeq ?? 0))),
    ],
  ];
}

/** Every detector of an incident (alerts before incidents name one). */
function detectorsOf(a: Alert): string[] {
  const list = (a as unknown as { detectors?: unknown }).detectors;
  return Array.isArray(list) && list.length > 0 ? list.map(String) : [String(a.detector)];
}

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);
