/**
 * OTLP/protobuf requests of client spans for the reliability tests that run `conduct serve`: each
 * span is one call of an identity (`enduser.id`) to a peer, `METHOD /route`.
 */
import { encodeTracesRequest } from '@conduct/proto';
import { randomHex } from './wire.js';

export interface ClientSpan {
  traceId: string;
  spanId: string;
  identity: string;
  /** `METHOD /route`, also the span's name. */
  op: string;
  /** Start (event time); the span lasts 5 ms. */
  atMs: number;
}

/** One request holding `spans`, all from the service `service` calling `peer`. */
export function clientSpansRequest(service: string, peer: string, spans: readonly ClientSpan[]): Buffer {
  const ns = (ms: number) => String(BigInt(Math.round(ms)) * 1_000_000n);
  const body = encodeTracesRequest({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [
          {
            spans: spans.map((s) => {
              const [method, route] = s.op.split(' ');
              return {
                traceId: Buffer.from(s.traceId, 'hex'),
                spanId: Buffer.from(s.spanId, 'hex'),
                name: s.op,
                kind: 3,
                startTimeUnixNano: ns(s.atMs),
                endTimeUnixNano: ns(s.atMs + 5),
                attributes: [
                  { key: 'enduser.id', value: { stringValue: s.identity } },
                  { key: 'http.request.method', value: { stringValue: method } },
                  { key: 'url.path', value: { stringValue: route } },
                  { key: 'server.address', value: { stringValue: peer } },
                ],
              };
            }),
          },
        ],
      },
    ],
  } as never);
  return Buffer.from(body);
}

/**
 * One trace of the `deployer` service in which `identity` calls the Kubernetes API once per op,
 * 10 ms apart from `atMs` (event time); ids from `rand`.
 */
export function deployerTrace(rand: () => number, identity: string, atMs: number, ops: readonly string[], traceId = randomHex(rand, 16)): { traceId: string; body: Buffer } {
  const spans = ops.map((op, i) => ({ traceId, spanId: randomHex(rand, 8), identity, op, atMs: atMs + i * 10 }));
  return { traceId, body: clientSpansRequest('deployer', 'kube-api.internal', spans) };
}
