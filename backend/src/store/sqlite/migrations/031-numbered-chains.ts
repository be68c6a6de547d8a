import type { Migration } from '../migration.js';

/**
 * Chains with their identity, kind and display name as ids of `strings` (migration 030): the
 * identity index holds a small integer instead of the identity's text, and a row binds three
 * fewer texts. The chains written before keep their table, renamed with its indexes; the store
 * reads both and retention empties the old one.
 */
const migration: Migration = {
  description: 'chains with numbered identity, kind and display name',
  up: `
    ALTER TABLE chains RENAME TO chains_text;
    CREATE TABLE chains (
      seq          INTEGER PRIMARY KEY,
      trace_id     BLOB NOT NULL,
      identity     INTEGER NOT NULL,
      kind         INTEGER NOT NULL,
      display_name INTEGER,
      start_ms     INTEGER NOT NULL,
      end_ms       INTEGER NOT NULL,
      calls        BLOB NOT NULL
    );
    CREATE INDEX chains_by_trace_id ON chains (trace_id);
    CREATE INDEX chains_by_identity_id_end ON chains (identity, end_ms);
  `,
};

export default migration;
