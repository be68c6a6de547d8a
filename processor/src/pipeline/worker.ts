/**
 * The pipeline thread: decodes request bodies, stitches spans into traces and derives chains, off
 * the main thread (see thread.ts for the host side and the ordering rules). An extension module
 * (WorkerExtension) may run beside the pipeline: the backend's journal and the OTLP receivers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
import { Counter, Gauge, Registry } from 'prom-client';
import { columnsFromData, decodeTracesRequestColumns, decodeTracesRequestJson, type DecodeLimits, type SpanColumns, type TracesRequestData } from '@conduct/proto';
import type { AcceptOutcome, ChainBatch, ChainConsumer, Logger, RawAcceptResult, RawRequest, TraceIngest } from '../model.js';
import { createPipeline, DEFAULT_SLICE_SPANS } from './pipeline.js';
import { createBatchDecoder, createBatchEncoder, type EncodedBatch } from './batch-codec.js';
import { createLiveHeapReader } from './live-heap.js';
import { TraceIdBytes, traceIdTexts, type AcceptedTraceIds } from '../trace-ids.js';
import type { HostMessage, WorkerExtension, WorkerExtensionModule, WorkerMessage, WorkerSettings } from './protocol.js';

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

/** The extension named by the host, loaded before the pipeline is built (it may wrap the consumer). */
async function loadExtension(): Promise<WorkerExtension | undefined> {
  if (!settings.extension) return undefined;
  const module = (await import(settings.extension.url)) as WorkerExtensionModule;
  return module.createWorkerExtension({
    registry,
    logger,
    data: settings.extension.data,
    post: (message) => post({ t: 'ext-message', message }),
    heapUsed: () => liveHeap.read(),
  });
}

let extension: WorkerExtension | undefined;
try {
  extension = await loadExtension();
} catch (err) {
  post({ t: 'start-failed', error: `pipeline thread extension: ${err instanceof Error ? err.message : String(err)}` });
  throw err;
}

// Batches queued while accepts run are held until every one of them has answered (its acceptor's
// `onAccepted` has run), so whoever notes the requests' traces (the journal, here or on the host)
// has done so before it sees them complete. A count, not a flag: the answers come from promise
// callbacks, and nothing here relies on when those run relative to the next message.
let accepting = 0;
const held: Array<{ batch: ChainBatch; data: EncodedBatch }> = [];

// The pipeline encodes each batch as it makes it (derived straight into the encoder's rows): a
// held batch waits encoded, and batches are posted in the order they were encoded.
const encoder = createBatchEncoder();
/**
 * Reads back each batch's trace ids for the extension's `onBatch` and consumer (the host keeps its
 * own decoder): the journal needs nothing else of a batch. Its trace summaries were read back
 * before, an object per trace for every batch: a tenth of this thread's allocations
 * (bench/README.md, "Trace ids, not summaries, for the journal").
 */
const readBack = extension?.onBatch ? createBatchDecoder() : undefined;
/** A batch's literals in its message when they went to WorkerSettings.literals. */
const NO_LITERALS: string[] = [];
const sendBatch = (batch: ChainBatch, data: EncodedBatch) => {
  if (readBack) {
    batch.traceIds = readBack.traceIds(data);
    try {
      extension!.onBatch!(batch);
    } catch (err) {
      logger.error({ err: String(err) }, 'onBatch hook of the pipeline thread extension failed');
    }
  }
  const transfer = [data.nums.buffer as ArrayBuffer, data.refs.buffer as ArrayBuffer];
  const requests = batch.requests;
  if (requests) transfer.push(requests.pairs.buffer as ArrayBuffer);
  // The literals (mostly span and trace ids, a few per span) go first, to the port the host reads
  // them from when it consumes the batch: until then they wait there as bytes outside its heap.
  const literalsApart = settings.literals !== undefined;
  if (literalsApart) settings.literals!.postMessage(data.literals);
  const message: WorkerMessage = {
    t: 'batch',
    batch: batchIds.get(batch)!,
    data: literalsApart ? { ...data, literals: NO_LITERALS } : data,
    ...(literalsApart ? { literalsApart: true as const } : {}),
    ...(requests ? { requests } : {}),
    ...(batch.replayed ? { replayed: batch.replayed } : {}),
    ...(batch.replayedReceivedMs ? { replayedReceivedMs: batch.replayedReceivedMs } : {}),
  };
  port.postMessage(message, transfer);
  // The host has its own copy now; this side only counts the batch until it is consumed.
  batch.requests = undefined;
};

