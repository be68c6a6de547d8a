import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { decodeTracesRequest, encodeTracesRequest, type AttrValue, type Attributes, type TracesRequestData } from '@conduct/proto';
import type { IdentityRule } from '../model.js';
import * as semconv from '../semconv.js';
import { DEFAULT_IDENTITY_RULES } from '../identity/index.js';
import { request, resource, span, SpanKind } from '../calls/testdata/trace-builder.js';
import { attributeKeepFor, createCollectingConsumer, createPipeline } from './index.js';

const traceId = (n: number) => n.toString(16).padStart(32, '0');

/** Semantic-convention values (not keys) exported by semconv.ts. */
const NOT_KEYS = new Set<string>([semconv.GEN_AI_EXECUTE_TOOL]);

function anyValue(v: AttrValue): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
}
const kvs = (attrs: Attributes) => Object.entries(attrs).map(([key, value]) => ({ key, value: anyValue(value) }));
const nanos = (ms: number) => BigInt(Math.round(ms)) * 1_000_000n;

/** The protobuf bytes of a decoded-shape request (what a client would have sent). */
function encode(data: TracesRequestData): Uint8Array {
  return encodeTracesRequest({
    resourceSpans: data.resourceSpans.map((rs) => ({
      resource: { attributes: kvs(rs.resource) },
      scopeSpans: [
        {
          spans: rs.spans.map((s) => ({
            traceId: Buffer.from(s.traceId, 'hex'),
            spanId: Buffer.from(s.spanId, 'hex'),
            parentSpanId: s.parentSpanId ? Buffer.from(s.parentSpanId, 'hex') : undefined,
            name: s.name,
            kind: s.kind,
            startTimeUnixNano: nanos(s.startMs).toString(),
            endTimeUnixNano: nanos(s.endMs).toString(),
            status: { code: s.statusCode },
            attributes: kvs(s.attributes),
          })),
        },
      ],
    })),
  } as never);
}

/** Traces that exercise every reader: identity rules, peers, operations, targets, sources, presence. */
function traffic(): TracesRequestData {
  const noise = { 'telemetry.sdk.name': 'opentelemetry', 'process.pid': 4242, 'deployment.environment.name': 'prod' };
  const web = resource('web', { 'service.namespace': 'shop', 'cloud.region': 'eu-west-1', 'cloud.account.id': '111', 'host.name': 'h1', 'k8s.cluster.name': 'c1', ...noise });
  const api = resource('api', { 'service.namespace': 'shop', 'team.owner': 'payments', ...noise });
  const spans = [];
  for (let n = 1; n <= 6; n++) {
    const t = traceId(n);
    const at = 1_700_000_000_000 + n * 1_000;
    const who: Record<string, string> = n % 3 === 0 ? { 'gen_ai.agent.id': `bot-${n}`, 'gen_ai.agent.name': `Bot ${n}` } : n % 3 === 1 ? { 'enduser.id': `spiffe://prod/sa/u${n}` } : { 'tls.client.subject': `CN=client-${n},O=shop` };
    spans.push(
      span(web, { id: `e${n}`, traceId: t, kind: SpanKind.SERVER, start: at, end: at + 50, attrs: { ...who, 'http.request.method': 'GET', 'http.route': '/orders/{id}', 'client.address': '10.0.0.7', 'user_agent.original': 'curl/8', 'http.request.header.x': 'y' } }),
      span(web, { id: `c${n}`, traceId: t, parent: `e${n}`, kind: SpanKind.CLIENT, start: at + 1, end: at + 40, attrs: { 'http.request.method': 'POST', 'url.full': `http://api:8080/pay/${n}`, 'server.address': 'api', 'http.response.status_code': 201, 'http.request.resend_count': 0 } }),
      span(api, { id: `s${n}`, traceId: t, parent: `c${n}`, kind: SpanKind.SERVER, start: at + 2, end: at + 38, attrs: { 'http.request.method': 'POST', 'http.route': '/pay/{id}', 'team.principal': `acct-${n}`, 'client.address': '10.0.1.3' } }),
      span(api, { id: `d${n}`, traceId: t, parent: `s${n}`, kind: SpanKind.CLIENT, start: at + 3, end: at + 9, attrs: { 'db.system.name': 'postgresql', 'db.namespace': 'pay', 'db.operation.name': 'INSERT', 'db.collection.name': 'payments', 'db.response.returned_rows': 1 } }),
      // Unspecified kind, no key that conduct reads: an outbound call only because a `db.` key is present.
      span(api, { id: `u${n}`, traceId: t, parent: `s${n}`, kind: SpanKind.UNSPECIFIED, name: 'cache lookup', start: at + 10, end: at + 12, attrs: { 'db.user': 'app', 'db.client.connection.pool.name': 'main' } }),
      span(api, { id: `t${n}`, traceId: t, parent: `s${n}`, kind: SpanKind.INTERNAL, start: at + 13, end: at + 20, attrs: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'refund', 'aws.s3.bucket': 'b' } }),
    );
  }
  return request(spans);
}

