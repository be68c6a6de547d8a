import type { Migration } from '../migration.js';

/**
 * Identities, chains (one row per chain, calls as compact JSON) and per-identity observed edges.
 * Times are event time in ms since the Unix epoch; trace ids are 16-byte blobs.
 */
const migration: Migration = {
  description: 'identities, chains and observed edges',
  up: `
    CREATE TABLE identities (
      id            TEXT PRIMARY KEY,
      kind          TEXT NOT NULL,
      display_name  TEXT,
      first_seen_ms INTEGER NOT NULL,
      last_seen_ms  INTEGER NOT NULL,
      calls         INTEGER NOT NULL DEFAULT 0,
      chains        INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE chains (
      seq           INTEGER PRIMARY KEY,
      trace_id      BLOB NOT NULL,
      identity      TEXT NOT NULL,
      identity_kind TEXT NOT NULL,
      display_name  TEXT,
      start_ms      INTEGER NOT NULL,
      end_ms        INTEGER NOT NULL,
      call_count    INTEGER NOT NULL,
      calls         TEXT NOT NULL
    );
    CREATE INDEX chains_by_trace ON chains (trace_id);
    CREATE INDEX chains_by_identity_end ON chains (identity, end_ms);

    CREATE TABLE edges (
      identity      TEXT NOT NULL,
      service       TEXT NOT NULL,
      peer          TEXT NOT NULL,
      operation     TEXT NOT NULL,
      peer_kind     TEXT NOT NULL,
      external      INTEGER NOT NULL,
      count         INTEGER NOT NULL,
      first_seen_ms INTEGER NOT NULL,
      last_seen_ms  INTEGER NOT NULL,
      PRIMARY KEY (identity, service, peer, operation)
    ) WITHOUT ROWID;
  `,
};

export default migration;
