import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { DecodeLimits, TracesRequestData } from '@conduct/proto';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { AcceptOutcome, ChainBatch, ChainConsumer, Logger, RawAcceptResult, RawRequest, TraceIngest } from '../model.js';
import { silentLogger } from '../model.js';
import { DEFAULT_IDENTITY_RULES } from '../identity/index.js';
import { attributeKeepFor } from './keep.js';
import { createBatchDecoder } from './batch-codec.js';
import { consumeGroup, takeGroup } from './pipeline.js';
import { releaseBuffer } from '../release.js';
import type { AcceptedTraceIds } from '../trace-ids.js';
import type { HostMessage, WorkerMessage, WorkerSettings } from './protocol.js';

export interface PipelineThreadOptions extends Omit<WorkerSettings, 'extension' | 'literals'> {
  /** Receives completed chains on this thread, in order: one batch at a time, or those that wait together through `consumeMany`. */
  consumer: ChainConsumer;
  /** As PipelineOptions.onBatch: called on this thread when a batch arrives, before it is consumed. */
  onBatch?: (batch: ChainBatch) => void;
  logger?: Logger;
  /** Called once if the worker dies; every later accept is refused with a retryable answer. */
  onFailure?: (err: Error) => void;
  /** V8 young generation of the worker. Default DEFAULT_WORKER_YOUNG_GENERATION_MB. */
  maxYoungGenerationSizeMb?: number;
  /**
   * A module to run on the pipeline thread beside the pipeline (protocol.ts WorkerExtension), by
   * URL, and the data it is started with (structured-cloned). `started()` waits for its start.
   */
  extension?: { url: URL; data: unknown };
  /** Receives the extension's messages (WorkerExtensionContext.post). */
  onExtensionMessage?: (message: unknown) => void;
}

/** A registry's metrics as prom-client's `getMetricsAsJSON` gives them. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/**
 * The worker's young generation, MB: V8's default on this kind of machine. It was 16 MB while the
 * worker's pending spans were objects (most of what it allocated survived in the stitcher, and a
 * smaller young generation saved RSS at the same CPU). Since pending traces are columns the worker
 * allocates mostly short-lived data: at 48 MB it runs half the scavenges and, with
 * HEAP_GROWING_PERCENT at 100, the whole server took 0.90-0.95 of the CPU per span (GC helper
 * threads 0.72-0.85) for 1.04-1.18 of the peak RSS (bench/README.md "Garbage collection settings
 * (issue 19, 2026-12-07, fifth)").
 */
export const DEFAULT_WORKER_YOUNG_GENERATION_MB = 48;

/**
 * Default `maxQueuedSpans` of a pipeline thread: spans of completed traces sent to the consumer and
 * not consumed yet. In one thread the consumer drained the queue before the next request was read;
 * across threads the queue is where a backlog waits, so it is what admission must bound. At the
 * in-process default (1M) the bench acknowledged 53-55k spans/s while storing 34-36k and needed
 * 5 s to drain after each run; at 100k it acknowledged 38-41k, stored 33-36k and drained in 1.3 s.
 */
export const DEFAULT_THREAD_MAX_QUEUED_SPANS = 200_000;

/** A pipeline running on its own thread: the same ingest, flush and stop as createPipeline's. */
export interface PipelineThread extends TraceIngest {
  /** Tags each request (TraceIngest.acceptRaw): its tag is the `tag` its batches' `requests` name it by. */
  acceptRaw(raw: RawRequest, limits: DecodeLimits, onAccepted?: (traceIds: AcceptedTraceIds, spans: number, tag?: number) => void): Promise<RawAcceptResult>;
  /** Completes every pending trace; resolves once the consumer has consumed every batch. */
  flush(): Promise<void>;
  /** Completes pending traces, drains and ends the thread. Safe twice. */
  stop(): Promise<void>;
  /** The thread's metrics (the pipeline's counters and gauges, and its extension's) in the Prometheus text format. */
  metrics(): Promise<string>;
  /** The same metrics as `Registry.getMetricsAsJSON` gives them (to serve with another registry's, see AggregatorRegistry). */
  metricsJson(): Promise<MetricsJson>;
  /** Sends the extension a request (WorkerExtension.request) and resolves with its answer. */
  request(message: unknown): Promise<unknown>;
  /** Sends the extension a message (WorkerExtension.message). */
  notify(message: unknown): void;
  /** Pipeline.earlierTraces on the thread; `ids`' buffer is moved there (unusable here afterwards). */
  earlierTraces(ids: Uint8Array, done: boolean): void;
  /** The thread's heap in use as last reported (bytes). */
  heapUsed(): number;
  /** Resolves once the worker has built its pipeline; rejects if it could not (bad settings, missing build). */
  started(): Promise<void>;
}

