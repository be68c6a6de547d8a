import type { PostgresMigration } from '../migration.js';

/**
 * Retention deletes identities and observed edges with no activity left within
 * `storage.retention`, oldest last seen first: an index on the last-seen time of each, so that a
 * step reads only the rows it deletes.
 */
const migration: PostgresMigration = {
  version: 30,
  description: 'identities and edges by last seen, for retention',
  up: `
    CREATE INDEX identities_by_last_seen ON identities (last_seen_ms);
    CREATE INDEX edges_by_last_seen ON edges (last_seen_ms);
  `,
};

export default migration;
