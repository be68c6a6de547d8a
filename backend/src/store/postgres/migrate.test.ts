import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@conduct/processor';
import { connect } from './connection.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';
import { applyPostgresMigrations, checkMigrations, postgresSchemaVersion } from './migrate.js';
import { POSTGRES_MIGRATIONS } from './migrations/index.js';
import { openPostgresBackend } from './backend.js';

describe('PostgreSQL migrations', () => {
  let server: EmbeddedPostgres;
  beforeAll(async () => {
    server = await startEmbeddedPostgres();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('applies every migration once, even when two instances start together', async () => {
    const url = await server.createDatabase();
    const a = connect(url, { logger: silentLogger });
    const b = connect(url, { logger: silentLogger });
    try {
      const [fromA, fromB] = await Promise.all([applyPostgresMigrations(a, silentLogger), applyPostgresMigrations(b, silentLogger)]);
      expect([...fromA, ...fromB].sort((x, y) => x - y)).toEqual(POSTGRES_MIGRATIONS.map((m) => m.version));
      expect(await applyPostgresMigrations(a, silentLogger)).toEqual([]);
      expect(await postgresSchemaVersion(a)).toBe(POSTGRES_MIGRATIONS.at(-1)!.version);
      const rows = await a.query<{ version: number; description: string }>('SELECT version, description FROM schema_version ORDER BY version');
      expect(rows).toEqual(POSTGRES_MIGRATIONS.map((m) => ({ version: m.version, description: m.description })));
      // The tables the store writes are there, owned by the unprivileged role that migrated.
      const tables = await a.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = 'conduct' ORDER BY tablename`);
      expect(tables.map((t) => t.tablename)).toEqual([
        'alert_outbox', 'alerts', 'baseline_entries', 'baseline_identities', 'chains', 'cluster_flushes', 'cluster_handoff',
        'cluster_heads', 'cluster_instances', 'cluster_partitions', 'edges', 'finding_suppressions', 'held_chains',
        'identities', 'path_parameters', 'schema_version', 'strings', 'text_sweep', 'traces', 'written_batches',
      ]);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('rolls a failing migration back whole and records nothing of it', async () => {
    const url = await server.createDatabase();
    const db = connect(url, { logger: silentLogger });
    try {
      const broken = [...POSTGRES_MIGRATIONS, { version: POSTGRES_MIGRATIONS.at(-1)!.version + 1, description: 'broken', up: 'CREATE TABLE half (v int); SELECT no_such_function();' }];
      await expect(applyPostgresMigrations(db, silentLogger, broken)).rejects.toThrow(/no_such_function/);
      expect(await postgresSchemaVersion(db)).toBe(POSTGRES_MIGRATIONS.at(-1)!.version);
      expect(await db.query(`SELECT 1 FROM pg_tables WHERE tablename = 'half'`)).toEqual([]);
    } finally {
      await db.end();
    }
  });

  it('keeps the held chains stored as JSON text before migration 060 readable, next to those stored deflated since', async () => {
    const url = await server.createDatabase();
    const db = connect(url, { logger: silentLogger });
    const t = '0af7651916cd43dd8448eb211c80319c';
    const chain = { traceId: t, identity: 'ci:bot', identityKind: 'cicd', startMs: 5_000, endMs: 5_010, calls: [] };
    try {
      await applyPostgresMigrations(db, silentLogger, POSTGRES_MIGRATIONS.filter((m) => m.version < 60));
      await db.query('INSERT INTO held_chains (identity, trace_id, alert_id, start_ms, chain) VALUES ($1, $2, $3, $4, $5)', ['ci:bot', t, 'a0', 5_000, JSON.stringify(chain)]);
    } finally {
      await db.end();
    }
    const backend = await openPostgresBackend({ url });
    try {
      expect((await backend.detection.heldByAlert('a0')).map((h) => h.chain)).toEqual([chain]);
      const later = { ...chain, traceId: '1af7651916cd43dd8448eb211c80319c' };
      await backend.detection.checkpoint({ held: [{ identity: 'ci:bot', traceId: later.traceId, alertId: 'a1', chain: later }] });
      expect((await backend.detection.heldByAlert('a1')).map((h) => h.chain)).toEqual([later]);
    } finally {
      await backend.close();
    }
  });

  it('refuses a list whose versions repeat or go down, and takes gaps', () => {
    expect(() => checkMigrations([{ version: 1, description: 'a', up: '' }, { version: 1, description: 'b', up: '' }])).toThrow(/version 1, expected a whole number above 1/);
    expect(() => checkMigrations([{ version: 20, description: 'a', up: '' }, { version: 3, description: 'c', up: '' }])).toThrow(/version 3, expected a whole number above 20/);
    expect(() => checkMigrations([{ version: 0, description: 'z', up: '' }])).toThrow(/version 0/);
    expect(() => checkMigrations([{ version: 1, description: 'a', up: '' }, { version: 20, description: 't', up: '' }])).not.toThrow();
  });
});
