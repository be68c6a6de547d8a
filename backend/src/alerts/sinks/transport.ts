import { loggableTarget } from './redact.js';
import * as grpc from '@grpc/grpc-js';
import { DeliveryError } from './types.js';

/** HTTP statuses worth another attempt: timeouts, throttling and server-side trouble. */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** Reads a Retry-After header given in seconds or as an HTTP date. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export interface HttpRequest {
  url: string;
  body: Uint8Array | string;
  headers: Record<string, string>;
  timeoutMs: number;
}

/** POSTs one body; resolves on 2xx, rejects with a classified {@link DeliveryError} otherwise. */
export async function postHttp(req: HttpRequest, signal: AbortSignal): Promise<void> {
  let res: Response;
  try {
    res = await fetch(req.url, {
      method: 'POST',
      // A plain ArrayBuffer-backed view satisfies both Node's and the DOM's fetch typings.
      body: req.body as string | Uint8Array<ArrayBuffer>,
      headers: req.headers,
      redirect: 'error',
      signal: AbortSignal.any([signal, AbortSignal.timeout(req.timeoutMs)]),
    });
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    throw new DeliveryError(`POST ${loggableTarget(req.url)} failed: ${String(err)}${cause}`, true);
  }
  // The receiver's answer is not needed; release the connection without reading a large body.
  await res.body?.cancel().catch(() => undefined);
  if (res.ok) return;
  throw new DeliveryError(
    `POST ${loggableTarget(req.url)} answered ${res.status}`,
    retryableStatus(res.status),
    retryAfterMs(res.headers.get('retry-after')),
  );
}

/** gRPC status codes the OTLP specification lists as retryable. */
const RETRYABLE_GRPC = new Set<number>([
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ABORTED,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

/**
 * A gRPC client that sends already-encoded request messages to one unary method and ignores the
 * response message (the OTLP export responses only carry partial-success counts).
 */
export interface GrpcUnary {
  call(body: Uint8Array, signal: AbortSignal): Promise<void>;
  close(): void;
}

/**
 * `endpoint` is HOST:PORT, `http://HOST:PORT` (plaintext) or `https://HOST:PORT` (TLS with the
 * system's trusted roots). `headers` become request metadata.
 */
export function createGrpcUnary(opts: { endpoint: string; method: string; headers: Record<string, string>; timeoutMs: number }): GrpcUnary {
  const { address, secure } = grpcAddress(opts.endpoint);
  const client = new grpc.Client(address, secure ? grpc.credentials.createSsl() : grpc.credentials.createInsecure());
  const pass = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return {
    call(body, signal) {
      return new Promise<void>((resolve, reject) => {
        const metadata = new grpc.Metadata();
        for (const [k, v] of Object.entries(opts.headers)) metadata.set(k.toLowerCase(), v);
        const call = client.makeUnaryRequest(
          opts.method,
          pass,
          (b: Buffer) => b,
          body,
          metadata,
          { deadline: Date.now() + opts.timeoutMs },
          (err) => {
            signal.removeEventListener('abort', cancel);
            if (!err) return resolve();
            reject(new DeliveryError(`${opts.method} on ${address} failed: ${err.code} ${err.details}`, RETRYABLE_GRPC.has(err.code)));
          },
        );
        const cancel = () => call.cancel();
        signal.addEventListener('abort', cancel, { once: true });
      });
    },
    close() {
      client.close();
    },
  };
}

function grpcAddress(endpoint: string): { address: string; secure: boolean } {
  const m = /^(https?):\/\/([^/]+)\/?$/.exec(endpoint);
  if (m) return { address: m[2]!, secure: m[1] === 'https' };
  return { address: endpoint, secure: false };
}

/** The HTTP URL of an OTLP signal: the base endpoint with `/v1/logs` or `/v1/traces` appended. */
export function otlpHttpUrl(endpoint: string, signalPath: '/v1/logs' | '/v1/traces'): string {
  const base = /^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}`;
  return base.replace(/\/+$/, '') + signalPath;
}

/** Unless configured, a `http(s)://` endpoint means OTLP/HTTP and a bare HOST:PORT means gRPC. */
export function otlpProtocol(endpoint: string, protocol: 'grpc' | 'http' | undefined): 'grpc' | 'http' {
  return protocol ?? (/^https?:\/\//.test(endpoint) ? 'http' : 'grpc');
}
