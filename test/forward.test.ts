import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { ROOT_CONTEXT, SpanKind as ApiSpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as HttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as HttpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import {
  createCollectingIngest,
  createForwarder,
  createGrpcReceiver,
  createHttpReceiver,
  DEFAULT_FORWARD_DRAIN_MS,
  DEFAULT_FORWARD_QUEUE_MAX_BYTES,
  DEFAULT_RETRY_INITIAL_MS,
  resolveForwardTarget,
  silentLogger,
  TRACE_EXPORT_METHOD,
  type ForwardTargetConfig,
  type Forwarder,
  type TraceIngest,
} from '@conduct/processor';
import { decodeTracesRequestFull, encodeRpcStatus, encodeTracesRequest } from '@conduct/proto';
import { parseConfig } from '@conduct/backend';
import { until } from './support/receivers.js';

/**
 * The forwarder against real downstream servers on real ports: a plain node:http OTLP receiver
 * and a grpc-js one, both recording the raw bytes they get. The request bodies come from the
 * official OpenTelemetry exporters, captured on the wire.
 */

// ---------------------------------------------------------------- downstream servers

interface Received {
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

/** An OTLP/HTTP downstream; `answer` decides the status of each request (200 by default). */
class HttpDownstream {
  readonly received: Received[] = [];
  answer: (n: number) => { status: number; headers?: Record<string, string> } = () => ({ status: 200 });
  private server: http.Server | undefined;
  port = 0;

  private readonly handle: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.received.push({ body: Buffer.concat(chunks), headers: req.headers });
      const { status, headers } = this.answer(this.received.length);
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(status === 200 ? '{}' : '{"code":3,"message":"refused"}');
    });
  };

  /** Listens (again, after close) on `port`, or on a fresh one. */
  async listen(port = 0): Promise<void> {
    const server = http.createServer(this.handle);
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server?.listening) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
}

const raw = (b: Buffer): Buffer => b;

/** An OTLP/gRPC downstream recording the raw request messages; `answer` may fail a call. */
class GrpcDownstream {
  readonly received: Array<{ body: Buffer; metadata: grpc.Metadata }> = [];
  answer: (n: number) => grpc.ServiceError | null = () => null;
  private readonly server = new grpc.Server();
  port = 0;

  async listen(): Promise<void> {
    this.server.addService(
      {
        Export: {
          path: TRACE_EXPORT_METHOD,
          requestStream: false,
          responseStream: false,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
      },
      {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          this.received.push({ body: call.request, metadata: call.metadata });
          const err = this.answer(this.received.length);
          if (err) callback(err);
          else callback(null, Buffer.alloc(0));
        },
      },
    );
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }
}

// ---------------------------------------------------------------- exporter traffic

/** Spans rich enough to exercise every part of the schema: events, links, status, nested values. */
async function makeSpans(): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'ledger', 'service.namespace': 'payments', 'cloud.region': 'eu-west-1' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('forward-test', '1.2.3');
  const server = tracer.startSpan('POST /transfers', {
    kind: ApiSpanKind.SERVER,
    attributes: { 'http.request.method': 'POST', 'enduser.id': 'spiffe://prod/ns/ci/sa/deployer', 'http.response.status_code': 201 },
  });
  const client = tracer.startSpan(
    'SELECT accounts',
    {
      kind: ApiSpanKind.CLIENT,
      attributes: { 'db.system.name': 'postgresql', 'db.response.rows': 3, ratio: 0.25, cached: true, tags: ['a', 'b'], big: 2 ** 40 },
      links: [{ context: server.spanContext(), attributes: { why: 'follows' } }],
    },
    trace.setSpan(ROOT_CONTEXT, server),
  );
  client.addEvent('retry', { attempt: 2 });
  client.setStatus({ code: SpanStatusCode.ERROR, message: 'deadlock detected' });
  client.end();
  server.setStatus({ code: SpanStatusCode.OK });
  server.end();
  await provider.forceFlush();
  const spans = memory.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

/** Runs `exporter.export(spans)` and returns what came over the wire to a capturing server. */
async function exportOnce(exporter: SpanExporter, spans: ReadableSpan[]): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    exporter.export(spans, (result) => (result.error ? reject(result.error) : resolve())),
  );
  await exporter.shutdown();
}

interface Captured {
  /** The SDK spans the exporters sent (the exporters' serialisation of them is deterministic). */
  sdkSpans: ReadableSpan[];
  protobuf: Buffer;
  protobufGzip: Buffer;
  json: Buffer;
  grpc: Buffer;
  spans: number;
}

