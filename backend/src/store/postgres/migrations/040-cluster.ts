import type { PostgresMigration } from '../migration.js';

/**
 * The cluster's coordination tables (backend/src/cluster/README.md):
 * - `cluster_instances`: every running `conduct serve` on this database, its API endpoint, the
 *   backend pid of the session that holds its partition locks, its heartbeat (server time) and
 *   the last cluster flush it answered.
 * - `cluster_partitions`: one row per partition: its owner, the lease epoch (raised on every
 *   take-over; a checkpoint commits only while the epoch it was read with holds) and the offset
 *   its owner has analysed up to.
 * - `cluster_heads`: one row per partition: the last hand-off sequence number given out (a row
 *   of its own, so that instances handing off never wait for an owner's fenced commit).
 * - `cluster_handoff`: chains (and verdicts) on their way from the instance that stitched them to
 *   the owner of their identity's partition, numbered per partition in commit order.
 * - `cluster_flushes`: cluster-wide flush requests.
 */
const migration: PostgresMigration = {
  version: 40,
  description: 'cluster: instances, partition leases, hand-off heads and offsets, chain hand-off, flush requests',
  up: `
    CREATE TABLE cluster_instances (
      id             text PRIMARY KEY,
      endpoint       text NOT NULL,
      lock_pid       integer,
      started_at     timestamptz NOT NULL DEFAULT now(),
      last_heartbeat timestamptz NOT NULL DEFAULT now(),
      flushed        bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE cluster_partitions (
      partition  integer PRIMARY KEY,
      owner      text,
      epoch      bigint NOT NULL DEFAULT 0,
      committed  bigint NOT NULL DEFAULT 0,
      moved_at   timestamptz
    );
    CREATE TABLE cluster_heads (
      partition  integer PRIMARY KEY,
      head       bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE cluster_handoff (
      partition  integer NOT NULL,
      seq        bigint NOT NULL,
      kind       text NOT NULL,
      body       jsonb NOT NULL,
      from_instance text NOT NULL,
      handed_ms  double precision NOT NULL,
      PRIMARY KEY (partition, seq)
    );
    CREATE TABLE cluster_flushes (
      id         bigserial PRIMARY KEY,
      requested_at timestamptz NOT NULL DEFAULT now()
    );
  `,
};

export default migration;
