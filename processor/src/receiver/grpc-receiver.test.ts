import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { silentLogger } from '../model.js';
import { createCollectingIngest, createGrpcReceiver, DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES, type Receiver } from './index.js';
import { hexId, lenField, rawExport, readExportResponse, readRpcStatus, traceRequest, varintField } from './testdata/otlp-wire.js';

/** Bad and hostile input over a raw grpc-js client: each gets the right status, and the server keeps serving. */

const MAX_BYTES = 1024 * 1024;
const ingest = createCollectingIngest();
const registry = new Registry();
let receiver: Receiver;
let client: grpc.Client;
let gzipClient: grpc.Client;
let endpoint: string;

beforeAll(async () => {
  receiver = createGrpcReceiver({ endpoint: '127.0.0.1:0', maxRequestBytes: MAX_BYTES }, ingest, { registry, logger: silentLogger });
  endpoint = await receiver.start();
  client = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  gzipClient = new grpc.Client(endpoint, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip });
});

afterAll(async () => {
  client.close();
  gzipClient.close();
  await receiver.stop();
});

afterEach(() => {
  ingest.setOverloaded(false);
});

const span = (name = 'op') => ({ traceId: hexId(16), spanId: hexId(8), name, attributes: { 'user.id': 'carol' } });

async function expectStillServes(): Promise<void> {
  const s = span('still-serving');
  const answer = await rawExport(client, traceRequest('checker', [s]));
  expect(answer.error).toBeUndefined();
  expect(ingest.spans().some((x) => x.spanId === s.spanId)).toBe(true);
}

