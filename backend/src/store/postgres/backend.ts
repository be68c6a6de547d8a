import { randomUUID } from 'node:crypto';
import { silentLogger } from '@conduct/processor';
import type { StorageBackend, StorageOpenOptions } from '../contracts.js';
import { createPostgresAlertRetention } from './alert-retention.js';
import { createAvailability } from './availability.js';
import { createPostgresChains } from './chains.js';
import { createPostgresCluster } from './cluster.js';
import { connect, redactUrl } from './connection.js';
import { checkpointStatements, createPostgresDetectionState } from './detection-state.js';
import { createPostgresIdentities } from './identities.js';
import { applyPostgresMigrations, postgresSchemaVersion } from './migrate.js';
import { createNumberedTexts } from './numbered-texts.js';
import { createPostgresOutbox } from './outbox.js';
import { createPostgresPathParameters } from './path-parameters.js';

export interface PostgresOptions {
  /** `postgres://user:password@host:port/database` (`storage.postgres.url`). */
  url: string;
  /** Connections kept open at most. Default DEFAULT_POOL_SIZE. */
  poolSize?: number;
  /** Ids handed out in `strings` since the last sweep before retention sweeps unreferenced texts (tests). */
  textSweepMinGrowth?: number;
}

/** The PostgreSQL backend. */
export interface PostgresBackend extends StorageBackend {
  readonly kind: 'postgres';
}

/**
 * Opens the PostgreSQL backend: connects, applies the migrations the database has not seen, and
 * assembles every contract over one connection pool. Fails when the server cannot be reached.
 */
export async function openPostgresBackend(options: PostgresOptions, { logger = silentLogger }: StorageOpenOptions = {}): Promise<PostgresBackend> {
  const db = connect(options.url, { logger, ...(options.poolSize ? { poolSize: options.poolSize } : {}) });
  try {
    await applyPostgresMigrations(db, logger);
    const texts = await createNumberedTexts(db);
    const chains = createPostgresChains(db, texts, options.textSweepMinGrowth !== undefined ? { minGrowth: options.textSweepMinGrowth } : {});
    // Writes wait out a server that is down or restarting (in call order); reads fail at once.
    const availability = createAvailability(logger);
    let closed = false;
    return {
      kind: 'postgres',
      location: redactUrl(options.url),
      chainWriter: {
        accepts: chains.writer.accepts,
        writeChains: (batch, traces) => availability.retrying(() => chains.writer.writeChains(batch, traces)),
        replaceTraceChains: (traceId, batch) => availability.retrying(() => chains.writer.replaceTraceChains(traceId, batch)),
        commitBatch(unit) {
          // The checkpoint's values are read now, before the first wait; one id for every attempt.
          const statements = unit.checkpoint ? checkpointStatements(unit.checkpoint) : [];
          const unitId = randomUUID();
          return availability.retrying(() => chains.commitUnit(unit, statements, unitId));
        },
      },
      chainReader: chains.reader,
      retention: chains.retention,
      identities: createPostgresIdentities(db),
      detection: createPostgresDetectionState(db, availability.retrying),
      outbox: createPostgresOutbox(db),
      alertRetention: createPostgresAlertRetention(db),
      templates: createPostgresPathParameters(db, availability.retrying),
      cluster: createPostgresCluster(db, options.url, logger, availability.retrying),
      availability: { available: availability.available, retryAfterMs: availability.retryAfterMs, stopRetrying: availability.stopRetrying },
      async ready() {
        if (closed) return false;
        try {
          await db.query('SELECT 1');
          return true;
        } catch {
          return false;
        }
      },
      async sizeBytes() {
        const [row] = await db.query<{ bytes: number }>('SELECT pg_database_size(current_database())::int8 AS bytes');
        return row?.bytes ?? 0;
      },
      schemaVersion: () => postgresSchemaVersion(db),
      async close() {
        closed = true;
        availability.stopRetrying();
        await db.end();
      },
    };
  } catch (err) {
    await db.end().catch(() => undefined);
    throw err;
  }
}
