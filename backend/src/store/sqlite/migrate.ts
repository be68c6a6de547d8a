import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import type { Migration, NumberedMigration } from './migration.js';

/** `NNN-name.ts` in the sources, `NNN-name.js` once built; declarations, maps and tests are skipped. */
const MIGRATION_FILE = /^(\d+)-[A-Za-z0-9_.-]+?\.(js|ts)$/;
const NOT_MIGRATION = /\.(d|test)\.ts$|\.map$/;

/** The folder holding this module's migrations (works from `src/` under vitest and from `dist/`). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** Finds and loads every migration in `dir`, ordered by version; refuses duplicate numbers. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<NumberedMigration[]> {
  const found = new Map<number, NumberedMigration>();
  for (const file of readdirSync(dir).sort()) {
    const m = MIGRATION_FILE.exec(file);
    if (!m || NOT_MIGRATION.test(file)) continue;
    const version = Number(m[1]);
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as { default?: Migration };
    const migration = mod.default;
    if (!migration || (typeof migration.up !== 'string' && typeof migration.up !== 'function')) {
      throw new Error(`store migration ${file} has no default export with an "up" script`);
    }
    const clash = found.get(version);
    if (clash) throw new Error(`store migrations ${clash.file} and ${file} share version ${version}`);
    found.set(version, { ...migration, version, file });
  }
  return [...found.values()].sort((a, b) => a.version - b.version);
}

/**
 * Applies the migrations the database has not seen yet, each in its own transaction, and records
 * them in `schema_version`. Running it again is a no-op. Returns the versions applied now.
 */
export function applyMigrations(db: Database, migrations: readonly NumberedMigration[]): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
  )`);
  const done = new Set(
    (db.prepare('SELECT version FROM schema_version').all() as { version: number }[]).map((r) => r.version),
  );
  const record = db.prepare('INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)');
  const applied: number[] = [];
  for (const m of migrations) {
    if (done.has(m.version)) continue;
    db.transaction(() => {
      if (typeof m.up === 'string') db.exec(m.up);
      else m.up(db);
      record.run(m.version, m.description, new Date().toISOString());
    })();
    applied.push(m.version);
  }
  return applied;
}

/** The highest applied version, 0 for a fresh database. */
export function schemaVersion(db: Database): number {
  const row = db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null } | undefined;
  return row?.v ?? 0;
}
