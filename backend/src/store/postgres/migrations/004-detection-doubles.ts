import type { PostgresMigration } from '../migration.js';

/**
 * Detection's times and counts as the numbers detection holds: event times of calls are not whole
 * milliseconds (ticks of 2^-12 ms), and learned counts may be fractional. `double precision` keeps
 * them exactly (every ms timestamp of this era is far below 2^53), as SQLite keeps a REAL in an
 * INTEGER column.
 */
const migration: PostgresMigration = {
  version: 4,
  description: 'detection times and counts as double precision',
  up: `
    ALTER TABLE baseline_identities
      ALTER COLUMN first_ms TYPE double precision,
      ALTER COLUMN last_ms TYPE double precision,
      ALTER COLUMN calls TYPE double precision,
      ALTER COLUMN enforcing_since_ms TYPE double precision,
      ALTER COLUMN dropped TYPE double precision,
      ALTER COLUMN last_sweep_ms TYPE double precision;
    ALTER TABLE baseline_entries
      ALTER COLUMN count TYPE double precision,
      ALTER COLUMN first_ms TYPE double precision,
      ALTER COLUMN last_ms TYPE double precision;
    ALTER TABLE alerts
      ALTER COLUMN event_ms TYPE double precision,
      ALTER COLUMN last_seen_ms TYPE double precision;
    ALTER TABLE held_chains ALTER COLUMN start_ms TYPE double precision;
  `,
};

export default migration;
