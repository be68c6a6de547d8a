/** What one attempt to deliver a request to a downstream came to. */
export type SendOutcome =
  | { kind: 'ok' }
  /** Try again later; `retryAfterMs` when the downstream said how long to wait. */
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  /** The downstream will never take this request: drop it and count the reason. */
  | { kind: 'permanent'; reason: string };

/** A request ready for the wire of one transport. */
export interface WirePayload {
  /** HTTP: the body as sent. gRPC: the uncompressed protobuf message. */
  bytes: Buffer;
  /** HTTP only: `application/x-protobuf` or `application/json`. */
  contentType: string;
  /** HTTP only: the body is gzip (sent with `Content-Encoding: gzip`). */
  gzip: boolean;
}

/** Delivers one request at a time to one downstream. */
export interface Transport {
  /** Never rejects: failures are outcomes. `signal` aborts the attempt (a retryable outcome). */
  send(payload: WirePayload, signal: AbortSignal): Promise<SendOutcome>;
  /** Releases sockets and channels. Safe to call twice. */
  close(): void;
}

/** Parses an HTTP `Retry-After` value (seconds or an HTTP date) into ms; undefined when absent or bad. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
