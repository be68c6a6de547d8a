import { join } from 'node:path';
import { openSqliteBackend, type SqliteBackend } from '../sqlite/backend.js';
import { tempDir } from './fixtures.js';

/** A SQLite backend on a new file in a temp directory; `cleanups` gets its close and the removal. */
export async function tempSqliteBackend(prefix: string, cleanups: Array<() => Promise<void> | void>): Promise<SqliteBackend> {
  const t = tempDir(prefix);
  const b = await openSqliteBackend({ path: join(t.dir, 'conduct.db') });
  cleanups.push(t.cleanup, () => b.close());
  return b;
}
