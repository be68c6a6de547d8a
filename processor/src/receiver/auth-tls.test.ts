import { readFileSync } from 'node:fs';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as HttpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { Logger } from '../model.js';
import { createCollectingIngest, createGrpcReceiver, createHttpReceiver, ReceiverConfigError, type Receiver, type ReceiverConfig } from './index.js';
import { hexId, rawExport, rawHttp, traceRequest, type RawResponse } from './testdata/otlp-wire.js';

/** Bearer tokens, TLS and mutual TLS on both receivers; the token never reaches the log. */

const TOKEN = 's3cret-token-for-tests-only';
/** ExportResultCode of @opentelemetry/core (not a direct dependency here). */
const ExportResultCode = { SUCCESS: 0, FAILED: 1 } as const;
const fixture = (name: string) => fileURLToPath(new URL(`./testdata/${name}`, import.meta.url));
const CA = readFileSync(fixture('ca.pem'));
const CLIENT_CERT = readFileSync(fixture('client.pem'));
const CLIENT_KEY = readFileSync(fixture('client.key'));
const serverTls = (clientAuth: boolean) => ({ cert: fixture('server.pem'), key: fixture('server.key'), ca: fixture('ca.pem'), clientAuth });

/** A logger that keeps every record, to check what was (and was not) logged. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const record = (obj: object | string, msg?: string) => lines.push(JSON.stringify([obj, msg]));
  return { lines, debug: record, info: record, warn: record, error: record };
}

const running: Receiver[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

async function startBoth(config: Partial<ReceiverConfig>) {
  const ingest = createCollectingIngest();
  const logger = recordingLogger();
  const registry = new Registry();
  const full = { endpoint: '127.0.0.1:0', maxRequestBytes: 1024 * 1024, ...config };
  const grpcReceiver = createGrpcReceiver(full, ingest, { registry, logger });
  const httpReceiver = createHttpReceiver(full, ingest, { registry, logger });
  running.push(grpcReceiver, httpReceiver);
  const [grpcEndpoint, httpEndpoint] = await Promise.all([grpcReceiver.start(), httpReceiver.start()]);
  return { ingest, logger, registry, grpcEndpoint, httpEndpoint };
}

/** Two real SDK spans, captured in memory so they can be handed to any exporter. */
async function sdkSpans(): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'deployer' }), spanProcessors: [new SimpleSpanProcessor(memory)] });
  const tracer = provider.getTracer('auth-test');
  tracer.startSpan('deploy').end();
  tracer.startSpan('rollout').end();
  await provider.forceFlush();
  const spans = memory.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

function exportWith(exporter: SpanExporter, spans: ReadableSpan[]): Promise<number> {
  return new Promise((resolve) => exporter.export(spans, (result) => resolve(result.code))).finally(() => exporter.shutdown()) as Promise<number>;
}