let nextBatch = 1;
const batchIds = new WeakMap<ChainBatch, number>();
const consumed = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
/**
 * Batches the host consumed before the pipeline asked (its error, or undefined): the host consumes
 * batches as they arrive, and a wrapper of this consumer (the journal's) may take a turn of the
 * event loop before it passes a batch on.
 */
const consumedEarly = new Map<number, string | undefined>();

/** Resolves once the host has consumed the batch (its `consumed` message). */
const hostConsumer: ChainConsumer = {
  consume(batch) {
    const id = batchIds.get(batch);
    if (id === undefined) return Promise.resolve();
    if (consumedEarly.has(id)) {
      const error = consumedEarly.get(id);
      consumedEarly.delete(id);
      return error === undefined ? Promise.resolve() : Promise.reject(new Error(error));
    }
    return new Promise<void>((resolve, reject) => consumed.set(id, { resolve, reject }));
  },
};

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
  consumer: extension?.consumer ? extension.consumer(hostConsumer) : hostConsumer,
});

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

/** The trace ids of a request that named none (not tagged, or no spans). */
const NO_TRACE_IDS: readonly string[] = [];

/** Releases the batches held while accepts ran, once the last accept has answered. */
function accepted(): void {
  if (--accepting === 0) {
    for (let i = 0; i < held.length; i++) sendBatch(held[i]!.batch, held[i]!.data);
    held.length = 0;
  }
}

/**
 * Accepts decoded columns; `tag`: the request's tag, when its batches are to name it. `answered`
 * runs before any batch these spans complete is sent on (see `accepting`).
 */
async function acceptColumns(data: SpanColumns, tag: number | undefined, answered?: (outcome: AcceptOutcome, traceIds: AcceptedTraceIds) => void): Promise<AcceptOutcome> {
  accepting++;
  try {
    // Tagged before the spans go in: the batches they complete name the request (ChainBatch.requests),
    // each trace by its position in the columns' trace table, which are the request's ids as bytes.
    const tagged = tag !== undefined && data.spanCount > 0;
    const ids: AcceptedTraceIds = tagged ? new TraceIdBytes(data.traceIds) : NO_TRACE_IDS;
    // createPipeline's acceptColumns does all its work before its first await: the spans are in (and
    // any batch they complete is queued) once the call returns.
    const outcome = await pipeline.acceptColumns(data, tagged ? tag : undefined);
    answered?.(outcome, outcome.ok ? ids : NO_TRACE_IDS);
    return outcome;
  } finally {
    accepted();
  }
}

/** Numbers the requests this thread tags; the host's raw requests are tagged by their message id instead. */
let nextLocalTag = -1;

/** Called with a request's result before any batch its spans complete is sent on (see `accepting`). */
type Answer = (result: RawAcceptResult, traceIds: AcceptedTraceIds) => void;

/** Decodes a raw request and accepts it, or answers it refused (not decoded) or invalid. */
async function decodeAndAccept(raw: RawRequest, limits: DecodeLimits, tag: number, onAccepted?: (traceIds: AcceptedTraceIds, spans: number, tag?: number) => void, answer?: Answer): Promise<RawAcceptResult> {
  // A request the pipeline would refuse whatever it holds is not decoded first: under overload
  // the senders' resends would otherwise cost a decode each.
  const refused = pipeline.refusal();
  if (refused) return answerNow({ kind: 'refused', outcome: refused }, answer);
  const body = Buffer.from(raw.body.buffer, raw.body.byteOffset, raw.body.byteLength);
  const keepLimits = { ...limits, keep: pipeline.keep };
  let data: SpanColumns;
  try {
    data = raw.format === 'protobuf' ? decodeTracesRequestColumns(body, keepLimits) : columnsFromData(decodeTracesRequestJson(body, keepLimits), pipeline.keep);
  } catch (err) {
    return answerNow({ kind: 'invalid', message: err instanceof Error ? err.message : String(err) }, answer);
  }
  const { spanCount, rejectedSpans, rejectMessage } = data;
  let result: RawAcceptResult | undefined;
  await acceptColumns(data, tag, (outcome, traceIds) => {
    if (outcome.ok && spanCount > 0) onAccepted?.(traceIds, spanCount, tag);
    result = { kind: 'decoded', outcome, spanCount, rejectedSpans, rejectMessage };
    answer?.(result, traceIds);
  });
  return result!;
}

