import type { PostgresMigration } from '../migration.js';

/**
 * Held chains are stored deflated (store/held-chain.ts): their column takes bytes. Rows written
 * before keep their JSON, as its UTF-8 bytes, and are read as before.
 */
const migration: PostgresMigration = {
  version: 60,
  description: 'held chains as bytes (deflated JSON)',
  up: `
    ALTER TABLE held_chains ALTER COLUMN chain TYPE bytea USING convert_to(chain, 'UTF8');
  `,
};

export default migration;
