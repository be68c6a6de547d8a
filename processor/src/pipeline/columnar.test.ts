// Differential test of the columnar hot path: the calls and chains derived from a request decoded
// into columns and held by the stitcher equal those derived from the object decoder's output
// (decodeTracesRequest, read as attribute objects), for generated requests of many shapes, the
// bench workload, mutated requests, the receivers' wire test requests and audit records.
import { describe, expect, it } from 'vitest';
import { Buffer } from 'node:buffer';
import { decodeTracesRequest, decodeTracesRequestColumns, DecodeError, encodeTracesRequest, columnsFromData, type SpanColumns, type TracesRequestData } from '@conduct/proto';
import { createIdentityResolver, DEFAULT_IDENTITY_RULES, type TraceSpan } from '../identity/index.js';
import { deriveItems, deriveTrace } from '../calls/index.js';
import { createStitcher } from '../stitch/index.js';
import { objectAttrs } from '../keys.js';
import { attributeKeepFor } from './keep.js';
import { traceRequest } from '../receiver/testdata/otlp-wire.js';
import { auditRequest, readCloudTrailRecord, readK8sAuditEvent, type AuditCall, type AuditRead } from '../audit/index.js';
import type { IdentityRule } from '../model.js';

const RULES: IdentityRule[] = [
  ...DEFAULT_IDENTITY_RULES.slice(0, 4),
  { from: 'span', attribute: 'app.token.subject', pattern: '^sub:(.+)$', kind: 'principal', prefix: 'tok:' },
  { from: 'resource', attribute: ['k8s.namespace.name', 'k8s.serviceaccount.name'], kind: 'workload', prefix: 'sa:' },
  DEFAULT_IDENTITY_RULES[4]!,
];
const KEEP = attributeKeepFor(RULES);

/** Chains by trace id through the object decoder's output, spans grouped in request order. */
function viaObjects(data: TracesRequestData): Record<string, unknown> {
  const resolver = createIdentityResolver(RULES);
  const byTrace = new Map<string, TraceSpan[]>();
  for (const rs of data.resourceSpans) {
    const resource = objectAttrs(rs.resource);
    for (const span of rs.spans) {
      let list = byTrace.get(span.traceId);
      if (!list) byTrace.set(span.traceId, (list = []));
      list.push({ span: { ...span, attributes: objectAttrs(span.attributes) }, resource });
    }
  }
  return Object.fromEntries([...byTrace].map(([id, spans]) => [id, deriveTrace(spans, resolver).chains]));
}

/** The same through the columns, held in the stitcher until a flush. */
function viaColumns(requests: SpanColumns[]): Record<string, unknown> {
  const resolver = createIdentityResolver(RULES);
  const stitcher = createStitcher({ idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 10_000_000 });
  // Spans stamped far ahead complete traces by the watermark as they arrive.
  const done = requests.flatMap((cols) => stitcher.add(cols));
  // As the pipeline derives them: read in place from the columns the stitcher held.
  return Object.fromEntries([...done, ...stitcher.flush()].map((t) => [t.traceId, deriveItems(t, resolver).chains]));
}

function same(bytes: Uint8Array): 'ok' | 'refused' {
  let objects: TracesRequestData;
  try {
    objects = decodeTracesRequest(bytes, { keep: KEEP });
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    expect(() => decodeTracesRequestColumns(bytes, { keep: KEEP })).toThrow(DecodeError);
    return 'refused';
  }
  const expected = viaObjects(objects);
  expect(viaColumns([decodeTracesRequestColumns(bytes, { keep: KEEP })])).toEqual(expected);
  return 'ok';
}

// ---- generated requests -------------------------------------------------------------------------

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

type Wire = Record<string, unknown>;
const str = (s: string): Wire => ({ stringValue: s });

