/**
 * One writer per storage path. `conduct serve` and `conduct replay` take this lock before they
 * open the database or its journal (`<storage.path>.journal/`), and keep it until they stop; a
 * second process on the same path is refused before it has read or changed either.
 *
 * Mechanism: the lock file `<storage.path>.lock` is a small SQLite database, opened through
 * better-sqlite3 (already a dependency: nothing native to build). The holder records who it is
 * (pid, host, command, start time) in a committed row, then opens a write transaction
 * (`BEGIN IMMEDIATE`) and never ends it: SQLite holds that as a RESERVED lock, a POSIX advisory
 * lock (fcntl) on the file. Other processes can still take the shared lock to read the holder row
 * (which names the holder in the refusal), but none can start a write transaction. The kernel drops
 * fcntl locks when the process dies, however it dies (kill -9 included), so no stale lock is ever
 * left to clean up; the file itself stays (deleting it would race with the next holder). The held
 * transaction changes no page, so a crash leaves no rollback journal behind either.
 *
 * Limits: advisory locks hold between processes that take them (every conduct does); on network
 * file systems they are only as good as the server's lock support. Paths are compared after
 * resolving symbolic links of an existing database file.
 */
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';

/** Who holds a storage path. */
export interface LockHolder {
  pid: number;
  host: string;
  /** `serve` or `replay`. */
  command: string;
  /** ISO time the holder took the lock. */
  since: string;
}

export interface StorageLock {
  /** The lock file (`<storage.path>.lock`, beside the resolved database file). */
  readonly lockPath: string;
  readonly holder: LockHolder;
  /** Ends the held transaction and closes the lock file (which stays). Safe twice. */
  release(): void;
}

/** The storage path is locked by another process (or another lock in this one). */
export class StorageInUseError extends Error {
  constructor(
    readonly storagePath: string,
    readonly lockPath: string,
    readonly holder: LockHolder | undefined,
  ) {
    super(
      `storage.path ${storagePath} is in use by ${holder ? describeHolder(holder) : 'another process'} (lock file ${lockPath}): ` +
        'stop that process first, or give this one another storage.path',
    );
    this.name = 'StorageInUseError';
  }
}

/** Attempts to claim the lock before giving up when other processes keep taking it in between. */
const MAX_CLAIM_ATTEMPTS = 5;
/** How long a refused process waits for the holder's row to be readable (the holder may be writing it). */
const READ_HOLDER_TIMEOUT_MS = 1_000;

function describeHolder(h: LockHolder): string {
  return `conduct ${h.command} (pid ${h.pid} on ${h.host}, since ${h.since})`;
}

/** `<database>.lock`, beside the database file with symbolic links resolved when it exists. */
export function lockPathOf(storagePath: string): string {
  const db = existsSync(storagePath) ? realpathSync(storagePath) : resolve(storagePath);
  return `${db}.lock`;
}

interface HolderRow extends LockHolder {
  token: string;
}

function readHolder(db: Database.Database): HolderRow | undefined {
  try {
    return db.prepare('SELECT pid, host, command, since, token FROM holder WHERE id = 1').get() as HolderRow | undefined;
  } catch {
    // No table yet (a holder still setting up), or its row being written: the holder stays unnamed.
    return undefined;
  }
}

function tryBegin(db: Database.Database): boolean {
  try {
    db.exec('BEGIN IMMEDIATE');
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY') return false;
    throw err;
  }
}

/**
 * Takes the lock of `storagePath` for this process, or throws StorageInUseError naming the holder.
 * Creates the lock file (and its directory) when missing; a refused call creates and changes nothing.
 */
export function lockStorage(storagePath: string, options: { command: string }): StorageLock {
  const lockPath = lockPathOf(storagePath);
  if (!existsSync(lockPath)) mkdirSync(dirname(lockPath), { recursive: true });
  // timeout 0: a lock held elsewhere answers SQLITE_BUSY at once instead of waiting for it.
  const db = new Database(lockPath, { timeout: 0 });
  const me: HolderRow = { pid: process.pid, host: hostname(), command: options.command, since: new Date().toISOString(), token: randomBytes(8).toString('hex') };
  const refuse = (): never => {
    db.pragma(`busy_timeout = ${READ_HOLDER_TIMEOUT_MS}`);
    const row = readHolder(db);
    db.close();
    const { token, ...holder } = row ?? { token: me.token };
    throw new StorageInUseError(storagePath, lockPath, row && token !== me.token ? (holder as LockHolder) : undefined);
  };
  try {
    // Write our row, commit so others can read it, then hold a write transaction. Between the
    // commit and the next BEGIN another process may win: it then rewrites the row, and we stop.
    for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
      if (!tryBegin(db)) refuse();
      if (readHolder(db)?.token === me.token) return held(db, lockPath, me);
      db.exec('CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER, host TEXT, command TEXT, since TEXT, token TEXT)');
      db.prepare('INSERT OR REPLACE INTO holder (id, pid, host, command, since, token) VALUES (1, @pid, @host, @command, @since, @token)').run(me);
      db.exec('COMMIT');
    }
    return refuse();
  } catch (err) {
    if (db.open) db.close();
    throw err;
  }
}

function held(db: Database.Database, lockPath: string, me: HolderRow): StorageLock {
  const { token: _token, ...holder } = me;
  return {
    lockPath,
    holder,
    release() {
      if (!db.open) return;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}
