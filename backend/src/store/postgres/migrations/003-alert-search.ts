import type { PostgresMigration } from '../migration.js';

/**
 * What the alert list filters and sorts on beyond the indexed columns, taken from the alert when
 * it is written: every detector of the incident, the score, and the searched text (ids, detector,
 * title, explanation and findings, ASCII lower-cased). The body stays opaque JSON text.
 */
const migration: PostgresMigration = {
  version: 3,
  description: 'alert detectors, score and searched text for the alert list',
  up: `
    ALTER TABLE alerts ADD COLUMN detectors text[] COLLATE "C" NOT NULL DEFAULT '{}';
    ALTER TABLE alerts ADD COLUMN score double precision NOT NULL DEFAULT 0;
    ALTER TABLE alerts ADD COLUMN search text COLLATE "C" NOT NULL DEFAULT '';
    UPDATE alerts SET detectors = ARRAY[detector];
  `,
};

export default migration;
