import type { Alert } from '../model.js';

/** What happened to an alert: it was raised (or raised again), or an operator gave a verdict. */
export type SinkEventKind = 'alert' | 'feedback';

/**
 * Which delivery an event is, for receivers that deduplicate: the alert id and the alert's
 * delivery sequence number (1, 2, ... per alert event, the same on every retry and after a
 * restart). Set for events delivered from the store's outbox.
 */
export interface DeliveryRef {
  alertId: string;
  seq: number;
}

/** `<alertId>/<seq>`: the delivery id receivers see (webhook header, OTLP attribute, OCSF `metadata.uid`). */
export const deliveryId = (ref: DeliveryRef): string => `${ref.alertId}/${ref.seq}`;

/** One item on a sink's queue. The alert is a private copy taken when it was handed over. */
export interface SinkEvent {
  kind: SinkEventKind;
  alert: Alert;
  delivery?: DeliveryRef;
}

/**
 * A destination for alerts. The queue worker calls `prepare` once per event (so every retry sends
 * byte-identical content: the same body, the same signature, the same finding span id) and then
 * `send` until it succeeds or the retries run out.
 */
export interface Sink<P = unknown> {
  /** Event kinds this sink wants; the others never reach its queue. */
  readonly accepts: readonly SinkEventKind[];
  /** Builds the payload for one event. Throwing makes the event a permanent failure. */
  prepare(event: SinkEvent): P;
  /** Delivers one payload. Rejects with a {@link DeliveryError}; any other error is retried. */
  send(payload: P, signal: AbortSignal): Promise<void>;
  /** Releases connections and files. Called once, after the queue has drained or been abandoned. */
  close?(): Promise<void>;
}

/** A failed delivery, classified: retryable (network, 429, 5xx, gRPC UNAVAILABLE) or permanent. */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  constructor(
    message: string,
    readonly retryable: boolean,
    /** The receiver asked to wait this long before the next attempt (Retry-After, RetryInfo). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}
