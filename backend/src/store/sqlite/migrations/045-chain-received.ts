import type { Migration } from '../migration.js';

/**
 * When conduct received each chain: `received_ms`, wall-clock ms since the epoch at which the
 * chain's trace completed and was stored (its other times are event time, from the spans). Rows
 * written before have none (NULL), as have the rows of `chains_text`.
 */
const migration: Migration = {
  description: 'the wall-clock time each chain was received',
  up: `
    ALTER TABLE chains ADD COLUMN received_ms INTEGER;
  `,
};

export default migration;
