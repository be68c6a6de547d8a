import { describe, expect, it, vi } from 'vitest';
import { Registry } from 'prom-client';
import { StatusCode, type TracesRequestData } from '@conduct/proto';
import type { ChainBatch, Logger } from '../model.js';
import { createPipeline, createCollectingConsumer, createGatedConsumer, createFailingConsumer, type PipelineOptions } from './index.js';
import { createBatchEncoder, type EncodedBatch } from './batch-codec.js';
import { MAX_TRACES_PER_BATCH } from './pipeline.js';
import { request, resource, span, SpanKind } from '../calls/testdata/trace-builder.js';

const frontend = resource('frontend');
const payments = resource('payments');
const traceId = (n: number) => n.toString(16).padStart(32, '0');

/** The spans of one trace: a frontend client span and the payments server span it called. */
const traceSpans = (n: number, endMs = 1_000) => [
  span(frontend, { id: `c${n}`, traceId: traceId(n), kind: SpanKind.CLIENT, start: endMs - 10, end: endMs }),
  span(payments, { id: `s${n}`, traceId: traceId(n), parent: `c${n}`, kind: SpanKind.SERVER, start: endMs - 8, end: endMs - 2, attrs: { 'http.request.method': 'GET', 'http.route': '/pay' } }),
];
/** One request holding one trace (traceSpans). */
const trace = (n: number, endMs = 1_000) => request(traceSpans(n, endMs));

function setup(overrides: Partial<PipelineOptions> = {}) {
  const clock = { t: 0, now() { return this.t; } };
  const registry = new Registry();
  const consumer = createCollectingConsumer();
  const pipeline = createPipeline({
    stitching: { idleMs: 1_000, latenessMs: 60_000, maxPendingSpans: 10_000 },
    consumer,
    registry,
    clock,
    idleTimer: false,
    ...overrides,
  });
  return { clock, registry, consumer, pipeline };
}

