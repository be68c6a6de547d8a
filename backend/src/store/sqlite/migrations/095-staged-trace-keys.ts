import type { Migration } from '../migration.js';

/**
 * The trace-id index of `trace_parts` in two tables (store.ts, "trace keys"): a write's parts put
 * their (trace id, seq) in the small `trace_keys_recent`, whose pages stay in the cache, and a merge
 * moves them in key order into the large `trace_keys` now and then. The index on `trace_parts
 * (trace_id)` it replaces took a page of its own per trace once it was far larger than a write
 * (trace ids are random): each write dirtied one leaf per trace, which the commit wrote to the WAL
 * and the checkpoint copied again (bench/README.md, "The store on a grown file"). Existing parts'
 * keys are copied in key order, through that index, before it is dropped.
 */
const migration: Migration = {
  description: 'trace keys staged: the trace-id index of trace_parts as a small table merged into a large one',
  up: `
    CREATE TABLE trace_keys (trace_id BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (trace_id, seq)) WITHOUT ROWID;
    CREATE TABLE trace_keys_recent (trace_id BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (trace_id, seq)) WITHOUT ROWID;
    INSERT INTO trace_keys (trace_id, seq) SELECT trace_id, seq FROM trace_parts ORDER BY trace_id, seq;
    CREATE INDEX trace_keys_by_seq ON trace_keys (seq);
    CREATE INDEX trace_keys_recent_by_seq ON trace_keys_recent (seq);
    DROP INDEX IF EXISTS trace_parts_by_trace;
  `,
};

export default migration;
