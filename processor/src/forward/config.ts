/**
 * Configuration of one downstream that conduct forwards the traces it receives to.
 *
 * The backend's config schema (`forward[]`) produces objects of this shape with durations already
 * in milliseconds; everything beyond `endpoint` is optional here and falls back to the named
 * defaults below, so tests and other callers can pass plain objects.
 */

export type ForwardProtocol = 'grpc' | 'http';
export type ForwardCompression = 'none' | 'gzip';

export interface ForwardTlsConfig {
  /** PEM CA bundle file used to verify the downstream's certificate. */
  ca?: string;
  /** PEM client certificate file (mutual TLS). */
  cert?: string;
  /** PEM client private key file (mutual TLS). */
  key?: string;
  /**
   * gRPC: plaintext, no TLS at all (as the Collector's `insecure`). HTTP: the URL scheme decides
   * whether TLS is used, and `insecure` turns off verification of the server certificate.
   */
  insecure?: boolean;
}

export interface ForwardRetryConfig {
  /** First wait after a retryable failure. */
  initialIntervalMs?: number;
  /** Longest wait between attempts (the exponential backoff stops growing here). */
  maxIntervalMs?: number;
  /**
   * Give up on one request after retrying it this long (dropped, reason `retries-exhausted`).
   * 0 keeps retrying for as long as the downstream stays unavailable: in-line mode loses nothing
   * within the queue and spool bounds, and backpressure reaches the senders instead.
   */
  maxElapsedMs?: number;
  /** A downstream's `Retry-After` / RetryInfo is honoured up to this long. */
  maxRetryAfterMs?: number;
}

export interface ForwardTargetConfig {
  /**
   * gRPC: `HOST:PORT`, `http://HOST:PORT` (plaintext) or `https://HOST:PORT` (TLS).
   * HTTP: base URL (`http://collector:4318`); `/v1/traces` is appended unless already there.
   */
  endpoint: string;
  /** Transport to the downstream. Default {@link DEFAULT_FORWARD_PROTOCOL}. */
  protocol?: ForwardProtocol;
  /** Extra request headers (HTTP) or metadata (gRPC), e.g. an authorization token. */
  headers?: Record<string, string>;
  /**
   * Compression towards the downstream. When absent, HTTP requests keep the encoding they arrived
   * with (a gzip request is passed on gzip, byte for byte) and gRPC requests go uncompressed.
   */
  compression?: ForwardCompression;
  /** Deadline of one attempt, in ms. Default {@link DEFAULT_FORWARD_TIMEOUT_MS}. */
  timeout?: number;
  /** Requests held in memory for this downstream. Default {@link DEFAULT_FORWARD_QUEUE_SIZE}. */
  queueSize?: number;
  /** Bytes held in memory for this downstream. Default {@link DEFAULT_FORWARD_QUEUE_MAX_BYTES}. */
  queueMaxBytes?: number;
  /** Directory of the on-disk spool used when the queue is full; no spool when absent. */
  spoolPath?: string;
  /** Largest spool size on disk, in bytes. Default {@link DEFAULT_FORWARD_SPOOL_MAX_BYTES}. */
  spoolMaxBytes?: number;
  /** Size at which the spool starts a new segment file. Default {@link DEFAULT_SPOOL_SEGMENT_BYTES}. */
  spoolSegmentBytes?: number;
  /** How long `stop()` keeps sending the queue before it spools what is left. Default {@link DEFAULT_FORWARD_DRAIN_MS}. */
  drainTimeoutMs?: number;
  retry?: ForwardRetryConfig;
  tls?: ForwardTlsConfig;
}

export const DEFAULT_FORWARD_PROTOCOL: ForwardProtocol = 'grpc';
export const DEFAULT_FORWARD_TIMEOUT_MS = 10_000;
export const DEFAULT_FORWARD_QUEUE_SIZE = 1000;
export const DEFAULT_FORWARD_QUEUE_MAX_BYTES = 256 * 1024 * 1024;
export const DEFAULT_FORWARD_SPOOL_MAX_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_SPOOL_SEGMENT_BYTES = 16 * 1024 * 1024;
export const DEFAULT_FORWARD_DRAIN_MS = 5_000;
export const DEFAULT_RETRY_INITIAL_MS = 1_000;
export const DEFAULT_RETRY_MAX_INTERVAL_MS = 30_000;
export const DEFAULT_RETRY_MAX_ELAPSED_MS = 0;
export const DEFAULT_RETRY_MAX_RETRY_AFTER_MS = 5 * 60_000;

