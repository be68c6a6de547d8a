import type { Migration } from '../migration.js';

/**
 * The identity index of `chains` as a table that covers all but the newest chains (chain-keys.ts).
 * The index it replaces, on (identity, end_ms), took each write's chains at every identity's place
 * in it: every commit rewrote one leaf per identity (54 of the 174 WAL pages a commit wrote on a
 * fresh file with 4-span traces, bench/README.md). `chain_keys` holds the same keys for the chains
 * up to `chain_keys_upto.seq`; newer chains are read from the end of `chains`, and their keys are
 * added in key order every so many chains. Existing chains' keys are copied, in key order, through
 * the old index before it is dropped.
 */
const migration: Migration = {
  description: 'chain keys: the identity index of chains as a table, up to a seq, merged into in key order',
  up: `
    CREATE TABLE chain_keys (identity INTEGER NOT NULL, end_ms INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (identity, end_ms, seq)) WITHOUT ROWID;
    CREATE TABLE chain_keys_upto (one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL);
    INSERT INTO chain_keys (identity, end_ms, seq) SELECT identity, end_ms, seq FROM chains ORDER BY identity, end_ms, seq;
    INSERT INTO chain_keys_upto (one, seq) SELECT 1, coalesce(max(seq), 0) FROM chains;
    DROP INDEX chains_by_identity_id_end;
  `,
};

export default migration;