/** A result known before the spans go in (refused, invalid): answered at once. */
function answerNow(result: RawAcceptResult, answer?: Answer): RawAcceptResult {
  answer?.(result, []);
  return result;
}

/**
 * Requests that arrived while the batches waiting for the host were at their limit wait here, in
 * order, for room (up to MAX_WAIT_MS) instead of being refused at once: a refusal costs its sender
 * the suggested retry delay (a second), which idled senders whenever the host fell briefly behind;
 * an answer that comes a few ms later, once the host has stored a batch, costs it nothing. Bounded
 * in count and bytes; past either bound, or past MAX_WAIT_MS, a request is refused as before.
 */
interface Waiting {
  take(): void;
  bytes: number;
  untilMs: number;
}
const waiting: Waiting[] = [];
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

/** The pipeline as an ingest: raw requests wait for room, are decoded here and tagged. */
const local: TraceIngest = {
  keep: pipeline.keep,
  accept: (data) => acceptColumns(columnsFromData(data, pipeline.keep), undefined),
  acceptRaw: (raw, limits, onAccepted) => acceptRawAs(nextLocalTag--, raw, limits, onAccepted),
};

/** Accepts a raw request with the given tag, after waiting for room if need be (`waiting`). */
function acceptRawAs(tag: number, raw: RawRequest, limits: DecodeLimits, onAccepted?: (traceIds: AcceptedTraceIds, spans: number, tag?: number) => void, answer?: Answer): Promise<RawAcceptResult> {
  const bytes = raw.body.byteLength;
  if ((waiting.length > 0 || pipeline.full()) && waiting.length < MAX_WAITING_REQUESTS && waitingBytes + bytes <= MAX_WAITING_BYTES) {
    return new Promise<RawAcceptResult>((resolve, reject) => {
      waiting.push({ take: () => decodeAndAccept(raw, limits, tag, onAccepted, answer).then(resolve, reject), bytes, untilMs: performance.now() + MAX_WAIT_MS });
      waitingBytes += bytes;
      waited.inc();
      releaseWaiting();
    });
  }
  return decodeAndAccept(raw, limits, tag, onAccepted, answer);
}

/** Takes the waiting requests there is room for now, in order; refuses those that waited too long. */
function releaseWaiting(): void {
  const now = performance.now();
  while (waiting.length > 0 && (!pipeline.full() || waiting[0]!.untilMs <= now)) {
    const next = waiting.shift()!;
    waitingBytes -= next.bytes;
    next.take();
  }
  if (waitTimer !== undefined) clearTimeout(waitTimer);
  waitTimer = waiting.length > 0 ? setTimeout(releaseWaiting, Math.max(0, waiting[0]!.untilMs - now)) : undefined;
}

async function answer(id: number, work: () => Promise<unknown>): Promise<void> {
  try {
    post({ t: 'done', id, result: await work() });
  } catch (err) {
    // The error's class does not cross threads: its name does, for the host to tell kinds apart.
    post({ t: 'done', id, error: err instanceof Error ? err.message : String(err), ...(err instanceof Error ? { errorName: err.name } : {}) });
  }
}

type RawMessage = Extract<HostMessage, { t: 'raw' }>;

/**
 * A host's raw request: accepted through `ingest`, answered with its bytes moved back. Without an
 * extension the answer goes out before any batch the request completes (the host may journal the
 * request on its `onAccepted`, and must have done so before it sees its traces complete); the
 * host's requests are then tagged by their message id, which the host's batches name them by.
 */
