import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_DECODE_LIMITS } from '@conduct/proto';
import type { ChainBatch, ChainConsumer } from '../model.js';
import { traceIdTexts, type AcceptedTraceIds } from '../trace-ids.js';
import { traceRequest, traceRequestJson, hexId } from '../receiver/testdata/otlp-wire.js';
import { createCollectingConsumer, createFailingConsumer, createGatedConsumer } from './testing.js';
import { createPipelineThread, type PipelineThread, type PipelineThreadOptions } from './thread.js';
import { request, resource, span, SpanKind } from '../calls/testdata/trace-builder.js';

// The worker runs the package's build (dist/), which `npm test` makes before the tests run.

const threads: PipelineThread[] = [];

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
afterEach(async () => {
  await Promise.all(threads.splice(0).map((t) => t.stop()));
});

function start(overrides: Partial<PipelineThreadOptions> = {}) {
  const consumer = createCollectingConsumer();
  const thread = createPipelineThread({ stitching: { idleMs: 60_000, latenessMs: 60_000, maxPendingSpans: 10_000 }, consumer, ...overrides });
  threads.push(thread);
  return { thread, consumer };
}

const traceA = hexId(16);
const traceB = hexId(16);
const body = traceRequest('payments', [
  { traceId: traceA, spanId: hexId(8), name: 'GET /pay', attributes: { 'http.request.method': 'GET', 'http.route': '/pay', 'enduser.id': 'deployer' } },
  { traceId: traceB, spanId: hexId(8), name: 'GET /refund', attributes: { 'http.request.method': 'GET', 'http.route': '/refund', 'enduser.id': 'deployer' } },
]);

