/**
 * Issue 8, overload: when the consumer falls behind, the receivers answer retryable codes (HTTP
 * 503 + Retry-After, gRPC UNAVAILABLE with RetryInfo) instead of queueing without bound; the
 * queue and the heap stay under their limits; when the load drops, ingest recovers by itself and
 * everything acknowledged is consumed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { encodeTracesRequest } from '@conduct/proto';
import {
  createCollectingConsumer,
  createGatedConsumer,
  createGrpcReceiver,
  createPipelineThread,
  createHttpReceiver,
  createPipeline,
  silentLogger,
  TRACE_EXPORT_PATH,
  type ChainBatch,
  type ChainConsumer,
  type Pipeline,
  type Receiver,
} from '@conduct/processor';
import { createJournal, type Journal } from '@conduct/backend';
import { counterSum } from './support/harness.js';
import { post, randomHex, seededRandom } from './support/wire.js';

const MAX_QUEUED_BATCHES = 4;
const HEAP_LIMIT = 512 * 1024 * 1024;
const rand = seededRandom(4);
const T0_NS = 1_790_000_000_000_000_000n;

/** A consumer that takes `delayMs` per batch: the slow back end of the test. */
function slowConsumer(delayMs: number): ChainConsumer & { chains: () => ChainBatch['chains'] } {
  const inner = createCollectingConsumer();
  return {
    async consume(batch) {
      await new Promise((r) => setTimeout(r, delayMs));
      await inner.consume(batch);
    },
    chains: () => inner.chains(),
  };
}

function request(traceId = randomHex(rand, 16)) {
  const body = encodeTracesRequest({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'load' } }] },
        scopeSpans: [
          {
            spans: [0, 1, 2].map((i) => ({
              traceId: Buffer.from(traceId, 'hex'),
              spanId: Buffer.from(randomHex(rand, 8), 'hex'),
              name: 'GET /x',
              kind: 3,
              startTimeUnixNano: String(T0_NS + BigInt(i) * 1_000_000n),
              endTimeUnixNano: String(T0_NS + BigInt(i) * 1_000_000n + 1000n),
              attributes: [
                { key: 'enduser.id', value: { stringValue: 'loader' } },
                { key: 'server.address', value: { stringValue: 'svc.internal' } },
              ],
            })),
          },
        ],
      },
    ],
  } as never);
  return { traceId, body: Buffer.from(body) };
}

let dir: string;
let registry: Registry;
let pipeline: Pipeline;
let journal: Journal;
let consumer: ReturnType<typeof slowConsumer>;
let httpReceiver: Receiver;
let grpcReceiver: Receiver;
let httpAddress: string;
let grpcAddress: string;
/** The heap reading the memory guard sees (a test option of the journal). */
let fakeHeap = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conduct-overload-'));
  registry = new Registry();
  journal = createJournal({ dir: join(dir, 'conduct.db.journal'), registry, maxMemoryBytes: HEAP_LIMIT, heapUsed: () => fakeHeap, retryAfterMs: 1_000 });
  consumer = slowConsumer(40);
  pipeline = createPipeline({
    // Every trace completes after 20 ms of quiet, so the slow consumer sees a steady stream.
    stitching: { idleMs: 20, latenessMs: 3_600_000, maxPendingSpans: 100_000 },
    consumer: journal.consumer(consumer),
    onBatch: journal.onBatch,
    registry,
    maxQueuedBatches: MAX_QUEUED_BATCHES,
  });
  const ingest = journal.ingest(pipeline);
  const deps = { registry, logger: silentLogger };
  httpReceiver = createHttpReceiver({ endpoint: '127.0.0.1:0', maxRequestBytes: 1 << 20 }, ingest, deps);
  grpcReceiver = createGrpcReceiver({ endpoint: '127.0.0.1:0', maxRequestBytes: 1 << 20 }, ingest, deps);
  httpAddress = await httpReceiver.start();
  grpcAddress = await grpcReceiver.start();
});

