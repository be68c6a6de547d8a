import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { Logger } from '../model.js';
import type { ResolvedForwardTarget } from './config.js';
import { tracesJsonToProtobuf } from './json-to-protobuf.js';
import type { DownstreamGauges, ForwardMetrics } from './metrics.js';
import { Spool, SPOOL_SYNC_INTERVAL_MS, type SpoolRecord } from './spool.js';
import type { SendOutcome, Transport, WirePayload } from './transport.js';

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);
/** Bound on what a spooled gzip body may inflate to. */
const MAX_INFLATED_BYTES = 1024 * 1024 * 1024;
/** Pause after an unexpected internal error before the loop carries on. */
const ERROR_PAUSE_MS = 1_000;

/** One request as a receiver accepted it. */
export interface ForwardRequest {
  /** The request body as received, decompressed. */
  body: Buffer;
  /** The body as received when it arrived gzip-compressed (passed on as is when that fits). */
  compressedBody?: Buffer;
  format: 'protobuf' | 'json';
  /** Spans in the request (for the metrics). */
  spans: number;
}

/** A request as one downstream keeps it: exactly one of the two bodies is set. */
interface Item {
  body?: Buffer;
  gzipBody?: Buffer;
  format: 'protobuf' | 'json';
  spans: number;
  size: number;
}

/**
 * One downstream: a bounded in-memory FIFO in front of an optional on-disk spool, drained by a
 * single loop that keeps one request in flight, so requests arrive in the order they were
 * submitted. Every queued item precedes every spooled one; while the spool holds anything, new
 * requests go behind it on disk.
 */
export class Downstream {
  private readonly mem: Item[] = [];
  private memBytes = 0;
  private current: Item | undefined;
  private readonly spool: Spool | undefined;
  /** Aborts the attempt in flight when the drain deadline passes. */
  private readonly abort = new AbortController();
  /** Aborts as soon as stop begins: ends backoff waits. */
  private readonly stopSignal = new AbortController();
  private wake: (() => void) | undefined;
  private idleWaiters: Array<() => void> = [];
  private loop: Promise<void> | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private spoolErrorLogged = false;
  readonly gauges: DownstreamGauges;

  constructor(
    readonly label: string,
    private readonly target: ResolvedForwardTarget,
    private readonly transport: Transport,
    private readonly metrics: ForwardMetrics,
    private readonly logger: Logger,
  ) {
    if (target.spoolPath) {
      this.spool = Spool.open({
        dir: target.spoolPath,
        maxBytes: target.spoolMaxBytes,
        segmentBytes: target.spoolSegmentBytes,
        logger,
        onCorrupt: () => this.countDrop('spool-corrupt', 0),
      });
    }
    this.gauges = {
      label,
      queueRequests: () => this.mem.length + (this.current ? 1 : 0),
      queueBytes: () => this.memBytes + (this.current?.size ?? 0),
      spoolRecords: () => this.spool?.records ?? 0,
      spoolBytes: () => this.spool?.bytes ?? 0,
    };
  }

  /** Which body this downstream keeps: the gzip one only when it will be sent over HTTP as gzip. */
  private itemFor(req: ForwardRequest): Item {
    const wantsGzip =
      this.target.protocol === 'http' &&
      (this.target.compression === 'gzip' || (this.target.compression === undefined && req.compressedBody !== undefined));
    if (wantsGzip && req.compressedBody) {
      return { gzipBody: req.compressedBody, format: req.format, spans: req.spans, size: req.compressedBody.length };
    }
    return { body: req.body, format: req.format, spans: req.spans, size: req.body.length };
  }

  /** Room in memory; the request in flight counts against `queueSize` and `queueMaxBytes` too. */
  private memHasRoom(size: number): boolean {
    const held = this.mem.length + (this.current ? 1 : 0);
    if (held === 0) return true; // one request always fits: it is in memory already
    const bytes = this.memBytes + (this.current?.size ?? 0);
    return held < this.target.queueSize && bytes + size <= this.target.queueMaxBytes;
  }

