import type { PostgresMigration } from '../migration.js';

/**
 * When conduct received each chain: `received_ms`, wall-clock ms since the epoch at which the
 * chain's trace completed and was stored (its other times are event time, from the spans); as
 * SQLite's migration 045. Rows written before have none (NULL).
 */
const migration: PostgresMigration = {
  version: 5,
  description: 'the wall-clock time each chain was received',
  up: `
    ALTER TABLE chains ADD COLUMN received_ms bigint;
  `,
};

export default migration;
