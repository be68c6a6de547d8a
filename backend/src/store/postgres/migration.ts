/**
 * One versioned schema change of the PostgreSQL store. Migrations are listed in
 * `migrations/index.ts` in version order; each runs in its own transaction and is recorded in
 * `schema_version`. Never edit one that has shipped: add the next version.
 */
export interface PostgresMigration {
  version: number;
  /** One line saying what the migration adds, stored in `schema_version`. */
  description: string;
  /** SQL run as one script (simple query protocol: several statements, no parameters). */
  up: string;
}
