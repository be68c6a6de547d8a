import type { DecodeLimits } from '@conduct/proto';

/** Largest request accepted, after decompression, when the config names none: 64 MiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024;
/** HTTP: a client must have sent all request headers within this time (slowloris guard). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** HTTP: a client must have sent the whole request within this time. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** HTTP: an idle keep-alive connection is closed after this long. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** stop(): in-flight requests get this long to finish before connections are cut. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;
/** gRPC: HTTP/2 flow-control window per stream and per connection (see README). */
export const DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES = 8 * 1024 * 1024;

/** TLS for a receiver. `cert`, `key` and `ca` are paths to PEM files. */
export interface ReceiverTlsConfig {
  /** PEM certificate (chain) file the receiver presents. */
  cert: string;
  /** PEM private key file of `cert`. */
  key: string;
  /** PEM CA bundle used to verify client certificates; required when `clientAuth` is true. */
  ca?: string;
  /** Require a client certificate signed by `ca` (mutual TLS). */
  clientAuth: boolean;
}

/** Configuration shared by the OTLP/gRPC and OTLP/HTTP receivers (config `receivers.grpc|http`). */
export interface ReceiverConfig {
  /** HOST:PORT to listen on (`[::1]:4318` for IPv6; port 0 picks a free port). */
  endpoint: string;
  /** Largest request accepted, in bytes, on the wire and after decompression. */
  maxRequestBytes: number;
  /** When set, senders must present `Authorization: Bearer <token>`. */
  auth?: { token: string };
  /** When set, the receiver speaks TLS (HTTPS / gRPC over TLS), mutual TLS with `clientAuth`. */
  tls?: ReceiverTlsConfig;
  /** Bounds applied while decoding spans; DEFAULT_DECODE_LIMITS from @conduct/proto when absent. */
  decodeLimits?: DecodeLimits;
  /** stop(): time in-flight requests get before connections are cut. Default DEFAULT_SHUTDOWN_GRACE_MS. */
  shutdownGraceMs?: number;
}

/** The OTLP/HTTP receiver's configuration: the shared fields plus slow-client timeouts. */
export interface HttpReceiverConfig extends ReceiverConfig {
  /** Time a client has to send the request headers. Default DEFAULT_HEADERS_TIMEOUT_MS. */
  headersTimeoutMs?: number;
  /** Time a client has to send the whole request. Default DEFAULT_REQUEST_TIMEOUT_MS. */
  requestTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this long. Default DEFAULT_KEEP_ALIVE_TIMEOUT_MS. */
  keepAliveTimeoutMs?: number;
}

/** The OTLP/gRPC receiver's configuration: the shared fields plus the HTTP/2 window. */
export interface GrpcReceiverConfig extends ReceiverConfig {
  /** HTTP/2 flow-control window, bytes. Default DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES. */
  flowControlWindowBytes?: number;
}

/** A config value the receiver cannot run with; the message names the key. */
export class ReceiverConfigError extends Error {
  override readonly name = 'ReceiverConfigError';
}

/** Checks what the types cannot; throws ReceiverConfigError naming the key. */
export function validateReceiverConfig(config: ReceiverConfig, prefix = 'receiver'): void {
  if (!Number.isSafeInteger(config.maxRequestBytes) || config.maxRequestBytes <= 0) {
    throw new ReceiverConfigError(`${prefix}.maxRequestBytes must be a positive number of bytes`);
  }
  if (config.auth !== undefined && config.auth.token.length === 0) {
    throw new ReceiverConfigError(`${prefix}.auth.token must not be empty`);
  }
  if (config.tls?.clientAuth && !config.tls.ca) {
    throw new ReceiverConfigError(`${prefix}.tls.ca is required when ${prefix}.tls.clientAuth is true`);
  }
}