/** Attribute shapes conduct reads, and some it does not. */
function attributePool(r: () => number): Array<() => [string, Wire]> {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const id = () => String(Math.floor(r() * 1e6));
  return [
    () => ['http.request.method', str(pick(['GET', 'POST', 'delete', 'BREW', ' PUT ']))],
    () => ['http.method', str(pick(['GET', 'PATCH']))],
    () => ['http.route', str(pick(['/orders/{id}', '/cart', '', '  ', '/a\u0000b']))],
    () => ['url.path', str(`/orders/${id()}/items`)],
    () => ['url.full', str(pick([`https://api.example.com/v1/users/${id()}?x=1`, `http://10.0.0.${id().slice(0, 2)}:8080/x`, 'not a url']))],
    () => ['http.url', str(`http://billing.internal/pay/${id()}`)],
    () => ['http.target', str(`/t/${id()}`)],
    () => ['http.response.status_code', pick([{ intValue: pick([200, 404, 503]) }, str('201'), { intValue: 99 }, { doubleValue: 200.5 }])],
    () => ['http.status_code', { intValue: 302 }],
    () => ['server.address', str(pick(['db.internal', '10.2.3.4', '2001:db8::1', 'api.stripe.com']))],
    () => ['server.port', pick([{ intValue: 5432 }, str('443'), str('http')])],
    () => ['net.peer.name', str('legacy.internal')],
    () => ['net.peer.port', { intValue: 80 }],
    () => ['peer.service', str(pick(['billing', 'ledger', 'https://x.example.org']))],
    () => ['service.peer.name', str('catalog')],
    () => ['db.system.name', str(pick(['postgresql', 'redis']))],
    () => ['db.system', str('mysql')],
    () => ['db.namespace', str('shop')],
    () => ['db.operation.name', str(pick(['SELECT', 'GET']))],
    () => ['db.collection.name', str(pick(['orders', `events_2026120${id().slice(0, 1)}`]))],
    () => ['db.query.text', str(`SELECT * FROM orders WHERE id = ${id()}`)],
    () => ['db.statement', str(`UPDATE carts SET n = ${id()}`)],
    () => ['db.query.summary', str('SELECT orders')],
    () => ['messaging.system', str('kafka')],
    () => ['messaging.destination.name', str(pick(['orders', `tenant-${id()}`]))],
    () => ['messaging.operation.type', str(pick(['send', 'receive']))],
    () => ['rpc.system', str(pick(['grpc', 'aws-api', 'GRPC']))],
    () => ['rpc.service', str(pick(['shop.Catalog', `acct.${id()}`]))],
    () => ['rpc.method', str(pick(['Get', 'ListBuckets']))],
    () => ['gen_ai.operation.name', str(pick(['execute_tool', 'chat', 'invoke_agent']))],
    () => ['gen_ai.tool.name', str(pick(['search', 'refund']))],
    () => ['gen_ai.agent.id', str(pick(['triage', 'billing-bot', '']))],
    () => ['gen_ai.agent.name', str(pick(['Triage', '  Bot\u0007 ']))],
    () => ['enduser.id', str(pick(['system:serviceaccount:ci:deployer', 'alice', '   ']))],
    () => ['user.id', { intValue: Number(id()) }],
    () => ['tls.client.subject', str(pick(['CN=payments.shop.svc,O=Shop', 'URI=spiffe://prod/ns/a/sa/b', 'O=NoCN']))],
    () => ['app.token.subject', str(pick(['sub:robot', 'other']))],
    () => ['client.address', str(pick(['10.4.2.17', '203.0.113.9', '2001:db8::5', '[::1]:443']))],
    () => ['network.peer.address', str('10.9.9.9')],
    () => ['user_agent.original', str(pick(['curl/8.5.0', 'Mozilla/5.0']))],
    () => ['http.user_agent', str('okhttp/4')],
    () => ['cloud.account.id', str(pick(['111122223333', '444455556666']))],
    () => ['cloud.resource_id', str('arn:aws:lambda:eu-west-1:1:function:f')],
    () => ['aws.s3.bucket', str(pick(['logs', 'exports']))],
    () => ['error.type', str(pick(['timeout', '500']))],
    () => ['conduct.audit.record_id', str(id())],
    () => ['conduct.audit.region', str('eu-west-1')],
    () => ['conduct.audit.caller_account', str('999988887777')],
    () => ['db.cassandra.consistency', str('ONE')],
    () => ['rpc.grpc.status_code', { intValue: 0 }],
    () => ['net.peer.ip', str('10.1.1.1')],
    () => ['feature.flags', { arrayValue: { values: [str('a'), { intValue: 2 }] } }],
    () => ['thread.id', { intValue: 7 }],
    () => ['flag', { boolValue: true }],
  ];
}

const hex = (r: () => number, bytes: number) => Buffer.from(Array.from({ length: bytes }, () => Math.floor(r() * 256)));

/** A request of `traces` traces over several services, with random kinds, links and attributes. */
function generated(seed: number, traces: number): Uint8Array {
  const r = seeded(seed);
  const pool = attributePool(r);
  const services = ['api', 'billing', 'ledger', 'catalog', 'worker'].map((name, i) => ({
    resource: ([
      ['service.name', str(name)],
      ...(i % 2 ? [['service.namespace', str('shop')]] : []),
      ...(i === 3 ? [['k8s.namespace.name', str('ci')], ['k8s.serviceaccount.name', str('deployer')]] : []),
      ['service.version', str(`1.${i}.0`)],
      ['cloud.region', str('eu-west-1')],
      ['cloud.account.id', str('123456789012')],
      ['host.name', str(`${name}-0`)],
      ['telemetry.sdk.name', str('opentelemetry')],
    ] as Array<[string, Wire]>).map(([key, value]) => ({ key, value })),
    spans: [] as Wire[],
  }));
  for (let t = 0; t < traces; t++) {
    const traceId = hex(r, 16);
    const ids: Buffer[] = [];
    const count = 1 + Math.floor(r() * 9);
    for (let s = 0; s < count; s++) {
      const spanId = hex(r, 8);
      const parent = ids.length > 0 && r() < 0.85 ? ids[Math.floor(r() * ids.length)] : r() < 0.2 ? hex(r, 8) : undefined;
      ids.push(spanId);
      const attributes = Array.from({ length: Math.floor(r() * 8) }, () => pool[Math.floor(r() * pool.length)]!()).map(([key, value]) => ({ key, value }));
      const start = 1_764_230_400_000 + Math.floor(r() * 1e6);
      services[Math.floor(r() * services.length)]!.spans.push({
        traceId,
        spanId: r() < 0.03 && ids.length > 1 ? ids[0] : spanId, // now and then a span id sent twice
        parentSpanId: parent,
        name: ['GET /orders/42', 'SELECT orders', 'process', 'shop.Catalog/Get', 'execute_tool search'][Math.floor(r() * 5)],
        kind: Math.floor(r() * 6),
        startTimeUnixNano: start * 1e6,
        endTimeUnixNano: (start + Math.floor(r() * 50)) * 1e6,
        attributes,
        status: { code: Math.floor(r() * 3) },
      });
    }
  }
  return encodeTracesRequest({ resourceSpans: services.map((s) => ({ resource: { attributes: s.resource }, scopeSpans: [{ spans: s.spans }] })) });
}

