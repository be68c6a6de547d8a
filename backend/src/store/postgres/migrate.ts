import type { Logger } from '@conduct/processor';
import type { PostgresMigration } from './migration.js';
import { POSTGRES_MIGRATIONS } from './migrations/index.js';
import type { Sql } from './sql.js';

/** Key of the advisory lock that lets one instance at a time migrate a database. */
const MIGRATION_LOCK = 0x636f6e64; // 'cond'

/**
 * Refuses a list whose versions are not positive whole numbers in increasing order (a clash or a
 * misordered entry is a build error). Gaps are allowed: work done side by side takes numbers from
 * separate ranges (020, 030...), as the SQLite migrations do.
 */
export function checkMigrations(migrations: readonly PostgresMigration[]): void {
  let last = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.version) || m.version <= last) {
      throw new Error(`postgres migration "${m.description}" has version ${m.version}, expected a whole number above ${last}`);
    }
    last = m.version;
  }
}

/**
 * Applies the migrations the database has not seen, each in its own transaction together with
 * its row in `schema_version`. Instances starting at once take turns (a transaction-scoped
 * advisory lock), so each migration runs once. Returns the versions applied now.
 */
export async function applyPostgresMigrations(
  db: Sql,
  logger: Logger,
  migrations: readonly PostgresMigration[] = POSTGRES_MIGRATIONS,
): Promise<number[]> {
  checkMigrations(migrations);
  const applied: number[] = [];
  for (const m of migrations) {
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await tx.query(`CREATE TABLE IF NOT EXISTS schema_version (
        version     integer PRIMARY KEY,
        description text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now()
      )`);
      const seen = await tx.query('SELECT 1 FROM schema_version WHERE version = $1', [m.version]);
      if (seen.length > 0) return false;
      await tx.query(m.up);
      await tx.query('INSERT INTO schema_version (version, description) VALUES ($1, $2)', [m.version, m.description]);
      return true;
    });
    if (done) applied.push(m.version);
  }
  if (applied.length) logger.info({ applied }, 'postgres schema migrated');
  const current = await postgresSchemaVersion(db);
  const known = migrations.at(-1)?.version ?? 0;
  if (current > known) logger.warn({ current, known }, 'postgres schema is newer than this build');
  return applied;
}

export async function postgresSchemaVersion(db: Sql): Promise<number> {
  const [row] = await db.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
  return row?.v ?? 0;
}