describe('OTLP/gRPC receiver', () => {
  it('accepts an export and answers an empty ExportTraceServiceResponse', async () => {
    const s = span('grpc-op');
    const answer = await rawExport(client, traceRequest('ledger', [s]));
    expect(answer.error).toBeUndefined();
    expect(readExportResponse(answer.response!)).toEqual({ rejectedSpans: 0, errorMessage: '' });
    const got = ingest.spans().find((x) => x.spanId === s.spanId);
    expect(got?.name).toBe('grpc-op');
    expect(got?.attributes['user.id']).toBe('carol');
    expect(got?.resource['service.name']).toBe('ledger');
  });

  it('accepts a gzip-compressed export', async () => {
    const s = span('gzip-op');
    const answer = await rawExport(gzipClient, traceRequest('ledger', [s]));
    expect(answer.error).toBeUndefined();
    expect(ingest.spans().some((x) => x.spanId === s.spanId)).toBe(true);
  });

  it('answers an empty request with success', async () => {
    const answer = await rawExport(client, Buffer.alloc(0));
    expect(answer.error).toBeUndefined();
  });

  it('reports partial success for spans without a valid trace id', async () => {
    const answer = await rawExport(client, traceRequest('ledger', [span('kept'), { ...span('bad'), traceId: '' }]));
    expect(answer.error).toBeUndefined();
    const partial = readExportResponse(answer.response!);
    expect(partial.rejectedSpans).toBe(1);
    expect(partial.errorMessage).toMatch(/trace id/);
  });

  it('INVALID_ARGUMENT for truncated protobuf, random bytes and wrong wire types', async () => {
    const full = traceRequest('ledger', [span()]);
    let seed = 7;
    const random = Buffer.from(Array.from({ length: 4096 }, () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff));
    for (const body of [full.subarray(0, full.length - 3), random, varintField(1, 9), lenField(1, lenField(2, varintField(2, 7)))]) {
      const answer = await rawExport(client, body);
      expect(answer.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(answer.error?.details).toMatch(/decode/);
    }
    await expectStillServes();
  });

  it('RESOURCE_EXHAUSTED for a message over the limit', async () => {
    const answer = await rawExport(client, Buffer.alloc(MAX_BYTES + 1));
    expect(answer.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await expectStillServes();
  });

  it('RESOURCE_EXHAUSTED for a gzip bomb (a small compressed message that inflates past the limit)', async () => {
    // 32 MiB of zeros compresses to about 32 KiB on the wire.
    const answer = await rawExport(gzipClient, Buffer.alloc(32 * 1024 * 1024));
    expect(answer.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await expectStillServes();
  });

  it('UNAVAILABLE with a google.rpc.Status carrying RetryInfo when the ingest is overloaded', async () => {
    ingest.setOverloaded(true, 3_000);
    const answer = await rawExport(client, traceRequest('ledger', [span()]));
    expect(answer.error?.code).toBe(grpc.status.UNAVAILABLE);
    const details = answer.error?.metadata.get('grpc-status-details-bin')[0];
    expect(Buffer.isBuffer(details)).toBe(true);
    const status = readRpcStatus(details as Buffer);
    expect(status.code).toBe(grpc.status.UNAVAILABLE);
    expect(status.retryDelayMs).toBe(3_000);
    ingest.setOverloaded(false);
    await expectStillServes();
  });

  it('counts every final status, including those grpc-js sends itself', async () => {
    const text = await registry.metrics();
    expect(text).toMatch(/conduct_receiver_requests_total\{protocol="grpc",code="RESOURCE_EXHAUSTED"\} 2/);
    expect(text).toMatch(/conduct_receiver_requests_total\{protocol="grpc",code="INVALID_ARGUMENT"\} 4/);
    expect(text).toMatch(/conduct_receiver_requests_total\{protocol="grpc",code="UNAVAILABLE"\} 1/);
    expect(text).toMatch(/conduct_receiver_requests_rejected_total\{protocol="grpc",reason="too-large"\} 2/);
    expect(text).toMatch(/conduct_receiver_requests_rejected_total\{protocol="grpc",reason="overloaded"\} 1/);
    expect(text).toMatch(/conduct_receiver_spans_rejected_total\{protocol="grpc",reason="invalid-span"\} 1/);
  });

  it('advertises raised HTTP/2 flow-control windows (stream and connection)', async () => {
    const session = http2.connect(`http://${endpoint}`);
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('connect', () => resolve());
        session.once('error', reject);
      });
      // The server's second SETTINGS frame and its WINDOW_UPDATE precede its answer to a ping.
      await new Promise<void>((resolve, reject) => session.ping((error) => (error ? reject(error) : resolve())));
      expect(session.remoteSettings.initialWindowSize).toBe(DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES);
      expect(session.state.remoteWindowSize).toBeGreaterThanOrEqual(DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES);
    } finally {
      session.close();
    }
  });

  it('keeps no channelz records (a registry entry per server and socket, and counters per call, for a service it does not serve)', async () => {
    await expectStillServes();
    type Servers = { server: unknown[] };
    const handlers = grpc.getChannelzHandlers() as unknown as { GetServers(call: { request: object }, done: (err: Error | null, value?: Servers) => void): void };
    const listed = await new Promise<Servers>((resolve, reject) => handlers.GetServers({ request: { start_server_id: 0, max_results: 100 } }, (err, value) => (err ? reject(err) : resolve(value!))));
    expect(listed.server).toEqual([]);
  });

  it('stop is graceful, idempotent, and safe without start', async () => {
    const unstarted = createGrpcReceiver({ endpoint: '127.0.0.1:0', maxRequestBytes: MAX_BYTES }, ingest, { registry, logger: silentLogger });
    await unstarted.stop();
    await unstarted.stop();

    const other = createGrpcReceiver({ endpoint: '127.0.0.1:0', maxRequestBytes: MAX_BYTES }, ingest, { registry, logger: silentLogger });
    const endpoint = await other.start();
    const otherClient = new grpc.Client(endpoint, grpc.credentials.createInsecure());
    try {
      expect((await rawExport(otherClient, traceRequest('x', [span()]))).error).toBeUndefined();
      await Promise.all([other.stop(), other.stop()]);
      const after = await rawExport(otherClient, traceRequest('x', [span()]), new grpc.Metadata(), { deadline: Date.now() + 2_000 });
      expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]).toContain(after.error?.code);
    } finally {
      otherClient.close();
    }
  });
});
