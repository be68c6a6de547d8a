import type { DecodeLimits, TracesRequestData } from '@conduct/proto';
import type { AcceptOutcome, BatchRequests, IdentityRule } from '../model.js';
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
}

export type HostMessage =
  /** A body to decode and accept (its buffer moved here; sent back with `accepted`). */
  | { t: 'raw'; id: number; format: 'protobuf' | 'json'; body: Uint8Array; limits: DecodeLimits }
  /** An already decoded request to accept (journal replay, in-line mode). */
  | { t: 'data'; id: number; data: TracesRequestData }
  /** The host has consumed (or failed on) a batch. */
  | { t: 'consumed'; batch: number; error?: string }
  | { t: 'flush' | 'stop' | 'metrics'; id: number };

export type WorkerMessage =
  /** The pipeline is built: the worker takes requests. */
  | { t: 'ready' }
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
  | { t: 'batch'; batch: number; data: EncodedBatch; requests?: BatchRequests }
  | { t: 'done'; id: number; result?: unknown; error?: string }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; obj: object | string; msg?: string };
