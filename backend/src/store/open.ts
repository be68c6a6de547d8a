import type { OpenStorage } from './contracts.js';
import { openPostgresBackend } from './postgres/backend.js';
import { openSqliteBackend } from './sqlite/backend.js';

/**
 * Opens the backend the selection names: PostgreSQL when `postgres.url` is set, else the SQLite
 * file at `path` (the zero-install default).
 */
export const openStorage: OpenStorage = async (selection, options = {}) => {
  if (selection.postgres?.url) return openPostgresBackend({ url: selection.postgres.url }, options);
  return openSqliteBackend({ path: selection.path }, options);
};
