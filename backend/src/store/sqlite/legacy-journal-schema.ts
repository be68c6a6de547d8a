/**
 * Tables of the ingest journal of versions before the segment log (log.ts): `journal` held each
 * accepted request until every trace it touched was stored, `journal_traces` the traces not yet
 * stored. Migration 020 still creates them; the journal moves what an upgrade finds there
 * into its log and the store empties them (legacy-journal.ts).
 */
export const JOURNAL_SCHEMA = `
  CREATE TABLE IF NOT EXISTS journal (
    seq         INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    spans       INTEGER NOT NULL,
    body        BLOB NOT NULL,
    format      TEXT NOT NULL DEFAULT 'decoded'
  );
  CREATE TABLE IF NOT EXISTS journal_traces (
    seq      INTEGER NOT NULL,
    trace_id TEXT NOT NULL,
    PRIMARY KEY (seq, trace_id)
  ) WITHOUT ROWID;
`;
