/**
 * The pipeline thread: decodes request bodies, stitches spans into traces and derives chains, off
 * the main thread (see thread.ts for the host side and the ordering rules).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
import { Counter, Gauge, Registry } from 'prom-client';
import { columnsFromData, decodeTracesRequestColumns, decodeTracesRequestJson, type SpanColumns, type TracesRequestData } from '@conduct/proto';
import type { ChainBatch, Logger } from '../model.js';
import { createPipeline, DEFAULT_SLICE_SPANS, type RequestTag } from './pipeline.js';
import { createBatchEncoder, type EncodedBatch } from './batch-codec.js';
import { createLiveHeapReader } from './live-heap.js';
import type { HostMessage, WorkerMessage, WorkerSettings } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('the pipeline worker runs in a worker thread');
const settings = workerData as WorkerSettings;
const post = (message: WorkerMessage) => port.postMessage(message);
/** Posts the answer to a raw request with its bytes, moved back to the host (see thread.ts acceptRaw). */
const postWithBody = (message: WorkerMessage & { body?: Uint8Array }, body: Uint8Array) => {
  message.body = body;
  port.postMessage(message, [body.buffer as ArrayBuffer]);
};

const log =
  (level: 'debug' | 'info' | 'warn' | 'error') =>
  (obj: object | string, msg?: string): void =>
    post({ t: 'log', level, obj, ...(msg !== undefined ? { msg } : {}) });
const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };

// Batches queued while accepts run are held until every one of them has posted its answer, so the
// host has registered the requests' traces (the journal's bookkeeping) before it sees them
// complete. A count, not a flag: the answers are posted from promise callbacks, and nothing here
// relies on when those run relative to the next message.
let accepting = 0;
const held: Array<{ batch: ChainBatch; data: EncodedBatch }> = [];

// The pipeline encodes each batch as it makes it (derived straight into the encoder's rows): a
// held batch waits encoded, and batches are posted in the order they were encoded.
const encoder = createBatchEncoder();
const sendBatch = (batch: ChainBatch, data: EncodedBatch) => {
  const transfer = [data.nums.buffer as ArrayBuffer, data.refs.buffer as ArrayBuffer];
  const requests = batch.requests;
  if (requests) transfer.push(requests.pairs.buffer as ArrayBuffer);
  port.postMessage({ t: 'batch', batch: batchIds.get(batch)!, data, ...(requests ? { requests } : {}) } satisfies WorkerMessage, transfer);
  // The host has its own copy now; this side only counts the batch until it is consumed.
  batch.requests = undefined;
};

let nextBatch = 1;
const batchIds = new WeakMap<ChainBatch, number>();
const consumed = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

const heap = () => getHeapStatistics().used_heap_size;
/** What the memory guard counts for this thread (see live-heap.ts); the gauge shows the heap as it is. */
const liveHeap = createLiveHeapReader();
const registry = new Registry();
new Gauge({
  name: 'conduct_pipeline_thread_heap_used_bytes',
  help: 'V8 heap in use on the pipeline thread (the main thread has nodejs_heap_size_used_bytes).',
  registers: [registry],
  collect() {
    this.set(heap());
  },
});
const pipeline = createPipeline({
  ...settings,
  registry,
  logger,
  encoder,
  // Completed traces derived a slice per turn, so requests are answered between slices: on a
  // quiet two-core machine the whole server processed 1.25x as many spans end to end, at the
  // same CPU per span (bench/README.md, "Pipeline thread slices (issue 19, 2026-12-07, fourth)").
  sliceSpans: DEFAULT_SLICE_SPANS,
  onBatch(batch, data) {
    const id = nextBatch++;
    batchIds.set(batch, id);
    if (accepting > 0) held.push({ batch, data: data! });
    else sendBatch(batch, data!);
  },
  consumer: {
    consume(batch) {
      const id = batchIds.get(batch);
      if (id === undefined) return Promise.resolve();
      return new Promise<void>((resolve, reject) => consumed.set(id, { resolve, reject }));
    },
  },
});

post({ t: 'ready' });

/** Bytes of a trace id in the columns' table of a request's distinct trace ids. */
const TRACE_ID_BYTES = 16;

/**
 * A raw request's distinct trace ids (those of its spans, in the order they first appear) and its
 * tag: its host's message id, and each trace table entry's position among those ids.
 */
function tagOf(id: number, data: SpanColumns): { ids: string[]; request: RequestTag } {
  const ids: string[] = [];
  const traceOf = data.traceOf;
  const traceAt = new Int32Array(data.traceIds.length / TRACE_ID_BYTES).fill(-1);
  for (let i = 0; i < data.spanCount; i++) {
    const t = traceOf[i]!;
    if (traceAt[t]! >= 0) continue;
    traceAt[t] = ids.length;
    ids.push(data.traceId(i));
  }
  return { ids, request: { tag: id, traceAt } };
}

/**
 * Attribute maps are prototype-less (a key such as `constructor` must not find Object's); a
 * structured clone gives them Object's prototype back, so it is taken off again.
 */
function withBareAttributes(data: TracesRequestData): TracesRequestData {
  for (const rs of data.resourceSpans) {
    Object.setPrototypeOf(rs.resource, null);
    for (const s of rs.spans) Object.setPrototypeOf(s.attributes, null);
  }
  return data;
}

/**
 * Accepts a decoded request. `body`: a raw request's bytes, moved back to the host with the answer
 * (the columns hold no reference to them: every value they keep is copied out while decoding).
 */
