import type { RememberedClient } from '../calls/index.js';
import type { Clock } from './stitcher.js';
import { Recency } from './recency.js';

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
  remember(traceId: string, spanId: string, client: RememberedClient): void;
  /**
   * The remembered client span that a span of `calleeService` names as its parent, removed from
   * the index; undefined (a miss) when not remembered or when it is of the same service (kept).
   */
  take(traceId: string, spanId: string, calleeService: string): RememberedClient | undefined;
  stats(): RecentClientsStats;
}

interface Entry {
  client: RememberedClient;
  traceId: string;
  /** Its key in the index. */
  spanId: string;
  expiresMs: number;
}

export function createRecentClients(config: RecentClientsConfig, clock: Clock): RecentClients {
  const maxSpans = Math.max(0, Math.floor(config.maxSpans ?? DEFAULT_RECENT_CLIENT_SPANS));
  const maxAgeMs = Math.max(0, config.maxAgeMs ?? DEFAULT_RECENT_CLIENT_AGE_MS);
  const entries = new Map<string, Entry>();
  // Insertion order is expiry order (the clock does not go back and every entry lives maxAgeMs);
  // an entry taken or replaced meanwhile is no longer the map's and is skipped.
  const order = new Recency<Entry>();
  const isCurrent = (e: Entry) => entries.get(e.spanId) === e;
  const byExpiry = () => [...entries.values()].sort((a, b) => a.expiresMs - b.expiresMs).map((e) => [e, 0] as const);
  const counts = { hits: 0, misses: 0, expired: 0, evicted: 0 };

  const prune = (now: number) => {
    for (let e = order.oldest(isCurrent); e !== undefined && e.expiresMs <= now; e = order.oldest(isCurrent)) {
      entries.delete(e.spanId);
      counts.expired++;
    }
    order.compact(entries.size, byExpiry);
  };

  return {
    remember(traceId, spanId, client) {
      if (maxSpans === 0) return;
      const now = clock.now();
      prune(now);
      // Keyed by span id alone: a concatenated key was a new string to build and hash per call.
      // Span ids are random 64-bit values; `take` checks the trace, so a collision is a miss.
      const e: Entry = { client, traceId, spanId, expiresMs: now + maxAgeMs };
      entries.set(spanId, e);
      order.note(e);
      while (entries.size > maxSpans) {
        entries.delete(order.oldest(isCurrent)!.spanId);
        counts.evicted++;
      }
      order.compact(entries.size, byExpiry);
    },
    take(traceId, spanId, calleeService) {
      prune(clock.now());
      const e = entries.get(spanId);
      if (!e || e.traceId !== traceId || e.client.service === calleeService) {
        counts.misses++;
        return undefined;
      }
      entries.delete(spanId);
      counts.hits++;
      return e.client;
    },
    stats: () => ({ spans: entries.size, ...counts }),
  };
}
