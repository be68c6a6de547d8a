import type { Logger } from '@conduct/processor';
import type { StorageAvailability } from '../contracts.js';
import { isRetryable } from './connection.js';

/** First wait after a write found the server out of reach; doubled up to MAX_RETRY_MS. */
export const FIRST_RETRY_MS = 200;
export const MAX_RETRY_MS = 2_000;
/** What a refused sender is told to wait while the server is out of reach. */
export const RETRY_AFTER_MS = 2_000;

export interface Availability extends StorageAvailability {
  /**
   * Runs `write` until it succeeds: a failure that says the server is out of reach (isRetryable)
   * marks the store unavailable and is tried again after a growing wait; any other failure, or
   * any failure once `stopRetrying` was called, rejects. Writes run one at a time, in call order.
   */
  retrying<T>(write: () => Promise<T>): Promise<T>;
}

/** Retries and the available/unavailable state of the PostgreSQL store (contracts.ts, StorageAvailability). */
export function createAvailability(logger: Logger): Availability {
  let available = true;
  let stopped = false;
  /** Wakes the current wait early (stopRetrying). */
  let wake: (() => void) | undefined;
  /** The previous write: the next starts after it settles, so a retried write keeps its place. */
  let queue: Promise<unknown> = Promise.resolve();

  const attempt = async <T>(write: () => Promise<T>): Promise<T> => {
    let waitMs = FIRST_RETRY_MS;
    for (let tries = 1; ; tries++) {
      try {
        const out = await write();
        if (!available) {
          available = true;
          logger.info({ tries }, 'postgres reachable again; writes go on');
        }
        return out;
      } catch (err) {
        if (stopped || !isRetryable(err)) throw err;
        if (available) {
          available = false;
          logger.warn({ err: String(err) }, 'postgres out of reach; writes wait and retry, ingest is refused meanwhile');
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
        waitMs = Math.min(MAX_RETRY_MS, waitMs * 2);
      }
    }
  };

  return {
    available: () => available,
    retryAfterMs: () => RETRY_AFTER_MS,
    stopRetrying() {
      stopped = true;
      wake?.();
    },
    retrying(write) {
      const run = queue.then(() => attempt(write));
      queue = run.catch(() => undefined);
      return run;
    },
  };
}