/** A target with every default applied. */
export interface ResolvedForwardTarget {
  endpoint: string;
  protocol: ForwardProtocol;
  headers: Record<string, string>;
  compression: ForwardCompression | undefined;
  timeoutMs: number;
  queueSize: number;
  queueMaxBytes: number;
  spoolPath: string | undefined;
  spoolMaxBytes: number;
  spoolSegmentBytes: number;
  drainTimeoutMs: number;
  retry: Required<ForwardRetryConfig>;
  tls: ForwardTlsConfig | undefined;
}

/** Thrown for a configuration that cannot work; the message names the key. */
export class ForwardConfigError extends Error {
  override readonly name = 'ForwardConfigError';
}

function positive(value: number | undefined, fallback: number, key: string, allowZero = false): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new ForwardConfigError(`${key}: expected a ${allowZero ? 'non-negative' : 'positive'} number, got ${value}`);
  }
  return value;
}

/** Applies defaults and checks one target; `index` is its position in `forward[]`. */
export function resolveForwardTarget(config: ForwardTargetConfig, index: number): ResolvedForwardTarget {
  const at = `forward[${index}]`;
  if (typeof config.endpoint !== 'string' || config.endpoint.trim() === '') {
    throw new ForwardConfigError(`${at}.endpoint: required`);
  }
  const protocol = config.protocol ?? DEFAULT_FORWARD_PROTOCOL;
  if (protocol !== 'grpc' && protocol !== 'http') throw new ForwardConfigError(`${at}.protocol: expected grpc or http`);
  if (config.compression !== undefined && config.compression !== 'none' && config.compression !== 'gzip') {
    throw new ForwardConfigError(`${at}.compression: expected none or gzip`);
  }
  const retry = config.retry ?? {};
  const resolved: ResolvedForwardTarget = {
    endpoint: config.endpoint.trim(),
    protocol,
    headers: { ...(config.headers ?? {}) },
    compression: config.compression,
    timeoutMs: positive(config.timeout, DEFAULT_FORWARD_TIMEOUT_MS, `${at}.timeout`),
    queueSize: Math.floor(positive(config.queueSize, DEFAULT_FORWARD_QUEUE_SIZE, `${at}.queueSize`)),
    queueMaxBytes: positive(config.queueMaxBytes, DEFAULT_FORWARD_QUEUE_MAX_BYTES, `${at}.queueMaxBytes`),
    spoolPath: config.spoolPath === undefined || config.spoolPath === '' ? undefined : config.spoolPath,
    spoolMaxBytes: positive(config.spoolMaxBytes, DEFAULT_FORWARD_SPOOL_MAX_BYTES, `${at}.spoolMaxBytes`),
    spoolSegmentBytes: positive(config.spoolSegmentBytes, DEFAULT_SPOOL_SEGMENT_BYTES, `${at}.spoolSegmentBytes`),
    drainTimeoutMs: positive(config.drainTimeoutMs, DEFAULT_FORWARD_DRAIN_MS, `${at}.drainTimeoutMs`, true),
    retry: {
      initialIntervalMs: positive(retry.initialIntervalMs, DEFAULT_RETRY_INITIAL_MS, `${at}.retry.initialIntervalMs`),
      maxIntervalMs: positive(retry.maxIntervalMs, DEFAULT_RETRY_MAX_INTERVAL_MS, `${at}.retry.maxIntervalMs`),
      maxElapsedMs: positive(retry.maxElapsedMs, DEFAULT_RETRY_MAX_ELAPSED_MS, `${at}.retry.maxElapsedMs`, true),
      maxRetryAfterMs: positive(retry.maxRetryAfterMs, DEFAULT_RETRY_MAX_RETRY_AFTER_MS, `${at}.retry.maxRetryAfterMs`, true),
    },
    tls: config.tls,
  };
  for (const [name, value] of Object.entries(resolved.headers)) {
    if (typeof value !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) {
      throw new ForwardConfigError(`${at}.headers.${name}: not a valid header`);
    }
  }
  return resolved;
}
