import type { Migration } from '../migration.js';

/**
 * Texts that repeat in stored calls (services, peers, operations, source context), numbered once:
 * calls in the binary form (call-codec.ts) refer to them by id. Rows are never deleted, as any
 * chain may refer to them; the store stops adding texts at a bound and keeps new ones inline.
 */
const migration: Migration = {
  description: 'numbered texts of stored calls',
  up: `
    CREATE TABLE strings (
      id   INTEGER PRIMARY KEY,
      text TEXT NOT NULL UNIQUE
    );
  `,
};

export default migration;
