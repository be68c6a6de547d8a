// The decoders against what the official OpenTelemetry JS SDK and its OTLP serializers produce.
import { describe, expect, it } from 'vitest';
import { ROOT_CONTEXT, SpanKind as ApiSpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { decodeTracesRequest } from './wire-scanner.js';
import { decodeTracesRequestJson } from './json-decoder.js';
import { encodeExportTraceResponse } from './responses.js';

function sdkSpans() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'checkout', 'service.namespace': 'shop', 'cloud.region': 'eu-west-1' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('conduct-interop', '1.0.0');
  const parent = tracer.startSpan('POST /orders', { kind: ApiSpanKind.SERVER, attributes: { 'http.request.method': 'POST', 'enduser.id': 'svc-ci' } });
  const child = tracer.startSpan(
    'SELECT orders',
    {
      kind: ApiSpanKind.CLIENT,
      attributes: { 'db.system.name': 'postgresql', 'db.namespace': 'orders', 'retry.count': 2, ratio: 0.5, ok: true, tags: ['a', 'b'], codes: [1, 2, 3] },
    },
    trace.setSpan(ROOT_CONTEXT, parent),
  );
  child.addEvent('query', { rows: 3 });
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  child.end();
  parent.end();
  return exporter.getFinishedSpans();
}

describe('interoperability with the OpenTelemetry JS serializers', () => {
  const spans = sdkSpans();

  it('scans the official protobuf serialization and matches the official JSON one', () => {
    const proto = ProtobufTraceSerializer.serializeRequest(spans);
    const json = JsonTraceSerializer.serializeRequest(spans);
    expect(proto).toBeDefined();
    expect(json).toBeDefined();
    const fromProto = decodeTracesRequest(proto!);
    const fromJson = decodeTracesRequestJson(json!);
    expect(fromProto).toStrictEqual(fromJson);
    expect(fromProto.spanCount).toBe(2);

    const rs = fromProto.resourceSpans[0];
    expect(rs.resource['service.name']).toBe('checkout');
    const byName = new Map(rs.spans.map((s) => [s.name, s]));
    const server = byName.get('POST /orders')!;
    const client = byName.get('SELECT orders')!;
    const sdkClient = spans.find((s) => s.name === 'SELECT orders')!;
    expect(client.traceId).toBe(sdkClient.spanContext().traceId);
    expect(client.spanId).toBe(sdkClient.spanContext().spanId);
    expect(client.parentSpanId).toBe(server.spanId);
    expect(client.kind).toBe(3);
    expect(server.kind).toBe(2);
    expect(client.statusCode).toBe(2);
    const sdkStartMs = sdkClient.startTime[0] * 1000 + sdkClient.startTime[1] / 1e6;
    expect(Math.abs(client.startMs - sdkStartMs)).toBeLessThan(0.001);
    expect({ ...client.attributes }).toEqual({
      'db.system.name': 'postgresql',
      'db.namespace': 'orders',
      'retry.count': 2,
      ratio: 0.5,
      ok: true,
      tags: '["a","b"]',
      codes: '[1,2,3]',
    });
  });

  it('writes export responses the official deserializer reads', () => {
    const response = ProtobufTraceSerializer.deserializeResponse(encodeExportTraceResponse({ rejectedSpans: 3, errorMessage: 'no trace id' }));
    expect(Number(response.partialSuccess?.rejectedSpans)).toBe(3);
    expect(response.partialSuccess?.errorMessage).toBe('no trace id');
    expect(ProtobufTraceSerializer.deserializeResponse(encodeExportTraceResponse({ rejectedSpans: 0, errorMessage: '' })).partialSuccess).toBeUndefined();
  });
});
