import pg from 'pg';
import type { Logger } from '@conduct/processor';
import type { Queryable, Sql } from './sql.js';

/** Connections the store keeps open at most. */
export const DEFAULT_POOL_SIZE = 8;
/** How long a query waits for a free connection, or a new one to open, before it fails. */
export const CONNECT_TIMEOUT_MS = 5_000;

const INT8_OID = 20;

/** `application_name` of the store's pooled connections (the cluster ends a hung instance's stuck transactions by it). */
export const POOL_APPLICATION_NAME = 'conduct';

/** Type parsers of every connection: int8 columns hold ms timestamps and counts, all within 2^53. */
export const PG_TYPES = {
  getTypeParser: (oid: number, format?: string) => (oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format as 'text')),
};

/**
 * The client library is `pg` (node-postgres): on conduct's chain write path, one statement per
 * batch, it measured within noise of postgres.js (store/README.md, "PostgreSQL"), and it is the
 * one the test server's package already brings. Connections run in `pg`'s pipeline mode: a query
 * is sent at once, not after the previous one answered, so statements issued together (a
 * transaction's BEGIN and its first statement, the independent statements of a batch) share one
 * round trip; each still answers in order, and one that fails in a transaction makes the ones
 * after it fail too (the transaction is rolled back whole).
 */
export function connect(url: string, options: { logger: Logger; poolSize?: number }): Sql {
  const { logger } = options;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: POOL_APPLICATION_NAME,
    types: PG_TYPES,
    pipeline: true,
  } as pg.PoolConfig);
  // An idle connection that breaks (the server restarted) is dropped from the pool; without a
  // listener the error would end the process.
  pool.on('error', (err) => logger.warn({ err: String(err) }, 'postgres connection lost'));

  const run = async <R>(client: pg.Pool | pg.PoolClient, text: string, values?: readonly unknown[]): Promise<R[]> => {
    const result = await client.query({ text, values: values as unknown[] | undefined });
    return result.rows as R[];
  };
  let ended = false;
  return {
    query: (text, values) => run(pool, text, values),
    async transaction(fn) {
      const client = await pool.connect();
      let broken: Error | undefined;
      // A connection cut while it is checked out and between statements is reported as an event;
      // without a listener it would end the process. The next statement fails with it instead.
      const onError = (err: Error) => {
        broken = err;
        logger.warn({ err: String(err) }, 'postgres connection lost during a transaction');
      };
      client.on('error', onError);
      // BEGIN goes out with the transaction's first statement (pipeline mode); when it fails, so
      // does every statement after it, and its own error is the one reported.
      const begin = client.query('BEGIN');
      begin.catch(() => undefined);
      try {
        const tx: Queryable = { query: (text, values) => run(client, text, values) };
        const out = await fn(tx).finally(() => begin);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          // The connection is unusable: release it for closing rather than back to the pool.
          broken = rollbackErr as Error;
        }
        throw err;
      } finally {
        client.removeListener('error', onError);
        client.release(broken);
      }
    },
    async end() {
      if (ended) return;
      ended = true;
      await pool.end();
    },
  };
}

/** SQLSTATE classes and codes after which the same statement may succeed later. */
const RETRYABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '53400', '40001', '40P01', '55P03']);
/** Socket errors of a server that is down or restarting. */
const RETRYABLE_SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/**
 * Whether an error says the database is unreachable or busy for now (the server down or
 * restarting, a connection cut, too many connections, a deadlock), rather than that the
 * statement or its data is wrong.
 */
export function isRetryable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (RETRYABLE_SOCKET.has(code) || RETRYABLE_STATES.has(code) || code.startsWith('08')) return true;
  }
  const text = typeof message === 'string' ? message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(text);
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}
