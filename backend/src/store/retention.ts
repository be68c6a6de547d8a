import { Counter, type Registry } from 'prom-client';
import { silentLogger, type Logger } from '@conduct/processor';
import type { AlertPruneCursor, AlertRetention, ChainReader, ChainRetention } from './contracts.js';

/** Default of {@link RetentionOptions.intervalMs}: how often a sweep starts. */
export const DEFAULT_RETENTION_INTERVAL_MS = 60_000;
/** Default of {@link RetentionOptions.batchRows}: chains deleted per statement. */
export const DEFAULT_RETENTION_BATCH_ROWS = 500;
/** Default of {@link RetentionOptions.maxBatchesPerSweep}: statements per sweep before it yields until the next. */
export const DEFAULT_RETENTION_MAX_BATCHES = 200;
/** Default of {@link RetentionOptions.catchUpMs}: the pause before the next sweep when one stopped with work left. */
export const DEFAULT_RETENTION_CATCH_UP_MS = 1_000;

export interface RetentionOptions {
  /** The backend's newest event time and its bounded delete steps (alerts': when `alertRetentionMs` is set). */
  store: { chainReader: Pick<ChainReader, 'newestEventMs'>; retention: ChainRetention; alertRetention?: AlertRetention };
  /** Chains that ended more than this long before the newest stored chain end are deleted (`storage.retention`, ms); 0 keeps them. */
  retentionMs: number;
  /**
   * Closed alerts last seen more than this long before the newest stored chain end are deleted,
   * with what hangs off them (`storage.alertRetention`, ms); 0 or absent keeps them.
   */
  alertRetentionMs?: number;
  /** The wall clock (ms), which retention's cutoffs never pass; Date.now by default. */
  now?: () => number;
  /** How often a sweep starts. Default DEFAULT_RETENTION_INTERVAL_MS. */
  intervalMs?: number;
  /** Rows deleted per statement; the event loop is yielded between statements. Default DEFAULT_RETENTION_BATCH_ROWS. */
  batchRows?: number;
  /** Statements per sweep at most (the rest waits for the next sweep). Default DEFAULT_RETENTION_MAX_BATCHES. */
  maxBatchesPerSweep?: number;
  /**
   * When a sweep stopped at maxBatchesPerSweep with rows left to delete, the next starts after this
   * pause rather than intervalMs: a server writing more chains a minute than one sweep deletes must
   * not outgrow its retention. Default DEFAULT_RETENTION_CATCH_UP_MS.
   */
  catchUpMs?: number;
  /** Where `conduct_retention_deleted_total` is registered; none when absent. */
  registry?: Registry;
  logger?: Logger;
}

export interface Retention {
  /** Runs one sweep now (chains, then alerts); resolves with the chains deleted. */
  sweep(): Promise<number>;
  /** Stops the timer and waits for a running sweep. Safe twice. */
  stop(): Promise<void>;
}

/**
 * Deletes old chains in the background, in small batches with the event loop yielded in between,
 * so ingest never waits behind one long DELETE. Age is event time relative to the newest stored
 * chain (replaying last month's traces keeps last month's chains), capped at the wall clock (a span
 * stamped in the future does not age everything out).
 */
