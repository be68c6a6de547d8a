/**
 * Test and benchmark requests, described once and rendered both as a protobufjs message object
 * (for the generated encoder) and as an OTLP/JSON object, so that the two decoders can be
 * compared on the same request.
 */
import { Buffer } from 'node:buffer';
import type { ExportTraceServiceRequest } from '../messages.js';

/** An attribute value, tagged by its AnyValue member. */
export type Value =
  | { s: string }
  | { b: boolean }
  | { i: number }
  | { d: number }
  | { bytes: Uint8Array }
  | { arr: Value[] }
  | { kv: [string, Value][] }
  | { empty: true };

export interface SpanSpec {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  /** Nanoseconds; kept to values a double holds exactly so that both renderings agree. */
  startNs: number;
  endNs: number;
  statusCode?: number;
  attrs: [string, Value][];
}

export interface RequestSpec {
  resources: { attrs: [string, Value][]; spans: SpanSpec[] }[];
}

function protoValue(v: Value): Record<string, unknown> {
  if ('s' in v) return { stringValue: v.s };
  if ('b' in v) return { boolValue: v.b };
  if ('i' in v) return { intValue: v.i };
  if ('d' in v) return { doubleValue: v.d };
  if ('bytes' in v) return { bytesValue: v.bytes };
  if ('arr' in v) return { arrayValue: { values: v.arr.map(protoValue) } };
  if ('kv' in v) return { kvlistValue: { values: v.kv.map(([key, value]) => ({ key, value: protoValue(value) })) } };
  return {};
}

/** The request as a protobufjs message object (ids as bytes). */
export function toProto(spec: RequestSpec): ExportTraceServiceRequest {
  const kvs = (attrs: [string, Value][]) => attrs.map(([key, value]) => ({ key, value: protoValue(value) }));
  return {
    resourceSpans: spec.resources.map((r) => ({
      resource: { attributes: kvs(r.attrs) },
      scopeSpans: [
        {
          scope: { name: 'conduct-test', version: '1.0.0' },
          spans: r.spans.map((s) => ({
            traceId: Buffer.from(s.traceId, 'hex'),
            spanId: Buffer.from(s.spanId, 'hex'),
            parentSpanId: s.parentSpanId ? Buffer.from(s.parentSpanId, 'hex') : undefined,
            traceState: 'vendor=1',
            name: s.name,
            kind: s.kind,
            startTimeUnixNano: s.startNs,
            endTimeUnixNano: s.endNs,
            attributes: kvs(s.attrs),
            events: [{ timeUnixNano: s.startNs, name: 'event', attributes: kvs([['e', { s: 'x' }]]) }],
            links: [{ traceId: Buffer.from(s.traceId, 'hex'), spanId: Buffer.from(s.spanId, 'hex') }],
            droppedAttributesCount: 1,
            status: s.statusCode ? { code: s.statusCode, message: 'status message' } : undefined,
          })),
        },
      ],
    })),
  } as ExportTraceServiceRequest;
}

type Case = 'camel' | 'snake';
const key = (c: Case, camel: string, snake: string) => (c === 'camel' ? camel : snake);

function jsonValue(v: Value, c: Case): Record<string, unknown> {
  if ('s' in v) return { [key(c, 'stringValue', 'string_value')]: v.s };
  if ('b' in v) return { [key(c, 'boolValue', 'bool_value')]: v.b };
  if ('i' in v) return { [key(c, 'intValue', 'int_value')]: String(v.i) };
  if ('d' in v) return { [key(c, 'doubleValue', 'double_value')]: Number.isFinite(v.d) ? v.d : String(v.d) };
  if ('bytes' in v) return { [key(c, 'bytesValue', 'bytes_value')]: Buffer.from(v.bytes).toString('base64') };
  if ('arr' in v) return { [key(c, 'arrayValue', 'array_value')]: { values: v.arr.map((x) => jsonValue(x, c)) } };
  if ('kv' in v) return { [key(c, 'kvlistValue', 'kvlist_value')]: { values: v.kv.map(([k, x]) => ({ key: k, value: jsonValue(x, c) })) } };
  return {};
}

