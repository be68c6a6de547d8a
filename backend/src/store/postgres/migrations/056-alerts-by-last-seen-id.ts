import type { PostgresMigration } from '../migration.js';

/**
 * Alert retention (`storage.alertRetention`) reads alerts last seen before its cutoff a page at a
 * time in (last seen, id) order: an index in that order, so a step reads only its page. It
 * replaces 002's `alerts (last_seen_ms)`, whose every use it serves as well.
 */
const migration: PostgresMigration = {
  version: 56,
  description: 'alerts by last seen and id, for alert retention',
  up: `
    CREATE INDEX alerts_by_last_seen_id ON alerts (last_seen_ms, id);
    DROP INDEX alerts_by_last_seen;
  `,
};

export default migration;