/** A batch arrived from the worker, its chains still encoded until it is consumed. */
interface Arrived {
  batch: ChainBatch;
  opened: { chains(): void };
  /** The typed arrays the batch came in, released once its chains are decoded (releaseArrays). */
  arrays: ArrayBufferLike[];
  /** The worker's id of the batch. */
  id: number;
  spans: number;
}

/**
 * Releases the arrays a batch came in once its chains are decoded (nothing reads them again: the
 * summaries and the journal's request pairs were read on arrival). A backlog of batches waits
 * long enough for their arrays to be promoted, and V8 counted their bytes against the main
 * thread's old generation until a full collection (release.ts).
 */
function releaseArrays(arrived: Arrived): void {
  for (const buffer of arrived.arrays) releaseBuffer(buffer);
  arrived.arrays = [];
}

/** Retry delay answered once the worker has failed (the process should be restarted). */
export const FAILED_RETRY_AFTER_MS = 5_000;

/** The compiled worker next to this module, or the package's build when running from sources. */
function workerUrl(): URL {
  const here = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  return new URL('../../dist/pipeline/worker.js', import.meta.url);
}

type Pending =
  | {
      kind: 'accept';
      resolve: (r: RawAcceptResult) => void;
      reject: (err: Error) => void;
      onAccepted?: (traceIds: AcceptedTraceIds, spans: number, tag?: number) => void;
      /** The caller's request, whose `body` is set to the bytes the worker hands back. */
      raw?: RawRequest;
    }
  | { kind: 'call'; resolve: (value: unknown) => void; reject: (err: Error) => void };

/**
 * Starts the pipeline (decode, stitching, derivation) on a worker thread, so that it and the
 * consumer (store and detection, on this thread) use a core each. Batches come back here in the
 * order the worker queued them and are consumed one at a time, as createPipeline does.
 *
 * Ordering: the worker answers an accept before it sends any batch that the accepted spans
 * completed, and `onAccepted` runs synchronously on that answer; so a caller that notes the
 * request's traces there (the journal) has done so before `onBatch` sees them complete. With an
 * extension (which takes the host's requests through its own ingest, a journal on that thread)
 * the answer comes once that ingest has answered, and may follow the batches it completed.
 */
