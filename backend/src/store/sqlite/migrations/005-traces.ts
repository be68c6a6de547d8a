import type { Migration } from '../migration.js';

/**
 * One row per completed trace, whether or not it yielded calls, so the trace view knows every
 * trace conduct accepted (a lone server span with no principal makes no call, yet it was stored).
 * Append-order key; the trace id index serves lookups.
 */
const migration: Migration = {
  description: 'trace summaries',
  up: `
    CREATE TABLE traces (
      seq       INTEGER PRIMARY KEY,
      trace_id  BLOB NOT NULL,
      start_ms  INTEGER NOT NULL,
      end_ms    INTEGER NOT NULL,
      spans     INTEGER NOT NULL,
      services  TEXT NOT NULL
    );
    CREATE INDEX traces_by_trace ON traces (trace_id);
  `,
};

export default migration;