  /** True when `enqueue` of this request would succeed. */
  canAccept(req: ForwardRequest): boolean {
    if (this.stopping) return false;
    const size = this.itemFor(req).size;
    if ((!this.spool || this.spool.empty) && this.memHasRoom(size)) return true;
    return this.spool !== undefined && this.spool.hasRoom(size);
  }

  /** Queues the request (memory first, then the spool). False when neither has room. */
  enqueue(req: ForwardRequest): boolean {
    if (this.stopping) return false;
    const item = this.itemFor(req);
    if ((!this.spool || this.spool.empty) && this.memHasRoom(item.size)) {
      this.mem.push(item);
      this.memBytes += item.size;
      this.wake?.();
      return true;
    }
    if (!this.spool) return false;
    try {
      if (!this.spool.append(toRecord(item))) return false;
    } catch (err) {
      if (!this.spoolErrorLogged) this.logger.error({ downstream: this.label, err: String(err) }, 'forward spool write failed');
      this.spoolErrorLogged = true;
      this.countDrop('spool-error', item.spans);
      return false;
    }
    this.metrics.spooledRequests.inc({ downstream: this.label });
    this.wake?.();
    return true;
  }

  start(): void {
    if (this.loop || this.stopping) return;
    if (this.spool) {
      this.syncTimer = setInterval(() => this.syncSpool(), SPOOL_SYNC_INTERVAL_MS);
      this.syncTimer.unref();
    }
    this.loop = this.run();
  }

