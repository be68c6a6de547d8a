import type { Database } from 'better-sqlite3';

/**
 * Tables of learning and detection. Applied by the numbered migration 010 (migrations/010-detection.ts)
 * and, idempotently, when the detection state opens over a connection (detection-state.ts), so it
 * also works on a database the store did not migrate. Times are event time in ms.
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
