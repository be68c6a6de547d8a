import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockPathOf, lockStorage, StorageInUseError, type StorageLock } from './lock.js';

const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

describe('storage lock', () => {
  let dir: string;
  let db: string;
  const held: StorageLock[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'conduct-lock-'));
    db = join(dir, 'data', 'conduct.db');
  });
  afterEach(() => {
    for (const lock of held.splice(0)) lock.release();
    rmSync(dir, { recursive: true, force: true });
  });

  const take = (command: string, path = db) => {
    const lock = lockStorage(path, { command });
    held.push(lock);
    return lock;
  };
  const refusal = (command: string, path = db): StorageInUseError => {
    try {
      take(command, path);
    } catch (err) {
      if (err instanceof StorageInUseError) return err;
      throw err;
    }
    throw new Error('the lock was granted twice');
  };

  it('creates <path>.lock (and its directory) and records who holds it', () => {
    const lock = take('serve');
    expect(lock.lockPath).toBe(`${db}.lock`);
    expect(existsSync(lock.lockPath)).toBe(true);
    expect(lock.holder).toMatchObject({ pid: process.pid, host: hostname(), command: 'serve' });
    expect(Number.isNaN(Date.parse(lock.holder.since))).toBe(false);
    // The database itself is not the lock's to create.
    expect(existsSync(db)).toBe(false);
  });

  it('refuses a second holder, naming the path, the lock file and the holder, and changes nothing', () => {
    const first = take('serve');
    const before = statSync(first.lockPath);
    const files = readdirSync(join(dir, 'data'));

    const err = refusal('replay');
    expect(err.storagePath).toBe(db);
    expect(err.lockPath).toBe(first.lockPath);
    expect(err.holder).toEqual(first.holder);
    expect(err.message).toContain(db);
    expect(err.message).toContain(`pid ${process.pid}`);
    expect(err.message).toContain('conduct serve');

    const after = statSync(first.lockPath);
    expect([after.ino, after.size, after.mtimeMs]).toEqual([before.ino, before.size, before.mtimeMs]);
    expect(readdirSync(join(dir, 'data'))).toEqual(files);
  });

  it('is free again once released (twice is harmless), and then names its new holder', () => {
    const first = take('serve');
    first.release();
    first.release();
    take('replay');
    expect(refusal('serve').holder?.command).toBe('replay');
  });

  it('is one lock for a database reached through a symbolic link', () => {
    mkdirSync(join(dir, 'data'));
    writeFileSync(db, '');
    const link = join(dir, 'link.db');
    symlinkSync(db, link);
    expect(lockPathOf(link)).toBe(lockPathOf(db));
    take('serve');
    expect(refusal('serve', link).storagePath).toBe(link);
  });

  it('is held against another process, and dropped by the OS when that process is killed', async () => {
    // A process holding the lock file the way a holder does: a write transaction that never ends.
    const lockPath = lockPathOf(db);
    mkdirSync(join(dir, 'data'));
    const script = `
      const Database = require(${JSON.stringify(BETTER_SQLITE3)});
      const db = new Database(${JSON.stringify(lockPath)});
      db.exec('CREATE TABLE holder (id INTEGER PRIMARY KEY, pid INTEGER, host TEXT, command TEXT, since TEXT, token TEXT)');
      db.prepare("INSERT INTO holder VALUES (1, ?, 'elsewhere', 'serve', '2026-01-01T00:00:00.000Z', 'other')").run(process.pid);
      db.exec('BEGIN IMMEDIATE');
      process.stdout.write('held\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', () => resolve());
        child.on('exit', (code) => reject(new Error(`holder exited ${code}`)));
      });
      const err = refusal('serve');
      expect(err.holder).toEqual({ pid: child.pid, host: 'elsewhere', command: 'serve', since: '2026-01-01T00:00:00.000Z' });
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    expect(take('serve').holder.pid).toBe(process.pid);
  });
});