function httpsPost(endpoint: string, options: https.RequestOptions, body: Buffer): Promise<RawResponse> {
  const [host, port] = endpoint.split(':');
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port: Number(port), method: 'POST', path: '/v1/traces', agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const span = () => ({ traceId: hexId(16), spanId: hexId(8), name: 'op' });
const PROTOBUF = { 'Content-Type': 'application/x-protobuf' };

describe('bearer token', () => {
  it('HTTP: 401 with a clear message for a missing or wrong token, 200 with the right one', async () => {
    const { httpEndpoint, ingest, logger, registry } = await startBoth({ auth: { token: TOKEN } });
    const body = traceRequest('deployer', [span()]);

    const missing = await rawHttp(httpEndpoint, { headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    expect(JSON.parse(missing.body.toString()).message).toMatch(/bearer token/);

    const wrong = await rawHttp(httpEndpoint, { headers: { ...PROTOBUF, Authorization: `Bearer ${TOKEN}x` }, body });
    expect(wrong.status).toBe(401);
    const wrongScheme = await rawHttp(httpEndpoint, { headers: { ...PROTOBUF, Authorization: `Basic ${TOKEN}` }, body });
    expect(wrongScheme.status).toBe(401);
    expect(ingest.requests).toHaveLength(0);

    const right = await rawHttp(httpEndpoint, { headers: { ...PROTOBUF, Authorization: `bearer ${TOKEN}` }, body });
    expect(right.status).toBe(200);
    expect(ingest.requests).toHaveLength(1);

    expect(await registry.metrics()).toMatch(/conduct_receiver_requests_rejected_total\{protocol="http",reason="unauthenticated"\} 3/);
    expect(logger.lines.join('\n')).not.toContain(TOKEN);
  });

  it('gRPC: UNAUTHENTICATED for a missing or wrong token, OK with the right one', async () => {
    const { grpcEndpoint, ingest, logger } = await startBoth({ auth: { token: TOKEN } });
    const client = new grpc.Client(grpcEndpoint, grpc.credentials.createInsecure());
    try {
      const missing = await rawExport(client, traceRequest('deployer', [span()]));
      expect(missing.error?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(missing.error?.details).toMatch(/bearer token/);

      const wrong = new grpc.Metadata();
      wrong.set('authorization', 'Bearer nope');
      expect((await rawExport(client, traceRequest('deployer', [span()]), wrong)).error?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(ingest.requests).toHaveLength(0);

      const right = new grpc.Metadata();
      right.set('authorization', `Bearer ${TOKEN}`);
      expect((await rawExport(client, traceRequest('deployer', [span()]), right)).error).toBeUndefined();
      expect(ingest.requests).toHaveLength(1);
    } finally {
      client.close();
    }
    expect(logger.lines.join('\n')).not.toContain(TOKEN);
  });

  it('the official exporters succeed with the token and fail without it', async () => {
    const { grpcEndpoint, httpEndpoint, ingest } = await startBoth({ auth: { token: TOKEN } });
    const spans = await sdkSpans();
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${TOKEN}`);

    expect(await exportWith(new GrpcExporter({ url: `http://${grpcEndpoint}`, metadata }), spans)).toBe(ExportResultCode.SUCCESS);
    expect(await exportWith(new HttpProtoExporter({ url: `http://${httpEndpoint}/v1/traces`, headers: { Authorization: `Bearer ${TOKEN}` } }), spans)).toBe(ExportResultCode.SUCCESS);
    expect(ingest.spans()).toHaveLength(4);

    expect(await exportWith(new GrpcExporter({ url: `http://${grpcEndpoint}` }), spans)).toBe(ExportResultCode.FAILED);
    expect(await exportWith(new HttpProtoExporter({ url: `http://${httpEndpoint}/v1/traces` }), spans)).toBe(ExportResultCode.FAILED);
    expect(ingest.spans()).toHaveLength(4);
  });
});

describe('TLS', () => {
  it('HTTPS and gRPC over TLS accept clients that trust the CA', async () => {
    const { grpcEndpoint, httpEndpoint, ingest, logger } = await startBoth({ tls: serverTls(false) });
    const res = await httpsPost(httpEndpoint, { ca: CA, headers: PROTOBUF, servername: 'localhost' }, traceRequest('deployer', [span()]));
    expect(res.status).toBe(200);

    const client = new grpc.Client(grpcEndpoint, grpc.credentials.createSsl(CA), { 'grpc.ssl_target_name_override': 'localhost' });
    try {
      expect((await rawExport(client, traceRequest('deployer', [span()]))).error).toBeUndefined();
    } finally {
      client.close();
    }
    expect(ingest.requests).toHaveLength(2);
    expect(logger.lines.some((line) => line.includes('"tls":true') && line.includes(httpEndpoint))).toBe(true);
  });

  it('mutual TLS refuses clients without a certificate and accepts the official exporters with one', async () => {
    const { grpcEndpoint, httpEndpoint, ingest } = await startBoth({ tls: serverTls(true), auth: { token: TOKEN } });
    const body = traceRequest('deployer', [span()]);

    await expect(httpsPost(httpEndpoint, { ca: CA, headers: PROTOBUF, servername: 'localhost' }, body)).rejects.toThrow();
    const noCert = new grpc.Client(grpcEndpoint, grpc.credentials.createSsl(CA), { 'grpc.ssl_target_name_override': 'localhost' });
    try {
      const answer = await rawExport(noCert, body, new grpc.Metadata(), { deadline: Date.now() + 5_000 });
      expect(answer.error).toBeDefined();
    } finally {
      noCert.close();
    }
    expect(ingest.requests).toHaveLength(0);

    const spans = await sdkSpans();
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${TOKEN}`);
    const grpcExporter = new GrpcExporter({
      url: `https://localhost:${grpcEndpoint.split(':')[1]}`,
      credentials: grpc.credentials.createSsl(CA, CLIENT_KEY, CLIENT_CERT),
      metadata,
    });
    expect(await exportWith(grpcExporter, spans)).toBe(ExportResultCode.SUCCESS);
    const httpExporter = new HttpProtoExporter({
      url: `https://localhost:${httpEndpoint.split(':')[1]}/v1/traces`,
      headers: { Authorization: `Bearer ${TOKEN}` },
      httpAgentOptions: { ca: CA, cert: CLIENT_CERT, key: CLIENT_KEY, family: 4 },
    });
    expect(await exportWith(httpExporter, spans)).toBe(ExportResultCode.SUCCESS);
    expect(ingest.spans()).toHaveLength(4);
  });

  it('refuses a config that asks for client certificates without a CA, naming the key', () => {
    const ingest = createCollectingIngest();
    const deps = { registry: new Registry(), logger: recordingLogger() };
    const config = { endpoint: '127.0.0.1:0', maxRequestBytes: 1024, tls: { cert: 'a', key: 'b', clientAuth: true } };
    expect(() => createHttpReceiver(config, ingest, deps)).toThrow(ReceiverConfigError);
    expect(() => createGrpcReceiver(config, ingest, deps)).toThrow(/receivers\.grpc\.tls\.ca/);
    expect(() => createHttpReceiver({ ...config, tls: undefined, endpoint: 'nope' }, ingest, deps)).toThrow(/receivers\.http\.endpoint/);
  });
});
