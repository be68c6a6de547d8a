import type { RememberedClient } from '../calls/index.js';
import type { Clock } from './stitcher.js';

/** Default of {@link RecentClientsConfig.maxSpans}. */
export const DEFAULT_RECENT_CLIENT_SPANS = 50_000;
/** Default of {@link RecentClientsConfig.maxAgeMs} for an index made alone; the pipeline passes its late-trace window. */
export const DEFAULT_RECENT_CLIENT_AGE_MS = 60_000;

export interface RecentClientsConfig {
  /** Unmatched client spans remembered at most; the oldest are forgotten first. */
  maxSpans?: number;
  /** A remembered span is forgotten this long (processing time, ms) after its trace completed. */
  maxAgeMs?: number;
}

export interface RecentClientsStats {
  /** Spans remembered now. */
  spans: number;
  /** Late spans whose missing parent was a remembered client span (stitched). */
  hits: number;
  /** Late spans whose missing parent was not a remembered client span of another service (never seen, already matched, forgotten). */
  misses: number;
  /** Remembered spans forgotten unmatched because they grew older than maxAgeMs. */
  expired: number;
  /** Remembered spans forgotten unmatched to stay within maxSpans. */
  evicted: number;
}

/**
 * A bounded, time-limited index of the client spans of recently completed traces that found no
 * server span in their trace. When the callee's spans arrive after the trace completed, its server
 * span's parent is looked up here so that it still yields a stitched call. Each remembered span
 * is handed out at most once. Pure: time comes from the injected clock.
 */
export interface RecentClients {
  /** Remembers `client`, a span of trace `traceId` (its columns must name that trace), under `spanId`. */
  remember(traceId: string, spanId: string, client: RememberedClient): void;
  /**
   * The remembered client span that a span of `calleeService` names as its parent, removed from
   * the index; undefined (a miss) when not remembered or when it is of the same service (kept).
   */
  take(traceId: string, spanId: string, calleeService: string): RememberedClient | undefined;
  stats(): RecentClientsStats;
}

/**
 * Per remembered span, only its Map entry (keyed by its span id's text) and three slots of the
 * queue: no entry object, and the trace id is read from the span's columns when a lookup finds it.
 * An entry object with the trace id's text was ~150 of the ~490 bytes each of up to 100,000
 * remembered spans held (two indexes; bench/README.md, "Remembered spans of completed traces").
 */
export function createRecentClients(config: RecentClientsConfig, clock: Clock): RecentClients {
  const maxSpans = Math.max(0, Math.floor(config.maxSpans ?? DEFAULT_RECENT_CLIENT_SPANS));
  const maxAgeMs = Math.max(0, config.maxAgeMs ?? DEFAULT_RECENT_CLIENT_AGE_MS);
  // Keyed by span id alone: a concatenated key was a new string to build and hash per call.
  // Span ids are random 64-bit values; `take` checks the trace, so a collision is a miss.
  const entries = new Map<string, RememberedClient>();
  const queue = new ExpiryQueue();
  const isCurrent = (key: string, client: RememberedClient) => entries.get(key) === client;
  const counts = { hits: 0, misses: 0, expired: 0, evicted: 0 };

  const prune = (now: number) => {
    for (let at = queue.oldest(isCurrent); at >= 0 && queue.expiresAt(at) <= now; at = queue.oldest(isCurrent)) {
      entries.delete(queue.keyAt(at));
      queue.pop();
      counts.expired++;
    }
    queue.compact(entries.size, isCurrent);
  };

  return {
    remember(_traceId, spanId, client) {
      if (maxSpans === 0) return;
      const now = clock.now();
      prune(now);
      // A span remembered again under the same id leaves its earlier queue entry stale.
      entries.set(spanId, client);
      queue.push(spanId, client, now + maxAgeMs);
      while (entries.size > maxSpans) {
        entries.delete(queue.keyAt(queue.oldest(isCurrent)));
        queue.pop();
        counts.evicted++;
      }
      queue.compact(entries.size, isCurrent);
    },
    take(traceId, spanId, calleeService) {
      prune(clock.now());
      const client = entries.get(spanId);
      if (!client || client.service === calleeService || client.cols.traceId(client.index) !== traceId) {
        counts.misses++;
        return undefined;
      }
      entries.delete(spanId);
      counts.hits++;
      return client;
    },
    stats: () => ({ spans: entries.size, ...counts }),
  };
}

/**
 * Remembered spans in the order remembered, which is expiry order (the clock does not go back and
 * every span lives maxAgeMs), with their keys and expiry times in parallel arrays (the times as
 * unboxed doubles). A span taken or remembered again meanwhile is no longer current and is
 * stepped over; once such stale entries (which still hold their columns) outnumber the current
 * ones, they are dropped in one pass, so the queue holds at most about twice the spans remembered.
 */
class ExpiryQueue {
  private keys: string[] = [];
  /** Emptied behind the head, so that a forgotten span's columns are not kept until the next compaction. */
  private clients: (RememberedClient | undefined)[] = [];
  private expiries: number[] = [];
  private head = 0;

  push(key: string, client: RememberedClient, expiresMs: number): void {
    this.keys.push(key);
    this.clients.push(client);
    this.expiries.push(expiresMs);
  }

  /** The position of the oldest current entry (stepping past stale ones for good), or -1. */
  oldest(current: (key: string, client: RememberedClient) => boolean): number {
    while (this.head < this.keys.length) {
      if (current(this.keys[this.head]!, this.clients[this.head]!)) return this.head;
      this.clients[this.head++] = undefined;
    }
    return -1;
  }

  keyAt(at: number): string {
    return this.keys[at]!;
  }

  expiresAt(at: number): number {
    return this.expiries[at]!;
  }

  /** Drops the entry oldest() found. */
  pop(): void {
    this.clients[this.head++] = undefined;
  }

  /**
   * Drops the stepped-past front once it is most of the queue, and stale entries (spans handed out
   * or remembered again, whose columns they still hold) once they outnumber the `count` current ones.
   */
  compact(count: number, current: (key: string, client: RememberedClient) => boolean): void {
    const length = this.keys.length - this.head;
    if (length > 2 * count + 1_024) {
      let to = 0;
      for (let at = this.head; at < this.keys.length; at++) {
        if (!current(this.keys[at]!, this.clients[at]!)) continue;
        this.keys[to] = this.keys[at]!;
        this.clients[to] = this.clients[at]!;
        this.expiries[to] = this.expiries[at]!;
        to++;
      }
      this.keys.length = this.clients.length = this.expiries.length = to;
      this.head = 0;
    } else if (this.head > 1_024 && this.head * 2 > this.keys.length) {
      this.keys = this.keys.slice(this.head);
      this.clients = this.clients.slice(this.head);
      this.expiries = this.expiries.slice(this.head);
      this.head = 0;
    }
  }
}
