export { openStore, DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_CACHE_KIB } from './store.js';
export type { Store, StoreOptions, IdentityRecord, EdgeRecord, WriteResult } from './store.js';
export { loadMigrations, applyMigrations, schemaVersion, MIGRATIONS_DIR } from './migrate.js';
export type { Migration, NumberedMigration } from './migration.js';
export { traceIdToBytes, traceIdFromBytes } from './trace-id.js';
export {
  startRetention,
  DEFAULT_RETENTION_INTERVAL_MS,
  DEFAULT_RETENTION_BATCH_ROWS,
  DEFAULT_RETENTION_MAX_BATCHES,
} from './retention.js';
export type { Retention, RetentionOptions } from './retention.js';
