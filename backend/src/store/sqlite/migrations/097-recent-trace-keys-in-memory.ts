import type { Migration } from '../migration.js';

/**
 * The newest trace keys in memory (trace-keys.ts): `trace_keys_recent` of 095 leaves the file. Its
 * keys are merged into `trace_keys`, in key order, and `trace_keys_upto` records the newest part
 * they cover; the store keeps the keys of newer parts in an in-memory database and reads them back
 * from `trace_parts` when it opens. A deleted part's key is now dropped by its trace id and seq, or
 * left for a sweep (key-sweep.ts), so the index of `trace_keys` by seq goes too. `key_sweeps`
 * counts the keys retention left behind, per key table.
 */
const migration: Migration = {
  description: 'recent trace keys in memory: trace_keys_recent merged into trace_keys, which covers parts up to trace_keys_upto',
  up: `
    CREATE TABLE trace_keys_upto (one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL);
    INSERT INTO trace_keys (trace_id, seq) SELECT trace_id, seq FROM trace_keys_recent ORDER BY trace_id, seq;
    INSERT INTO trace_keys_upto (one, seq) SELECT 1, coalesce(max(seq), 0) FROM trace_parts;
    DROP TABLE trace_keys_recent;
    DROP INDEX trace_keys_by_seq;
    CREATE TABLE key_sweeps (name TEXT PRIMARY KEY, stale INTEGER NOT NULL);
  `,
};

export default migration;
