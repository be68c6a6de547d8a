import type { Migration } from '../migration.js';

/**
 * One row per trace and write (`trace_parts`): the trace's summary when the write had one (as
 * `traces`, 005) and the range of `chains.seq` its chains took, under one index entry by trace id.
 * Trace ids are random, so every entry of a trace-id index lands on a page of its own: before,
 * a small trace cost one such entry per chain and one for its summary (three for a 4-span trace);
 * now one. `chains` keeps its index by trace id only for the rows written before this migration
 * (a partial index up to their last `seq`, which the store reads from the index's definition);
 * later chains are found through their part's range, and `traces` keeps the summaries written
 * before. The store reads both tables and retention empties the old rows first.
 *
 * Retention takes parts from the front of the append order with their chains; parts without
 * chains (a trace that made none, or whose chains a late part replaced) are few and also indexed
 * by end time, so that young chains at the front do not hold back their deletion.
 */
const migration: Migration = {
  description: 'trace parts: summary and chain range per trace and write, one trace-id index entry',
  up(db) {
    const last = Number(db.prepare('SELECT coalesce(max(seq), 0) FROM chains').pluck().get());
    db.exec(`
      CREATE TABLE trace_parts (
        seq         INTEGER PRIMARY KEY,
        trace_id    BLOB NOT NULL,
        end_ms      INTEGER NOT NULL,
        first_chain INTEGER,
        last_chain  INTEGER,
        start_ms    INTEGER,
        summary_end_ms INTEGER,
        spans       INTEGER,
        services    TEXT
      );
      CREATE INDEX trace_parts_by_trace ON trace_parts (trace_id);
      CREATE INDEX trace_parts_without_chains_by_end ON trace_parts (end_ms) WHERE first_chain IS NULL;
      DROP INDEX chains_by_trace_id;
      CREATE INDEX chains_by_trace_id_upto ON chains (trace_id) WHERE seq <= ${Math.max(0, Math.floor(last))};
    `);
  },
};

export default migration;
