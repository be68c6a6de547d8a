import type { PostgresMigration } from '../migration.js';

/**
 * Retention deletes identities and observed edges with no activity left within
 * `storage.retention`, oldest last seen first: edges get an index on their last-seen time, as
 * identities have since migration 1, so that a step reads only the rows it deletes.
 */
const migration: PostgresMigration = {
  version: 30,
  description: 'edges by last seen, for retention',
  up: `
    CREATE INDEX edges_by_last_seen ON edges (last_seen_ms);
  `,
};

export default migration;