describe('pipeline thread', () => {
  it('decodes a protobuf body on its thread and hands the chains back to the consumer here', async () => {
    const { thread, consumer } = start();
    await thread.started();
    const seen: string[][] = [];
    const result = await thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS, (ids) => seen.push([...traceIdTexts(ids)]));
    expect(result).toEqual({ kind: 'decoded', outcome: { ok: true }, spanCount: 2, rejectedSpans: 0, rejectMessage: '' });
    expect(seen).toEqual([[traceA, traceB]]);
    expect(consumer.batches).toEqual([]);
    await thread.flush();
    const chains = consumer.chains();
    expect(chains.map((c) => c.traceId).sort()).toEqual([traceA, traceB].sort());
    expect(chains.flatMap((c) => c.calls.map((call) => call.operation)).sort()).toEqual(['GET /pay', 'GET /refund']);
    expect(consumer.batches.reduce((n, b) => n + b.spans, 0)).toBe(2);
  });

  it('decodes OTLP/JSON too, and answers a body that is not OTLP as invalid', async () => {
    const { thread, consumer } = start();
    const json = Buffer.from(traceRequestJson('payments', [{ traceId: traceA, spanId: hexId(8), name: 'GET /pay', attributes: { 'http.request.method': 'GET', 'enduser.id': 'deployer' } }]));
    expect(await thread.acceptRaw({ format: 'json', body: json }, DEFAULT_DECODE_LIMITS)).toMatchObject({ kind: 'decoded', spanCount: 1 });
    const bad = await thread.acceptRaw({ format: 'protobuf', body: Buffer.from('not protobuf at all') }, DEFAULT_DECODE_LIMITS);
    expect(bad.kind).toBe('invalid');
    expect(bad.kind === 'invalid' && bad.message.length).toBeGreaterThan(0);
    await thread.flush();
    expect(consumer.chains()).toHaveLength(1);
  });

  it('decodes a body that is a view into a larger buffer, and leaves the caller its bytes', async () => {
    const { thread, consumer } = start();
    // Garbage around the request: a worker that read the whole buffer would fail to decode it.
    const big = Buffer.alloc(body.length + 100, 0xff);
    body.copy(big, 50);
    const view = big.subarray(50, 50 + body.length);
    expect(await thread.acceptRaw({ format: 'protobuf', body: view }, DEFAULT_DECODE_LIMITS)).toMatchObject({ kind: 'decoded', spanCount: 2 });
    expect(view.equals(body)).toBe(true);
    await thread.flush();
    expect(consumer.chains()).toHaveLength(2);
  });

  it('moves a whole body to the worker and back: the request holds its bytes again when answered', async () => {
    const { thread } = start();
    const raw = { format: 'protobuf' as const, body: new Uint8Array(body) };
    let atAccepted: Uint8Array | undefined;
    const result = await thread.acceptRaw(raw, DEFAULT_DECODE_LIMITS, () => (atAccepted = Buffer.from(raw.body)));
    expect(result).toMatchObject({ kind: 'decoded', spanCount: 2 });
    // What a journal writes in onAccepted, and what the caller has afterwards: the bytes as sent.
    expect(Buffer.compare(atAccepted!, body)).toBe(0);
    expect(Buffer.compare(raw.body, body)).toBe(0);
    const bad = { format: 'protobuf' as const, body: new Uint8Array(Buffer.from('not protobuf at all')) };
    expect(await thread.acceptRaw(bad, DEFAULT_DECODE_LIMITS)).toMatchObject({ kind: 'invalid' });
    expect(Buffer.from(bad.body).toString()).toBe('not protobuf at all');
  });

  it('moves the whole buffer of a body that owns it (a gRPC frame past its header) and decodes only the body', async () => {
    const { thread, consumer } = start();
    // A frame header before the request, as grpc-js hands a message over: garbage for the decoder.
    const frame = Buffer.alloc(5 + body.length, 0xff);
    body.copy(frame, 5);
    const raw = { format: 'protobuf' as const, body: frame.subarray(5), ownsBuffer: true };
    const sent = raw.body;
    expect(await thread.acceptRaw(raw, DEFAULT_DECODE_LIMITS)).toMatchObject({ kind: 'decoded', spanCount: 2 });
    // Moved, not copied: the caller's view of the old buffer is detached, and the request holds
    // the same bytes again, still past the header.
    expect(sent.byteLength).toBe(0);
    expect(raw.body.byteOffset).toBe(5);
    expect(Buffer.compare(raw.body, body)).toBe(0);
    await thread.flush();
    expect(consumer.chains()).toHaveLength(2);
  });

  it("names in each batch the tagged requests its traces hold spans of, by the positions of onAccepted's trace ids", async () => {
    const batches: ChainBatch[] = [];
    const { thread } = start({ onBatch: (batch: ChainBatch) => void batches.push(batch) });
    const tags: Array<{ ids: readonly string[]; tag: number | undefined }> = [];
    const note = (ids: AcceptedTraceIds, _spans: number, tag?: number) => void tags.push({ ids: [...traceIdTexts(ids)], tag });
    const spanB = hexId(8);
    const laterB = traceRequest('refunds', [{ traceId: traceB, spanId: spanB, name: 'POST /refund', attributes: { 'http.request.method': 'POST', 'enduser.id': 'deployer' } }]);
    await thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS, note);
    await thread.acceptRaw({ format: 'protobuf', body: laterB }, DEFAULT_DECODE_LIMITS, note);
    await thread.flush();
    const [first, second] = tags;
    expect(first!.ids).toEqual([traceA, traceB]);
    expect(second!.ids).toEqual([traceB]);
    expect(new Set([first!.tag, second!.tag]).size).toBe(2);
    const named = (b: ChainBatch[]) =>
      b.flatMap((batch) => {
        const pairs = [...batch.requests!.pairs];
        return pairs.flatMap((tag, k) => (k % 2 === 0 ? [`${tags.find((t) => t.tag === tag)!.ids[pairs[k + 1]!]} of ${tag}`] : []));
      });
    expect(named(batches).sort()).toEqual([`${traceA} of ${first!.tag}`, `${traceB} of ${first!.tag}`, `${traceB} of ${second!.tag}`].sort());
    expect(batches.every((b) => b.requests!.exact)).toBe(true);

    // A resent copy of a request: its only span of trace B is dropped as a duplicate at completion,
    // so the batch cannot name it, and says that it may miss requests.
    batches.length = 0;
    tags.length = 0;
    await thread.acceptRaw({ format: 'protobuf', body: laterB }, DEFAULT_DECODE_LIMITS, note);
    await thread.acceptRaw({ format: 'protobuf', body: laterB }, DEFAULT_DECODE_LIMITS, note);
    await thread.flush();
    expect(named(batches)).toEqual([`${traceB} of ${tags[0]!.tag}`]);
    expect(batches.map((b) => b.requests!.exact)).toEqual([false]);
  });

  it('answers an accept before the batch its spans completed, so onAccepted runs before onBatch', async () => {
    const events: string[] = [];
    // One pending span at most: the second span of the request evicts the first trace during the accept.
    const { thread } = start({
      stitching: { idleMs: 60_000, latenessMs: 60_000, maxPendingSpans: 1 },
      onBatch: (batch: ChainBatch) => events.push(`batch ${batch.traceSummaries!.map((t) => t.traceId).join(',')}`),
    });
    await thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS, (ids) => events.push(`accepted ${traceIdTexts(ids).join(',')}`));
    await thread.flush();
    expect(events[0]).toBe(`accepted ${traceA},${traceB}`);
    expect(events.slice(1)).toEqual([`batch ${traceA}`, `batch ${traceB}`]);
  });

  it('accepts already decoded requests (journal replay), with prototype-less attributes on the worker', async () => {
    const { thread, consumer } = start({
      // A rule on an attribute named like an Object member: it must only match a real attribute.
      rules: [{ from: 'span', attribute: 'constructor', kind: 'workload', prefix: 'ctor:' }, { from: 'resource', attribute: 'service.name', kind: 'workload', prefix: 'svc:' }],
    });
    const frontend = resource('frontend');
    const data = request([span(frontend, { id: 'c1', traceId: traceA, kind: SpanKind.CLIENT, attrs: { 'http.request.method': 'GET', 'url.full': 'http://cart/items' } })]);
    expect(await thread.accept(data)).toEqual({ ok: true });
    await thread.flush();
    expect(consumer.chains().map((c) => c.identity)).toEqual(['svc:frontend']);
  });

  it('refuses with a retryable answer, before decoding, while the consumer has too many spans to take for a second', async () => {
    const consumer = createGatedConsumer();
    // One pending span at most: the request's second span completes the first trace at once, and
    // that one queued span fills the queue.
    const thread = createPipelineThread({ stitching: { idleMs: 60_000, latenessMs: 60_000, maxPendingSpans: 1 }, consumer, maxQueuedSpans: 1 });
    threads.push(thread);
    try {
      expect(await thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS)).toMatchObject({ kind: 'decoded', outcome: { ok: true } });
      await until(() => consumer.held > 0);
      // Not decoded: a body that is not OTLP is refused too, not answered invalid.
      for (const b of [body, Buffer.from('not protobuf at all')]) {
        expect(await thread.acceptRaw({ format: 'protobuf', body: b }, DEFAULT_DECODE_LIMITS)).toEqual({
          kind: 'refused',
          outcome: { ok: false, reason: 'overloaded', retryAfterMs: expect.any(Number) },
        });
      }
    } finally {
      consumer.releaseAll();
    }
    await thread.flush();
    expect(await thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS)).toMatchObject({ outcome: { ok: true } });
    const metrics = await thread.metrics();
    expect(metrics).toMatch(/^conduct_pipeline_refused_total\{reason="overloaded"\} 2$/m);
    // The first and the last request: the refused ones were not taken in.
    expect(metrics).toMatch(/^conduct_pipeline_spans_total 4$/m);
  });

  it('keeps a request that arrives while the consumer is behind waiting, and accepts it once a batch is consumed', async () => {
    const consumer = createGatedConsumer();
    const thread = createPipelineThread({ stitching: { idleMs: 60_000, latenessMs: 60_000, maxPendingSpans: 1 }, consumer, maxQueuedSpans: 1 });
    threads.push(thread);
    expect(await thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS)).toMatchObject({ kind: 'decoded', outcome: { ok: true } });
    await until(() => consumer.held > 0);
    const events: string[] = [];
    const second = thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS).then((r) => events.push(`answered ${r.kind}`));
    // The worker has it waiting (not refused) before the consumer takes the batch.
    for (let i = 0; !/^conduct_pipeline_requests_waited_total 1$/m.test(await thread.metrics()); i++) {
      if (i > 500) throw new Error('the request did not wait');
      await new Promise((r) => setTimeout(r, 5));
    }
    events.push('consumed');
    consumer.releaseAll();
    await second;
    expect(events).toEqual(['consumed', 'answered decoded']);
    consumer.releaseAll();
    await thread.flush();
    expect(await thread.metrics()).not.toMatch(/^conduct_pipeline_refused_total\{reason="overloaded"\} [1-9]/m);
  });

  it('reports consumer failures back to the pipeline, which counts them in its metrics', async () => {
    const consumer: ChainConsumer = createFailingConsumer('disk full');
    const thread = createPipelineThread({ stitching: { idleMs: 60_000, latenessMs: 60_000, maxPendingSpans: 10_000 }, consumer });
    threads.push(thread);
    await thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS);
    await thread.flush();
    const metrics = await thread.metrics();
    expect(metrics).toMatch(/^conduct_pipeline_consumer_errors_total 1$/m);
    expect(metrics).toMatch(/^conduct_pipeline_spans_total 2$/m);
    expect(thread.heapUsed()).toBeGreaterThan(0);
  });

  it('hands the batches that wait together to consumeMany, in order, and reports each failure it answers', async () => {
    // The first batch is consumed only once all three arrived: those after it wait together.
    let release!: () => void;
    const allArrived = new Promise<void>((r) => (release = r));
    let arrivals = 0;
    const calls: Array<{ many: boolean; traces: number[] }> = [];
    const consumer: ChainConsumer = {
      async consume(batch) {
        calls.push({ many: false, traces: [batch.traces] });
        if (calls.length === 1) await allArrived;
      },
      async consumeMany(batches) {
        calls.push({ many: true, traces: batches.map((b) => b.traces) });
        if (calls.length === 1) await allArrived;
        // The last batch of the group fails (its write did): the pipeline counts it, not the others.
        return batches.map((_, i) => (i === batches.length - 1 ? { err: new Error('disk full') } : undefined));
      },
    };
    const thread = createPipelineThread({
      stitching: { idleMs: 60_000, latenessMs: 60_000, maxPendingSpans: 10_000 },
      consumer,
      onBatch: () => {
        if (++arrivals === 3) release();
      },
    });
    threads.push(thread);
    // 2,500 one-span traces: the flush completes them into batches of 1,024, 1,024 and 452.
    const spans = Array.from({ length: 2_500 }, (_, i) => ({ traceId: hexId(16), spanId: hexId(8), name: `GET /t/${i}`, attributes: { 'http.request.method': 'GET', 'enduser.id': 'deployer' } }));
    expect(await thread.acceptRaw({ format: 'protobuf', body: traceRequest('payments', spans) }, DEFAULT_DECODE_LIMITS)).toMatchObject({ kind: 'decoded', spanCount: 2_500 });
    await thread.flush();
    expect(calls.flatMap((c) => c.traces)).toEqual([1_024, 1_024, 452]);
    expect(calls.some((c) => c.many && c.traces.length >= 2)).toBe(true);
    expect(calls.filter((c) => !c.many).every((c) => c.traces.length === 1)).toBe(true);
    const failed = calls.filter((c) => c.many).length;
    expect(await thread.metrics()).toMatch(new RegExp(`^conduct_pipeline_consumer_errors_total ${failed}$`, 'm'));
  });

  it('gives each batch that waited for the consumer its own ids and summaries (its literals wait apart until it is consumed)', async () => {
    const consumer = createGatedConsumer();
    const thread = createPipelineThread({ stitching: { idleMs: 60_000, latenessMs: 60_000, maxPendingSpans: 10_000 }, consumer });
    threads.push(thread);
    const spans = Array.from({ length: 2_500 }, (_, i) => ({ traceId: hexId(16), spanId: hexId(8), name: `GET /t/${i}`, attributes: { 'http.request.method': 'GET', 'enduser.id': 'deployer' } }));
    expect(await thread.acceptRaw({ format: 'protobuf', body: traceRequest('payments', spans) }, DEFAULT_DECODE_LIMITS)).toMatchObject({ spanCount: 2_500 });
    // The flush completes them into three batches; the consumer holds the first while the others arrive.
    const flushed = thread.flush();
    for (let i = 0; !/^conduct_pipeline_batches_total 3$/m.test(await thread.metrics()); i++) {
      if (i > 500) throw new Error('the batches were not sent');
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(consumer.held).toBe(1);
    expect(consumer.batches).toHaveLength(0);
    consumer.releaseAll();
    await flushed;
    expect(consumer.batches.map((b) => b.traces)).toEqual([1_024, 1_024, 452]);
    for (const batch of consumer.batches) {
      expect(batch.traceSummaries!.map((t) => t.traceId)).toEqual(batch.chains.map((c) => c.traceId));
    }
    const spanOf = new Map(spans.map((s) => [s.traceId, s.spanId]));
    const chains = consumer.chains();
    expect(new Set(chains.map((c) => c.traceId))).toEqual(new Set(spanOf.keys()));
    for (const chain of chains) expect(chain.calls.map((c) => [c.traceId, c.spanId])).toEqual([[chain.traceId, spanOf.get(chain.traceId)]]);
  });

  it('fails to start on bad settings, and then refuses with a retryable answer', async () => {
    const failures: Error[] = [];
    const { thread } = start({ rules: [{ from: 'span', attribute: 'x', pattern: '(', kind: 'workload' }], onFailure: (err) => failures.push(err) });
    await expect(thread.started()).rejects.toThrow(/identity\.rules\[0\]\.pattern/);
    expect(failures).toHaveLength(1);
    expect(await thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS)).toEqual({
      kind: 'refused',
      outcome: { ok: false, reason: 'failed', retryAfterMs: expect.any(Number) },
    });
    await expect(thread.flush()).rejects.toThrow();
  });

  it('stop completes pending traces into the consumer, then refuses', async () => {
    const { thread, consumer } = start();
    await thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS);
    await thread.stop();
    expect(consumer.chains()).toHaveLength(2);
    expect(await thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS)).toMatchObject({ kind: 'refused' });
  });

  describe('with an extension', () => {
    const extension = (data: object) => ({ url: new URL('./testdata/extension.mjs', import.meta.url), data });
    const payments = resource('payments');

    it("runs beside the pipeline: the host's requests go through its ingest, its batch marks travel, requests and messages go both ways, stop in order", async () => {
      const messages: unknown[] = [];
      const { thread, consumer } = start({ extension: extension({}), onExtensionMessage: (m) => messages.push(m) });
      await thread.started();
      expect(await thread.acceptRaw({ format: 'protobuf', body }, DEFAULT_DECODE_LIMITS)).toMatchObject({ kind: 'decoded', outcome: { ok: true }, spanCount: 2 });
      const one = request([span(payments, { id: 's1', traceId: hexId(16), name: 'GET /one', kind: SpanKind.SERVER, attrs: { 'http.request.method': 'GET', 'enduser.id': 'deployer' } })]);
      expect(await thread.accept(one)).toEqual({ ok: true });
      await thread.flush();
      // Every trace of each batch marked replayed by the extension's onBatch, on this side too.
      const replayed = consumer.batches.flatMap((b) => [...(b.replayed ?? [])]);
      expect(replayed.sort()).toEqual(consumer.chains().map((c) => c.traceId).sort());
      expect(consumer.batches.every((b) => b.replayedReceivedMs?.size === b.replayed?.length)).toBe(true);
      expect(await thread.request({ hello: 1 })).toEqual({ echo: { hello: 1 }, accepted: 2, batches: consumer.batches.length });
      thread.notify('ping');
      await until(() => messages.length > 0);
      expect(messages).toEqual([{ got: 'ping' }]);
      // Pending at stop: completed by the drain.
      const two = request([span(payments, { id: 's2', traceId: hexId(16), name: 'GET /two', kind: SpanKind.SERVER, attrs: { 'http.request.method': 'GET', 'enduser.id': 'deployer' } })]);
      expect(await thread.accept(two)).toEqual({ ok: true });
      const before = consumer.batches.length;
      await thread.stop();
      expect(consumer.batches.length).toBe(before + 1);
      // Its intake closed before the pipeline drained, its stop after the host consumed the last batch.
      const order = (messages.at(-1) as { order: string[] }).order;
      expect(order.slice(-3)).toEqual(['close', 'consumed', 'stop']);
      expect(order.filter((o) => o === 'consumed')).toHaveLength(consumer.batches.length);
    });

    it('does not stall when the host has consumed a batch before the pipeline passes it on', async () => {
      // The fixture waits 30 ms before handing each batch to the host consumer; the host consumes
      // a batch as it arrives, so its answer comes before the pipeline asks for it.
      const { thread, consumer } = start({ extension: extension({ delayMs: 30 }) });
      await thread.started();
      for (let i = 0; i < 5; i++) {
        const one = request([span(payments, { id: `s${i}`, traceId: hexId(16), name: `GET /${i}`, kind: SpanKind.SERVER, attrs: { 'http.request.method': 'GET', 'enduser.id': 'deployer' } })]);
        expect(await thread.accept(one)).toEqual({ ok: true });
        let timer: NodeJS.Timeout | undefined;
        const stalled = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`flush ${i} stalled`)), 10_000)));
        await Promise.race([thread.flush(), stalled]);
        clearTimeout(timer);
      }
      expect(consumer.chains()).toHaveLength(5);
    });

    it("rejects started() with the extension's failure, and passes an error's name back", async () => {
      const failing = start({ extension: extension({ failStart: 'no journal' }) });
      await expect(failing.thread.started()).rejects.toThrow(/cannot start: no journal/);
      const { thread } = start({ extension: extension({}) });
      await thread.started();
      await expect(thread.request({ fail: true })).rejects.toMatchObject({ name: 'FixtureError', message: 'the fixture refuses' });
    });
  });
});
