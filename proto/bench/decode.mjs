// Decoder benchmark: spans per second for the hand-written wire scanner, protobufjs' full decode
// of the generated code, and the OTLP/JSON decoder, on realistic 512-span requests.
//
//   npx tsc -b proto && node proto/bench/decode.mjs [--spans 512] [--runs 7] [--ms 400]
//
// Prints the median of several timed runs for each decoder and the ratios between them.
// Figures depend on the machine; nothing here gates CI.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { decodeTracesRequest, decodeTracesRequestFull, decodeTracesRequestJson, encodeTracesRequest } from '../dist/index.js';

const { values: args } = parseArgs({
  options: { spans: { type: 'string', default: '512' }, runs: { type: 'string', default: '7' }, ms: { type: 'string', default: '400' } },
});
const SPANS = Number(args.spans);
const RUNS = Number(args.runs);
const RUN_MS = Number(args.ms);

function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rnd = random(42);
const pick = (list) => list[Math.floor(rnd() * list.length)];
const id = (bytes) => Buffer.from(Array.from({ length: bytes }, () => 1 + Math.floor(rnd() * 255)));
const str = (s) => ({ stringValue: s });
const int = (n) => ({ intValue: n });
const SERVICES = ['frontend', 'checkout', 'payments', 'ledger', 'inventory', 'shipping', 'email', 'auth'];
const ROUTES = ['/api/v1/orders/{id}', '/api/v1/cart', '/api/v1/payments', '/api/v1/users/{id}/tokens'];

/** A request of `count` spans across six services, about 12 semantic-convention attributes each. */
function buildRequest(count) {
  const resourceSpans = SERVICES.slice(0, 6).map((service, i) => ({
    resource: {
      attributes: Object.entries({
        'service.name': service, 'service.namespace': 'shop', 'service.version': `1.${i}.0`,
        'deployment.environment.name': 'prod', 'cloud.region': 'eu-west-1', 'cloud.account.id': '123456789012',
        'host.name': `${service}-7d9f8-${i}`, 'k8s.cluster.name': 'prod-eu', 'telemetry.sdk.language': 'nodejs',
      }).map(([key, v]) => ({ key, value: str(v) })),
    },
    scopeSpans: [{ scope: { name: '@opentelemetry/instrumentation-http', version: '0.200.0' }, spans: [] }],
  }));
  let traceId = id(16);
  let parent;
  for (let n = 0; n < count; n++) {
    if (n % 8 === 0) [traceId, parent] = [id(16), undefined];
    const spanId = id(8);
    const server = n % 2 === 0;
    const peer = pick(SERVICES);
    const route = pick(ROUTES);
    const start = 1_700_000_000_000_000_000 + Math.floor(rnd() * 1e9) * 1024;
    const attrs = server
      ? { 'http.request.method': str(pick(['GET', 'POST'])), 'http.route': str(route), 'url.path': str(route.replace('{id}', String(n))),
          'url.scheme': str('https'), 'http.response.status_code': int(200), 'server.address': str(`${peer}.shop.svc`), 'server.port': int(8080),
          'client.address': str(`10.0.${n % 250}.${(n * 7) % 250}`), 'user_agent.original': str('Mozilla/5.0 (X11; Linux x86_64) bench/1.0'),
          'network.protocol.version': str('1.1'), 'enduser.id': str(`spiffe://prod/ns/shop/sa/${peer}`), 'http.request.body.size': int(n * 13) }
      : { 'rpc.system': str('grpc'), 'rpc.service': str(`shop.${peer}.v1.Service`), 'rpc.method': str(pick(['Get', 'List', 'Charge'])),
          'server.address': str(`${peer}.shop.svc`), 'server.port': int(50051), 'rpc.grpc.status_code': int(0), 'network.peer.address': str('10.1.2.3'),
          'peer.service': str(peer), 'db.system.name': str('postgresql'), 'db.namespace': str('orders'), 'retry.count': { doubleValue: rnd() },
          'feature.flags': { arrayValue: { values: [str('fast-checkout'), { boolValue: true }] } } };
    resourceSpans[n % 6].scopeSpans[0].spans.push({
      traceId, spanId, parentSpanId: parent, name: server ? `GET ${route}` : `shop.${peer}.v1.Service/Get`, kind: server ? 2 : 3,
      startTimeUnixNano: start, endTimeUnixNano: start + Math.floor(rnd() * 5e6) * 1024,
      attributes: Object.entries(attrs).map(([key, value]) => ({ key, value })), status: n % 17 === 0 ? { code: 2 } : undefined,
    });
    parent = spanId;
  }
  return { resourceSpans };
}