  /** Resolves once nothing is queued, spooled or in flight; false if `timeoutMs` passed first. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.isIdle()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  /**
   * Keeps sending the memory queue for up to `drainTimeoutMs` (a retryable failure ends it early),
   * then writes what is left in front of the spool, or drops and counts it when there is no spool.
   * Safe to call twice and without `start`.
   */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    this.wake?.();
    if (this.loop) {
      const deadline = setTimeout(() => this.abort.abort(), this.target.drainTimeoutMs);
      await this.loop;
      clearTimeout(deadline);
    }
    this.abort.abort();
    if (this.syncTimer) clearInterval(this.syncTimer);
    const left = this.current ? [this.current, ...this.mem] : [...this.mem];
    this.current = undefined;
    this.mem.length = 0;
    this.memBytes = 0;
    if (left.length > 0) {
      let kept = false;
      if (this.spool) {
        try {
          this.spool.prepend(left.map(toRecord));
          kept = true;
        } catch (err) {
          this.logger.error({ downstream: this.label, err: String(err) }, 'forward spool write failed at shutdown');
        }
      }
      if (!kept) for (const item of left) this.countDrop('shutdown', item.spans);
    }
    try {
      this.spool?.close();
    } catch (err) {
      this.logger.error({ downstream: this.label, err: String(err) }, 'forward spool close failed');
    }
    this.transport.close();
    this.logger.info(
      { downstream: this.label, leftInSpool: this.spool?.records ?? 0, unsent: this.spool ? 0 : left.length },
      'forwarder stopped',
    );
  }

  private isIdle(): boolean {
    return !this.current && this.mem.length === 0 && (!this.spool || this.spool.empty);
  }

  private syncSpool(): void {
    try {
      this.spool?.sync();
    } catch (err) {
      this.logger.error({ downstream: this.label, err: String(err) }, 'forward spool sync failed');
    }
  }

  /** The next request: the memory queue first, then the spool (not while stopping: it stays on disk). */
  private next(): Item | undefined {
    const item = this.mem.shift();
    if (item) {
      this.memBytes -= item.size;
      return item;
    }
    if (this.stopping || !this.spool) return undefined;
    const record = this.spool.shift();
    if (!record) return undefined;
    return record.gzip
      ? { gzipBody: record.payload, format: record.format, spans: record.spans, size: record.payload.length }
      : { body: record.payload, format: record.format, spans: record.spans, size: record.payload.length };
  }

  private async run(): Promise<void> {
    for (;;) {
      try {
        const item = this.next();
        if (!item) {
          if (this.stopping) return;
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = undefined;
          continue;
        }
        this.current = item;
        await this.deliver(item);
        if (this.current) return; // stopped before it was delivered: shutdown keeps it
      } catch (err) {
        this.logger.error({ downstream: this.label, err: String(err) }, 'forward loop error');
        if (this.current) {
          this.countDrop('internal-error', this.current.spans);
          this.current = undefined;
        }
        if (this.stopping) return;
        await sleep(ERROR_PAUSE_MS, this.stopSignal.signal);
      }
    }
  }

  private async deliver(item: Item): Promise<void> {
    let payload: WirePayload;
    try {
      payload = await this.prepare(item);
    } catch (err) {
      this.logger.debug({ downstream: this.label, err: String(err) }, 'forward request could not be converted');
      this.countDrop('convert', item.spans);
      this.current = undefined;
      return;
    }
    const { retry } = this.target;
    const firstAttempt = Date.now();
    for (let attempt = 0; ; attempt++) {
      const outcome: SendOutcome = await this.transport.send(payload, this.abort.signal);
      if (outcome.kind === 'ok') {
        this.metrics.sentRequests.inc({ downstream: this.label });
        this.metrics.sentSpans.inc({ downstream: this.label }, item.spans);
        this.current = undefined;
        return;
      }
      if (outcome.kind === 'permanent') {
        this.countDrop(outcome.reason, item.spans);
        this.current = undefined;
        return;
      }
      // Retryable. While stopping, the downstream's trouble ends the drain: the rest is spooled.
      if (this.stopping || this.abort.signal.aborted) return;
      if (retry.maxElapsedMs > 0 && Date.now() - firstAttempt >= retry.maxElapsedMs) {
        this.countDrop('retries-exhausted', item.spans);
        this.current = undefined;
        return;
      }
      this.metrics.retries.inc({ downstream: this.label, reason: outcome.reason });
      await sleep(backoffMs(attempt, outcome.retryAfterMs, retry), this.stopSignal.signal);
      if (this.stopping || this.abort.signal.aborted) return;
    }
  }

  private async prepare(item: Item): Promise<WirePayload> {
    const json = item.format === 'json';
    if (this.target.protocol === 'grpc') {
      const plain = item.body ?? (await gunzip(item.gzipBody!, { maxOutputLength: MAX_INFLATED_BYTES }));
      return { bytes: json ? tracesJsonToProtobuf(plain) : plain, contentType: 'application/x-protobuf', gzip: false };
    }
    const contentType = json ? 'application/json' : 'application/x-protobuf';
    const wantsGzip = this.target.compression === 'gzip' || (this.target.compression === undefined && item.gzipBody !== undefined);
    if (wantsGzip) return { bytes: item.gzipBody ?? (await gzip(item.body!)), contentType, gzip: true };
    return { bytes: item.body ?? (await gunzip(item.gzipBody!, { maxOutputLength: MAX_INFLATED_BYTES })), contentType, gzip: false };
  }

  private countDrop(reason: string, spans: number): void {
    this.metrics.droppedRequests.inc({ downstream: this.label, reason });
    if (spans > 0) this.metrics.droppedSpans.inc({ downstream: this.label, reason }, spans);
  }
}

function toRecord(item: Item): SpoolRecord {
  return item.gzipBody
    ? { format: item.format, gzip: true, spans: item.spans, payload: item.gzipBody }
    : { format: item.format, gzip: false, spans: item.spans, payload: item.body! };
}

/**
 * Wait before attempt `attempt + 1`: the downstream's own figure when it gave one (capped), else
 * exponential from the initial interval, capped, with full jitter on the upper half.
 */
export function backoffMs(
  attempt: number,
  retryAfterMs: number | undefined,
  retry: { initialIntervalMs: number; maxIntervalMs: number; maxRetryAfterMs: number },
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs)) return Math.min(Math.max(0, retryAfterMs), retry.maxRetryAfterMs);
  const ceiling = Math.min(retry.maxIntervalMs, retry.initialIntervalMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** Sleeps, waking early when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