/** The request as an OTLP/JSON object: hex ids (upper case when asked), 64-bit integers as strings. */
export function toJson(spec: RequestSpec, c: Case = 'camel', upperIds = false): Record<string, unknown> {
  const hex = (id: string) => (upperIds ? id.toUpperCase() : id);
  const kvs = (attrs: [string, Value][]) => attrs.map(([k, value]) => ({ key: k, value: jsonValue(value, c) }));
  return {
    [key(c, 'resourceSpans', 'resource_spans')]: spec.resources.map((r) => ({
      resource: { attributes: kvs(r.attrs) },
      [key(c, 'scopeSpans', 'scope_spans')]: [
        {
          scope: { name: 'conduct-test', version: '1.0.0' },
          spans: r.spans.map((s) => ({
            [key(c, 'traceId', 'trace_id')]: hex(s.traceId),
            [key(c, 'spanId', 'span_id')]: hex(s.spanId),
            ...(s.parentSpanId ? { [key(c, 'parentSpanId', 'parent_span_id')]: hex(s.parentSpanId) } : {}),
            [key(c, 'traceState', 'trace_state')]: 'vendor=1',
            name: s.name,
            kind: s.kind,
            [key(c, 'startTimeUnixNano', 'start_time_unix_nano')]: BigInt(s.startNs).toString(),
            [key(c, 'endTimeUnixNano', 'end_time_unix_nano')]: BigInt(s.endNs).toString(),
            attributes: kvs(s.attrs),
            events: [{ [key(c, 'timeUnixNano', 'time_unix_nano')]: BigInt(s.startNs).toString(), name: 'event' }],
            ...(s.statusCode ? { status: { code: s.statusCode, message: 'status message' } } : {}),
          })),
        },
      ],
    })),
  };
}

/** A small deterministic pseudo-random generator (mulberry32), so fuzz and bench runs repeat. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hexOf(random: () => number, bytes: number): string {
  let s = '';
  for (let i = 0; i < bytes; i++) s += Math.floor(random() * 256).toString(16).padStart(2, '0');
  return s.replace(/^0+$/, '01'.repeat(bytes));
}

const SERVICES = ['frontend', 'checkout', 'payments', 'ledger', 'inventory', 'shipping', 'email', 'auth'];
const ROUTES = ['/api/v1/orders/{id}', '/api/v1/cart', '/api/v1/payments', '/healthz', '/api/v1/users/{id}/tokens'];

/**
 * A realistic request: `spanCount` spans over several services, each with about 12
 * semantic-convention attributes, server and client spans in parent/child traces.
 */
