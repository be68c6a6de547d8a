import type { PostgresMigration } from '../migration.js';

/**
 * Detection state: learned baselines (one row per identity with its group, the partition of the
 * identity in a cluster; one row per learned key), alerts with the indexes behind the API's
 * filters, chains held out of a baseline until a verdict, and operator suppressions. What the
 * SQLite store keeps in its migrations 010 and 040. `rate`, `recent_sources`, alert bodies and
 * held chains are JSON text, opaque to the database; times are event time in ms.
 */
const migration: PostgresMigration = {
  version: 2,
  description: 'baselines, alerts, held-out chains and finding suppressions',
  up: `
    CREATE TABLE baseline_identities (
      identity           text COLLATE "C" PRIMARY KEY,
      kind               text COLLATE "C" NOT NULL,
      display_name       text COLLATE "C",
      grp                integer NOT NULL DEFAULT 0,
      first_ms           bigint NOT NULL,
      last_ms            bigint NOT NULL,
      calls              bigint NOT NULL,
      enforcing_since_ms bigint,
      compromised        boolean NOT NULL DEFAULT false,
      dropped            bigint NOT NULL DEFAULT 0,
      last_sweep_ms      bigint NOT NULL DEFAULT 0,
      rate               text COLLATE "C" NOT NULL,
      recent_sources     text COLLATE "C" NOT NULL
    );
    CREATE INDEX baseline_identities_by_group ON baseline_identities (grp);

    CREATE TABLE baseline_entries (
      identity text COLLATE "C" NOT NULL,
      kind     text COLLATE "C" NOT NULL,
      key      text COLLATE "C" NOT NULL,
      count    bigint NOT NULL,
      first_ms bigint NOT NULL,
      last_ms  bigint NOT NULL,
      PRIMARY KEY (identity, kind, key)
    );

    CREATE TABLE alerts (
      id           text COLLATE "C" PRIMARY KEY,
      identity     text COLLATE "C" NOT NULL,
      detector     text COLLATE "C" NOT NULL,
      severity     text COLLATE "C" NOT NULL,
      status       text COLLATE "C" NOT NULL,
      trace_id     text COLLATE "C" NOT NULL,
      event_ms     bigint NOT NULL,
      last_seen_ms bigint NOT NULL,
      dedup_key    text COLLATE "C" NOT NULL,
      body         text COLLATE "C" NOT NULL
    );
    CREATE INDEX alerts_by_last_seen ON alerts (last_seen_ms);
    CREATE INDEX alerts_by_identity ON alerts (identity, last_seen_ms);
    CREATE INDEX alerts_by_detector ON alerts (detector, last_seen_ms);
    CREATE INDEX alerts_by_status ON alerts (status, last_seen_ms);
    CREATE INDEX alerts_by_dedup ON alerts (dedup_key, last_seen_ms);
    CREATE INDEX alerts_by_trace ON alerts (trace_id);

    CREATE TABLE held_chains (
      identity text COLLATE "C" NOT NULL,
      trace_id text COLLATE "C" NOT NULL,
      alert_id text COLLATE "C" NOT NULL,
      start_ms bigint NOT NULL,
      chain    text COLLATE "C" NOT NULL,
      PRIMARY KEY (identity, trace_id, alert_id)
    );
    CREATE INDEX held_chains_by_alert ON held_chains (alert_id);

    CREATE TABLE finding_suppressions (
      identity text COLLATE "C" NOT NULL,
      detector text COLLATE "C" NOT NULL,
      key      text COLLATE "C" NOT NULL,
      alert_id text COLLATE "C" NOT NULL,
      PRIMARY KEY (identity, detector, key)
    );

  `,
};

export default migration;
