export type * from './contracts.js';
export { FencedError } from './fenced-error.js';
export { openStorage } from './open.js';
export { openSqliteBackend } from './sqlite/backend.js';
export type { SqliteBackend } from './sqlite/backend.js';
export { openStore, DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_CACHE_KIB } from './sqlite/store.js';
export type { Store, StoreOptions } from './sqlite/store.js';
export { loadMigrations, applyMigrations, schemaVersion, MIGRATIONS_DIR } from './sqlite/migrate.js';
export type { Migration, NumberedMigration } from './sqlite/migration.js';
export { traceIdToBytes, traceIdFromBytes } from './trace-id.js';
export {
  startRetention,
  DEFAULT_RETENTION_INTERVAL_MS,
  DEFAULT_RETENTION_BATCH_ROWS,
  DEFAULT_RETENTION_MAX_BATCHES,
} from './retention.js';
export type { Retention, RetentionOptions } from './retention.js';
export { openPostgresBackend } from './postgres/backend.js';
export type { PostgresBackend, PostgresOptions } from './postgres/backend.js';
export { startEmbeddedPostgres } from './postgres/embedded.js';
export type { EmbeddedPostgres, EmbeddedPostgresOptions } from './postgres/embedded.js';
export { copyStorage } from './copy.js';
export type { CopyOptions, CopyResult } from './copy.js';
