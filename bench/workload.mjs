// The benchmark's traffic: realistic OTLP/protobuf export requests, encoded once and then stamped
// with fresh trace ids and timestamps for every send, so that a long run never repeats a trace.
//
// A request carries 512 spans, grouped by service into resourceSpans as an SDK or a Collector
// batch would. How they divide into traces is the workload's shape (`SHAPES`): 64 traces of 8
// spans (the default, the bench's workload since the start), ~117 small traces of 3-6 spans, or
// 13 traces of 40 spans. Every trace is spread over two consecutive requests: its first half (the
// entry service and its first downstream calls) travels in send g, the rest in send g + 1.
//
// The encoder is written here (a few dozen lines of the protobuf wire format) rather than taken
// from protobufjs, because it records where every trace id and timestamp sits in the bytes; the
// self-check in `checkWorkload` decodes the result with conduct's scanner and protobufjs.
import { Buffer } from 'node:buffer';

export const SPANS_PER_TRACE = 8;
export const TRACES_PER_REQUEST = 64;
export const SPANS_PER_REQUEST = SPANS_PER_TRACE * TRACES_PER_REQUEST;
/** Distinct request templates (services, identities and operations vary between them). */
export const TEMPLATES = 8;

/**
 * Shapes of the workload: how the 512 spans of a request divide into traces. `lengths` cycle
 * over a request's traces until the request is full (the last trace takes what is left, or the
 * remainder is spread over earlier ones); a trace of n spans has span k's parent fixed by k, so
 * every prefix of at least 3 spans is a connected trace.
 */
export const SHAPES = {
  8: { lengths: [8], label: '8-span traces' },
  4: { lengths: [3, 4, 5, 4, 6, 4, 5, 4], label: '3-6-span traces' },
  40: { lengths: [40], label: '40-span traces' },
};
const MIN_TRACE_SPANS = 3;
const MAX_EXTRA_SPANS = 200;

/** Span counts of the traces of one request of a shape; they sum to SPANS_PER_REQUEST. */
export function traceLengths(shape) {
  const cycle = SHAPES[shape]?.lengths;
  if (!cycle) throw new Error(`unknown workload shape ${shape} (one of ${Object.keys(SHAPES).join(', ')})`);
  const out = [];
  let left = SPANS_PER_REQUEST;
  for (let n = cycle[0]; left >= n; n = cycle[out.length % cycle.length]) {
    out.push(n);
    left -= n;
  }
  if (left >= MIN_TRACE_SPANS) out.push(left);
  else for (let i = 0; left > 0; i++, left--) out[i % out.length]++;
  return out;
}

/** Spans of a trace of n that go in the first of its two sends (the rest go in the next one). */
const headSpans = (n) => Math.min(n - 1, Math.max(2, Math.floor(n / 2)));

// ---- protobuf wire format -------------------------------------------------------------------

/** A piece of encoded message and the places in it that a send rewrites. */
class Part {
  constructor(buf, marks = []) {
    this.buf = buf;
    /** [kind, offset, value] with kind 'trace' (16-byte id, value = {gen}) or 'time' (fixed64, value = ns offset). */
    this.marks = marks;
  }
}