function onRaw(message: RawMessage): void {
  const raw: RawRequest = { format: message.format, body: message.body, ownsBuffer: true };
  const reply: Answer = (result, traceIds) => {
    const heap = liveHeap.read();
    switch (result.kind) {
      case 'decoded': {
        const { outcome, spanCount, rejectedSpans, rejectMessage } = result;
        postWithBody({ t: 'accepted', id: message.id, outcome, spanCount, rejectedSpans, rejectMessage, traceIds: [...traceIdTexts(traceIds)], heap }, message.body);
        return;
      }
      case 'invalid':
        postWithBody({ t: 'invalid', id: message.id, message: result.message, heap }, message.body);
        return;
      case 'refused':
        postWithBody({ t: 'refused', id: message.id, outcome: result.outcome, heap }, message.body);
        return;
    }
  };
  const failed = (err: unknown) => post({ t: 'done', id: message.id, error: err instanceof Error ? err.message : String(err) });
  if (ingest === local) {
    acceptRawAs(message.id, raw, message.limits, undefined, reply).catch(failed);
    return;
  }
  let traceIds: AcceptedTraceIds = NO_TRACE_IDS;
  ingest.acceptRaw!(raw, message.limits, (ids) => (traceIds = ids)).then((result) => reply(result, traceIds), failed);
}

function onData(message: Extract<HostMessage, { t: 'data' }>): void {
  let data: TracesRequestData;
  try {
    data = withBareAttributes(message.data);
  } catch (err) {
    post({ t: 'done', id: message.id, error: err instanceof Error ? err.message : String(err) });
    return;
  }
  const raw: RawRequest | undefined = message.raw ? { format: message.raw.format, body: message.raw.body } : undefined;
  ingest.accept(data, raw).then(
    (outcome) => post({ t: 'accepted', id: message.id, outcome, spanCount: data.spanCount, rejectedSpans: data.rejectedSpans, rejectMessage: data.rejectMessage, traceIds: [], heap: liveHeap.read() }),
    (err: unknown) => post({ t: 'done', id: message.id, error: err instanceof Error ? err.message : String(err) }),
  );
}

/** Stops the extension's intake, drains the pipeline to the host, then stops the extension. */
async function stop(): Promise<void> {
  await extension?.close?.();
  const drained = pipeline.stop();
  // Refused as stopped (pipeline.stop refuses from its first step on).
  for (const w of waiting.splice(0)) w.take();
  waitingBytes = 0;
  await drained;
  await extension?.stop?.();
}

/** What the host's requests go through: the extension's ingest once it has started, else the pipeline's. */
let ingest: TraceIngest = local;
/** Requests that came before the extension had started (its ingest, the journal, takes them). */
let early: Array<Extract<HostMessage, { t: 'raw' | 'data' }>> | undefined = extension ? [] : undefined;

port.on('message', (message: HostMessage) => {
  switch (message.t) {
    case 'raw':
      if (early) early.push(message);
      else onRaw(message);
      return;
    case 'data':
      if (early) early.push(message);
      else onData(message);
      return;
    case 'consumed': {
      const waiter = consumed.get(message.batch);
      consumed.delete(message.batch);
      if (waiter === undefined) consumedEarly.set(message.batch, message.error);
      else if (message.error === undefined) waiter.resolve();
      else waiter.reject(new Error(message.error));
      // The pipeline counts the batch consumed a few promise steps later: then there is room.
      if (waiting.length > 0) setImmediate(releaseWaiting);
      return;
    }
    case 'earlier':
      pipeline.earlierTraces(message.ids, message.done);
      return;
    case 'flush':
      void answer(message.id, () => pipeline.flush());
      return;
    case 'stop':
      void answer(message.id, stop);
      return;
    case 'metrics':
      void answer(message.id, () => registry.getMetricsAsJSON());
      return;
    case 'ext-request':
      void answer(message.id, async () => {
        if (!extension?.request) throw new Error('the pipeline thread has no extension that answers requests');
        return extension.request(message.message);
      });
      return;
    case 'ext-message':
      try {
        extension?.message?.(message.message);
      } catch (err) {
        logger.error({ err: String(err) }, 'pipeline thread extension failed on a message');
      }
      return;
  }
});

// Listening already: the extension's start (a journal's replay) needs the host's `consumed` answers.
if (extension) {
  try {
    ingest = await extension.start(local);
  } catch (err) {
    post({ t: 'start-failed', error: `pipeline thread extension: ${err instanceof Error ? err.message : String(err)}` });
    throw err;
  }
  for (const message of early!.splice(0)) {
    if (message.t === 'raw') onRaw(message);
    else onData(message);
  }
  early = undefined;
}
post({ t: 'ready' });