function mutate(seed: Uint8Array, r: () => number): Uint8Array {
  const bytes = Array.from(seed);
  for (let e = 0; e < 1 + Math.floor(r() * 3); e++) {
    const at = Math.floor(r() * bytes.length);
    if (r() < 0.5) bytes[at] = Math.floor(r() * 256);
    else bytes.splice(at, 1 + Math.floor(r() * 4));
  }
  return Uint8Array.from(bytes);
}

describe('columnar hot path', () => {
  it('derives what the object decoder output derives, for generated requests of many shapes', () => {
    for (let seed = 1; seed <= 40; seed++) expect(same(generated(seed, 30))).toBe('ok');
  });

  it('does so for the bench workload, with traces split over two requests', async () => {
    const workload = (await import('../../../bench/workload.mjs' as string)) as { createRequestSource(n: number): { next(ms: number): Buffer } };
    const source = workload.createRequestSource(1);
    const bodies = Array.from({ length: 6 }, (_, i) => source.next(1_764_230_400_000 + i * 10));
    for (const body of bodies) same(body);
    // Across requests: the stitcher joins each trace's halves.
    const merged: TracesRequestData = { resourceSpans: bodies.flatMap((b) => decodeTracesRequest(b, { keep: KEEP }).resourceSpans), spanCount: 0, rejectedSpans: 0, rejectMessage: '' };
    expect(viaColumns(bodies.map((b) => decodeTracesRequestColumns(b, { keep: KEEP })))).toEqual(viaObjects(merged));
  });

  it('answers as the object decoder does for 500 mutated requests', () => {
    const r = seeded(99);
    const seedBytes = generated(7, 4);
    const tally = { ok: 0, refused: 0 };
    for (let i = 0; i < 500; i++) tally[same(mutate(seedBytes, r))]++;
    expect(tally.ok).toBeGreaterThan(20);
    expect(tally.refused).toBeGreaterThan(20);
  });

  it('does so for the receivers’ wire requests and for audit records (objects made into columns)', () => {
    const ids = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
    expect(same(traceRequest('kube-api', [{ ...ids, name: 'GET /apis', attributes: { 'enduser.id': 'system:serviceaccount:ci:deployer', 'client.address': '10.4.2.17' } }]))).toBe('ok');
    const calls = (reads: AuditRead[]): AuditCall[] => reads.map((read) => (read.ok ? read.call : expect.unreachable(read.reason)));
    const k8s = auditRequest(calls([k8sEvent('list', 'secrets'), k8sEvent('create', 'pods')].map(readK8sAuditEvent)));
    const cloudTrail = auditRequest(calls([trailRecord('GetObject'), trailRecord('ListBuckets')].map(readCloudTrailRecord)));
    for (const data of [k8s, cloudTrail]) {
      expect(data.spanCount).toBeGreaterThan(0);
      expect(viaColumns([columnsFromData(data, KEEP)])).toEqual(viaObjects(data));
    }
  });
});

function k8sEvent(verb: string, resource: string): Record<string, unknown> {
  return {
    kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Metadata', auditID: `a-${verb}-${resource}`, stage: 'ResponseComplete',
    requestURI: `/api/v1/namespaces/payments/${resource}`, verb, user: { username: 'system:serviceaccount:monitoring:metrics-agent' },
    sourceIPs: ['203.0.113.7'], userAgent: 'kubectl/v1.31', objectRef: { resource, namespace: 'payments', apiVersion: 'v1' },
    responseStatus: { code: 200 }, requestReceivedTimestamp: '2026-12-01T10:00:00.000000Z', stageTimestamp: '2026-12-01T10:00:00.020000Z',
  };
}

function trailRecord(eventName: string): Record<string, unknown> {
  return {
    eventVersion: '1.09', eventTime: '2026-12-01T10:00:00Z', eventSource: 's3.amazonaws.com', eventName, awsRegion: 'eu-west-1',
    sourceIPAddress: '203.0.113.9', userAgent: 'aws-cli/2', eventID: `e-${eventName}`, recipientAccountId: '111122223333',
    userIdentity: { type: 'AssumedRole', arn: 'arn:aws:sts::111122223333:assumed-role/web-role/i-0abc', accountId: '111122223333' },
    requestParameters: { bucketName: 'exports' },
  };
}
