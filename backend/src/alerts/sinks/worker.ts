import type { Logger } from '@conduct/processor';
import type { SinkMetrics } from './metrics.js';
import { DeliveryError, type Sink, type SinkEvent } from './types.js';

/** Longest wait a receiver's Retry-After can impose on one attempt. */
export const MAX_RETRY_AFTER_MS = 60_000;

export interface WorkerOptions {
  /** The `sink` label and the name in logs. */
  name: string;
  /** Events held waiting; beyond it new events are dropped and counted. */
  queueSize: number;
  /** Attempts after the first failed one before the event is given up. */
  retries: number;
  /** Delay before the first retry; doubles per retry, with jitter. */
  backoffMs: number;
  /** Upper bound of the (pre-jitter) delay. */
  maxBackoffMs: number;
  metrics: SinkMetrics;
  logger: Logger;
}

/**
 * One sink's bounded queue and its single delivery loop. Events are delivered in order, one at a
 * time; a slow or failing destination only ever fills its own queue.
 */
export class SinkWorker {
  private readonly queue: SinkEvent[] = [];
  private inFlight = false;
  private accepting = true;
  private readonly abort = new AbortController();
  private idleWaiters: Array<() => void> = [];
  /** True while the destination is failing, so that only the change of state is logged. */
  private failing = false;
  private closed: Promise<void> | undefined;

  constructor(
    private readonly sink: Sink,
    private readonly opts: WorkerOptions,
  ) {
    this.setDepth();
  }

  get name(): string {
    return this.opts.name;
  }

  /** Queues an event; false (and counted as dropped) when the queue is full or stopped. Never throws. */
  offer(event: SinkEvent): boolean {
    if (!this.accepting || this.queue.length >= this.opts.queueSize) {
      this.count('dropped');
      return false;
    }
    this.queue.push(event);
    this.setDepth();
    if (!this.inFlight) void this.drain();
    return true;
  }

  /** Resolves once every queued event has been delivered or given up. */
  idle(): Promise<void> {
    if (!this.inFlight && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops taking events, waits up to `drainMs` for the queue to empty, then abandons what is
   * left (counted as dropped) and closes the sink. Safe to call twice.
   */
  stop(drainMs: number): Promise<void> {
    this.closed ??= this.shutdown(drainMs);
    return this.closed;
  }

  private async shutdown(drainMs: number): Promise<void> {
    this.accepting = false;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)))]);
    clearTimeout(timer);
    this.abort.abort();
    const abandoned = this.queue.splice(0).length;
    if (abandoned > 0) {
      this.count('dropped', abandoned);
      this.opts.logger.warn({ sink: this.opts.name, abandoned }, 'alert sink stopped with undelivered alerts');
    }
    await this.idle();
    try {
      await this.sink.close?.();
    } catch (err) {
      this.opts.logger.warn({ sink: this.opts.name, err: String(err) }, 'alert sink did not close cleanly');
    }
    this.setDepth();
  }

  private async drain(): Promise<void> {
    this.inFlight = true;
    try {
      while (this.queue.length > 0 && !this.abort.signal.aborted) {
        const event = this.queue[0]!;
        await this.deliver(event);
        this.queue.shift();
        this.setDepth();
      }
    } finally {
      this.inFlight = false;
      this.setDepth();
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private async deliver(event: SinkEvent): Promise<void> {
    let payload: unknown;
    try {
      payload = this.sink.prepare(event);
    } catch (err) {
      this.count('failed');
      this.opts.logger.warn({ sink: this.opts.name, alert: event.alert.id, err: String(err) }, 'alert could not be encoded for sink');
      return;
    }
    const signal = this.abort.signal;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) return;
      try {
        await this.sink.send(payload, signal);
        this.count('delivered');
        if (this.failing) {
          this.failing = false;
          this.opts.logger.info({ sink: this.opts.name }, 'alert sink recovered');
        }
        return;
      } catch (err) {
        if (signal.aborted) return;
        const retryable = !(err instanceof DeliveryError) || err.retryable;
        if (!this.failing) {
          this.failing = true;
          this.opts.logger.warn({ sink: this.opts.name, err: String(err) }, 'alert sink delivery failing');
        }
        if (!retryable || attempt >= this.opts.retries) {
          this.count('failed');
          return;
        }
        this.opts.metrics.retries.inc({ sink: this.opts.name });
        const hinted = err instanceof DeliveryError ? err.retryAfterMs : undefined;
        await sleep(this.backoff(attempt, hinted), signal);
      }
    }
  }

  private backoff(attempt: number, retryAfterMs: number | undefined): number {
    return backoffDelay(attempt, this.opts, retryAfterMs);
  }

  private count(outcome: 'delivered' | 'failed' | 'dropped', n = 1): void {
    this.opts.metrics.deliveries.inc({ sink: this.opts.name, outcome }, n);
  }

  private setDepth(): void {
    this.opts.metrics.queueDepth.set({ sink: this.opts.name }, this.queue.length);
  }
}

/**
 * Exponential backoff with jitter: a random delay in [d/2, d], d = backoff * 2^attempt, capped;
 * at least what the receiver asked for (Retry-After, bounded).
 */
export function backoffDelay(attempt: number, opts: Pick<WorkerOptions, 'backoffMs' | 'maxBackoffMs'>, retryAfterMs: number | undefined): number {
  const ceiling = Math.min(opts.maxBackoffMs, opts.backoffMs * 2 ** attempt);
  const jittered = ceiling / 2 + Math.random() * (ceiling / 2);
  if (retryAfterMs === undefined) return jittered;
  return Math.max(jittered, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