describe('pipeline', () => {
  it('turns accepted spans into chains for the consumer on flush', async () => {
    const { consumer, pipeline } = setup();
    expect(await pipeline.accept(trace(1))).toEqual({ ok: true });
    expect(consumer.batches).toEqual([]);
    await pipeline.flush();
    expect(consumer.batches).toHaveLength(1);
    expect(consumer.batches[0]).toMatchObject({ traces: 1, spans: 2 });
    const [chain] = consumer.chains();
    expect(chain).toMatchObject({ traceId: traceId(1), identity: 'svc:frontend' });
    expect(chain!.calls.map((c) => [c.service, c.peer, c.operation])).toEqual([['frontend', 'payments', 'GET /pay']]);
  });

  it('completes idle traces on tick, by the injected clock', async () => {
    const { clock, consumer, pipeline } = setup();
    await pipeline.accept(trace(1));
    clock.t = 999;
    pipeline.tick();
    expect(pipeline.stats().stitch.pendingTraces).toBe(1);
    clock.t = 1_000;
    pipeline.tick();
    expect(pipeline.stats().stitch).toMatchObject({ pendingTraces: 0, completed: { idle: 1, flush: 0 } });
    await pipeline.flush(); // nothing left to complete: waits for the idle batch
    expect(consumer.batches.map((b) => b.chains[0]!.traceId)).toEqual([traceId(1)]);
    expect(pipeline.stats().stitch.completed.flush).toBe(0);
  });

  it('runs the idle check on a real timer', async () => {
    const { consumer, pipeline } = setup({ clock: undefined, idleTimer: true, stitching: { idleMs: 20, latenessMs: 60_000, maxPendingSpans: 100 } });
    await pipeline.accept(trace(1));
    await vi.waitFor(() => expect(consumer.batches).toHaveLength(1), { timeout: 5_000, interval: 10 });
    expect(pipeline.stats().stitch.completed.idle).toBe(1);
    await pipeline.stop();
  });

  it('runs an overdue idle check on the next request when its timer has not run', async () => {
    // A thread busy with one message after another does not get to its timers: here the timer
    // stays behind the fake clock, as it would behind a message queue that never empties.
    const { clock, consumer, pipeline } = setup({ idleTimer: true });
    await pipeline.accept(trace(1));
    clock.t = 1_000;
    const accepted = pipeline.accept(trace(2));
    // Synchronously, within the request: trace 1 (idle for 1 s) completed, trace 2 pending.
    expect(pipeline.stats().stitch).toMatchObject({ pendingTraces: 1, completed: { idle: 1 } });
    expect(await accepted).toEqual({ ok: true });
    await pipeline.stop();
    expect(consumer.chains().map((c) => c.traceId)).toEqual([traceId(1), traceId(2)]);
  });

  it('flush resolves only after the consumer has consumed every queued batch', async () => {
    const consumer = createGatedConsumer();
    const { clock, pipeline } = setup({ consumer });
    await pipeline.accept(trace(1));
    clock.t = 5_000;
    pipeline.tick(); // batch 1, held by the consumer
    await pipeline.accept(trace(2));
    let flushed = false;
    const done = pipeline.flush().then(() => (flushed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(flushed).toBe(false);
    consumer.release();
    await new Promise((r) => setTimeout(r, 20));
    expect(flushed).toBe(false); // batch 2 (from the flush) still held
    consumer.release();
    await done;
    expect(consumer.batches.map((b) => b.chains[0]!.traceId)).toEqual([traceId(1), traceId(2)]);
  });

  it('answers overloaded while the consumer lags, and accepts again once it catches up', async () => {
    const consumer = createGatedConsumer();
    const { clock, pipeline, registry } = setup({ consumer, maxQueuedBatches: 1, retryAfterMs: 250 });
    await pipeline.accept(trace(1));
    clock.t = 2_000;
    pipeline.tick(); // batch 1 in the consumer
    expect(await pipeline.accept(trace(2))).toEqual({ ok: true });
    clock.t = 4_000;
    pipeline.tick(); // batch 2 waiting
    expect(pipeline.stats().queuedBatches).toBe(1);
    expect(await pipeline.accept(trace(3))).toEqual({ ok: false, reason: 'overloaded', retryAfterMs: 250 });
    consumer.releaseAll();
    await pipeline.flush();
    expect(await pipeline.accept(trace(3))).toEqual({ ok: true });
    expect(await registry.metrics()).toMatch(/conduct_pipeline_refused_total\{reason="overloaded"\} 1/);
  });

  it('counts and logs consumer errors without crashing, and keeps delivering', async () => {
    const errors: unknown[] = [];
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (o) => errors.push(o) };
    const failing = createFailingConsumer('disk full');
    const { pipeline, registry } = setup({ consumer: failing, logger });
    await pipeline.accept(trace(1));
    await pipeline.flush();
    await pipeline.accept(trace(2));
    await pipeline.flush();
    expect(failing.calls).toBe(2);
    expect(pipeline.stats().consumerErrors).toBe(2);
    expect(errors).toHaveLength(1); // rate-limited log, every error counted
    expect(JSON.stringify(errors[0])).toContain('disk full');
    expect(await registry.metrics()).toMatch(/conduct_pipeline_consumer_errors_total 2/);
  });

  it('exposes its metrics', async () => {
    const { clock, pipeline, registry } = setup({ stitching: { idleMs: 1_000, latenessMs: 100, maxPendingSpans: 3 } });
    await pipeline.accept(trace(1, 1_000));
    await pipeline.accept(trace(2, 1_050)); // 4 spans > 3: trace 1 evicted
    await pipeline.accept(trace(3, 5_000)); // watermark 4_900 passes trace 2
    clock.t = 10_000;
    pipeline.tick(); // trace 3 idle
    await pipeline.accept(trace(3, 5_001)); // late: trace 3 had completed
    await pipeline.flush();
    const text = await registry.metrics();
    for (const line of [
      'conduct_stitch_traces_completed_total{reason="evicted"} 1',
      'conduct_stitch_traces_completed_total{reason="watermark"} 1',
      'conduct_stitch_traces_completed_total{reason="idle"} 1',
      'conduct_stitch_traces_completed_total{reason="flush"} 1',
      'conduct_stitch_late_spans_total 2',
      'conduct_stitch_pending_traces 0',
      'conduct_stitch_pending_spans 0',
      'conduct_pipeline_spans_total 8',
      'conduct_pipeline_calls_total 4',
      'conduct_pipeline_chains_total 4',
      'conduct_pipeline_queue_depth 0',
    ]) {
      expect(text).toContain(line);
    }
  });

  it('stop completes pending traces, is idempotent, and refuses later requests', async () => {
    const { consumer, pipeline } = setup();
    await pipeline.accept(trace(1));
    await Promise.all([pipeline.stop(), pipeline.stop()]);
    await pipeline.stop();
    expect(consumer.batches).toHaveLength(1);
    expect(await pipeline.accept(trace(2))).toMatchObject({ ok: false, reason: 'stopped' });
  });
});

/**
 * Traces of many shapes for the hand-off test: stitched calls across three services, a database
 * and an external API, a tool call, server spans alone (with and without a principal), errors and
 * HTTP statuses, agents with display names, a client span whose server span comes in a later part
 * of its trace; each trace split over two requests.
 */
function variedRequests(traces: number): { first: TracesRequestData; second: TracesRequestData }[] {
  const gateway = resource('gateway', { 'service.version': '1.2.0', 'cloud.region': 'eu-west-1', 'host.name': 'gw-1' });
  const orders = resource('orders', { 'service.namespace': 'shop', 'k8s.cluster.name': 'prod' });
  const agent = resource('triage');
  const out: { first: TracesRequestData; second: TracesRequestData }[] = [];
  for (let n = 0; n < traces; n++) {
    const t = traceId(1_000 + n);
    const at = 1_000 + 7 * n;
    const id = (name: string) => `${name}${n}`;
    const first = [
      span(agent, { id: id('a'), traceId: t, kind: SpanKind.CLIENT, start: at, end: at + 9, attrs: { 'gen_ai.agent.id': `agent-${n % 3}`, 'gen_ai.agent.name': `Agent ${n % 3}`, 'http.request.method': 'POST', 'server.address': 'gateway.internal' } }),
      span(gateway, { id: id('g'), traceId: t, parent: id('a'), kind: SpanKind.SERVER, start: at + 1, end: at + 8, status: n % 5 === 0 ? StatusCode.ERROR : StatusCode.UNSET, attrs: { 'http.request.method': 'POST', 'http.route': '/orders/{id}', 'http.response.status_code': n % 5 === 0 ? 503 : 200, 'client.address': `10.0.${n % 4}.7`, 'user_agent.original': 'curl/8' } }),
      span(gateway, { id: id('x'), traceId: t, parent: id('g'), kind: SpanKind.CLIENT, start: at + 2, end: at + 3, attrs: { 'http.request.method': 'GET', 'url.full': `https://api.example.com/v1/items/${n}`, 'error.type': n % 2 ? 'timeout' : '' } }),
      span(gateway, { id: id('tool'), traceId: t, parent: id('g'), kind: SpanKind.INTERNAL, start: at + 2, end: at + 4, attrs: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': `search${n % 2}` } }),
    ];
    const second = [
      span(gateway, { id: id('c'), traceId: t, parent: id('g'), kind: SpanKind.CLIENT, start: at + 3, end: at + 7, attrs: { 'rpc.system': 'grpc', 'rpc.service': 'Orders', 'rpc.method': 'Get' } }),
      span(orders, { id: id('o'), traceId: t, parent: id('c'), kind: SpanKind.SERVER, start: at + 3, end: at + 6, attrs: { 'rpc.system': 'grpc', 'rpc.service': 'Orders', 'rpc.method': 'Get', 'enduser.id': n % 4 ? `spiffe://prod/ns/shop/sa/u${n % 4}` : '' } }),
      span(orders, { id: id('d'), traceId: t, parent: id('o'), kind: SpanKind.CLIENT, start: at + 4, end: at + 5, attrs: { 'db.system.name': 'postgresql', 'db.namespace': 'orders', 'db.operation.name': 'SELECT', 'db.collection.name': 'items' } }),
      span(orders, { id: id('s'), traceId: t, parent: id('elsewhere'), kind: SpanKind.SERVER, start: at + 5, end: at + 6, attrs: { 'enduser.id': n % 2 ? 'spiffe://prod/ns/ci/sa/deployer' : '' } }),
    ];
    out.push({ first: request(first), second: request(second) });
  }
  return out;
}

describe('pipeline hand-off', () => {
  // The pipeline thread derives straight into the encoder's rows (PipelineOptions.encoder); the
  // bytes it hands over must be those of encoding the chain and summary objects a consumer on
  // the same thread is given, batch for batch, dictionary resets included.
  it('hands over with an encoder the bytes its chains and summaries encode to as objects', async () => {
    const run = async (direct: boolean) => {
      const encoder = createBatchEncoder(300);
      const encoded: EncodedBatch[] = [];
      const objects: ChainBatch[] = [];
      const { clock, pipeline } = setup({
        stitching: { idleMs: 5, latenessMs: 60_000, maxPendingSpans: 10_000, lateTraceWindowMs: 60_000 },
        ...(direct ? { encoder } : {}),
        onBatch: (batch, data) => {
          expect(data !== undefined).toBe(direct);
          if (!direct) objects.push(batch);
          encoded.push(data ?? encoder.encode(batch));
        },
      });
      const parts = variedRequests(60);
      // A trace's second part arrives after the first has completed (idle) for every third trace.
      for (let n = 0; n < parts.length; n += 3) {
        for (const part of parts.slice(n, n + 3)) await pipeline.accept(part.first);
        clock.t += n % 2 ? 10 : 1;
        pipeline.tick();
        for (const part of parts.slice(n, n + 3)) await pipeline.accept(part.second);
        clock.t += 3;
        pipeline.tick();
      }
      await pipeline.flush();
      return { encoded, objects };
    };
    const viaRows = await run(true);
    const viaObjects = await run(false);
    expect(viaObjects.encoded.length).toBeGreaterThan(10);
    expect(viaObjects.encoded.some((b) => b.reset)).toBe(true);
    const calls = viaObjects.objects.flatMap((b) => b.chains.flatMap((c) => c.calls));
    // The shapes above, all present: late stitched calls, external and database peers, tools, sources with a client side.
    expect(new Set(calls.map((c) => c.peerKind))).toEqual(new Set(['service', 'http', 'database', 'tool']));
    expect(calls.some((c) => c.external) && calls.some((c) => c.httpStatus === 503) && calls.some((c) => c.errorCode === 'timeout')).toBe(true);
    expect(viaObjects.objects.some((b) => b.traceSummaries?.some((s) => s.late === 'joins'))).toBe(true);
    expect(viaObjects.objects.some((b) => b.chains.some((c) => c.displayName))).toBe(true);
    const plain = (b: EncodedBatch) => ({ ...b, nums: Array.from(b.nums, String), refs: Array.from(b.refs) });
    expect(viaRows.encoded.map(plain)).toEqual(viaObjects.encoded.map(plain));
  });
});

/** One request holding `count` traces of trace(n)'s shape, from trace `from` on. */
const traces = (from: number, count: number) => request(Array.from({ length: count }, (_, k) => traceSpans(from + k)).flat());

/** The next turn of the event loop (after the slices already due). */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('pipeline in slices (sliceSpans)', () => {
  it('derives a completion a slice per turn, and answers a request that arrives meanwhile before its batch is queued', async () => {
    const events: string[] = [];
    let batched!: () => void;
    const batchQueued = new Promise<void>((resolve) => (batched = resolve));
    const { clock, pipeline } = setup({
      sliceSpans: 4,
      onBatch: (batch) => {
        events.push(`batch of ${batch.traces}`);
        batched();
      },
    });
    await pipeline.accept(traces(1, 10));
    clock.t = 1_000;
    pipeline.tick(); // 10 traces (20 spans) complete: 5 slices of 2 traces
    expect(pipeline.stats().stitch.completed.idle).toBe(10);
    expect(events).toEqual([]); // nothing derived yet: the tick returned at once
    // Counted against the queue's limits while it is being derived.
    expect(pipeline.stats()).toMatchObject({ queuedBatches: 1, queuedSpans: 20 });
    const answered = pipeline.accept(trace(11)).then((outcome) => events.push(`answered ${outcome.ok}`));
    setImmediate(() => events.push('turn'));
    await batchQueued;
    await answered;
    // The request's answer came first, and a turn of the event loop passed between two slices.
    expect(events).toEqual(['answered true', 'turn', 'batch of 10']);
    expect(pipeline.stats().stitch.pendingTraces).toBe(1);
    await pipeline.stop();
  });

  it('queues the same batches, in the same order, as when each completion is derived at once', async () => {
    const run = async (sliceSpans?: number) => {
      const encoder = createBatchEncoder(300);
      const encoded: EncodedBatch[] = [];
      const { clock, pipeline } = setup({
        stitching: { idleMs: 5, latenessMs: 60_000, maxPendingSpans: 100_000, lateTraceWindowMs: 60_000 },
        encoder,
        ...(sliceSpans ? { sliceSpans } : {}),
        onBatch: (_batch, data) => encoded.push(data!),
      });
      const parts = variedRequests(MAX_TRACES_PER_BATCH + 200);
      // The first parts of most traces complete together (more than one batch of traces); the
      // second parts of some arrive while their first parts are still being derived.
      for (const part of parts.slice(0, MAX_TRACES_PER_BATCH + 100)) await pipeline.accept(part.first);
      clock.t += 10;
      pipeline.tick();
      await nextTurn();
      for (let n = 0; n < 100; n++) await pipeline.accept(parts[n]!.second);
      for (const part of parts.slice(MAX_TRACES_PER_BATCH + 100)) await pipeline.accept(part.first);
      clock.t += 10;
      pipeline.tick();
      for (let n = 0; n < 10; n++) await nextTurn();
      for (const part of parts.slice(100)) await pipeline.accept(part.second);
      await pipeline.flush();
      return encoded;
    };
    const atOnce = await run();
    const sliced = await run(64);
    expect(atOnce.length).toBeGreaterThanOrEqual(4);
    const plain = (b: EncodedBatch) => ({ ...b, nums: Array.from(b.nums, String), refs: Array.from(b.refs) });
    expect(sliced.map(plain)).toEqual(atOnce.map(plain));
  });

  it('refuses while the traces being derived fill the queue, and flush derives them at once', async () => {
    const consumer = createGatedConsumer();
    const { clock, pipeline } = setup({ consumer, sliceSpans: 2, maxQueuedSpans: 6 });
    await pipeline.accept(traces(1, 3));
    clock.t = 1_000;
    pipeline.tick(); // 6 spans being derived
    expect(await pipeline.accept(trace(4))).toMatchObject({ ok: false, reason: 'overloaded' });
    consumer.releaseAll();
    await pipeline.flush();
    expect(consumer.batches.map((b) => b.traces)).toEqual([3]);
    expect(pipeline.stats()).toMatchObject({ queuedBatches: 0, queuedSpans: 0 });
    expect(await pipeline.accept(trace(4))).toEqual({ ok: true });
  });

  it('stop derives a completion in progress and then completes the pending traces, in that order', async () => {
    const { clock, consumer, pipeline } = setup({ sliceSpans: 2 });
    await pipeline.accept(traces(1, 5));
    clock.t = 1_000;
    pipeline.tick();
    await pipeline.accept(trace(6));
    await pipeline.stop();
    expect(consumer.batches.map((b) => b.chains.map((c) => c.traceId))).toEqual([[1, 2, 3, 4, 5].map(traceId), [traceId(6)]]);
  });
});
