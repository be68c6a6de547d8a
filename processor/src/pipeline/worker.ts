/**
 * The pipeline thread: decodes request bodies, stitches spans into traces and derives chains, off
 * the main thread (see thread.ts for the host side and the ordering rules).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
import { Gauge, Registry } from 'prom-client';
import { columnsFromData, decodeTracesRequestColumns, decodeTracesRequestJson, type SpanColumns, type TracesRequestData } from '@conduct/proto';
import type { ChainBatch, Logger } from '../model.js';
import { createPipeline } from './pipeline.js';
import { createBatchEncoder } from './batch-codec.js';
import { createLiveHeapReader } from './live-heap.js';
import type { HostMessage, WorkerMessage, WorkerSettings } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('the pipeline worker runs in a worker thread');
const settings = workerData as WorkerSettings;
const post = (message: WorkerMessage) => port.postMessage(message);

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
const held: ChainBatch[] = [];

const encoder = createBatchEncoder();
const sendBatch = (batch: ChainBatch) => {
  const data = encoder.encode(batch);
  port.postMessage({ t: 'batch', batch: batchIds.get(batch)!, data } satisfies WorkerMessage, [data.nums.buffer as ArrayBuffer, data.refs.buffer as ArrayBuffer]);
  // The host has its own copy now; this side only counts the batch until it is consumed.
  batch.chains = [];
  batch.traceSummaries = [];
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
  onBatch(batch) {
    const id = nextBatch++;
    batchIds.set(batch, id);
    if (accepting > 0) held.push(batch);
    else sendBatch(batch);
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

function traceIdsOf(data: SpanColumns): string[] {
  const ids = new Set<string>();
  for (let i = 0; i < data.spanCount; i++) ids.add(data.traceId(i));
  return [...ids];
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

function accept(id: number, data: SpanColumns, withTraceIds: boolean): void {
  accepting++;
  // createPipeline's acceptColumns does all its work before its first await: the spans are in (and
  // any batch they complete is queued) once the call returns.
  void pipeline
    .acceptColumns(data)
    .then(
      (outcome) => {
        const traceIds = outcome.ok && withTraceIds && data.spanCount > 0 ? traceIdsOf(data) : [];
        post({ t: 'accepted', id, outcome, spanCount: data.spanCount, rejectedSpans: data.rejectedSpans, rejectMessage: data.rejectMessage, traceIds, heap: liveHeap.read() });
      },
      (err: unknown) => post({ t: 'done', id, error: err instanceof Error ? err.message : String(err) }),
    )
    .finally(() => {
      if (--accepting === 0) for (const batch of held.splice(0)) sendBatch(batch);
    });
}

async function answer(id: number, work: () => Promise<unknown>): Promise<void> {
  try {
    post({ t: 'done', id, result: await work() });
  } catch (err) {
    post({ t: 'done', id, error: err instanceof Error ? err.message : String(err) });
  }
}

port.on('message', (message: HostMessage) => {
  switch (message.t) {
    case 'raw': {
      // A request the pipeline would refuse whatever it holds is not decoded first: under overload
      // the senders' resends would otherwise cost a decode each.
      const refused = pipeline.refusal();
      if (refused) {
        post({ t: 'refused', id: message.id, outcome: refused, heap: liveHeap.read() });
        return;
      }
      const body = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength);
      const limits = { ...message.limits, keep: pipeline.keep };
      let data: SpanColumns;
      try {
        data = message.format === 'protobuf' ? decodeTracesRequestColumns(body, limits) : columnsFromData(decodeTracesRequestJson(body, limits), pipeline.keep);
      } catch (err) {
        post({ t: 'invalid', id: message.id, message: err instanceof Error ? err.message : String(err), heap: liveHeap.read() });
        return;
      }
      accept(message.id, data, true);
      return;
    }
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
      return;
    }
    case 'flush':
      void answer(message.id, () => pipeline.flush());
      return;
    case 'stop':
      void answer(message.id, () => pipeline.stop());
      return;
    case 'metrics':
      void answer(message.id, () => registry.metrics());
      return;
  }
});