export function createPipelineThread(options: PipelineThreadOptions): PipelineThread {
  const { consumer, onBatch, logger = silentLogger, onFailure, maxYoungGenerationSizeMb, extension, onExtensionMessage, ...settings } = options;
  const workerData: WorkerSettings = {
    ...settings,
    maxQueuedSpans: settings.maxQueuedSpans ?? DEFAULT_THREAD_MAX_QUEUED_SPANS,
    ...(extension ? { extension: { url: extension.url.href, data: extension.data } } : {}),
  };
  // Each batch's literals come through a port of their own and wait in its queue, as the
  // structured clone's bytes, until the batch is consumed. Sent with the batch, they became strings
  // on arrival, and a backlog of waiting batches held ~2 per span (mostly span ids) long enough
  // for them to be copied into the old generation and marked there (bench/README.md, "Waiting
  // batches outside the heap").
  const { port1: literals, port2: literalsOfWorker } = new MessageChannel();
  // Read with receiveMessageOnPort only: it never keeps the process alive.
  literals.unref();
  const worker = new Worker(workerUrl(), {
    workerData: { ...workerData, literals: literalsOfWorker },
    transferList: [literalsOfWorker],
    resourceLimits: { maxYoungGenerationSizeMb: maxYoungGenerationSizeMb ?? DEFAULT_WORKER_YOUNG_GENERATION_MB },
  });
  /** The literals of the next batch to be consumed: the worker posts them just before each batch, and batches are consumed in order. */
  const takeLiterals = (): string[] => {
    const next = receiveMessageOnPort(literals);
    if (!next) throw new Error('a batch from the pipeline thread came without its literals');
    return next.message as string[];
  };
  const pending = new Map<number, Pending>();
  const decoder = createBatchDecoder();
  let nextId = 1;
  let heap = 0;
  let failure: Error | undefined;
  let stopping: Promise<void> | undefined;
  let exited = false;
  let markStarted: { resolve: () => void; reject: (err: Error) => void } | undefined;
  const started = new Promise<void>((resolve, reject) => (markStarted = { resolve, reject }));
  // Observed here so that a failure nobody awaits `started()` for is not an unhandled rejection.
  started.catch(() => {});
  // Batches are consumed in arrival order, those that wait together at once (takeGroup).
  const waiting: Arrived[] = [];
  let consuming: Promise<void> = Promise.resolve();
  let running = false;

  const send = (message: HostMessage) => worker.postMessage(message);

  const call = <T>(t: 'flush' | 'stop' | 'metrics' | 'ext-request', message?: unknown): Promise<T> => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { kind: 'call', resolve: resolve as (v: unknown) => void, reject });
      send(t === 'ext-request' ? { t, id, message } : { t, id });
    });
  };

  const fail = (err: Error) => {
    if (failure) return;
    failure = err;
    markStarted?.reject(err);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    if (!stopping) {
      logger.error({ err: err.message }, 'pipeline thread failed; ingest is refused until conduct restarts (the journal replays what was acknowledged)');
      onFailure?.(err);
    }
  };

  worker.on('error', (err) => fail(err instanceof Error ? err : new Error(String(err))));
  worker.on('exit', (code) => {
    exited = true;
    literals.close();
    fail(new Error(`pipeline thread exited with code ${code}`));
  });

  /**
   * Puts a raw request's bytes, moved back by the worker, where the caller has them, in a buffer
   * that is the request's alone (RawRequest.returned): the caller releases it once done.
   */
  const giveBack = (p: Pending & { kind: 'accept' }, body: Uint8Array | undefined) => {
    if (p.raw && body) {
      p.raw.body = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      p.raw.returned = true;
    }
  };

  /** Consumes the batches waiting, group by group, and tells the worker each one is consumed. */
  const consumeWaiting = async () => {
    while (waiting.length > 0) {
      // A write is milliseconds of synchronous store and detection work: let the receivers'
      // answers and the journal's group commit through between two.
      await new Promise((resolve) => setImmediate(resolve));
      const group = takeGroup(waiting, consumer);
      const failures = group.map((arrived): { err: unknown } | undefined => {
        try {
          arrived.opened.chains();
          releaseArrays(arrived);
          return undefined;
        } catch (err) {
          return { err };
        }
      });
      const decoded = group.filter((_, i) => failures[i] === undefined);
      if (decoded.length > 0) {
        const outcomes = await consumeGroup(consumer, decoded.map((arrived) => arrived.batch));
        let k = 0;
        for (let i = 0; i < group.length; i++) if (failures[i] === undefined) failures[i] = outcomes[k++];
      }
      group.forEach((arrived, i) => {
        const failure = failures[i];
        const error = failure === undefined ? undefined : failure.err instanceof Error ? failure.err.message : String(failure.err);
        if (!exited) send({ t: 'consumed', batch: arrived.id, ...(error !== undefined ? { error } : {}) });
      });
    }
    // Cleared in the same turn as the last check of `waiting`: an arrival after it starts a new run.
    running = false;
  };

  worker.on('message', (message: WorkerMessage) => {
    switch (message.t) {
      case 'ready':
        markStarted?.resolve();
        return;
      case 'start-failed':
        markStarted?.reject(new Error(message.error));
        return;
      case 'ext-message':
        try {
          onExtensionMessage?.(message.message);
        } catch (err) {
          logger.error({ err: String(err) }, 'onExtensionMessage hook failed');
        }
        return;
      case 'accepted': {
        heap = message.heap;
        const p = pending.get(message.id);
        pending.delete(message.id);
        if (p?.kind !== 'accept') return;
        giveBack(p, message.body);
        if (message.outcome.ok && message.spanCount > 0) {
          try {
            p.onAccepted?.(message.traceIds, message.spanCount, message.id);
          } catch (err) {
            logger.error({ err: String(err) }, 'onAccepted hook failed');
          }
        }
        p.resolve({ kind: 'decoded', outcome: message.outcome, spanCount: message.spanCount, rejectedSpans: message.rejectedSpans, rejectMessage: message.rejectMessage });
        return;
      }
      case 'invalid': {
        heap = message.heap;
        const p = pending.get(message.id);
        pending.delete(message.id);
        if (p?.kind !== 'accept') return;
        giveBack(p, message.body);
        p.resolve({ kind: 'invalid', message: message.message });
        return;
      }
      case 'refused': {
        heap = message.heap;
        const p = pending.get(message.id);
        pending.delete(message.id);
        if (p?.kind !== 'accept') return;
        giveBack(p, message.body);
        p.resolve({ kind: 'refused', outcome: message.outcome });
        return;
      }
      case 'done': {
        const p = pending.get(message.id);
        pending.delete(message.id);
        if (!p) return;
        if (message.error !== undefined) {
          const err = new Error(message.error);
          if (message.errorName !== undefined) err.name = message.errorName;
          p.reject(err);
        } else if (p.kind === 'call') p.resolve(message.result);
        else p.reject(new Error('unexpected answer to an accept'));
        return;
      }
      case 'batch': {
        // Chains when consumed; summaries now only for an onBatch (which reads them in arrival
        // order), and then the literals too.
        const data = message.data;
        if (message.literalsApart && onBatch) data.literals = takeLiterals();
        const opened = decoder.open(data, message.literalsApart && !onBatch ? takeLiterals : undefined);
        const batch = opened.batch;
        if (message.requests) batch.requests = message.requests;
        if (message.replayed) batch.replayed = message.replayed;
        if (message.replayedReceivedMs) batch.replayedReceivedMs = message.replayedReceivedMs;
        if (onBatch) {
          try {
            onBatch(batch);
          } catch (err) {
            logger.error({ err: String(err) }, 'onBatch hook failed');
          }
        }
        const arrays = [message.data.nums.buffer, message.data.refs.buffer];
        waiting.push({ batch, opened, arrays, id: message.batch, spans: batch.spans });
        if (!running) {
          running = true;
          consuming = consumeWaiting();
        }
        return;
      }
      case 'log':
        logger[message.level](message.obj, message.msg);
        return;
    }
  });

  const refused = (): Extract<AcceptOutcome, { ok: false }> => ({ ok: false, reason: 'failed', retryAfterMs: FAILED_RETRY_AFTER_MS });

  const submit = (
    message: HostMessage & { t: 'raw' | 'data' },
    onAccepted?: (traceIds: AcceptedTraceIds, spans: number, tag?: number) => void,
    raw?: RawRequest,
    transfer?: ArrayBuffer[],
  ) =>
    new Promise<RawAcceptResult>((resolve, reject) => {
      pending.set(message.id, { kind: 'accept', resolve, reject, ...(onAccepted ? { onAccepted } : {}), ...(raw ? { raw } : {}) });
      worker.postMessage(message, transfer);
    });

  return {
    keep: attributeKeepFor(settings.rules ?? DEFAULT_IDENTITY_RULES),

    async accept(data: TracesRequestData, raw?: RawRequest): Promise<AcceptOutcome> {
      if (failure || stopping) return refused();
      // Only an extension (its journal) keeps the body: then a copy goes (the body is the caller's).
      const result = await submit({ t: 'data', id: nextId++, data, ...(raw && extension ? { raw: { format: raw.format, body: new Uint8Array(raw.body) } } : {}) });
      return result.kind === 'decoded' ? result.outcome : refused();
    },

    async acceptRaw(raw, limits, onAccepted) {
      if (failure || stopping) return { kind: 'refused', outcome: refused() };
      // The bytes move to the worker and, once decoded, back with the answer (`raw.body` is then
      // the same bytes again, for the journal to write): a structured clone copied them twice
      // (into the message and out of it), 1.5% of this thread's CPU in the bench. Only a body
      // that is a view of a larger buffer others may use (not `ownsBuffer`) is copied first.
      const whole = raw.body.buffer instanceof ArrayBuffer && (raw.ownsBuffer === true || (raw.body.byteOffset === 0 && raw.body.byteLength === raw.body.buffer.byteLength));
      const body = whole ? raw.body : new Uint8Array(raw.body);
      const { keep: _ignored, ...plain } = limits;
      return submit({ t: 'raw', id: nextId++, format: raw.format, body, limits: plain }, onAccepted, raw, [body.buffer as ArrayBuffer]);
    },

    flush: () => call<void>('flush'),

    metricsJson: () => (failure ? Promise.resolve([]) : call<MetricsJson>('metrics')),

    metrics: async () => (failure ? '' : AggregatorRegistry.aggregate([await call<MetricsJson>('metrics')]).metrics()),

    request: (message) => call<unknown>('ext-request', message),

    notify(message) {
      if (!failure && !exited) send({ t: 'ext-message', message });
    },

    earlierTraces(ids, done) {
      if (!failure && !exited) worker.postMessage({ t: 'earlier', ids, done } satisfies HostMessage, [ids.buffer as ArrayBuffer]);
    },

    heapUsed: () => heap,

    started: () => started,

    stop: () =>
      (stopping ??= (async () => {
        if (!failure) {
          try {
            await call<void>('stop');
            await consuming;
          } catch (err) {
            logger.error({ err: String(err) }, 'pipeline thread did not stop cleanly');
          }
        }
        if (!exited) await worker.terminate();
      })()),
  };
}
