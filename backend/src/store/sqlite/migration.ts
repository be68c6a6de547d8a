import type { Database } from 'better-sqlite3';

/**
 * One numbered schema change. A migration lives in `store/migrations/NNN-short-name.ts`; its
 * number comes from the file name and its module's default export is this object.
 */
export interface Migration {
  /** One line saying what the migration adds, stored in `schema_version`. */
  description: string;
  /** SQL run as one script, or a function given the open database. Runs inside a transaction. */
  up: string | ((db: Database) => void);
}

/** A migration found on disk, with the version taken from its file name. */
export interface NumberedMigration extends Migration {
  version: number;
  file: string;
}
