import type { Logger } from '@conduct/processor';
import { failpoint } from '../../failpoint.js';
import type { AlertOutbox, OutboxEntry } from '../../store/contracts.js';
import type { SinkMetrics } from './metrics.js';
import { DeliveryError, type Sink } from './types.js';
import { backoffDelay } from './worker.js';

/** What a store call that failed answers (the failure is logged on the change). */
const FAILED = Symbol('store call failed');

export interface OutboxWorkerOptions {
  /** The sink's name: its deliveries in the outbox, the `sink` label, the name in logs. */
  name: string;
  outbox: AlertOutbox;
  /** Attempts after the first failed one before a delivery is dead. */
  retries: number;
  /** Delay before the first retry; doubles per retry, with jitter. */
  backoffMs: number;
  maxBackoffMs: number;
  /** How long a claimed delivery is left to this worker (an attempt's deadline and a margin). */
  leaseMs: number;
  /** Longest wait between two looks at the outbox when nothing is due (other instances enqueue too). */
  pollMs: number;
  metrics: SinkMetrics;
  logger: Logger;
  /** Wall clock (tests may pass their own). */
  now?: () => number;
}

/**
 * One sink's delivery loop over the store's outbox: claim the next due delivery, send it, mark it
 * delivered, or record the failure (due again after a backoff, or dead once `retries` are used
 * up or the receiver refused it for good). One delivery in flight per sink. At start, what an
 * earlier process left pending is due at once. Nothing is lost at stop: what is pending stays in
 * the outbox for the next start.
 */
export class OutboxWorker {
  private stopping = false;
  private readonly abort = new AbortController();
  private wakeUp: (() => void) | undefined;
  /** A wake-up that came while the loop was not waiting: the next wait returns at once. */
  private woken = false;
  private idleWaiters: Array<() => void> = [];
  /** True while the destination (or the store) is failing, so that only the change is logged. */
  private failing = false;
  private storeFailing = false;
  private readonly loop: Promise<void>;
  private readonly now: () => number;

  constructor(
    private readonly sink: Sink,
    private readonly opts: OutboxWorkerOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.loop = this.run();
  }

  /** Looks at the outbox now (a checkpoint enqueued something). */
  wake(): void {
    if (this.wakeUp) this.wakeUp();
    else this.woken = true;
  }

  /** Resolves once the sink has no pending delivery (all delivered or dead), or it stops. */
  idle(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    this.wake();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Lets pending deliveries go out for up to `drainMs`, then stops claiming and aborts the
   * attempt in flight (it stays pending and goes out after the next start). Closes the sink.
   * Safe twice (a second call waits for the first).
   */
  async stop(drainMs: number): Promise<void> {
    if (!this.stopping) {
      // What is due goes out first, for up to `drainMs` (as in-memory queues drained).
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)));
      await Promise.race([this.idle(), deadline]);
      this.stopping = true;
      this.wake();
      this.settleIdle();
      await Promise.race([this.loop, deadline]);
      clearTimeout(timer);
      this.abort.abort();
      await this.loop;
      try {
        await this.sink.close?.();
      } catch (err) {
        this.opts.logger.warn({ sink: this.opts.name, err: String(err) }, 'alert sink did not close cleanly');
      }
    }
    await this.loop;
  }

  private async run(): Promise<void> {
    const { outbox, name } = this.opts;
    // Claims and backoffs of an earlier process lapse: what it left pending is due now.
    while (!this.stopping && (await this.store(() => outbox.resume(name, this.now()))) === FAILED) await this.pause(this.opts.pollMs);
    while (!this.stopping) {
      const claimed = await this.store(() => outbox.claim(name, this.now(), 1, this.opts.leaseMs));
      if (claimed !== FAILED && claimed.length > 0) {
        for (const entry of claimed) await this.deliver(entry);
        continue;
      }
      const pending = claimed === FAILED ? FAILED : await this.store(() => outbox.pending(name));
      if (pending === FAILED) {
        await this.pause(this.opts.pollMs);
        continue;
      }
      const due = pending.nextDueMs;
      if (due === undefined) this.settleIdle();
      await this.pause(due === undefined ? this.opts.pollMs : Math.min(this.opts.pollMs, Math.max(0, due - this.now())));
    }
  }

  /** Runs a store call; FAILED when it threw (logged when the store starts and stops failing). */
  private async store<T>(call: () => Promise<T>): Promise<T | typeof FAILED> {
    try {
      const out = await call();
      if (this.storeFailing) {
        this.storeFailing = false;
        this.opts.logger.info({ sink: this.opts.name }, 'alert outbox reachable again');
      }
      return out;
    } catch (err) {
      if (!this.storeFailing) {
        this.storeFailing = true;
        this.opts.logger.warn({ sink: this.opts.name, err: String(err) }, 'alert outbox not reachable; deliveries wait');
      }
      return FAILED;
    }
  }

  private async deliver(entry: OutboxEntry): Promise<void> {
    const { outbox, name } = this.opts;
    let payload: unknown;
    try {
      payload = this.sink.prepare({ kind: entry.event, alert: entry.alert, delivery: { alertId: entry.alertId, seq: entry.seq } });
    } catch (err) {
      await this.store(() => outbox.failed(entry, `not encodable: ${String(err)}`, undefined, this.now()));
      this.count('dead');
      this.opts.logger.warn({ sink: name, alert: entry.alertId, err: String(err) }, 'alert could not be encoded for sink');
      return;
    }
    try {
      await this.sink.send(payload, this.abort.signal);
    } catch (err) {
      // Stopping: the attempt is abandoned, the delivery stays pending for the next start.
      if (!this.abort.signal.aborted) await this.failed(entry, err);
      return;
    }
    failpoint('outbox.sent');
    await this.store(() => outbox.delivered(entry, this.now()));
    this.count('delivered');
    if (this.failing) {
      this.failing = false;
      this.opts.logger.info({ sink: name }, 'alert sink recovered');
    }
  }

  private async failed(entry: OutboxEntry, err: unknown): Promise<void> {
    const { outbox, name, retries } = this.opts;
    if (!this.failing) {
      this.failing = true;
      this.opts.logger.warn({ sink: name, err: String(err) }, 'alert sink delivery failing');
    }
    const retryable = !(err instanceof DeliveryError) || err.retryable;
    const now = this.now();
    if (!retryable || entry.attempts > retries) {
      await this.store(() => outbox.failed(entry, String(err), undefined, now));
      this.count('dead');
      this.opts.logger.warn({ sink: name, alert: entry.alertId, seq: entry.seq, attempts: entry.attempts }, 'alert delivery given up (dead letter)');
      return;
    }
    const hinted = err instanceof DeliveryError ? err.retryAfterMs : undefined;
    await this.store(() => outbox.failed(entry, String(err), now + backoffDelay(entry.attempts - 1, this.opts, hinted), now));
    this.opts.metrics.retries.inc({ sink: name });
  }

  /** Waits `ms`, or until woken or stopped. */
  private pause(ms: number): Promise<void> {
    if (this.stopping || this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  private settleIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private count(outcome: 'delivered' | 'dead'): void {
    this.opts.metrics.deliveries.inc({ sink: this.opts.name, outcome });
  }
}
