import { startEmbeddedPostgres, type ConfigInput, type EmbeddedPostgres } from '@conduct/backend';

/** The storage backends the end-to-end tests run on. */
export type StorageKind = 'sqlite' | 'postgres';
export const STORAGE_KINDS: readonly StorageKind[] = ['sqlite', 'postgres'];

let shared: Promise<EmbeddedPostgres> | undefined;

/** One embedded PostgreSQL per test file (started on first use); `stopTestPostgres` in afterAll. */
export function testPostgres(): Promise<EmbeddedPostgres> {
  shared ??= startEmbeddedPostgres();
  return shared;
}

export async function stopTestPostgres(): Promise<void> {
  const server = shared;
  shared = undefined;
  await (await server)?.destroy();
}

/**
 * Config overrides that put a test conduct on `kind`: nothing for SQLite (its default), a fresh
 * database of the file's embedded PostgreSQL for `postgres`.
 */
export async function storageOverrides(kind: StorageKind): Promise<ConfigInput> {
  const url = await postgresUrlFor(kind);
  return url ? ({ storage: { postgres: { url } } } as ConfigInput) : {};
}

/** A fresh database of the file's embedded PostgreSQL for `postgres`; undefined for SQLite. */
export async function postgresUrlFor(kind: StorageKind): Promise<string | undefined> {
  return kind === 'postgres' ? (await testPostgres()).createDatabase() : undefined;
}
