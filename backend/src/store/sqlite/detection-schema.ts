import type { Database } from 'better-sqlite3';

/**
 * Tables of learning and detection as migration 010 made them (migrations/010-detection.ts;
 * idempotent). Migration 091 moves the baseline entries into `baseline_counts`
 * ({@link numberBaselineEntries}), which the detection state also runs when it opens a database
 * the numbered migrations did not bring to 091. Times are event time in ms.
 */
export const DETECTION_SCHEMA = `
  CREATE TABLE IF NOT EXISTS baseline_identities (
    identity           TEXT PRIMARY KEY,
    kind               TEXT NOT NULL,
    display_name       TEXT,
    first_ms           INTEGER NOT NULL,
    last_ms            INTEGER NOT NULL,
    calls              INTEGER NOT NULL,
    enforcing_since_ms INTEGER,
    compromised        INTEGER NOT NULL DEFAULT 0,
    dropped            INTEGER NOT NULL DEFAULT 0,
    last_sweep_ms      INTEGER NOT NULL DEFAULT 0,
    rate               TEXT NOT NULL,
    recent_sources     TEXT NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE IF NOT EXISTS baseline_entries (
    identity  TEXT NOT NULL,
    kind      TEXT NOT NULL,
    key       TEXT NOT NULL,
    count     INTEGER NOT NULL,
    first_ms  INTEGER NOT NULL,
    last_ms   INTEGER NOT NULL,
    PRIMARY KEY (identity, kind, key)
  ) WITHOUT ROWID;

  CREATE TABLE IF NOT EXISTS alerts (
    id            TEXT PRIMARY KEY,
    identity      TEXT NOT NULL,
    detector      TEXT NOT NULL,
    severity      TEXT NOT NULL,
    status        TEXT NOT NULL,
    trace_id      TEXT NOT NULL,
    event_ms      INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    dedup_key     TEXT NOT NULL,
    body          TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS alerts_by_last_seen ON alerts (last_seen_ms);
  CREATE INDEX IF NOT EXISTS alerts_by_identity ON alerts (identity, last_seen_ms);
  CREATE INDEX IF NOT EXISTS alerts_by_detector ON alerts (detector, last_seen_ms);
  CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (status, last_seen_ms);
  CREATE INDEX IF NOT EXISTS alerts_by_dedup ON alerts (dedup_key, last_seen_ms);
  CREATE INDEX IF NOT EXISTS alerts_by_trace ON alerts (trace_id);

  CREATE TABLE IF NOT EXISTS held_chains (
    identity  TEXT NOT NULL,
    trace_id  TEXT NOT NULL,
    alert_id  TEXT NOT NULL,
    start_ms  INTEGER NOT NULL,
    chain     TEXT NOT NULL,
    PRIMARY KEY (identity, trace_id, alert_id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS held_chains_by_alert ON held_chains (alert_id);

  CREATE TABLE IF NOT EXISTS finding_suppressions (
    identity  TEXT NOT NULL,
    detector  TEXT NOT NULL,
    key       TEXT NOT NULL,
    alert_id  TEXT NOT NULL,
    PRIMARY KEY (identity, detector, key)
  ) WITHOUT ROWID;
`;

export function applyDetectionSchema(db: Database): void {
  db.exec(DETECTION_SCHEMA);
}

/**
 * Baseline entry kinds known when migration 091 numbered them (learn/baseline.ts's list then), seeded
 * with codes 1.. so an ordinary checkpoint never has to add one. A kind added later gets the next
 * free code from the detection state (detection-state.ts).
 */
const KINDS_OF_091 = [
  'peer', 'operation', 'transition', 'shape', 'region', 'account', 'cluster', 'network', 'userAgent',
  'addressClass', 'target', 'targetAccount', 'edge', 'version', 'chainSurprisal',
] as const;

/**
 * Migration 091's change, idempotent: baseline entries keyed by numbers instead of texts. Each
 * identity gets a number (`baseline_identities.num`) and each kind a code (`baseline_kinds`);
 * entries live in `baseline_counts` under (identity number, kind code, key), and `baseline_entries`
 * becomes a view with the old columns for reading. Measured (bench/README.md, "Detection checkpoint,
 * second pass"): a checkpoint rewrites every entry a batch touched, and binding an identity and a
 * kind text per row and comparing them in the key cost ~40% of writing the row.
 * Entries whose identity has no `baseline_identities` row (none are written so) are not carried over.
 */
export function numberBaselineEntries(db: Database): void {
  const has = (type: string, name: string): boolean =>
    db.prepare('SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?').get(type, name) !== undefined;
  if (!(db.prepare('PRAGMA table_info(baseline_identities)').all() as Array<{ name: string }>).some((c) => c.name === 'num')) {
    db.exec('ALTER TABLE baseline_identities ADD COLUMN num INTEGER');
  }
  let next = (db.prepare('SELECT coalesce(max(num), 0) FROM baseline_identities').pluck().get() as number) + 1;
  const numberOf = db.prepare('UPDATE baseline_identities SET num = ? WHERE identity = ?');
  for (const identity of db.prepare('SELECT identity FROM baseline_identities WHERE num IS NULL ORDER BY identity').pluck().all() as string[]) {
    numberOf.run(next++, identity);
  }
  db.exec(`
    CREATE TABLE IF NOT EXISTS baseline_kinds (
      code  INTEGER PRIMARY KEY,
      kind  TEXT NOT NULL UNIQUE
    );
    CREATE TABLE IF NOT EXISTS baseline_counts (
      identity_num  INTEGER NOT NULL,
      kind_code     INTEGER NOT NULL,
      key           TEXT NOT NULL,
      count         INTEGER NOT NULL,
      first_ms      INTEGER NOT NULL,
      last_ms       INTEGER NOT NULL,
      PRIMARY KEY (identity_num, kind_code, key)
    ) WITHOUT ROWID;
  `);
  const seed = db.prepare('INSERT OR IGNORE INTO baseline_kinds (code, kind) VALUES (?, ?)');
  KINDS_OF_091.forEach((kind, i) => seed.run(i + 1, kind));
  if (has('table', 'baseline_entries')) {
    db.exec(`
      INSERT OR IGNORE INTO baseline_kinds (kind) SELECT DISTINCT kind FROM baseline_entries ORDER BY kind;
      INSERT OR REPLACE INTO baseline_counts (identity_num, kind_code, key, count, first_ms, last_ms)
        SELECT i.num, k.code, e.key, e.count, e.first_ms, e.last_ms
        FROM baseline_entries e JOIN baseline_identities i ON i.identity = e.identity JOIN baseline_kinds k ON k.kind = e.kind;
      DROP TABLE baseline_entries;
    `);
  }
  db.exec(`CREATE VIEW IF NOT EXISTS baseline_entries AS
    SELECT i.identity, k.kind, c.key, c.count, c.first_ms, c.last_ms
    FROM baseline_counts c JOIN baseline_identities i ON i.num = c.identity_num JOIN baseline_kinds k ON k.code = c.kind_code`);
}
