import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedAncestor, startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';

async function query<R>(url: string, text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as R[];
  } finally {
    await client.end();
  }
}

describe('embedded PostgreSQL for tests', () => {
  let server: EmbeddedPostgres;
  beforeAll(async () => {
    server = await startEmbeddedPostgres();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('gives each database to an unprivileged role, over a password, on 127.0.0.1', async () => {
    const url = await server.createDatabase();
    expect(new URL(url).hostname).toBe('127.0.0.1');
    const [me] = await query<{ user: string; superuser: boolean }>(url, `SELECT current_user AS user, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user`);
    expect(me).toEqual({ user: 'conduct', superuser: false });
    const wrong = new URL(url);
    wrong.password = 'not-the-password';
    await expect(query(wrong.toString(), 'SELECT 1')).rejects.toThrow(/password authentication failed/);
  });

  it('stops and starts again on the same data, refusing connections while down', async () => {
    const url = await server.createDatabase();
    await query(url, 'CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)');
    await server.stop();
    expect(server.running).toBe(false);
    await expect(query(url, 'SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await server.start();
    expect(await query<{ v: number }>(url, 'SELECT v FROM kept')).toEqual([{ v: 42 }]);
  });

  it('removes its directory when destroyed, and destroying twice is harmless', async () => {
    const other = await startEmbeddedPostgres();
    expect(existsSync(other.dir)).toBe(true);
    await other.destroy();
    await other.destroy();
    expect(existsSync(other.dir)).toBe(false);
    await expect(query(other.adminUrl, 'SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('closedAncestor (why a root start in a private checkout is refused up front)', () => {
  it('finds the directory the postgres user cannot enter, and nothing once it can', () => {
    const top = mkdtempSync(join(tmpdir(), 'conduct-closed-'));
    try {
      const bin = join(top, 'native', 'bin');
      mkdirSync(bin, { recursive: true });
      writeFileSync(join(bin, 'postgres'), '');
      chmodSync(top, 0o700);
      expect(closedAncestor(join(bin, 'postgres'))).toEqual({ dir: top, mode: 0o700 });
      chmodSync(top, 0o711);
      expect(closedAncestor(join(bin, 'postgres'))).toBeUndefined();
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });
});
