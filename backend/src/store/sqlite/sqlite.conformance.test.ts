import { join } from 'node:path';
import { afterEach } from 'vitest';
import { runStoreConformance } from '../conformance.js';
import { tempDir } from '../testdata/fixtures.js';
import { openSqliteBackend } from './backend.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

runStoreConformance('sqlite', async () => {
  const t = tempDir('conduct-conformance-');
  cleanups.push(t.cleanup);
  return openSqliteBackend({ path: join(t.dir, 'conduct.db') });
});