async function captureExporterBytes(): Promise<Captured> {
  const spans = await makeSpans();
  const httpCapture = new HttpDownstream();
  const grpcCapture = new GrpcDownstream();
  await Promise.all([httpCapture.listen(), grpcCapture.listen()]);
  try {
    await exportOnce(new HttpProtoExporter({ url: `${httpCapture.url}/v1/traces` }), spans);
    await exportOnce(new HttpProtoExporter({ url: `${httpCapture.url}/v1/traces`, compression: 'gzip' as never }), spans);
    await exportOnce(new HttpJsonExporter({ url: `${httpCapture.url}/v1/traces` }), spans);
    await exportOnce(new GrpcExporter({ url: `http://127.0.0.1:${grpcCapture.port}` }), spans);
  } finally {
    await Promise.all([httpCapture.close(), grpcCapture.close()]);
  }
  const [proto, protoGzip, json] = httpCapture.received;
  expect(proto!.headers['content-type']).toBe('application/x-protobuf');
  expect(protoGzip!.headers['content-encoding']).toBe('gzip');
  expect(json!.headers['content-type']).toBe('application/json');
  return { sdkSpans: spans, protobuf: proto!.body, protobufGzip: protoGzip!.body, json: json!.body, grpc: grpcCapture.received[0]!.body, spans: spans.length };
}

/**
 * A comparable form of a protobuf ExportTraceServiceRequest decoded by the generated code: ids as
 * hex, 64-bit values as decimal strings, fields holding their default value left out (proto3
 * cannot tell "absent" from "default", and encoders differ in which they write).
 */
function canonical(bytes: Buffer): unknown {
  const walk = (v: unknown): unknown => {
    if (v === null || v === undefined || v === 0 || v === '' || v === false) return undefined;
    if (v instanceof Uint8Array) return v.length === 0 ? undefined : Buffer.from(v).toString('hex');
    if (Array.isArray(v)) return v.length === 0 ? undefined : v.map((x) => walk(x) ?? null);
    if (typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.low === 'number' && typeof o.high === 'number') {
        const n = (BigInt(o.high >>> 0) << 32n) | BigInt(o.low >>> 0);
        return n === 0n ? undefined : n.toString();
      }
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(o).sort()) {
        const w = walk(o[key]);
        if (w !== undefined) out[key] = w;
      }
      return out;
    }
    return typeof v === 'number' ? String(v) : v;
  };
  return walk(decodeTracesRequestFull(bytes));
}

/** A small protobuf request whose span name carries `n`, to follow order. */
function numbered(n: number): Buffer {
  return Buffer.from(
    encodeTracesRequest({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'seq' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: Buffer.alloc(16, 1),
                  spanId: Buffer.alloc(8, (n % 250) + 1),
                  name: `span-${n}`,
                  startTimeUnixNano: 1_700_000_000_000_000_000 + n,
                  endTimeUnixNano: 1_700_000_000_000_000_000 + n + 1000,
                },
              ],
            },
          ],
        },
      ],
    }),
  );
}

