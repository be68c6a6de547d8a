import type { Migration } from '../migration.js';

/**
 * Learned path parameters of operation templates (the processor's path-params.ts): one row per
 * position, keyed by peer, HTTP method, segment count and the templated prefix before it.
 */
const migration: Migration = {
  description: 'learned path parameters of operation templates',
  up: `
    CREATE TABLE IF NOT EXISTS path_parameters (
      peer       TEXT NOT NULL,
      method     TEXT NOT NULL,
      segments   INTEGER NOT NULL,
      prefix     TEXT NOT NULL,
      learned_ms REAL NOT NULL,
      PRIMARY KEY (peer, method, segments, prefix)
    );
  `,
};

export default migration;