function accept(id: number, data: SpanColumns, tagged: boolean, body?: Uint8Array): void {
  accepting++;
  // Tagged before the spans go in: the batches they complete name the request (ChainBatch.requests).
  const tag = tagged && data.spanCount > 0 ? tagOf(id, data) : undefined;
  // createPipeline's acceptColumns does all its work before its first await: the spans are in (and
  // any batch they complete is queued) once the call returns.
  void pipeline
    .acceptColumns(data, tag?.request)
    .then(
      (outcome) => {
        const traceIds = outcome.ok && tag ? tag.ids : [];
        const answer: WorkerMessage = { t: 'accepted', id, outcome, spanCount: data.spanCount, rejectedSpans: data.rejectedSpans, rejectMessage: data.rejectMessage, traceIds, heap: liveHeap.read() };
        if (body) postWithBody(answer, body);
        else post(answer);
      },
      (err: unknown) => post({ t: 'done', id, error: err instanceof Error ? err.message : String(err) }),
    )
    .finally(() => {
      if (--accepting === 0) {
        for (let i = 0; i < held.length; i++) sendBatch(held[i]!.batch, held[i]!.data);
        held.length = 0;
      }
    });
}

async function answer(id: number, work: () => Promise<unknown>): Promise<void> {
  try {
    post({ t: 'done', id, result: await work() });
  } catch (err) {
    post({ t: 'done', id, error: err instanceof Error ? err.message : String(err) });
  }
}

type RawMessage = Extract<HostMessage, { t: 'raw' }>;

/** Decodes a raw request and accepts it, or answers it refused (not decoded) or invalid. */
function takeRaw(message: RawMessage): void {
  // A request the pipeline would refuse whatever it holds is not decoded first: under overload
  // the senders' resends would otherwise cost a decode each.
  const refused = pipeline.refusal();
  if (refused) {
    postWithBody({ t: 'refused', id: message.id, outcome: refused, heap: liveHeap.read() }, message.body);
    return;
  }
  const body = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength);
  const limits = { ...message.limits, keep: pipeline.keep };
  let data: SpanColumns;
  try {
    data = message.format === 'protobuf' ? decodeTracesRequestColumns(body, limits) : columnsFromData(decodeTracesRequestJson(body, limits), pipeline.keep);
  } catch (err) {
    postWithBody({ t: 'invalid', id: message.id, message: err instanceof Error ? err.message : String(err), heap: liveHeap.read() }, message.body);
    return;
  }
  accept(message.id, data, true, message.body);
}

/**
 * Requests that arrived while the batches waiting for the host were at their limit wait here, in
 * order, for room (up to MAX_WAIT_MS) instead of being refused at once: a refusal costs its sender
 * the suggested retry delay (a second), which idled senders whenever the host fell briefly behind;
 * an answer that comes a few ms later, once the host has stored a batch, costs it nothing. Bounded
 * in count and bytes; past either bound, or past MAX_WAIT_MS, a request is refused as before.
 */
const waiting: Array<{ message: RawMessage; untilMs: number }> = [];
let waitingBytes = 0;
let waitTimer: NodeJS.Timeout | undefined;
const MAX_WAIT_MS = 1_000;
const MAX_WAITING_REQUESTS = 64;
const MAX_WAITING_BYTES = 64 * 1024 * 1024;
const waited = new Counter({
  name: 'conduct_pipeline_requests_waited_total',
  help: 'Requests that waited on the pipeline thread for room in the queue to the store (answered once there was room, or refused after a second).',
  registers: [registry],
});

function onRaw(message: RawMessage): void {
  const size = message.body.byteLength;
  if ((waiting.length > 0 || pipeline.full()) && waiting.length < MAX_WAITING_REQUESTS && waitingBytes + size <= MAX_WAITING_BYTES) {
    waiting.push({ message, untilMs: performance.now() + MAX_WAIT_MS });
    waitingBytes += size;
    waited.inc();
    releaseWaiting();
    return;
  }
  takeRaw(message);
}

/** Takes the waiting requests there is room for now, in order; refuses those that waited too long. */
function releaseWaiting(): void {
  const now = performance.now();
  while (waiting.length > 0 && (!pipeline.full() || waiting[0]!.untilMs <= now)) {
    const { message } = waiting.shift()!;
    waitingBytes -= message.body.byteLength;
    takeRaw(message);
  }
  if (waitTimer !== undefined) clearTimeout(waitTimer);
  waitTimer = waiting.length > 0 ? setTimeout(releaseWaiting, Math.max(0, waiting[0]!.untilMs - now)) : undefined;
}

port.on('message', (message: HostMessage) => {
  switch (message.t) {
    case 'raw':
      onRaw(message);
      return;
    case 'data': {
      let data: SpanColumns;
      try {
        data = columnsFromData(withBareAttributes(message.data), pipeline.keep);
      } catch (err) {
        post({ t: 'done', id: message.id, error: err instanceof Error ? err.message : String(err) });
        return;
      }
      accept(message.id, data, false);
      return;
    }
    case 'consumed': {
      const waiter = consumed.get(message.batch);
      consumed.delete(message.batch);
      if (message.error === undefined) waiter?.resolve();
      else waiter?.reject(new Error(message.error));
      // The pipeline counts the batch consumed a few promise steps later: then there is room.
      if (waiting.length > 0) setImmediate(releaseWaiting);
      return;
    }
    case 'flush':
      void answer(message.id, () => pipeline.flush());
      return;
    case 'stop':
      void answer(message.id, () => pipeline.stop());
      // Refused as stopped (pipeline.stop refuses from its first step on).
      for (const { message: m } of waiting.splice(0)) takeRaw(m);
      waitingBytes = 0;
      return;
    case 'metrics':
      void answer(message.id, () => registry.metrics());
      return;
  }
});