function spanName(body: Buffer): string {
  return decodeTracesRequestFull(body).resourceSpans[0]?.scopeSpans?.[0]?.spans?.[0]?.name ?? '';
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  const { values } = await m.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** A port with nothing listening on it (bound once, then released). */
async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const FAST_RETRY = { initialIntervalMs: 20, maxIntervalMs: 100 };
/** The receiver tests' throw-away PKI (processor/src/receiver/testdata/README.md). */
const TESTDATA_TLS = fileURLToPath(new URL('../processor/src/receiver/testdata/', import.meta.url));

// ---------------------------------------------------------------- tests

let captured: Captured;
const cleanups: Array<() => Promise<void> | void> = [];
let tmp: string;

beforeAll(async () => {
  captured = await captureExporterBytes();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'conduct-forward-'));
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function forwarder(configs: ForwardTargetConfig[], registry = new Registry()): { fwd: Forwarder; registry: Registry } {
  const fwd = createForwarder(configs, { registry });
  cleanups.push(() => fwd.stop());
  fwd.start();
  return { fwd, registry };
}

async function httpDownstream(): Promise<HttpDownstream> {
  const d = new HttpDownstream();
  await d.listen();
  cleanups.push(() => d.close());
  return d;
}

async function grpcDownstream(): Promise<GrpcDownstream> {
  const d = new GrpcDownstream();
  await d.listen();
  cleanups.push(() => d.close());
  return d;
}

describe('bytes pass through unchanged', () => {
  it('HTTP: protobuf from the proto exporter arrives byte-identical, with the configured headers', async () => {
    const down = await httpDownstream();
    const { fwd, registry } = forwarder([{ endpoint: down.url, protocol: 'http', headers: { authorization: 'Bearer t0ken' } }]);
    expect(fwd.submit({ body: captured.protobuf, format: 'protobuf', spans: captured.spans })).toBe('accepted');
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received).toHaveLength(1);
    expect(down.received[0]!.body.equals(captured.protobuf)).toBe(true);
    expect(down.received[0]!.headers['content-type']).toBe('application/x-protobuf');
    expect(down.received[0]!.headers['content-encoding']).toBeUndefined();
    expect(down.received[0]!.headers.authorization).toBe('Bearer t0ken');
    expect(await metric(registry, 'conduct_forward_requests_total')).toBe(1);
    expect(await metric(registry, 'conduct_forward_spans_total')).toBe(captured.spans);
  });

  it('HTTP: a gzip request is passed on as received; decompressed only when the downstream wants none', async () => {
    const asIs = await httpDownstream();
    const plain = await httpDownstream();
    const { fwd } = forwarder([
      { endpoint: asIs.url, protocol: 'http' },
      { endpoint: plain.url, protocol: 'http', compression: 'none' },
    ]);
    const body = zlib.gunzipSync(captured.protobufGzip);
    expect(body.equals(captured.protobuf)).toBe(true);
    fwd.submit({ body, compressedBody: captured.protobufGzip, format: 'protobuf', spans: captured.spans });
    expect(await fwd.flush(10_000)).toBe(true);
    expect(asIs.received[0]!.headers['content-encoding']).toBe('gzip');
    expect(asIs.received[0]!.body.equals(captured.protobufGzip)).toBe(true);
    expect(plain.received[0]!.headers['content-encoding']).toBeUndefined();
    expect(plain.received[0]!.body.equals(captured.protobuf)).toBe(true);
  });

  it('HTTP: gzip is applied when the downstream asks for it and the request came uncompressed', async () => {
    const down = await httpDownstream();
    const { fwd } = forwarder([{ endpoint: down.url, protocol: 'http', compression: 'gzip' }]);
    fwd.submit({ body: captured.protobuf, format: 'protobuf', spans: captured.spans });
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received[0]!.headers['content-encoding']).toBe('gzip');
    expect(zlib.gunzipSync(down.received[0]!.body).equals(captured.protobuf)).toBe(true);
  });

  it('HTTP: JSON from the otlp-http exporter is forwarded as the same JSON', async () => {
    const down = await httpDownstream();
    const { fwd } = forwarder([{ endpoint: down.url, protocol: 'http' }]);
    fwd.submit({ body: captured.json, format: 'json', spans: captured.spans });
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received[0]!.headers['content-type']).toBe('application/json');
    expect(down.received[0]!.body.equals(captured.json)).toBe(true);
  });

  it('gRPC: protobuf from the grpc exporter arrives byte-identical, with the configured metadata, also with gzip on the channel', async () => {
    const down = await grpcDownstream();
    const { fwd } = forwarder([
      { endpoint: `127.0.0.1:${down.port}`, protocol: 'grpc', headers: { 'x-tenant': 'blue' } },
      { endpoint: `http://127.0.0.1:${down.port}`, protocol: 'grpc', compression: 'gzip' },
    ]);
    fwd.submit({ body: captured.grpc, format: 'protobuf', spans: captured.spans });
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received).toHaveLength(2);
    for (const r of down.received) expect(r.body.equals(captured.grpc)).toBe(true);
    expect(down.received.map((r) => r.metadata.get('x-tenant')[0])).toContain('blue');
  });

  it('gRPC: JSON is converted to protobuf carrying the same request as the proto exporter sent', async () => {
    const down = await grpcDownstream();
    const { fwd } = forwarder([{ endpoint: `127.0.0.1:${down.port}`, protocol: 'grpc' }]);
    fwd.submit({ body: captured.json, format: 'json', spans: captured.spans });
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received).toHaveLength(1);
    const forwarded = canonical(down.received[0]!.body);
    expect(forwarded).toEqual(canonical(captured.protobuf));
    // The comparison is not vacuous: events, links, status and nested values made it through.
    const spans = (forwarded as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Record<string, unknown>> }> }> })
      .resourceSpans[0]!.scopeSpans[0]!.spans;
    const client = spans.find((s) => s.name === 'SELECT accounts')!;
    expect((client.events as unknown[]).length).toBe(1);
    expect((client.links as unknown[]).length).toBe(1);
    expect(client.status).toEqual({ code: '2', message: 'deadlock detected' });
    expect(JSON.stringify(client.attributes)).toContain('"arrayValue"');
    expect(client.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(client.startTimeUnixNano).toMatch(/^\d{19}$/);
  });

  it('gRPC: JSON that is not an OTLP request is dropped and counted, not retried', async () => {
    const down = await grpcDownstream();
    const { fwd, registry } = forwarder([{ endpoint: `127.0.0.1:${down.port}`, protocol: 'grpc' }]);
    fwd.submit({ body: Buffer.from('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}'), format: 'json', spans: 1 });
    fwd.submit({ body: captured.json, format: 'json', spans: captured.spans });
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received).toHaveLength(1);
    expect(await metric(registry, 'conduct_forward_dropped_requests_total', { reason: 'convert' })).toBe(1);
  });

  it('finding spans go through the same downstreams with submitSpans', async () => {
    const down = await httpDownstream();
    const { fwd } = forwarder([{ endpoint: down.url, protocol: 'http' }]);
    const finding = numbered(7);
    expect(fwd.submitSpans(finding)).toBe('accepted');
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received[0]!.body.equals(finding)).toBe(true);
  });
});

