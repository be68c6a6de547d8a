import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { ROOT_CONTEXT, SpanKind as ApiSpanKind, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as HttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as HttpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { SpanKind } from '@conduct/proto';
import { silentLogger } from '../model.js';
import { createCollectingIngest, createGrpcReceiver, createHttpReceiver, type Receiver } from './index.js';

/**
 * The official OpenTelemetry exporters send real SDK spans to the receivers; the collecting ingest
 * must get them with the same ids, names, kinds, attributes and resource.
 */

const ingest = createCollectingIngest();
const registry = new Registry();
let grpcReceiver: Receiver;
let httpReceiver: Receiver;
let grpcEndpoint: string;
let httpEndpoint: string;

beforeAll(async () => {
  const config = { endpoint: '127.0.0.1:0', maxRequestBytes: 4 * 1024 * 1024 };
  grpcReceiver = createGrpcReceiver(config, ingest, { registry, logger: silentLogger });
  httpReceiver = createHttpReceiver(config, ingest, { registry, logger: silentLogger });
  [grpcEndpoint, httpEndpoint] = await Promise.all([grpcReceiver.start(), httpReceiver.start()]);
});

afterAll(async () => {
  await Promise.all([grpcReceiver.stop(), httpReceiver.stop()]);
});

/** Sends one server span with a child client span through `exporter`; returns the SDK's view of them. */
async function sendThrough(exporter: SpanExporter, service: string) {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.namespace': 'shop', 'cloud.region': 'eu-west-1' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('receiver-test');
  // No context manager is registered here, so the parent is passed explicitly.
  const parent = tracer.startSpan('GET /orders/{id}', { kind: ApiSpanKind.SERVER, attributes: { 'http.request.method': 'GET', 'enduser.id': 'alice' } });
  const child = tracer.startSpan(
    'SELECT orders',
    { kind: ApiSpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql', 'db.response.rows': 3, 'db.cached': true } },
    trace.setSpan(ROOT_CONTEXT, parent),
  );
  child.end();
  parent.end();
  await provider.forceFlush();
  await provider.shutdown();
  return { parent: parent.spanContext(), child: child.spanContext() };
}

function spansOf(traceId: string) {
  return ingest.spans().filter((s) => s.traceId === traceId);
}

const cases: Array<[string, () => SpanExporter]> = [
  ['gRPC', () => new GrpcExporter({ url: `http://${grpcEndpoint}` })],
  ['gRPC with gzip', () => new GrpcExporter({ url: `http://${grpcEndpoint}`, compression: 'gzip' as never })],
  ['HTTP JSON', () => new HttpJsonExporter({ url: `http://${httpEndpoint}/v1/traces` })],
  ['HTTP JSON with gzip', () => new HttpJsonExporter({ url: `http://${httpEndpoint}/v1/traces`, compression: 'gzip' as never })],
  ['HTTP protobuf', () => new HttpProtoExporter({ url: `http://${httpEndpoint}/v1/traces` })],
  ['HTTP protobuf with gzip', () => new HttpProtoExporter({ url: `http://${httpEndpoint}/v1/traces`, compression: 'gzip' as never })],
];

describe('official OpenTelemetry exporters', () => {
  it.each(cases)('%s: spans arrive with their ids, names, kinds, attributes and resource', async (label, makeExporter) => {
    const service = `svc-${label.replace(/\W+/g, '-').toLowerCase()}`;
    const sent = await sendThrough(makeExporter(), service);
    const spans = spansOf(sent.parent.traceId);
    expect(spans).toHaveLength(2);

    const parent = spans.find((s) => s.spanId === sent.parent.spanId)!;
    const child = spans.find((s) => s.spanId === sent.child.spanId)!;
    expect(parent).toBeDefined();
    expect(child).toBeDefined();
    expect(parent.name).toBe('GET /orders/{id}');
    expect(parent.kind).toBe(SpanKind.SERVER);
    expect(parent.parentSpanId).toBe('');
    expect(parent.attributes['enduser.id']).toBe('alice');
    expect(parent.attributes['http.request.method']).toBe('GET');
    expect(parent.endMs).toBeGreaterThanOrEqual(parent.startMs);
    expect(parent.startMs).toBeGreaterThan(Date.UTC(2020, 0, 1));

    expect(child.name).toBe('SELECT orders');
    expect(child.kind).toBe(SpanKind.CLIENT);
    expect(child.parentSpanId).toBe(sent.parent.spanId);
    expect(child.attributes['db.system.name']).toBe('postgresql');
    expect(child.attributes['db.response.rows']).toBe(3);
    expect(child.attributes['db.cached']).toBe(true);

    expect(parent.resource['service.name']).toBe(service);
    expect(parent.resource['service.namespace']).toBe('shop');
    expect(parent.resource['cloud.region']).toBe('eu-west-1');
  });

  // SimpleSpanProcessor exports each span on its own: two requests per case.
  it('counts the received spans per protocol in the registry', async () => {
    const text = await registry.metrics();
    const grpcSpans = /conduct_receiver_spans_received_total\{protocol="grpc"\} (\d+)/.exec(text);
    const httpSpans = /conduct_receiver_spans_received_total\{protocol="http"\} (\d+)/.exec(text);
    expect(Number(grpcSpans?.[1])).toBe(4);
    expect(Number(httpSpans?.[1])).toBe(8);
    expect(text).toMatch(/conduct_receiver_requests_total\{protocol="grpc",code="OK"\} 4/);
    expect(text).toMatch(/conduct_receiver_requests_total\{protocol="http",code="200"\} 8/);
  });
});
