import type { Registry } from 'prom-client';
import type { Logger } from '../model.js';
import type { Forwarder } from '../forward/index.js';

/** A running (or startable) OTLP receiver. */
export interface Receiver {
  /** Binds and starts serving; resolves with the bound `host:port` (useful with port 0). */
  start(): Promise<string>;
  /** Stops accepting, lets in-flight requests finish (bounded by a grace period), closes. Idempotent; safe without start. */
  stop(): Promise<void>;
}

/** What a receiver needs from its surroundings. */
export interface ReceiverDeps {
  /** Prometheus registry the receiver's counters are registered on (shared by both receivers). */
  registry: Registry;
  logger: Logger;
  /**
   * In-line mode: every request that decodes is handed to the forwarder before the ingest, and
   * answered with a retryable code when the forwarder is full. Once forwarded, a request is
   * acknowledged even if the analysis cannot take it (counted), so analysis never blocks the
   * traffic to the back end.
   */
  forwarder?: Pick<Forwarder, 'submit' | 'enabled'>;
}

/** google.rpc.Code values used in error answers (the same numbers as gRPC status codes). */
export const RpcCode = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