describe('outages, retries and permanent refusals', () => {
  it('the downstream goes away and comes back: nothing lost, order kept, counters right', async () => {
    const down = await httpDownstream();
    const port = down.port;
    await down.close();
    const spool = path.join(tmp, 'outage');
    const { fwd, registry } = forwarder([
      { endpoint: `http://127.0.0.1:${port}`, protocol: 'http', queueSize: 3, spoolPath: spool, retry: FAST_RETRY },
    ]);
    const total = 20;
    for (let n = 0; n < total; n++) expect(fwd.submit({ body: numbered(n), format: 'protobuf', spans: 1 })).toBe('accepted');
    // Memory took the first three; the rest went behind them on disk.
    expect(await metric(registry, 'conduct_forward_spooled_requests_total')).toBe(total - 3);
    expect(await metric(registry, 'conduct_forward_spool_records')).toBe(total - 3);
    expect(await fwd.flush(300)).toBe(false);

    await down.listen(port);
    expect(await fwd.flush(20_000)).toBe(true);
    expect(down.received.map((r) => spanName(r.body))).toEqual(Array.from({ length: total }, (_, n) => `span-${n}`));
    expect(await metric(registry, 'conduct_forward_requests_total')).toBe(total);
    expect(await metric(registry, 'conduct_forward_spans_total')).toBe(total);
    expect(await metric(registry, 'conduct_forward_retries_total')).toBeGreaterThan(0);
    expect(await metric(registry, 'conduct_forward_dropped_requests_total')).toBe(0);
    expect(await metric(registry, 'conduct_forward_spool_records')).toBe(0);
    expect(await metric(registry, 'conduct_forward_queue_requests')).toBe(0);
  });

  it("answers 'full' once both the queue and the spool are full, and delivers everything it accepted", async () => {
    const port = await freePort();
    const record = numbered(0).length + 13;
    const { fwd, registry } = forwarder([
      {
        endpoint: `http://127.0.0.1:${port}`,
        protocol: 'http',
        queueSize: 2,
        spoolPath: path.join(tmp, 'full'),
        spoolMaxBytes: record * 3,
        retry: FAST_RETRY,
      },
    ]);
    const answers = Array.from({ length: 8 }, (_, n) => fwd.submit({ body: numbered(n), format: 'protobuf', spans: 1 }));
    expect(answers).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted', 'full', 'full', 'full']);
    expect(await metric(registry, 'conduct_forward_refused_requests_total')).toBe(3);

    const down = new HttpDownstream();
    await down.listen(port);
    cleanups.push(() => down.close());
    expect(await fwd.flush(20_000)).toBe(true);
    expect(down.received.map((r) => spanName(r.body))).toEqual(['span-0', 'span-1', 'span-2', 'span-3', 'span-4']);
    // Room again: accepted once more.
    expect(fwd.submit({ body: numbered(9), format: 'protobuf', spans: 1 })).toBe('accepted');
  });

  it('without a spool, the memory queue alone bounds what is accepted', async () => {
    const port = await freePort();
    const { fwd } = forwarder([{ endpoint: `http://127.0.0.1:${port}`, protocol: 'http', queueSize: 2, retry: FAST_RETRY }]);
    const answers = Array.from({ length: 4 }, (_, n) => fwd.submit({ body: numbered(n), format: 'protobuf', spans: 1 }));
    expect(answers).toEqual(['accepted', 'accepted', 'full', 'full']);
  });

  it('a request refused by one downstream is refused for all (no duplicates when the sender retries)', async () => {
    const up = await httpDownstream();
    const port = await freePort();
    const { fwd } = forwarder([
      { endpoint: up.url, protocol: 'http' },
      { endpoint: `http://127.0.0.1:${port}`, protocol: 'http', queueSize: 1, retry: FAST_RETRY },
    ]);
    expect(fwd.submit({ body: numbered(0), format: 'protobuf', spans: 1 })).toBe('accepted');
    expect(fwd.submit({ body: numbered(1), format: 'protobuf', spans: 1 })).toBe('full');
    // Waits for the accepted request (a fixed 200 ms wait was shorter than its delivery under load).
    await until(() => up.received.length > 0);
    expect(up.received.map((r) => spanName(r.body))).toEqual(['span-0']);
  });

  it('the spool survives a forwarder restart and is replayed first, in order', async () => {
    const port = await freePort();
    const spool = path.join(tmp, 'restart');
    const config: ForwardTargetConfig = {
      endpoint: `http://127.0.0.1:${port}`,
      protocol: 'http',
      queueSize: 4,
      spoolPath: spool,
      spoolSegmentBytes: 256, // several segment files
      drainTimeoutMs: 2_000,
      retry: FAST_RETRY,
    };
    const first = createForwarder([config], { registry: new Registry() });
    first.start();
    for (let n = 0; n < 12; n++) expect(first.submit({ body: numbered(n), format: 'protobuf', spans: 1 })).toBe('accepted');
    await first.stop();
    await first.stop(); // twice is fine
    expect(fs.readdirSync(spool).filter((f) => f.endsWith('.spool')).length).toBeGreaterThan(1);

    const down = new HttpDownstream();
    await down.listen(port);
    cleanups.push(() => down.close());
    const registry = new Registry();
    const second = createForwarder([config], { registry });
    cleanups.push(() => second.stop());
    expect(await metric(registry, 'conduct_forward_spool_records')).toBe(12);
    second.start();
    second.submit({ body: numbered(12), format: 'protobuf', spans: 1 });
    expect(await second.flush(20_000)).toBe(true);
    expect(down.received.map((r) => spanName(r.body))).toEqual(Array.from({ length: 13 }, (_, n) => `span-${n}`));
    expect(fs.readdirSync(spool).filter((f) => f.endsWith('.spool'))).toEqual([]);
  });

  it('stop without a spool drops what is left and counts it', async () => {
    const port = await freePort();
    const registry = new Registry();
    const fwd = createForwarder([{ endpoint: `http://127.0.0.1:${port}`, protocol: 'http', retry: FAST_RETRY }], { registry });
    fwd.start();
    fwd.submit({ body: numbered(0), format: 'protobuf', spans: 4 });
    fwd.submit({ body: numbered(1), format: 'protobuf', spans: 5 });
    await fwd.stop();
    expect(await metric(registry, 'conduct_forward_dropped_requests_total', { reason: 'shutdown' })).toBe(2);
    expect(await metric(registry, 'conduct_forward_dropped_spans_total', { reason: 'shutdown' })).toBe(9);
    expect(fwd.submit({ body: numbered(2), format: 'protobuf', spans: 1 })).toBe('full');
  });

  it('HTTP 400 is not retried: dropped, counted by reason, and the queue moves on', async () => {
    const down = await httpDownstream();
    down.answer = (n) => ({ status: n <= 2 ? 400 : 200 });
    const { fwd, registry } = forwarder([{ endpoint: down.url, protocol: 'http', retry: FAST_RETRY }]);
    for (let n = 0; n < 3; n++) fwd.submit({ body: numbered(n), format: 'protobuf', spans: 2 });
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received).toHaveLength(3);
    expect(await metric(registry, 'conduct_forward_dropped_requests_total', { reason: 'http-400' })).toBe(2);
    expect(await metric(registry, 'conduct_forward_dropped_spans_total', { reason: 'http-400' })).toBe(4);
    expect(await metric(registry, 'conduct_forward_retries_total')).toBe(0);
    expect(await metric(registry, 'conduct_forward_requests_total')).toBe(1);
  });

  it('HTTP 429 and 503 are retried, honouring Retry-After over a long backoff', async () => {
    const down = await httpDownstream();
    down.answer = (n) => (n === 1 ? { status: 429, headers: { 'retry-after': '0' } } : n === 2 ? { status: 503, headers: { 'retry-after': '0' } } : { status: 200 });
    // Without Retry-After the first wait would be a minute: flush could not finish in time.
    const { fwd, registry } = forwarder([{ endpoint: down.url, protocol: 'http', retry: { initialIntervalMs: 60_000 } }]);
    fwd.submit({ body: numbered(0), format: 'protobuf', spans: 1 });
    expect(await fwd.flush(20_000)).toBe(true);
    expect(down.received).toHaveLength(3);
    expect(await metric(registry, 'conduct_forward_retries_total', { reason: 'http-429' })).toBe(1);
    expect(await metric(registry, 'conduct_forward_retries_total', { reason: 'http-503' })).toBe(1);
    expect(await metric(registry, 'conduct_forward_requests_total')).toBe(1);
  });

  it('gRPC: UNAVAILABLE with RetryInfo is retried after the given delay; INVALID_ARGUMENT is dropped', async () => {
    const down = await grpcDownstream();
    down.answer = (n) => {
      if (n === 1) {
        const metadata = new grpc.Metadata();
        metadata.set('grpc-status-details-bin', Buffer.from(encodeRpcStatus({ code: 14, message: 'busy', retryDelayMs: 10 })));
        return Object.assign(new Error('busy'), { code: grpc.status.UNAVAILABLE, details: 'busy', metadata });
      }
      if (n === 3) return Object.assign(new Error('bad'), { code: grpc.status.INVALID_ARGUMENT, details: 'bad', metadata: new grpc.Metadata() });
      return null;
    };
    const { fwd, registry } = forwarder([{ endpoint: `127.0.0.1:${down.port}`, protocol: 'grpc', retry: { initialIntervalMs: 60_000 } }]);
    fwd.submit({ body: numbered(0), format: 'protobuf', spans: 1 });
    fwd.submit({ body: numbered(1), format: 'protobuf', spans: 1 });
    expect(await fwd.flush(20_000)).toBe(true);
    expect(down.received.map((r) => spanName(r.body))).toEqual(['span-0', 'span-0', 'span-1']);
    expect(await metric(registry, 'conduct_forward_retries_total', { reason: 'grpc-UNAVAILABLE' })).toBe(1);
    expect(await metric(registry, 'conduct_forward_dropped_requests_total', { reason: 'grpc-INVALID_ARGUMENT' })).toBe(1);
    expect(await metric(registry, 'conduct_forward_requests_total')).toBe(1);
  });

  it('gRPC: RESOURCE_EXHAUSTED without RetryInfo is a permanent refusal', async () => {
    const down = await grpcDownstream();
    down.answer = () => Object.assign(new Error('quota'), { code: grpc.status.RESOURCE_EXHAUSTED, details: 'quota', metadata: new grpc.Metadata() });
    const { fwd, registry } = forwarder([{ endpoint: `127.0.0.1:${down.port}`, protocol: 'grpc', retry: FAST_RETRY }]);
    fwd.submit({ body: numbered(0), format: 'protobuf', spans: 1 });
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received).toHaveLength(1);
    expect(await metric(registry, 'conduct_forward_dropped_requests_total', { reason: 'grpc-RESOURCE_EXHAUSTED' })).toBe(1);
  });

  it('gives up after retry.maxElapsedMs when configured, counting retries-exhausted', async () => {
    const port = await freePort();
    const { fwd, registry } = forwarder([
      { endpoint: `http://127.0.0.1:${port}`, protocol: 'http', retry: { ...FAST_RETRY, maxElapsedMs: 100 } },
    ]);
    fwd.submit({ body: numbered(0), format: 'protobuf', spans: 3 });
    expect(await fwd.flush(10_000)).toBe(true);
    expect(await metric(registry, 'conduct_forward_dropped_spans_total', { reason: 'retries-exhausted' })).toBe(3);
  });
});

