/**
 * How a journaled request's body is kept:
 * - `protobuf`: the OTLP/protobuf request body as received (after gzip);
 * - `json`: the OTLP/JSON request body as received (after gzip);
 * - `decoded`: the decoded request (TracesRequestData) as JSON text, for requests handed in
 *   without their body, and the only form the oldest SQLite journals hold.
 */
export type JournalBodyFormat = (typeof JOURNAL_BODY_FORMATS)[number];

/** Every JournalBodyFormat; a log record stores its format as the index here (log.ts). */
export const JOURNAL_BODY_FORMATS = ['protobuf', 'json', 'decoded'] as const;

/**
 * Tables of the ingest journal of versions before the segment log (log.ts): `journal` held each
 * accepted request until every trace it touched was stored, `journal_traces` the traces not yet
 * stored. Store migration 020 still creates them; the journal moves what an upgrade finds there
 * into its log and empties them (legacy.ts).
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
