import type { Database } from 'better-sqlite3';

/**
 * How a journaled request's `body` is written (the `format` column):
 * - `protobuf`: the OTLP/protobuf request body as received (after gzip), a BLOB;
 * - `json`: the OTLP/JSON request body as received (after gzip), a BLOB;
 * - `decoded`: the decoded request (TracesRequestData) as JSON text, for requests handed in
 *   without their body, and the only form journals written before the column existed hold.
 */
export type JournalBodyFormat = 'protobuf' | 'json' | 'decoded';

/**
 * Tables of the ingest journal. `journal` holds each accepted request until every trace it
 * touched is stored; `journal_traces` lists, per request, the traces not yet stored. Applied by
 * store migration 020 and, idempotently, by the journal itself (which also adds the `format`
 * column to a journal made before it existed).
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

export function applyJournalSchema(db: Database): void {
  db.exec(JOURNAL_SCHEMA);
  const columns = db.prepare('PRAGMA table_info(journal)').all() as Array<{ name: string }>;
  if (!columns.some((c) => c.name === 'format')) db.exec(`ALTER TABLE journal ADD COLUMN format TEXT NOT NULL DEFAULT 'decoded'`);
}
