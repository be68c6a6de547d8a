import { Counter, type Registry } from 'prom-client';
import { silentLogger, type Logger } from '@conduct/processor';
import type { ChainReader, ChainRetention } from './contracts.js';

/** Default of {@link RetentionOptions.intervalMs}: how often a sweep starts. */
export const DEFAULT_RETENTION_INTERVAL_MS = 60_000;
/** Default of {@link RetentionOptions.batchRows}: chains deleted per statement. */
export const DEFAULT_RETENTION_BATCH_ROWS = 500;
/** Default of {@link RetentionOptions.maxBatchesPerSweep}: statements per sweep before it yields until the next. */
export const DEFAULT_RETENTION_MAX_BATCHES = 200;

export interface RetentionOptions {
  /** The backend's newest event time and its bounded delete step. */
  store: { chainReader: Pick<ChainReader, 'newestEventMs'>; retention: ChainRetention };
  /** Chains that ended more than this long before the newest stored chain end are deleted (`storage.retention`, ms). */
  retentionMs: number;
  /** How often a sweep starts. Default DEFAULT_RETENTION_INTERVAL_MS. */
  intervalMs?: number;
  /** Rows deleted per statement; the event loop is yielded between statements. Default DEFAULT_RETENTION_BATCH_ROWS. */
  batchRows?: number;
  /** Statements per sweep at most (the rest waits for the next sweep). Default DEFAULT_RETENTION_MAX_BATCHES. */
  maxBatchesPerSweep?: number;
  /** Where `conduct_retention_deleted_total` is registered; none when absent. */
  registry?: Registry;
  logger?: Logger;
}

export interface Retention {
  /** Runs one sweep now; resolves with the chains deleted. */
  sweep(): Promise<number>;
  /** Stops the timer and waits for a running sweep. Safe twice. */
  stop(): Promise<void>;
}

/**
 * Deletes old chains in the background, in small batches with the event loop yielded in between,
 * so ingest never waits behind one long DELETE. Age is event time relative to the newest stored
 * chain (replaying last month's traces keeps last month's chains), not the wall clock.
 */
export function startRetention(options: RetentionOptions): Retention {
  const { store, retentionMs } = options;
  const logger = options.logger ?? silentLogger;
  const intervalMs = options.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS;
  const batchRows = Math.max(1, options.batchRows ?? DEFAULT_RETENTION_BATCH_ROWS);
  const maxBatches = Math.max(1, options.maxBatchesPerSweep ?? DEFAULT_RETENTION_MAX_BATCHES);
  const deleted = options.registry
    ? new Counter({ name: 'conduct_retention_deleted_total', help: 'Chains deleted by retention (storage.retention).', registers: [options.registry] })
    : undefined;

  const freedTexts = options.registry
    ? new Counter({ name: 'conduct_retention_texts_freed_total', help: 'Numbered texts no stored chain referred to any more, deleted by retention.', registers: [options.registry] })
    : undefined;

  let running: Promise<number> | undefined;
  let stopped = false;

  const sweepOnce = async (): Promise<number> => {
    const newest = await store.chainReader.newestEventMs();
    if (newest <= 0 || retentionMs <= 0) return 0;
    const cutoff = newest - retentionMs;
    let total = 0;
    for (let i = 0; i < maxBatches && !stopped; i++) {
      const step = await store.retention.pruneStep(cutoff, batchRows);
      total += step.chains;
      if (step.texts) freedTexts?.inc(step.texts);
      if (step.chains === 0 && step.traces === 0 && !step.identities && !step.edges && !step.held && !step.more) break;
      await new Promise((r) => setImmediate(r));
    }
    if (total) {
      deleted?.inc(total);
      logger.debug({ deleted: total, cutoff }, 'retention deleted old chains');
    }
    return total;
  };

  const sweep = (): Promise<number> => {
    running ??= sweepOnce()
      .catch((err: unknown) => {
        logger.warn({ err: String(err) }, 'retention sweep failed');
        return 0;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  const timer = setInterval(() => void sweep(), intervalMs);
  timer.unref();

  return {
    sweep,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
