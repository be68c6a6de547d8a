import type { Migration } from '../migration.js';

/**
 * Retention deletes the chains alerts hold out of learning once they started before
 * `storage.retention` (an open incident counted on for days holds every repeat's chain): an index
 * on their start time, so that a step reads only the rows it deletes.
 */
const migration: Migration = {
  description: 'held chains by start time, for retention',
  up: `
    CREATE INDEX held_chains_by_start ON held_chains (start_ms);
  `,
};

export default migration;
