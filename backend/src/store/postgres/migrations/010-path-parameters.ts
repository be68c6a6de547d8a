import type { PostgresMigration } from '../migration.js';

/**
 * Learned path parameters of operation templates (the processor's path-params.ts): one row per
 * position, keyed by peer, HTTP method, segment count and the templated prefix before it.
 */
const migration: PostgresMigration = {
  version: 10,
  description: 'learned path parameters of operation templates',
  up: `
    CREATE TABLE IF NOT EXISTS path_parameters (
      peer       text COLLATE "C" NOT NULL,
      method     text COLLATE "C" NOT NULL,
      segments   integer NOT NULL,
      prefix     text COLLATE "C" NOT NULL,
      learned_ms double precision NOT NULL,
      PRIMARY KEY (peer, method, segments, prefix)
    );
  `,
};

export default migration;
