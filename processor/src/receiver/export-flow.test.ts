/**
 * The export flow's raw path with a real pipeline thread: the bytes the thread gives back for a
 * request are released once the request is answered.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { RawRequest, TraceIngest } from '../model.js';
import { silentLogger } from '../model.js';
import { createCollectingConsumer } from '../pipeline/testing.js';
import { createPipelineThread, type PipelineThread } from '../pipeline/thread.js';
import { createExportFlow } from './export-flow.js';
import { createReceiverMetrics } from './metrics.js';
import { hexId, traceRequest } from './testdata/otlp-wire.js';

const threads: PipelineThread[] = [];
afterEach(async () => {
  await Promise.all(threads.splice(0).map((t) => t.stop()));
});

/** The thread as the ingest, keeping each request it was handed. */
function startIngest() {
  const consumer = createCollectingConsumer();
  const thread = createPipelineThread({ stitching: { idleMs: 60_000, latenessMs: 60_000, maxPendingSpans: 10_000 }, consumer });
  threads.push(thread);
  const seen: RawRequest[] = [];
  const ingest: TraceIngest = {
    ...(thread.keep ? { keep: thread.keep } : {}),
    accept: (data) => thread.accept(data),
    acceptRaw: (raw, limits, onAccepted) => {
      seen.push(raw);
      return thread.acceptRaw(raw, limits, onAccepted);
    },
  };
  return { thread, consumer, ingest, seen };
}

describe('export flow, raw path', () => {
  it('releases the bytes a pipeline thread gave back once the request is answered, and keeps the spans', async () => {
    const { thread, consumer, ingest, seen } = startIngest();
    const flow = createExportFlow(ingest, createReceiverMetrics(new Registry()), silentLogger);
    const traceId = hexId(16);
    const body = traceRequest('payments', [{ traceId, spanId: hexId(8), name: 'GET /pay', attributes: { 'http.request.method': 'GET', 'enduser.id': 'deployer' } }]);
    expect(await flow('http', 'protobuf', Buffer.from(body))).toEqual({ kind: 'ok', rejectedSpans: 0, errorMessage: '' });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.returned).toBe(true);
    expect(seen[0]!.body.buffer.byteLength).toBe(0);
    // An invalid body comes back too, and goes the same way.
    expect((await flow('http', 'protobuf', Buffer.from('not protobuf at all'))).kind).toBe('invalid');
    expect(seen[1]!.returned).toBe(true);
    expect(seen[1]!.body.buffer.byteLength).toBe(0);
    await thread.flush();
    expect(consumer.chains().map((c) => c.traceId)).toEqual([traceId]);
  });

  it('times each request from its body to its outcome, answered or refused, by protocol', async () => {
    const registry = new Registry();
    let release: (() => void) | undefined;
    let refuse = false;
    // An ingest that holds each request until the test lets it go.
    const held: TraceIngest = {
      accept: async () => ({ ok: true }),
      acceptRaw: async () => {
        await new Promise<void>((resolve) => (release = resolve));
        return refuse
          ? { kind: 'refused', outcome: { ok: false, reason: 'queue-full', retryAfterMs: 1_000 } }
          : { kind: 'decoded', outcome: { ok: true }, spanCount: 1, rejectedSpans: 0, rejectMessage: '' };
      },
    };
    const flow = createExportFlow(held, createReceiverMetrics(registry), silentLogger);
    const body = () => Buffer.from(traceRequest('payments', [{ traceId: hexId(16), spanId: hexId(8), name: 'GET /pay', attributes: {} }]));
    const holdFor = async (answer: Promise<unknown>, ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      release!();
      return answer;
    };
    expect(await holdFor(flow('http', 'protobuf', body()), 60)).toMatchObject({ kind: 'ok' });
    refuse = true;
    expect(await holdFor(flow('grpc', 'protobuf', body()), 60)).toMatchObject({ kind: 'overloaded' });
    const values = (await registry.getSingleMetricAsString('conduct_receiver_request_duration_seconds')).split('\n');
    const value = (line: string) => Number(values.find((l) => l.startsWith(line))?.split(' ').at(-1));
    expect(value('conduct_receiver_request_duration_seconds_count{protocol="http"}')).toBe(1);
    expect(value('conduct_receiver_request_duration_seconds_count{protocol="grpc"}')).toBe(1);
    // Each was held for 60 ms before its outcome (timers may fire a millisecond early by this clock).
    expect(value('conduct_receiver_request_duration_seconds_sum{protocol="http"}')).toBeGreaterThanOrEqual(0.05);
    expect(value('conduct_receiver_request_duration_seconds_sum{protocol="grpc"}')).toBeGreaterThanOrEqual(0.05);
    // Not in the first bucket (1 ms): the time is the request's, not the flow's own.
    expect(value('conduct_receiver_request_duration_seconds_bucket{le="0.001",protocol="http"}')).toBe(0);
  });

  it('leaves a body alone that the ingest did not move and give back', async () => {
    const kept: RawRequest[] = [];
    // An ingest that reads the bytes where they are (as an in-process pipeline may keep them).
    const inPlace: TraceIngest = {
      accept: async () => ({ ok: true }),
      acceptRaw: async (raw) => {
        kept.push(raw);
        return { kind: 'decoded', outcome: { ok: true }, spanCount: 1, rejectedSpans: 0, rejectMessage: '' };
      },
    };
    const flow = createExportFlow(inPlace, createReceiverMetrics(new Registry()), silentLogger);
    const body = Buffer.from(traceRequest('payments', [{ traceId: hexId(16), spanId: hexId(8), name: 'GET /pay', attributes: {} }]));
    expect((await flow('http', 'protobuf', body)).kind).toBe('ok');
    expect(kept[0]!.returned).toBeUndefined();
    expect(body.byteLength).toBeGreaterThan(0);
  });

  it("releases a body that is the request's own once the ingest has answered, not before", async () => {
    let atIngest = -1;
    // An ingest that reads the bytes in place (the receivers and the journal on the pipeline thread).
    const inPlace: TraceIngest = {
      accept: async () => ({ ok: true }),
      acceptRaw: async (raw) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        atIngest = raw.body.byteLength;
        return { kind: 'decoded', outcome: { ok: true }, spanCount: 1, rejectedSpans: 0, rejectMessage: '' };
      },
    };
    const flow = createExportFlow(inPlace, createReceiverMetrics(new Registry()), silentLogger);
    const bytes = traceRequest('payments', [{ traceId: hexId(16), spanId: hexId(8), name: 'GET /pay', attributes: {} }]);
    // A buffer of its own, as the HTTP receiver reads a body into.
    const body = Buffer.from(new ArrayBuffer(bytes.length));
    bytes.copy(body);
    expect((await flow('http', 'protobuf', body, undefined, true)).kind).toBe('ok');
    expect(atIngest).toBe(bytes.length);
    // Detached: V8 no longer counts its bytes on this thread.
    expect(body.buffer.byteLength).toBe(0);
  });
});