async function chainsOf(data: TracesRequestData, rules: IdentityRule[], keep: boolean) {
  const consumer = createCollectingConsumer();
  const pipeline = createPipeline({ rules, stitching: { idleMs: 1_000, latenessMs: 60_000, maxPendingSpans: 10_000 }, consumer, registry: new Registry(), idleTimer: false });
  const decoded = decodeTracesRequest(encode(data), keep ? { keep: pipeline.keep } : undefined);
  expect(await pipeline.accept(decoded)).toEqual({ ok: true });
  await pipeline.stop();
  return { chains: consumer.chains(), summaries: consumer.batches.flatMap((b) => b.traceSummaries ?? []), decoded };
}

describe('attributeKeepFor', () => {
  it('lists every attribute key that semconv.ts names', () => {
    const listed = new Set(semconv.READ_ATTRIBUTE_KEYS);
    for (const [name, value] of Object.entries(semconv)) {
      if (typeof value === 'string' && !NOT_KEYS.has(value)) expect(listed.has(value), name).toBe(true);
      if (Array.isArray(value) && name.endsWith('_KEYS')) for (const key of value as string[]) expect(listed.has(key), `${name}: ${key}`).toBe(true);
    }
  });

  it('adds the keys of custom identity rules, attributes and display names', () => {
    const keep = attributeKeepFor([
      { from: 'span', attribute: 'team.principal', kind: 'principal', displayNameAttribute: 'team.principal_name' },
      { from: 'resource', attribute: ['team.ns', 'team.svc'], kind: 'workload' },
    ]);
    for (const key of ['team.principal', 'team.principal_name', 'team.ns', 'team.svc', 'service.name', 'http.route']) expect(keep.keys.has(key), key).toBe(true);
    expect(keep.keys.has('process.pid')).toBe(false);
  });

  it('the pipeline derives the same chains from requests decoded with its keep set as with every attribute', async () => {
    const rules: IdentityRule[] = [{ from: 'span', attribute: 'team.principal', kind: 'principal', prefix: 'team:' }, ...DEFAULT_IDENTITY_RULES];
    const data = traffic();
    const all = await chainsOf(data, rules, false);
    const kept = await chainsOf(data, rules, true);
    // The filter did leave attributes out...
    const keys = (d: TracesRequestData) => new Set(d.resourceSpans.flatMap((rs) => [...Object.keys(rs.resource), ...rs.spans.flatMap((s) => Object.keys(s.attributes))]));
    expect(keys(all.decoded).has('process.pid')).toBe(true);
    expect(keys(kept.decoded).has('process.pid')).toBe(false);
    expect(keys(kept.decoded).has('http.request.header.x')).toBe(false);
    // ...and nothing downstream noticed.
    expect(kept.chains).toEqual(all.chains);
    expect(kept.summaries).toEqual(all.summaries);
    const calls = all.chains.flatMap((c) => c.calls);
    expect(new Set(all.chains.map((c) => c.identity))).toEqual(new Set(['spiffe://prod/sa/u1', 'agent:bot-3', 'cert:client-2', 'team:acct-1', 'team:acct-2', 'team:acct-3', 'team:acct-4', 'team:acct-5', 'team:acct-6', 'spiffe://prod/sa/u4', 'agent:bot-6', 'cert:client-5']));
    // The unspecified-kind span with only unread `db.` keys is still an outbound call.
    expect(calls.some((c) => c.name === 'cache lookup')).toBe(true);
    expect(calls.some((c) => c.target === 'refund')).toBe(true);
  });
});