function varint(n) {
  const out = [];
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

const key = (field, wire) => varint((field << 3) | wire);

function concat(parts) {
  const bufs = [];
  const marks = [];
  let at = 0;
  for (const p of parts) {
    for (const [kind, offset, value] of p.marks) marks.push([kind, offset + at, value]);
    bufs.push(p.buf);
    at += p.buf.length;
  }
  return new Part(Buffer.concat(bufs), marks);
}

const raw = (buf) => new Part(buf);
const fVarint = (field, n) => raw(Buffer.concat([key(field, 0), varint(n)]));
const fBytes = (field, bytes) => raw(Buffer.concat([key(field, 2), varint(bytes.length), bytes]));
const fString = (field, s) => fBytes(field, Buffer.from(s, 'utf8'));
function fMessage(field, part) {
  return concat([raw(Buffer.concat([key(field, 2), varint(part.buf.length)])), part]);
}
function fDouble(field, x) {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return raw(Buffer.concat([key(field, 1), b]));
}
/** A fixed64 timestamp a send sets to its base time plus `offsetNs`. */
function fTime(field, offsetNs) {
  const head = key(field, 1);
  return new Part(Buffer.concat([head, Buffer.alloc(8)]), [['time', head.length, offsetNs]]);
}
/** A 16-byte trace id whose first bytes a send sets to the generation `gen` (0 = this send, -1 = the previous one). */
function fTraceId(field, id, gen) {
  const head = Buffer.concat([key(field, 2), varint(16)]);
  return new Part(Buffer.concat([head, id]), [['trace', head.length, gen]]);
}

/** A span id field (span_id or parent_span_id) of a trace of generation `gen`, marked for uniqueSpanIds. */
function fSpanId(field, id, gen) {
  const head = Buffer.concat([key(field, 2), varint(id.length)]);
  return new Part(Buffer.concat([head, id]), [['span', head.length, gen]]);
}

function anyValue(v) {
  if (typeof v === 'string') return fString(1, v);
  if (typeof v === 'boolean') return fVarint(2, v ? 1 : 0);
  if (typeof v === 'bigint' || Number.isInteger(v)) return fVarint(3, v);
  if (typeof v === 'number') return fDouble(4, v);
  if (Array.isArray(v)) return fMessage(5, concat(v.map((x) => fMessage(1, anyValue(x)))));
  throw new Error(`unsupported attribute value ${v}`);
}
const keyValue = (k, v) => concat([fString(1, k), fMessage(2, anyValue(v))]);
const attributes = (field, attrs) => concat(Object.entries(attrs).map(([k, v]) => fMessage(field, keyValue(k, v))));

// ---- realistic content ----------------------------------------------------------------------

function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SERVICES = ['frontend', 'checkout', 'payments', 'ledger', 'inventory', 'shipping', 'email', 'recommendation', 'auth', 'catalog', 'search', 'reviews'];
const ROUTES = ['/api/v1/orders/{id}', '/api/v1/cart', '/api/v1/payments/{id}', '/api/v1/users/{id}/profile', '/api/v1/products', '/api/v1/search'];
const TABLES = ['orders', 'carts', 'payments', 'users', 'products', 'audit_log'];
const RPC_METHODS = ['Get', 'List', 'Charge', 'Reserve', 'Quote'];
const EXTERNAL = ['api.stripe.com', 'hooks.slack.com', 'api.github.com', 'sqs.eu-west-1.amazonaws.com'];
const TOPICS = ['order-events', 'payment-events', 'audit'];
const AGENTS = ['support-triage', 'refund-bot', 'catalog-curator'];

function resourceAttrs(service, template) {
  return {
    'service.name': service,
    'service.namespace': 'shop',
    'service.version': `1.${template}.3`,
    'service.instance.id': `${service}-7d9f8c-${template}`,
    'deployment.environment.name': 'prod',
    'cloud.provider': 'aws',
    'cloud.region': template % 4 === 3 ? 'us-east-1' : 'eu-west-1',
    'cloud.account.id': '123456789012',
    'host.name': `ip-10-0-${template}-${SERVICES.indexOf(service)}.eu-west-1.compute.internal`,
    'k8s.cluster.name': 'prod-eu',
    'k8s.namespace.name': 'shop',
    'telemetry.sdk.language': 'nodejs',
    'telemetry.sdk.name': 'opentelemetry',
    'telemetry.sdk.version': '2.12.1',
  };
}

/**
 * The spans of trace `j` in template `t`: [service, span fields] in trace order. Span ids depend
 * only on (j, k), so the two halves of a trace, taken from different templates, still link up.
 */
function traceSpans(t, j, rnd, length = SPANS_PER_TRACE) {
  const pick = (list) => list[Math.floor(rnd() * list.length)];
  const a = SERVICES[(t + j) % 6];
  const b = SERVICES[6 + ((t + 2 * j) % 6)];
  const c = SERVICES[(t + 3 * j + 1) % 6] === a ? SERVICES[(t + 3 * j + 2) % 6] : SERVICES[(t + 3 * j + 1) % 6];
  const route = ROUTES[(t + j) % ROUTES.length];
  const table = TABLES[(t + j) % TABLES.length];
  const method = RPC_METHODS[(t + j) % RPC_METHODS.length];
  const kind = j % 3; // 0: principal from the entry span, 1: an agent, 2: workload identities only
  const path = route.replaceAll('{id}', String(1000 + Math.floor(rnd() * 90000)));
  // A caller keeps its network segment and its client software; only the host within the /24 varies.
  const agent = AGENTS[(t + j) % AGENTS.length];
  const client = kind === 1 ? `10.40.${AGENTS.indexOf(agent)}.${10 + t}` : `10.20.${SERVICES.indexOf(a) * 5 + (j % 5)}.${10 + t}`;
  const userAgent = kind === 1 ? 'agent-runtime/0.9 python-httpx/0.27.0' : `${a}-client/2.${j % 5} grpc-node-js/1.14.3`;
  const entry = {
    'http.request.method': (t + j) % 4 === 0 ? 'POST' : 'GET',
    'http.route': route,
    'url.path': path,
    'url.scheme': 'https',
    'http.response.status_code': 200,
    'server.address': `${a}.shop.svc.cluster.local`,
    'server.port': 8080,
    'client.address': client,
    'user_agent.original': userAgent,
    'network.protocol.version': '1.1',
    'http.request.body.size': 100 + j,
  };
  if (kind === 0) entry['enduser.id'] = `spiffe://prod/ns/shop/sa/${a}-client-${j % 5}`;
  if (kind === 1) {
    entry['gen_ai.agent.id'] = agent;
    entry['gen_ai.agent.name'] = `Agent ${agent}`;
    entry['gen_ai.operation.name'] = 'invoke_agent';
  }
  const sp = (k) => Buffer.from([0xb0, j >> 8, j & 0xff, k, 0x5e, 0x11, 0x22, 0x33]);
  const spans = [
    [a, { k: 0, parent: -1, name: `${entry['http.request.method']} ${route}`, kind: 2, attrs: entry }],
    [a, { k: 1, parent: 0, name: `${entry['http.request.method']}`, kind: 3, attrs: {
      'http.request.method': entry['http.request.method'], 'url.full': `http://${b}.shop.svc.cluster.local:8080${path}`,
      'server.address': `${b}.shop.svc.cluster.local`, 'server.port': 8080, 'http.response.status_code': 200,
      'network.peer.address': `10.1.${(t + j) % 250}.${j % 250}`, 'network.protocol.version': '1.1', 'http.request.resend_count': 0,
      'url.scheme': 'http', 'user_agent.original': 'node-fetch/1.0', 'http.request.body.size': 64, 'http.response.body.size': 512 + j } }],
    [b, { k: 2, parent: 1, name: `${entry['http.request.method']} ${route}`, kind: 2, attrs: {
      'http.request.method': entry['http.request.method'], 'http.route': route, 'url.path': path, 'url.scheme': 'http',
      'http.response.status_code': 200, 'server.address': `${b}.shop.svc.cluster.local`, 'server.port': 8080,
      'client.address': client, 'user_agent.original': entry['user_agent.original'], 'network.protocol.version': '1.1',
      'http.request.body.size': 64, 'http.response.body.size': 512 + j } }],
    [b, { k: 3, parent: 2, name: `SELECT ${table}`, kind: 3, attrs: {
      'db.system.name': 'postgresql', 'db.namespace': 'shop', 'db.operation.name': 'SELECT', 'db.collection.name': table,
      'db.query.text': `SELECT * FROM ${table} WHERE id = $1`, 'server.address': 'pg-primary.shop.svc.cluster.local', 'server.port': 5432,
      'network.peer.address': '10.2.0.5', 'db.response.returned_rows': 1 + (j % 7), 'db.client.connection.pool.name': 'main',
      'db.response.status_code': '00000', 'network.transport': 'tcp' } }],
    [b, { k: 4, parent: 2, name: `shop.${c}.v1.Service/${method}`, kind: 3, attrs: {
      'rpc.system': 'grpc', 'rpc.service': `shop.${c}.v1.Service`, 'rpc.method': method, 'server.address': `${c}.shop.svc.cluster.local`,
      'server.port': 50051, 'rpc.grpc.status_code': 0, 'network.peer.address': `10.3.${t}.${j % 250}`, 'network.transport': 'tcp',
      'rpc.message.type': 'SENT', 'rpc.message.id': 1, 'rpc.message.compressed_size': 128, 'feature.flags': ['fast-checkout', true] } }],
    [c, { k: 5, parent: 4, name: `shop.${c}.v1.Service/${method}`, kind: 2, attrs: {
      'rpc.system': 'grpc', 'rpc.service': `shop.${c}.v1.Service`, 'rpc.method': method, 'server.address': `${c}.shop.svc.cluster.local`,
      'server.port': 50051, 'rpc.grpc.status_code': 0, 'client.address': `10.30.${SERVICES.indexOf(b)}.${10 + t}`, 'network.transport': 'tcp',
      'rpc.message.type': 'RECEIVED', 'rpc.message.id': 1, 'rpc.message.uncompressed_size': 256, 'retry.ratio': rnd() } }],
    [c, { k: 6, parent: 5, name: 'POST', kind: 3, attrs: {
      'http.request.method': 'POST', 'url.full': `https://${EXTERNAL[(t + j) % EXTERNAL.length]}/v1/events/${1000 + j}`,
      'server.address': EXTERNAL[(t + j) % EXTERNAL.length], 'server.port': 443, 'http.response.status_code': j % 29 === 0 ? 503 : 200,
      'network.peer.address': `52.${t}.${j % 250}.10`, 'network.protocol.version': '2', 'url.scheme': 'https', 'http.request.resend_count': 0,
      'user_agent.original': 'aws-sdk-js/3.600.0', 'http.request.body.size': 300, 'http.response.body.size': 40 } }],
    [c, { k: 7, parent: 5, name: `publish ${TOPICS[(t + j) % TOPICS.length]}`, kind: 4, attrs: {
      'messaging.system': 'kafka', 'messaging.destination.name': TOPICS[(t + j) % TOPICS.length], 'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish', 'messaging.kafka.message.key': `order-${j}`, 'messaging.message.body.size': 220,
      'server.address': 'kafka-0.kafka.svc.cluster.local', 'server.port': 9092, 'network.peer.address': '10.4.0.2',
      'messaging.client.id': `${c}-producer`, 'messaging.kafka.destination.partition': j % 12, 'network.transport': 'tcp' } }],
  ];
  spans.push(...extraSpans(t, j, length - spans.length));
  let at = 0;
  return spans.slice(0, length).map(([service, s]) => {
    at += 50_000 + Math.floor(rnd() * 200_000); // 50-250 µs between span starts
    const durationNs = 200_000 + Math.floor(rnd() * 4_000_000);
    return [service, { ...s, spanId: sp(s.k), parentId: s.parent >= 0 ? sp(s.parent) : undefined, startOffsetNs: at, durationNs, error: s.attrs['http.response.status_code'] >= 500 }];
  });
}

/**
 * Spans 8.. of a long trace, in runs of five: service b reads a table and calls another service
 * over gRPC, which calls an external API and publishes to a topic. Span k's parent depends only on
 * k. No random numbers here, so the first eight spans stay as they were for the 8-span shape.
 */
function extraSpans(t, j, count) {
  if (count > MAX_EXTRA_SPANS) throw new Error(`a trace of the workload has at most ${8 + MAX_EXTRA_SPANS} spans`);
  const out = [];
  const b = SERVICES[6 + ((t + 2 * j) % 6)];
  for (let k = 8; k < 8 + count; k++) {
    const p = (k - 8) % 5;
    const run = Math.floor((k - 8) / 5);
    const c = SERVICES[(t + j + run) % 6];
    const table = TABLES[(t + j + run) % TABLES.length];
    const method = RPC_METHODS[(j + run) % RPC_METHODS.length];
    const host = EXTERNAL[(t + j + run) % EXTERNAL.length];
    const topic = TOPICS[(j + run) % TOPICS.length];
    const rpc = { 'rpc.system': 'grpc', 'rpc.service': `shop.${c}.v1.Service`, 'rpc.method': method, 'server.address': `${c}.shop.svc.cluster.local`, 'server.port': 50051, 'rpc.grpc.status_code': 0, 'network.transport': 'tcp' };
    if (p === 0) out.push([b, { k, parent: 2, name: `SELECT ${table}`, kind: 3, attrs: {
      'db.system.name': 'postgresql', 'db.namespace': 'shop', 'db.operation.name': 'SELECT', 'db.collection.name': table,
      'db.query.text': `SELECT * FROM ${table} WHERE owner = $1`, 'server.address': 'pg-primary.shop.svc.cluster.local', 'server.port': 5432,
      'network.peer.address': '10.2.0.5', 'db.response.returned_rows': 1 + ((j + k) % 7), 'network.transport': 'tcp' } }]);
    if (p === 1) out.push([b, { k, parent: 2, name: `shop.${c}.v1.Service/${method}`, kind: 3, attrs: { ...rpc, 'network.peer.address': `10.3.${t}.${j % 250}`, 'rpc.message.id': k } }]);
    if (p === 2) out.push([c, { k, parent: k - 1, name: `shop.${c}.v1.Service/${method}`, kind: 2, attrs: { ...rpc, 'client.address': `10.30.${SERVICES.indexOf(b)}.${10 + t}`, 'rpc.message.id': k } }]);
    if (p === 3) out.push([c, { k, parent: k - 1, name: 'POST', kind: 3, attrs: {
      'http.request.method': 'POST', 'url.full': `https://${host}/v1/events/${1000 + j + k}`, 'server.address': host, 'server.port': 443,
      'http.response.status_code': 200, 'network.peer.address': `52.${t}.${j % 250}.10`, 'url.scheme': 'https', 'user_agent.original': 'aws-sdk-js/3.600.0' } }]);
    if (p === 4) out.push([c, { k, parent: k - 2, name: `publish ${topic}`, kind: 4, attrs: {
      'messaging.system': 'kafka', 'messaging.destination.name': topic, 'messaging.operation.type': 'send', 'messaging.operation.name': 'publish',
      'server.address': 'kafka-0.kafka.svc.cluster.local', 'server.port': 9092, 'network.peer.address': '10.4.0.2', 'messaging.client.id': `${c}-producer` } }]);
  }
  return out;
}

/** Trace id of trace j in the template: the first 4 bytes hold the generation, then the load generator, then j. */
function templateTraceId(j, loadgen) {
  const id = Buffer.alloc(16);
  id.writeUInt16BE(loadgen & 0xffff, 4);
  id.writeUInt16BE(j, 6);
  id.write('c0ffee5eed51de', 8, 'hex');
  return id;
}

function encodeSpan(trace, gen, s) {
  const fields = [
    fTraceId(1, trace, gen),
    fSpanId(2, s.spanId, gen),
    ...(s.parentId ? [fSpanId(4, s.parentId, gen)] : []),
    fString(5, s.name),
    fVarint(6, s.kind),
    fTime(7, s.startOffsetNs),
    fTime(8, s.startOffsetNs + s.durationNs),
    attributes(9, s.attrs),
    ...(s.error ? [fMessage(15, fVarint(3, 2))] : []),
  ];
  return concat(fields);
}

/**
 * One request template: the head halves of its traces (generation 0) and the tail halves of the
 * traces of the previous send (generation -1, built from the next template's view of them).
 */
function buildTemplate(t, loadgen, lengths) {
  const rnd = random(1000 + t);
  const headOf = (tt) => lengths.map((n, j) => traceSpans(tt, j, random(tt * 7919 + j), n));
  const mine = headOf(t);
  const previous = headOf((t + TEMPLATES - 1) % TEMPLATES);
  const byService = new Map();
  const add = (service, part) => {
    if (!byService.has(service)) byService.set(service, []);
    byService.get(service).push(part);
  };
  for (let j = 0; j < lengths.length; j++) {
    const trace = templateTraceId(j, loadgen);
    const head = headSpans(lengths[j]);
    for (const [service, s] of mine[j].slice(0, head)) add(service, encodeSpan(trace, 0, s));
    for (const [service, s] of previous[j].slice(head)) add(service, encodeSpan(trace, -1, s));
  }
  void rnd;
  const resourceSpans = [...byService].map(([service, spans]) =>
    fMessage(1, concat([
      fMessage(1, attributes(1, resourceAttrs(service, t))),
      fMessage(2, concat([fMessage(1, concat([fString(1, '@opentelemetry/instrumentation-http'), fString(2, '0.223.0')])), ...spans.map((s) => fMessage(2, s))])),
      fString(3, 'https://opentelemetry.io/schemas/1.34.0'),
    ])),
  );
  const part = concat(resourceSpans);
  return {
    bytes: part.buf,
    traceMarks: part.marks.filter((m) => m[0] === 'trace').map(([, offset, gen]) => [offset, gen]),
    timeMarks: part.marks.filter((m) => m[0] === 'time').map(([, offset, ns]) => [offset, BigInt(ns)]),
    spanMarks: part.marks.filter((m) => m[0] === 'span').map(([, offset, gen]) => [offset, gen]),
  };
}

/** A 32-bit hash of a generation and the trace's bytes 4-7 (load generator and index in the request). */
function traceHash(gen, own) {
  let h = Math.imul(gen ^ 0x5bd1e995, 0x9e3779b1) ^ own;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The load generator's request factory. `next()` returns a fresh request (a new Buffer) for send
 * g = 0, 1, 2, ...: trace ids carry g (head halves) or g - 1 (tail halves), timestamps are now.
 * `shape` is a key of SHAPES (default 8: 64 traces of 8 spans).
 *
 * Trace ids count up by default (the generation in their first 4 bytes), so an index by trace id
 * only grows at its end. `randomTraceIds` (default: env BENCH_RANDOM_TRACE_IDS=1, which the load
 * generator's child processes inherit) makes them land anywhere, as real (W3C) trace ids do: the
 * first 4 bytes are a hash of the generation and the trace's index, the generation moves to bytes
 * 8-11 (ids stay unique). Off by default so that digests and earlier tables stay comparable.
 *
 * Span ids repeat from template to template by default (every TEMPLATES-th request has the same
 * ones). `uniqueSpanIds` (env BENCH_UNIQUE_SPAN_IDS=1) makes each send's span ids its own, as real
 * ones are: the pipeline keys what it remembers of completed traces' unmatched spans by span id, and
 * with repeating ids it holds a few hundred of them, where a real server holds up to its bound.
 */
export function createRequestSource(
  loadgen = 0,
  shape = SPANS_PER_TRACE,
  { randomTraceIds = process.env.BENCH_RANDOM_TRACE_IDS === '1', uniqueSpanIds = process.env.BENCH_UNIQUE_SPAN_IDS === '1' } = {},
) {
  const lengths = traceLengths(shape);
  const templates = Array.from({ length: TEMPLATES }, (_, t) => buildTemplate(t, loadgen, lengths));
  let gen = 1;
  return {
    templates,
    /** Spans in every request. */
    spansPerRequest: SPANS_PER_REQUEST,
    /** Traces that start in every request (each finishes in the next one). */
    tracesPerRequest: lengths.length,
    /** Mean spans per trace. */
    spansPerTrace: SPANS_PER_REQUEST / lengths.length,
    next(nowMs = Date.now()) {
      const g = gen++;
      const tpl = templates[g % TEMPLATES];
      const buf = Buffer.from(tpl.bytes);
      for (const [offset, rel] of tpl.traceMarks) {
        const gen = (g + rel) >>> 0;
        if (!randomTraceIds) {
          buf.writeUInt32BE(gen, offset);
          continue;
        }
        buf.writeUInt32BE(traceHash(gen, buf.readUInt32BE(offset + 4)), offset);
        buf.writeUInt32BE(gen, offset + 8);
      }
      // A trace's span ids and the parent ids that name them change together: the same mix of
      // its generation in their first four bytes.
      if (uniqueSpanIds) for (const [offset, rel] of tpl.spanMarks) buf.writeUInt32BE((buf.readUInt32BE(offset) ^ traceHash((g + rel) >>> 0, 0x51ed)) >>> 0, offset);
      const base = BigInt(Math.round(nowMs)) * 1_000_000n;
      for (const [offset, ns] of tpl.timeMarks) buf.writeBigUInt64LE(base + ns, offset);
      return buf;
    },
  };
}

/**
 * One attack trace: agent `agent:<agentId>` deletes a user through the admin API, an operation the
 * bench config denies (policy detector, which fires from the first call). One client span and its
 * server span, in one request.
 */
export function buildAttackRequest(agentId, n, nowMs = Date.now()) {
  const trace = Buffer.alloc(16);
  trace.write('a77ac4', 0, 'hex');
  trace.writeUInt32BE(n >>> 0, 8);
  trace.writeUInt32BE((nowMs / 1000) >>> 0, 12);
  const at = BigInt(nowMs) * 1_000_000n;
  const spanId = (k) => Buffer.from([0xa7, 0x7a, k, 0, 0, 0, n >> 8 & 0xff, n & 0xff]);
  const time = (f, ns) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(at + BigInt(ns));
    return raw(Buffer.concat([key(f, 1), b]));
  };
  const span = (k, parent, kind, attrs) => concat([
    fBytes(1, trace), fBytes(2, spanId(k)), ...(parent >= 0 ? [fBytes(4, spanId(parent))] : []),
    fString(5, kind === 3 ? 'DELETE' : 'DELETE /admin/users/{id}'), fVarint(6, kind), time(7, k * 1000), time(8, 2_000_000 - k * 1000), attributes(9, attrs),
  ]);
  const rs = (service, spans) => fMessage(1, concat([
    fMessage(1, attributes(1, { 'service.name': service, 'service.namespace': 'shop', 'cloud.region': 'eu-west-1' })),
    fMessage(2, concat(spans.map((s) => fMessage(2, s)))),
  ]));
  return concat([
    rs('support-agent', [span(0, -1, 1, { 'gen_ai.agent.id': agentId, 'gen_ai.operation.name': 'invoke_agent' }),
      span(1, 0, 3, { 'http.request.method': 'DELETE', 'url.full': `http://admin.shop.svc.cluster.local/admin/users/${4000 + n}`, 'server.address': 'admin.shop.svc.cluster.local', 'server.port': 80 })]),
    rs('admin', [span(2, 1, 2, { 'http.request.method': 'DELETE', 'http.route': '/admin/users/{id}', 'url.path': `/admin/users/${4000 + n}`, 'http.response.status_code': 204 })]),
  ]).buf;
}