afterAll(async () => {
  await Promise.all([httpReceiver?.stop(), grpcReceiver?.stop()]);
  await pipeline?.stop();
  await journal?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('overload', () => {
  it('a lagging consumer gets 503 + Retry-After with a bounded queue, and ingest recovers when the load drops', async () => {
    const acked: string[] = [];
    const codes = new Map<number, number>();
    let retryAfter: string | undefined;
    let maxQueued = 0;
    const sampler = setInterval(() => (maxQueued = Math.max(maxQueued, pipeline.stats().queuedBatches)), 5);

    // 16 senders without pause for 200 requests each: far past a 40 ms-per-batch consumer.
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = 0; i < 200; i++) {
          const r = request();
          const res = await post(httpAddress, '/v1/traces', { 'content-type': 'application/x-protobuf' }, r.body);
          codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
          if (res.status === 200) acked.push(r.traceId);
          if (res.status === 503) retryAfter ??= String(res.headers['retry-after']);
          // Spread the traces over time so that they complete one small batch after another.
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      }),
    );
    clearInterval(sampler);

    expect(codes.get(503) ?? 0).toBeGreaterThan(0);
    expect(retryAfter).toBe('1');
    expect([...codes.keys()].every((c) => c === 200 || c === 503)).toBe(true);
    // New spans stop at MAX_QUEUED_BATCHES; traces already pending then may still complete into
    // the queue (one idle tick's worth), so the queue stays within a small multiple of the limit
    // instead of growing with the offered load.
    expect(maxQueued).toBeGreaterThanOrEqual(MAX_QUEUED_BATCHES);
    expect(maxQueued).toBeLessThanOrEqual(2 * MAX_QUEUED_BATCHES);
    const metrics = await registry.metrics();
    expect(counterSum(metrics, 'conduct_receiver_requests_total', { protocol: 'http', code: '503' })).toBe(codes.get(503));
    expect(counterSum(metrics, 'conduct_pipeline_refused_total', { reason: 'overloaded' })).toBeGreaterThan(0);

    // The load dropped: ingest answers 200 again by itself.
    let recovered = false;
    for (let i = 0; i < 200 && !recovered; i++) {
      const r = request();
      const res = await post(httpAddress, '/v1/traces', { 'content-type': 'application/x-protobuf' }, r.body);
      if (res.status === 200) {
        recovered = true;
        acked.push(r.traceId);
      } else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(recovered).toBe(true);

    // Everything acknowledged reaches the consumer; nothing was lost by refusing.
    await pipeline.flush();
    const consumed = new Set(consumer.chains().map((c) => c.traceId));
    expect(acked.filter((t) => !consumed.has(t))).toEqual([]);
    expect(journal.stats().entries).toBe(0);
  }, 120_000);

  it('above the heap limit both receivers refuse with retry info, and accept again below it', async () => {
    fakeHeap = HEAP_LIMIT + 1;
    await new Promise((r) => setTimeout(r, 150)); // the guard reads the heap at most every 100 ms

    const httpRes = await post(httpAddress, '/v1/traces', { 'content-type': 'application/x-protobuf' }, request().body);
    expect(httpRes.status).toBe(503);
    expect(httpRes.headers['retry-after']).toBe('1');

    const client = new grpc.Client(grpcAddress, grpc.credentials.createInsecure());
    const exportOnce = () =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        client.makeUnaryRequest(
          TRACE_EXPORT_PATH,
          (b: Buffer) => b,
          (b: Buffer) => b,
          request().body,
          (err) => resolve(err),
        );
      });
    const err = await exportOnce();
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(err?.metadata.get('grpc-status-details-bin').length).toBe(1);

    const metrics = await registry.metrics();
    expect(counterSum(metrics, 'conduct_ingest_memory_refused_total')).toBeGreaterThanOrEqual(2);

    fakeHeap = 0;
    await new Promise((r) => setTimeout(r, 150));
    expect((await post(httpAddress, '/v1/traces', { 'content-type': 'application/x-protobuf' }, request().body)).status).toBe(200);
    expect(await exportOnce()).toBeNull();
    client.close();
  });
});