describe('TLS to the downstream', () => {
  // Throw-away test PKI of the receiver tests: a CA, a server certificate for 127.0.0.1 and a client certificate.
  const pki = (name: string) => path.join(TESTDATA_TLS, name);
  const client = { ca: pki('ca.pem'), cert: pki('client.pem'), key: pki('client.key') };

  /** An OTLP/HTTPS downstream that requires a client certificate signed by the test CA. */
  async function httpsDownstream(): Promise<{ url: string; received: Array<{ body: Buffer; peer: string }> }> {
    const received: Array<{ body: Buffer; peer: string }> = [];
    const server = https.createServer(
      { cert: fs.readFileSync(pki('server.pem')), key: fs.readFileSync(pki('server.key')), ca: fs.readFileSync(pki('ca.pem')), requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const socket = req.socket as import('node:tls').TLSSocket;
          received.push({ body: Buffer.concat(chunks), peer: String(socket.getPeerCertificate().subject?.CN ?? '') });
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
  }

  /** An OTLP/gRPC downstream over TLS that requires a client certificate signed by the test CA. */
  async function grpcTlsDownstream(): Promise<{ port: number; received: Buffer[] }> {
    const received: Buffer[] = [];
    const server = new grpc.Server();
    server.addService(
      { Export: { path: TRACE_EXPORT_METHOD, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
      {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          received.push(call.request);
          callback(null, Buffer.alloc(0));
        },
      },
    );
    const credentials = grpc.ServerCredentials.createSsl(
      fs.readFileSync(pki('ca.pem')),
      [{ cert_chain: fs.readFileSync(pki('server.pem')), private_key: fs.readFileSync(pki('server.key')) }],
      true,
    );
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
    cleanups.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
    return { port, received };
  }

  it('HTTPS with mutual TLS: the CA verifies the downstream, the client certificate is presented, the bytes arrive unchanged', async () => {
    const down = await httpsDownstream();
    const { fwd } = forwarder([{ endpoint: down.url, protocol: 'http', tls: client }]);
    expect(fwd.submit({ body: captured.protobuf, format: 'protobuf', spans: captured.spans })).toBe('accepted');
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received).toHaveLength(1);
    expect(down.received[0]!.body.equals(captured.protobuf)).toBe(true);
    expect(down.received[0]!.peer).toBe('conduct test client');
  });

  it('HTTPS without the client certificate is refused by the downstream and retried, not delivered', async () => {
    const down = await httpsDownstream();
    const { fwd, registry } = forwarder([{ endpoint: down.url, protocol: 'http', tls: { ca: client.ca }, retry: FAST_RETRY }]);
    fwd.submit({ body: captured.protobuf, format: 'protobuf', spans: captured.spans });
    expect(await fwd.flush(500)).toBe(false);
    expect(down.received).toHaveLength(0);
    expect(await metric(registry, 'conduct_forward_retries_total')).toBeGreaterThan(0);
    expect(await metric(registry, 'conduct_forward_requests_total')).toBe(0);
  });

  it('gRPC with mutual TLS (HOST:PORT plus tls files): the message arrives byte-identical', async () => {
    const down = await grpcTlsDownstream();
    const { fwd } = forwarder([{ endpoint: `127.0.0.1:${down.port}`, protocol: 'grpc', tls: client }]);
    expect(fwd.submit({ body: captured.grpc, format: 'protobuf', spans: captured.spans })).toBe('accepted');
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received).toHaveLength(1);
    expect(down.received[0]!.equals(captured.grpc)).toBe(true);
  });
});

describe('configuration', () => {
  it('names the bad key', () => {
    expect(() => createForwarder([{ endpoint: 'localhost:4317' }, { endpoint: 'x', queueSize: 0 }])).toThrow(/forward\[1\]\.queueSize/);
    expect(() => createForwarder([{ endpoint: '' }])).toThrow(/forward\[0\]\.endpoint/);
  });

  it('the config file carries the queue, spool, drain and retry options, durations and sizes as text', () => {
    const config = parseConfig({
      forward: [
        {
          endpoint: 'tempo:4317',
          queueMaxBytes: '8MiB',
          spoolSegmentBytes: '1MiB',
          drainTimeout: '2s',
          retry: { initialInterval: '250ms', maxInterval: '10s', maxElapsed: '1h', maxRetryAfter: '1m' },
        },
        { endpoint: 'http://collector:4318', protocol: 'http' },
      ],
    });
    const [tuned, plain] = config.forward.map((c, i) => resolveForwardTarget(c, i));
    expect(tuned).toMatchObject({
      queueMaxBytes: 8 * 1024 * 1024,
      spoolSegmentBytes: 1024 * 1024,
      drainTimeoutMs: 2_000,
      retry: { initialIntervalMs: 250, maxIntervalMs: 10_000, maxElapsedMs: 3_600_000, maxRetryAfterMs: 60_000 },
    });
    expect(plain).toMatchObject({
      queueMaxBytes: DEFAULT_FORWARD_QUEUE_MAX_BYTES,
      drainTimeoutMs: DEFAULT_FORWARD_DRAIN_MS,
      retry: { initialIntervalMs: DEFAULT_RETRY_INITIAL_MS, maxElapsedMs: 0 },
    });
    expect(() => parseConfig({ forward: [{ endpoint: 'x:1', retry: { maxIntervl: '1s' } }] })).toThrow(/forward\.0\.retry|maxIntervl/);
    expect(() => parseConfig({ forward: [{ endpoint: 'x:1', drainTimeout: 'soon' }] })).toThrow(/drainTimeout/);
  });

  it('with no downstream, submit accepts and does nothing', async () => {
    const fwd = createForwarder([]);
    fwd.start();
    expect(fwd.enabled).toBe(false);
    expect(fwd.submit({ body: numbered(0), format: 'protobuf', spans: 1 })).toBe('accepted');
    expect(await fwd.flush(10)).toBe(true);
    await fwd.stop();
  });
});

describe('through conduct\'s receivers (in-line mode)', () => {
  async function conduct(configs: ForwardTargetConfig[], ingest: TraceIngest = createCollectingIngest()) {
    const registry = new Registry();
    const { fwd } = forwarder(configs, registry);
    const deps = { registry, logger: silentLogger, forwarder: fwd };
    const receiverConfig = { endpoint: '127.0.0.1:0', maxRequestBytes: 4 * 1024 * 1024 };
    const grpcReceiver = createGrpcReceiver(receiverConfig, ingest, deps);
    const httpReceiver = createHttpReceiver(receiverConfig, ingest, deps);
    const [grpcAt, httpAt] = await Promise.all([grpcReceiver.start(), httpReceiver.start()]);
    cleanups.push(() => Promise.all([grpcReceiver.stop(), httpReceiver.stop()]).then(() => undefined));
    return { fwd, registry, grpcAt, httpAt };
  }

  it('official exporters -> conduct -> downstreams: protobuf byte-identical, JSON equivalent over gRPC and identical over HTTP', async () => {
    const httpDown = await httpDownstream();
    const grpcDown = await grpcDownstream();
    const ingest = createCollectingIngest();
    const { fwd, grpcAt, httpAt } = await conduct(
      [
        { endpoint: httpDown.url, protocol: 'http' },
        { endpoint: `127.0.0.1:${grpcDown.port}`, protocol: 'grpc' },
      ],
      ingest,
    );
    await exportOnce(new HttpProtoExporter({ url: `http://${httpAt}/v1/traces` }), captured.sdkSpans);
    await exportOnce(new HttpJsonExporter({ url: `http://${httpAt}/v1/traces` }), captured.sdkSpans);
    await exportOnce(new GrpcExporter({ url: `http://${grpcAt}` }), captured.sdkSpans);
    expect(await fwd.flush(10_000)).toBe(true);

    expect(httpDown.received).toHaveLength(3);
    expect(httpDown.received[0]!.body.equals(captured.protobuf)).toBe(true);
    expect(httpDown.received[1]!.body.equals(captured.json)).toBe(true);
    expect(httpDown.received[1]!.headers['content-type']).toBe('application/json');
    expect(httpDown.received[2]!.body.equals(captured.grpc)).toBe(true);

    expect(grpcDown.received).toHaveLength(3);
    expect(grpcDown.received[0]!.body.equals(captured.protobuf)).toBe(true);
    expect(canonical(grpcDown.received[1]!.body)).toEqual(canonical(captured.protobuf));
    expect(grpcDown.received[2]!.body.equals(captured.grpc)).toBe(true);
    // The analysis got them too.
    expect(ingest.spans().length).toBe(3 * captured.spans);
  });

  it('gzip in, gzip out: the HTTP receiver passes the compressed bytes on as they arrived', async () => {
    const asIs = await httpDownstream();
    const gzipped = await httpDownstream();
    const plain = await httpDownstream();
    const ingest = createCollectingIngest();
    const { fwd, httpAt } = await conduct(
      [
        { endpoint: asIs.url, protocol: 'http' },
        { endpoint: gzipped.url, protocol: 'http', compression: 'gzip' },
        { endpoint: plain.url, protocol: 'http', compression: 'none' },
      ],
      ingest,
    );
    // The official exporter compresses; a second request is gzip made here at another level, so
    // re-compressing in conduct could not reproduce both byte streams by chance.
    await exportOnce(new HttpProtoExporter({ url: `http://${httpAt}/v1/traces`, compression: 'gzip' as never }), captured.sdkSpans);
    const unusual = zlib.gzipSync(captured.protobuf, { level: 1 });
    const posted = await fetch(`http://${httpAt}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' },
      body: unusual,
    });
    expect(posted.status).toBe(200);
    expect(await fwd.flush(10_000)).toBe(true);

    for (const down of [asIs, gzipped]) {
      expect(down.received).toHaveLength(2);
      expect(down.received.map((r) => r.headers['content-encoding'])).toEqual(['gzip', 'gzip']);
      expect(down.received[0]!.body.equals(captured.protobufGzip)).toBe(true);
      expect(down.received[1]!.body.equals(unusual)).toBe(true);
    }
    expect(plain.received.map((r) => r.body.equals(captured.protobuf))).toEqual([true, true]);
    expect(ingest.spans().length).toBe(2 * captured.spans);
  });

  it('an analysis that fails does not block forwarding: the sender is acknowledged, the downstream gets the request', async () => {
    const down = await httpDownstream();
    const failing: TraceIngest = {
      accept: async () => {
        throw new Error('analysis is down');
      },
    };
    const { fwd, httpAt } = await conduct([{ endpoint: down.url, protocol: 'http' }], failing);
    await exportOnce(new HttpProtoExporter({ url: `http://${httpAt}/v1/traces` }), captured.sdkSpans);
    expect(await fwd.flush(10_000)).toBe(true);
    expect(down.received).toHaveLength(1);
    expect(down.received[0]!.body.equals(captured.protobuf)).toBe(true);
  });

  it('answers 503 with Retry-After (HTTP) and UNAVAILABLE (gRPC) once the forwarder is full, so the sender keeps the data', async () => {
    const port = await freePort();
    const { httpAt, grpcAt } = await conduct([{ endpoint: `http://127.0.0.1:${port}`, protocol: 'http', queueSize: 1, retry: FAST_RETRY }]);
    const post = () =>
      fetch(`http://${httpAt}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: captured.protobuf as Uint8Array<ArrayBuffer> });
    expect((await post()).status).toBe(200);
    const refused = await post();
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);

    const client = new grpc.Client(grpcAt, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const code = await new Promise<number>((resolve) =>
      client.makeUnaryRequest(TRACE_EXPORT_METHOD, raw, raw, captured.grpc, new grpc.Metadata(), {}, (err) => resolve(err ? err.code : 0)),
    );
    expect(code).toBe(grpc.status.UNAVAILABLE);
  });
});
