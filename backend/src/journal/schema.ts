import type { Database } from 'better-sqlite3';

/**
 * Tables of the ingest journal. `journal` holds each accepted request (decoded, as JSON) until
 * every trace it touched is stored; `journal_traces` lists, per request, the traces not yet
 * stored. Applied by store migration 020 and, idempotently, by the journal itself.
 */
export const JOURNAL_SCHEMA = `
  CREATE TABLE IF NOT EXISTS journal (
    seq         INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    spans       INTEGER NOT NULL,
    body        TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS journal_traces (
    seq      INTEGER NOT NULL,
    trace_id TEXT NOT NULL,
    PRIMARY KEY (seq, trace_id)
  ) WITHOUT ROWID;
`;

export function applyJournalSchema(db: Database): void {
  db.exec(JOURNAL_SCHEMA);
}