export function startRetention(options: RetentionOptions): Retention {
  const { store, retentionMs } = options;
  const logger = options.logger ?? silentLogger;
  const intervalMs = options.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS;
  const batchRows = Math.max(1, options.batchRows ?? DEFAULT_RETENTION_BATCH_ROWS);
  const maxBatches = Math.max(1, options.maxBatchesPerSweep ?? DEFAULT_RETENTION_MAX_BATCHES);
  const catchUpMs = Math.max(0, options.catchUpMs ?? DEFAULT_RETENTION_CATCH_UP_MS);
  const deleted = options.registry
    ? new Counter({ name: 'conduct_retention_deleted_total', help: 'Chains deleted by retention (storage.retention).', registers: [options.registry] })
    : undefined;

  const alertsDeleted = options.registry
    ? new Counter({
        name: 'conduct_retention_alerts_deleted_total',
        help: 'Closed alerts with every delivery done, deleted by retention (storage.alertRetention) with their held chains and delivered outbox entries.',
        registers: [options.registry],
      })
    : undefined;
  const alertRetentionMs = options.alertRetentionMs ?? 0;
  const now = options.now ?? Date.now;

  const freedTexts = options.registry
    ? new Counter({ name: 'conduct_retention_texts_freed_total', help: 'Numbered texts no stored chain referred to any more, deleted by retention.', registers: [options.registry] })
    : undefined;

  let running: Promise<number> | undefined;
  let stopped = false;
  /** Set when a sweep used all its steps with rows left to delete; the next comes after catchUpMs. */
  let behind = false;
  let catchUp: NodeJS.Timeout | undefined;

  /** Deletes chains that ended before the cutoff; resolves with how many. */
  const sweepChains = async (cutoff: number): Promise<number> => {
    let total = 0;
    behind = true;
    for (let i = 0; i < maxBatches && !stopped; i++) {
      const step = await store.retention.pruneStep(cutoff, batchRows);
      total += step.chains;
      if (step.texts) freedTexts?.inc(step.texts);
      if (step.chains === 0 && step.traces === 0 && !step.identities && !step.edges && !step.held && !step.more) {
        behind = false;
        break;
      }
      await new Promise((r) => setImmediate(r));
    }
    if (total) {
      deleted?.inc(total);
      logger.debug({ deleted: total, cutoff }, 'retention deleted old chains');
    }
    return total;
  };

  /**
   * Where the alert sweep goes on: alerts that stay (open, or with deliveries not done) are read
   * too, so a sweep that used up its steps leaves the rest to the next from here, and only one that
   * read to the end starts again from the oldest.
   */
  let alertCursor: AlertPruneCursor | undefined;

  /** Deletes closed alerts last seen before the cutoff, a page at a time. */
  const sweepAlerts = async (alertRetention: AlertRetention, cutoff: number): Promise<void> => {
    let total = 0;
    for (let i = 0; i < maxBatches && !stopped; i++) {
      const step = await alertRetention.pruneAlerts(cutoff, batchRows, alertCursor);
      total += step.alerts;
      if (step.alerts) alertsDeleted?.inc(step.alerts);
      alertCursor = step.next;
      if (!step.next) break;
      await new Promise((r) => setImmediate(r));
    }
    if (total) logger.debug({ deleted: total, cutoff }, 'retention deleted old alerts');
  };

  const sweepOnce = async (): Promise<number> => {
    behind = false;
    const newest = await store.chainReader.newestEventMs();
    if (newest <= 0) return 0;
    // A span stamped in the future (a skewed clock, or a sender that means harm) must not age every
    // chain and alert out at once: retention's clock is the newest event time but never ahead of
    // the wall clock (replayed history is behind it anyway, so replays still keep their chains).
    const clock = Math.min(newest, now());
    const chains = retentionMs > 0 ? await sweepChains(clock - retentionMs) : 0;
    if (alertRetentionMs > 0 && store.alertRetention && !stopped) await sweepAlerts(store.alertRetention, clock - alertRetentionMs);
    return chains;
  };

  const sweep = (): Promise<number> => {
    running ??= sweepOnce()
      .catch((err: unknown) => {
        logger.warn({ err: String(err) }, 'retention sweep failed');
        // A failing sweep waits for the interval, not the catch-up pause: no retry every second.
        behind = false;
        return 0;
      })
      .finally(() => {
        running = undefined;
        if (!behind || stopped || catchUp) return;
        logger.debug({ catchUpMs }, 'retention has more to delete: the next sweep comes sooner');
        catchUp = setTimeout(() => {
          catchUp = undefined;
          void sweep();
        }, catchUpMs);
        catchUp.unref();
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
      clearTimeout(catchUp);
      await running;
    },
  };
}
