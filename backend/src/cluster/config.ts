/**
 * The cluster's configuration (`cluster.*`). A cluster is every `conduct serve` whose
 * `storage.postgres.url` names the same database; on SQLite these keys have no effect (one
 * instance owns every partition).
 */
export interface ClusterConfig {
  /**
   * Partitions the identities hash into (`cluster.partitions`). Fixed for a database: every
   * instance of a cluster must use the same count.
   */
  partitions: number;
  /**
   * `cluster.leaseTimeout` (ms): an instance whose heartbeat is older than this is taken for
   * dead: its lease session is ended and the others take its partitions. A process that dies
   * outright (SIGKILL) loses its session at once and its partitions move at the next heartbeat.
   */
  leaseTimeout: number;
}

/** Default of `cluster.partitions`. */
export const DEFAULT_PARTITIONS = 64;
/** Largest `cluster.partitions`. */
export const MAX_PARTITIONS = 4096;
/** Default of `cluster.leaseTimeout`: 15 s. */
export const DEFAULT_LEASE_TIMEOUT_MS = 15_000;
/** Heartbeats (and lease checks) come this many times per lease timeout. */
export const HEARTBEATS_PER_TIMEOUT = 5;
/** Owners look for hand-off items at least this often when no notification woke them (ms). */
export const HANDOFF_POLL_MS = 1_000;

export const DEFAULT_CLUSTER_CONFIG: ClusterConfig = { partitions: DEFAULT_PARTITIONS, leaseTimeout: DEFAULT_LEASE_TIMEOUT_MS };