describe('overload on the pipeline thread (as serve runs it)', () => {
  it('refuses over HTTP and gRPC before decoding while the queue for the store is full, and accepts once it drains', async () => {
    const threadDir = mkdtempSync(join(tmpdir(), 'conduct-overload-thread-'));
    const threadRegistry = new Registry();
    const threadJournal = createJournal({ dir: join(threadDir, 'conduct.db.journal'), registry: threadRegistry });
    const gated = createGatedConsumer();
    // One pending span at most: a request's second trace completes its first at once, and that
    // trace's three spans fill the queue for the (held) consumer.
    const thread = createPipelineThread({
      stitching: { idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 1 },
      consumer: threadJournal.consumer(gated),
      onBatch: threadJournal.onBatch,
      maxQueuedSpans: 1,
    });
    const ingest = threadJournal.ingest(thread);
    const deps = { registry: threadRegistry, logger: silentLogger };
    const http = createHttpReceiver({ endpoint: '127.0.0.1:0', maxRequestBytes: 1 << 20 }, ingest, deps);
    const grpcReceiver = createGrpcReceiver({ endpoint: '127.0.0.1:0', maxRequestBytes: 1 << 20 }, ingest, deps);
    const address = await http.start();
    const client = new grpc.Client(await grpcReceiver.start(), grpc.credentials.createInsecure());
    const exportOnce = (body: Buffer) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        client.makeUnaryRequest(TRACE_EXPORT_PATH, (b: Buffer) => b, (b: Buffer) => b, body, (err) => resolve(err));
      });
    const twoTraces = () => {
      const a = request();
      const b = request();
      return { traceIds: [a.traceId, b.traceId], body: Buffer.concat([a.body, b.body]) };
    };
    const protobuf = { 'content-type': 'application/x-protobuf' };
    try {
      await thread.started();
      const first = twoTraces();
      expect((await post(address, '/v1/traces', protobuf, first.body)).status).toBe(200);
      await vi.waitFor(() => expect(gated.held).toBe(1), { timeout: 10_000, interval: 10 });

      const refused = await post(address, '/v1/traces', protobuf, twoTraces().body);
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      const err = await exportOnce(twoTraces().body);
      expect(err?.code).toBe(grpc.status.UNAVAILABLE);
      expect(err?.metadata.get('grpc-status-details-bin').length).toBe(1);
      const workerMetrics = await thread.metrics();
      expect(counterSum(workerMetrics, 'conduct_pipeline_refused_total', { reason: 'overloaded' })).toBe(2);
      // Refused before decoding: only the first request's spans were taken in.
      expect(counterSum(workerMetrics, 'conduct_pipeline_spans_total')).toBe(6);

      gated.releaseAll();
      // Each accepted request completes a trace that fills the one-span queue again until the
      // consumer's acknowledgement reaches the pipeline thread, so each transport retries as a
      // client would until its request is accepted.
      await vi.waitFor(async () => expect((await post(address, '/v1/traces', protobuf, twoTraces().body)).status).toBe(200), { timeout: 10_000, interval: 50 });
      await vi.waitFor(async () => expect(await exportOnce(twoTraces().body)).toBeNull(), { timeout: 10_000, interval: 50 });
      await thread.flush();
      // Every acknowledged trace reached the consumer, the refused ones were not acknowledged.
      const consumed = new Set(gated.chains().map((c) => c.traceId));
      for (const t of first.traceIds) expect(consumed.has(t)).toBe(true);
      expect(threadJournal.stats().entries).toBe(0);
    } finally {
      client.close();
      await Promise.all([http.stop(), grpcReceiver.stop()]);
      await thread.stop();
      await threadJournal.stop();
      rmSync(threadDir, { recursive: true, force: true });
    }
  }, 60_000);
});
