import type { DecodeLimits, TracesRequestData } from '@conduct/proto';
import type { MessagePort } from 'node:worker_threads';
import type { Registry } from 'prom-client';
import type { AcceptOutcome, BatchRequests, ChainBatch, ChainConsumer, IdentityRule, Logger, TraceIngest } from '../model.js';
import type { EncodedBatch } from './batch-codec.js';
import type { StitchConfig } from '../stitch/index.js';

/**
 * Messages between a pipeline thread's host (thread.ts) and its worker (worker.ts). Everything
 * here is structured-cloned by `postMessage`.
 */

/** What the worker is started with (`workerData`). */
export interface WorkerSettings {
  rules?: IdentityRule[];
  stitching: StitchConfig;
  maxQueuedBatches?: number;
  maxQueuedSpans?: number;
  retryAfterMs?: number;
  /** A module the worker loads and runs beside the pipeline (see WorkerExtension), and what it is given. */
  extension?: { url: string; data: unknown };
  /**
   * Where the worker posts each batch's literals (EncodedBatch.literals), just before the batch
   * itself, which then says `literalsApart`: the host reads them from this port when it consumes
   * the batch (thread.ts).
   */
  literals?: MessagePort;
}

/**
 * What a pipeline thread's extension module exports: `createWorkerExtension`. The host names the
 * module by URL (PipelineThreadOptions.extension), so the processor does not import the code that
 * runs there (the backend's journal and the receivers it starts on this thread).
 */
export interface WorkerExtensionModule {
  createWorkerExtension(context: WorkerExtensionContext): WorkerExtension | Promise<WorkerExtension>;
}

export interface WorkerExtensionContext {
  /** The pipeline thread's registry: its metrics are served with the host's. */
  registry: Registry;
  /** Logs through the host's logger. */
  logger: Logger;
  /** PipelineThreadOptions.extension's `data`, structured-cloned. */
  data: unknown;
  /** Sends a message to the host's PipelineThreadOptions.onExtensionMessage. */
  post(message: unknown): void;
  /** The pipeline thread's live heap, bytes (createLiveHeapReader). */
  heapUsed(): number;
}

/** Code that runs on the pipeline thread beside the pipeline; every part is optional but `start`. */
export interface WorkerExtension {
  /** Wraps the consumer that hands batches to the host and resolves once the host has consumed each. */
  consumer?(host: ChainConsumer): ChainConsumer;
  /**
   * Called for each batch, in order, just before it is sent to the host, with its trace ids
   * (`traceIds`, not `traceSummaries`) read back from its encoding and its `requests`. Fields it sets in
   * `replayed` and `replayedReceivedMs` travel with the batch. Must not throw.
   */
  onBatch?(batch: ChainBatch): void;
  /**
   * Called once the pipeline is built, before the host is told the thread is ready, with the
   * pipeline as an ingest; resolves with the ingest that the host's requests go through from then
   * on (`local` itself, or a wrapper of it).
   */
  start(local: TraceIngest): Promise<TraceIngest>;
  /** Answers PipelineThread.request(message). */
  request?(message: unknown): Promise<unknown>;
  /** Answers PipelineThread.notify(message). */
  message?(message: unknown): void;
  /** On stop, before the pipeline drains: stop taking requests. */
  close?(): Promise<void>;
  /** On stop, once the pipeline has drained and the host has consumed every batch. */
  stop?(): Promise<void>;
}

export type HostMessage =
  /** A body to decode and accept (its buffer moved here; sent back with `accepted`). */
  | { t: 'raw'; id: number; format: 'protobuf' | 'json'; body: Uint8Array; limits: DecodeLimits }
  /** An already decoded request to accept; `raw`: the body it was decoded from (a journal keeps it). */
  | { t: 'data'; id: number; data: TracesRequestData; raw?: { format: 'protobuf' | 'json'; body: Uint8Array } }
  /** For the extension: a request to answer with `done`, or a message. */
  | { t: 'ext-request'; id: number; message: unknown }
  | { t: 'ext-message'; message: unknown }
  /** Pipeline.earlierTraces (the buffer moved here). */
  | { t: 'earlier'; ids: Uint8Array; done: boolean }
  /** The host has consumed (or failed on) a batch. */
  | { t: 'consumed'; batch: number; error?: string }
  | { t: 'flush' | 'stop' | 'metrics'; id: number };

export type WorkerMessage =
  /** The pipeline is built (and the extension started): the worker takes requests. */
  | { t: 'ready' }
  /** The pipeline or its extension could not start. */
  | { t: 'start-failed'; error: string }
  /** From the extension (WorkerExtensionContext.post). */
  | { t: 'ext-message'; message: unknown }
  /**
   * `traceIds`: a raw request's distinct trace ids (empty for `data`); the request's tag in the
   * batches' `requests` is its `id`. `body`: a raw request's bytes, moved back.
   */
  | {
      t: 'accepted';
      id: number;
      outcome: AcceptOutcome;
      spanCount: number;
      rejectedSpans: number;
      rejectMessage: string;
      traceIds: string[];
      heap: number;
      body?: Uint8Array;
    }
  | { t: 'invalid'; id: number; message: string; heap: number; body?: Uint8Array }
  /** Refused before it was decoded (the pipeline's queue for the consumer is full, or it stopped). */
  | { t: 'refused'; id: number; outcome: Extract<AcceptOutcome, { ok: false }>; heap: number; body?: Uint8Array }
  /** A batch of completed traces, sent when it is queued (the host's `onBatch` moment). */
  | {
      t: 'batch';
      batch: number;
      /** With `literalsApart`, its `literals` are empty: they were posted to WorkerSettings.literals. */
      data: EncodedBatch;
      literalsApart?: true;
      requests?: BatchRequests;
      replayed?: readonly string[];
      replayedReceivedMs?: ReadonlyMap<string, number>;
    }
  /** `errorName`: the failed work's error's `name` (its class does not cross threads). */
  | { t: 'done'; id: number; result?: unknown; error?: string; errorName?: string }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; obj: object | string; msg?: string };
