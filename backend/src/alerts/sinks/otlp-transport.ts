import { createGrpcUnary, otlpHttpUrl, otlpProtocol, postHttp } from './transport.js';

/** Where an OTLP sink sends its requests. */
export interface OtlpTarget {
  /** gRPC HOST:PORT (or `http(s)://HOST:PORT`), or the OTLP/HTTP base URL. */
  endpoint: string;
  /** Default: `http` for an `http(s)://` endpoint, else `grpc`. */
  protocol?: 'grpc' | 'http';
  /** HTTP headers or gRPC metadata sent with every request (e.g. authentication). */
  headers: Record<string, string>;
  /** Deadline of one attempt. */
  timeoutMs: number;
  /** conduct's version, for the User-Agent. */
  version: string;
}

const SIGNALS = {
  logs: { path: '/v1/logs', method: '/opentelemetry.proto.collector.logs.v1.LogsService/Export' },
  traces: { path: '/v1/traces', method: '/opentelemetry.proto.collector.trace.v1.TraceService/Export' },
} as const;

export interface OtlpTransport {
  send(body: Uint8Array, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Sends encoded OTLP export requests of one signal over gRPC or HTTP/protobuf. */
export function createOtlpTransport(target: OtlpTarget, signal: keyof typeof SIGNALS): OtlpTransport {
  const { path, method } = SIGNALS[signal];
  if (otlpProtocol(target.endpoint, target.protocol) === 'grpc') {
    const client = createGrpcUnary({ endpoint: target.endpoint, method, headers: target.headers, timeoutMs: target.timeoutMs });
    return {
      send: (body, abort) => client.call(body, abort),
      close: async () => client.close(),
    };
  }
  const url = otlpHttpUrl(target.endpoint, path);
  const headers = { 'user-agent': `conduct/${target.version}`, ...target.headers, 'content-type': 'application/x-protobuf' };
  return {
    send: (body, abort) => postHttp({ url, body, headers, timeoutMs: target.timeoutMs }, abort),
    close: async () => undefined,
  };
}