export function realisticRequest(spanCount: number, seed = 1): RequestSpec {
  const random = seededRandom(seed);
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)];
  const resources = SERVICES.slice(0, 6).map((service, i) => ({
    attrs: [
      ['service.name', { s: service }],
      ['service.namespace', { s: 'shop' }],
      ['service.version', { s: `1.${i}.0` }],
      ['deployment.environment.name', { s: 'prod' }],
      ['cloud.region', { s: 'eu-west-1' }],
      ['cloud.account.id', { s: '123456789012' }],
      ['host.name', { s: `${service}-7d9f8-${i}` }],
      ['k8s.cluster.name', { s: 'prod-eu' }],
      ['telemetry.sdk.language', { s: 'nodejs' }],
    ] as [string, Value][],
    spans: [] as SpanSpec[],
  }));
  const baseNs = 1_700_000_000_000 * 1e6;
  let traceId = hexOf(random, 16);
  let parent = '';
  for (let n = 0; n < spanCount; n++) {
    if (n % 8 === 0) {
      traceId = hexOf(random, 16);
      parent = '';
    }
    const spanId = hexOf(random, 8);
    const server = n % 2 === 0;
    const route = pick(ROUTES);
    const peer = pick(SERVICES);
    const startNs = baseNs + Math.floor(random() * 1e9) * 1024;
    const attrs: [string, Value][] = server
      ? [
          ['http.request.method', { s: pick(['GET', 'POST', 'PUT']) }],
          ['http.route', { s: route }],
          ['url.path', { s: route.replace('{id}', String(Math.floor(random() * 1e6))) }],
          ['url.scheme', { s: 'https' }],
          ['http.response.status_code', { i: pick([200, 201, 404, 500]) }],
          ['server.address', { s: `${peer}.shop.svc.cluster.local` }],
          ['server.port', { i: 8080 }],
          ['client.address', { s: `10.0.${Math.floor(random() * 255)}.${Math.floor(random() * 255)}` }],
          ['user_agent.original', { s: 'Mozilla/5.0 (X11; Linux x86_64) conduct-bench/1.0' }],
          ['network.protocol.version', { s: '1.1' }],
          ['enduser.id', { s: `spiffe://prod/ns/shop/sa/${peer}` }],
          ['http.request.body.size', { i: Math.floor(random() * 10000) }],
        ]
      : [
          ['rpc.system', { s: 'grpc' }],
          ['rpc.service', { s: `shop.${peer}.v1.Service` }],
          ['rpc.method', { s: pick(['Get', 'List', 'Create', 'Charge']) }],
          ['server.address', { s: `${peer}.shop.svc.cluster.local` }],
          ['server.port', { i: 50051 }],
          ['rpc.grpc.status_code', { i: 0 }],
          ['network.peer.address', { s: `10.1.${Math.floor(random() * 255)}.${Math.floor(random() * 255)}` }],
          ['peer.service', { s: peer }],
          ['db.system.name', { s: 'postgresql' }],
          ['db.namespace', { s: 'orders' }],
          ['retry.count', { d: random() }],
          ['feature.flags', { arr: [{ s: 'fast-checkout' }, { b: true }] }],
        ];
    resources[n % resources.length].spans.push({
      traceId,
      spanId,
      parentSpanId: parent || undefined,
      name: server ? `GET ${route}` : `shop.${peer}.v1.Service/Get`,
      kind: server ? 2 : 3,
      startNs,
      endNs: startNs + Math.floor(random() * 5e6) * 1024,
      statusCode: n % 17 === 0 ? 2 : 0,
      attrs,
    });
    parent = spanId;
  }
  return { resources };
}

/** A few random edits of `seed` (bit flips, bytes, insertions, deletions, truncation, copies), for the fuzz tests. */
export function mutate(seed: Uint8Array, random: () => number): Uint8Array {
  const bytes = Array.from(seed);
  const edits = 1 + Math.floor(random() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * (bytes.length + 1));
    switch (Math.floor(random() * 6)) {
      case 0: // flip bits
        if (bytes.length) bytes[at % bytes.length] ^= 1 << Math.floor(random() * 8);
        break;
      case 1: // random byte
        if (bytes.length) bytes[at % bytes.length] = Math.floor(random() * 256);
        break;
      case 2: // insert interesting bytes
        bytes.splice(at, 0, ...[[0xff], [0x80, 0x80], [0x00], [0x0b], [0x0f], [0xff, 0xff, 0xff, 0xff, 0x0f]][Math.floor(random() * 6)]);
        break;
      case 3: // delete a run
        bytes.splice(at, 1 + Math.floor(random() * 8));
        break;
      case 4: // truncate
        bytes.length = Math.min(bytes.length, at);
        break;
      default: {
        // duplicate a slice
        const len = Math.floor(random() * 32);
        bytes.splice(at, 0, ...bytes.slice(at, at + len));
      }
    }
  }
  return Uint8Array.from(bytes);
}