/** The same request in OTLP/JSON: hex ids, 64-bit integers as strings. */
function toJson(request) {
  const value = (v) => ('intValue' in v ? { intValue: String(v.intValue) } : 'arrayValue' in v ? { arrayValue: { values: v.arrayValue.values.map(value) } } : v);
  const kvs = (list) => list.map(({ key, value: v }) => ({ key, value: value(v) }));
  return JSON.stringify({
    resourceSpans: request.resourceSpans.map((rs) => ({
      resource: { attributes: kvs(rs.resource.attributes) },
      scopeSpans: rs.scopeSpans.map((ss) => ({
        scope: ss.scope,
        spans: ss.spans.map((s) => ({
          traceId: s.traceId.toString('hex'), spanId: s.spanId.toString('hex'), ...(s.parentSpanId ? { parentSpanId: s.parentSpanId.toString('hex') } : {}),
          name: s.name, kind: s.kind, startTimeUnixNano: BigInt(s.startTimeUnixNano).toString(), endTimeUnixNano: BigInt(s.endTimeUnixNano).toString(),
          attributes: kvs(s.attributes), ...(s.status ? { status: s.status } : {}),
        })),
      })),
    })),
  });
}

const request = buildRequest(SPANS);
const protoBytes = encodeTracesRequest(request);
const jsonText = toJson(request);
const jsonBytes = Buffer.from(jsonText);

// All three must see the same spans, or the comparison means nothing.
const check = decodeTracesRequest(protoBytes);
if (check.spanCount !== SPANS || decodeTracesRequestJson(jsonBytes).spanCount !== SPANS) throw new Error('decoders disagree on the span count');
if (decodeTracesRequestFull(protoBytes).resourceSpans.reduce((n, rs) => n + rs.scopeSpans[0].spans.length, 0) !== SPANS) throw new Error('full decode lost spans');

const decoders = [
  ['wire scanner (decodeTracesRequest)', () => decodeTracesRequest(protoBytes)],
  ['protobufjs full decode (decodeTracesRequestFull)', () => decodeTracesRequestFull(protoBytes)],
  ['OTLP/JSON (decodeTracesRequestJson, bytes in)', () => decodeTracesRequestJson(jsonBytes)],
];

/** Spans per second over one run of about RUN_MS milliseconds. */
function run(fn) {
  let iterations = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < 10; i++) fn();
    iterations += 10;
    elapsed = performance.now() - start;
  } while (elapsed < RUN_MS);
  return (iterations * SPANS) / (elapsed / 1000);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [, fn] of decoders) run(fn); // warm-up
// Runs are interleaved (one of each decoder per round) so that load from other processes
// falls on all three alike.
const samples = decoders.map(() => []);
for (let r = 0; r < RUNS; r++) decoders.forEach(([, fn], i) => samples[i].push(run(fn)));
const results = decoders.map(([name], i) => ({ name, spansPerSec: median(samples[i]), min: Math.min(...samples[i]), max: Math.max(...samples[i]) }));

const fmt = (n) => Math.round(n).toLocaleString('en-US');
process.stdout.write(`request: ${SPANS} spans, protobuf ${fmt(protoBytes.length)} bytes, JSON ${fmt(jsonBytes.length)} bytes; median of ${RUNS} runs of ~${RUN_MS} ms (node ${process.version})\n`);
for (const r of results) process.stdout.write(`${r.name.padEnd(50)} ${fmt(r.spansPerSec).padStart(12)} spans/s  (runs ${fmt(r.min)}..${fmt(r.max)})\n`);
const [scanner, full, json] = results;
process.stdout.write(`scanner / protobufjs full decode: ${(scanner.spansPerSec / full.spansPerSec).toFixed(2)}x\n`);
process.stdout.write(`scanner / JSON decoder:           ${(scanner.spansPerSec / json.spansPerSec).toFixed(2)}x\n`);
