import type { Attributes, SpanData, TracesRequestData } from '@conduct/proto';
import type { AcceptOutcome, TraceIngest } from '../model.js';

/** A span as the collecting ingest returns it: the span with its resource's attributes. */
export interface CollectedSpan extends SpanData {
  resource: Attributes;
}

/**
 * A TraceIngest that keeps every request it accepts, for tests and for wiring checks. It ships as
 * real code so tests across packages use the same double. Memory grows with what it keeps: for
 * tests, not for production traffic.
 */
export interface CollectingIngest extends TraceIngest {
  /** Requests accepted so far, in arrival order. */
  readonly requests: readonly TracesRequestData[];
  /** Every accepted span, flattened, with its resource's attributes. */
  spans(): CollectedSpan[];
  /** When on, `accept` answers overloaded (and keeps nothing) with this retry delay. */
  setOverloaded(on: boolean, retryAfterMs?: number): void;
  /** Calls to `accept` answered overloaded so far. */
  readonly refused: number;
  /** Resolves once at least `count` spans are kept; rejects after `timeoutMs`. */
  waitForSpans(count: number, timeoutMs?: number): Promise<CollectedSpan[]>;
  /** Forgets everything kept. */
  clear(): void;
}

/** Default retry delay the collecting ingest suggests when overloaded. */
export const COLLECTING_INGEST_RETRY_MS = 2_000;
const DEFAULT_WAIT_MS = 10_000;

export function createCollectingIngest(): CollectingIngest {
  const requests: TracesRequestData[] = [];
  let overloaded: { retryAfterMs: number } | undefined;
  let refused = 0;
  let spanTotal = 0;
  const waiters = new Set<() => void>();

  const spans = (): CollectedSpan[] =>
    requests.flatMap((request) => request.resourceSpans.flatMap((rs) => rs.spans.map((span) => ({ ...span, resource: rs.resource }))));

  return {
    get requests() {
      return requests;
    },
    get refused() {
      return refused;
    },
    async accept(data: TracesRequestData): Promise<AcceptOutcome> {
      if (overloaded) {
        refused++;
        return { ok: false, reason: 'collecting ingest switched to overloaded', retryAfterMs: overloaded.retryAfterMs };
      }
      requests.push(data);
      spanTotal += data.spanCount;
      for (const wake of waiters) wake();
      return { ok: true };
    },
    spans,
    setOverloaded(on, retryAfterMs = COLLECTING_INGEST_RETRY_MS) {
      overloaded = on ? { retryAfterMs } : undefined;
    },
    waitForSpans(count, timeoutMs = DEFAULT_WAIT_MS) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (spanTotal < count) return;
          cleanup();
          resolve(spans());
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`collecting ingest: waited ${timeoutMs} ms for ${count} spans, have ${spanTotal}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    clear() {
      requests.length = 0;
      spanTotal = 0;
    },
  };
}
