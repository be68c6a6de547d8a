import { performance } from 'node:perf_hooks';
import {
  DEFAULT_DECODE_LIMITS,
  decodeTracesRequest,
  decodeTracesRequestJson,
  type DecodeLimits,
  type TracesRequestData,
} from '@conduct/proto';
import type { Logger, RawRequest, TraceIngest } from '../model.js';
import { releaseBuffer } from '../release.js';
import type { Forwarder } from '../forward/index.js';
import type { ReceiverMetrics, ReceiverProtocol } from './metrics.js';

/** Wire format of a request body (and of the answer to it). */
export type BodyFormat = 'protobuf' | 'json';

/** What became of one export request, independent of the protocol that carried it. */
export type ExportResult =
  /** Acknowledged; `rejectedSpans` > 0 is reported as a partial success. */
  | { kind: 'ok'; rejectedSpans: number; errorMessage: string }
  /** The body is not a valid request: permanent, never retry (HTTP 400, gRPC INVALID_ARGUMENT). */
  | { kind: 'invalid'; message: string }
  /** Not accepted now; retry after the delay (HTTP 503, gRPC UNAVAILABLE). */
  | { kind: 'overloaded'; message: string; retryAfterMs: number };

/** Retry delay suggested when the forwarder's queue and spool are full. */
export const FORWARD_FULL_RETRY_MS = 1_000;
/** Retry delay suggested when the ingest failed instead of answering. */
export const INGEST_ERROR_RETRY_MS = 1_000;
/** Background failures are logged at most this often; each one is counted. */
const ERROR_LOG_INTERVAL_MS = 60_000;

const EMPTY_REQUEST: TracesRequestData = Object.freeze({
  resourceSpans: [],
  spanCount: 0,
  rejectedSpans: 0,
  rejectMessage: '',
}) as TracesRequestData;

/** The export path for one request body: `compressedBody` and `ownsBuffer` as createExportFlow says. */
export type ExportFlow = (protocol: ReceiverProtocol, format: BodyFormat, body: Buffer, compressedBody?: Buffer, ownsBuffer?: boolean) => Promise<ExportResult>;

/**
 * Decodes a request body and hands it to the ingest: the part of the export path both receivers
 * share. Never throws: every outcome, including a failing ingest, is returned as data and counted,
 * and so is the time it took (`conduct_receiver_request_duration_seconds`).
 */
export function createExportFlow(
  ingest: TraceIngest,
  metrics: ReceiverMetrics,
  logger: Logger,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
  forwarder?: Pick<Forwarder, 'submit' | 'enabled'>,
): ExportFlow {
  return timed(untimedExportFlow(ingest, metrics, logger, limits, forwarder), metrics);
}

/** The flow with each request's time from its body to its outcome observed. */
function timed(flow: ExportFlow, metrics: ReceiverMetrics): ExportFlow {
  return async (protocol, format, body, compressedBody, ownsBuffer) => {
    const started = performance.now();
    try {
      return await flow(protocol, format, body, compressedBody, ownsBuffer);
    } finally {
      metrics.requestDuration(protocol, (performance.now() - started) / 1000);
    }
  };
}

function untimedExportFlow(
  ingest: TraceIngest,
  metrics: ReceiverMetrics,
  logger: Logger,
  limits: DecodeLimits,
  forwarder?: Pick<Forwarder, 'submit' | 'enabled'>,
): ExportFlow {
  let lastErrorLog = -Infinity;
  // Decode only the attributes the ingest reads, when it says which.
  const decodeLimits: DecodeLimits = ingest.keep ? { ...limits, keep: ingest.keep } : limits;

  // `compressedBody`: the gzip bytes as received (HTTP in in-line mode), passed on unchanged when a
  // downstream also wants gzip.
  const failed = (error: unknown) => {
    const now = Date.now();
    if (now - lastErrorLog >= ERROR_LOG_INTERVAL_MS) {
      lastErrorLog = now;
      logger.error({ err: error instanceof Error ? error.message : String(error) }, 'trace ingest failed; answering retryable errors');
    }
  };
  const invalid = (protocol: ReceiverProtocol, format: BodyFormat, error: unknown): ExportResult => {
    // DecodeError is the expected case; anything else thrown on hostile input is treated the
    // same way (a bad body), so no input can fail the request in an unplanned way.
    metrics.requestRejected(protocol, 'decode-error');
    const message = error instanceof Error ? error.message : String(error);
    return { kind: 'invalid', message: `cannot decode the request body as OTLP ${format}: ${message}` };
  };
  const ok = (protocol: ReceiverProtocol, rejectedSpans: number, rejectMessage: string): ExportResult => {
    metrics.spansRejected(protocol, 'invalid-span', rejectedSpans);
    return { kind: 'ok', rejectedSpans, errorMessage: rejectedSpans > 0 ? rejectMessage : '' };
  };
  const overloaded = (protocol: ReceiverProtocol, spans: number, outcome: { reason: string; retryAfterMs: number }): ExportResult => {
    metrics.requestRejected(protocol, 'overloaded');
    metrics.spansRejected(protocol, 'overloaded', spans);
    return { kind: 'overloaded', message: `conduct is overloaded (${outcome.reason}); retry later`, retryAfterMs: Math.max(0, outcome.retryAfterMs) };
  };

  // The ingest decodes (on its own thread): the receiver only passes the bytes on. In-line mode
  // decodes here, since a request must be known valid before it is forwarded. `ownsBuffer`: see
  // RawRequest.ownsBuffer.
  if (ingest.acceptRaw && !forwarder?.enabled) {
    const acceptRaw = ingest.acceptRaw.bind(ingest);
    return async (protocol, format, body, _compressedBody, ownsBuffer) => {
      metrics.requestBytes(protocol, body.length);
      if (body.length === 0) return ok(protocol, 0, '');
      let result;
      const raw: RawRequest = ownsBuffer ? { format, body, ownsBuffer } : { format, body };
      try {
        result = await acceptRaw(raw, limits);
        // Bytes moved back to this thread for this request only, or the request's own buffer read
        // in place (the receivers on the pipeline thread): the ingest has decoded and journaled
        // them, and nothing reads them once it has answered (RawRequest.ownsBuffer).
        if (raw.returned || raw.ownsBuffer) releaseBuffer(raw.body.buffer);
      } catch (error) {
        metrics.requestRejected(protocol, 'ingest-error');
        failed(error);
        return { kind: 'overloaded', message: 'conduct could not take the spans; retry later', retryAfterMs: INGEST_ERROR_RETRY_MS };
      }
      switch (result.kind) {
        case 'invalid':
          return invalid(protocol, format, result.message);
        case 'refused':
          return overloaded(protocol, 0, result.outcome);
        case 'decoded':
          if (!result.outcome.ok) return overloaded(protocol, result.spanCount, result.outcome);
          if (result.spanCount > 0) metrics.spansReceived(protocol, result.spanCount);
          return ok(protocol, result.rejectedSpans, result.rejectMessage);
      }
    };
  }

  // `compressedBody`: the gzip bytes as received (HTTP in in-line mode), passed on unchanged when a
  // downstream also wants gzip.
  return async (protocol, format, body, compressedBody) => {
    metrics.requestBytes(protocol, body.length);
    let data: TracesRequestData;
    if (body.length === 0) {
      // Zero bytes is a valid, empty request in both encodings.
      data = EMPTY_REQUEST;
    } else {
      try {
        data = format === 'protobuf' ? decodeTracesRequest(body, decodeLimits) : decodeTracesRequestJson(body, decodeLimits);
      } catch (error) {
        return invalid(protocol, format, error);
      }
    }

    // In-line mode: pass the request on before (and regardless of) the analysis.
    let forwarded = false;
    if (forwarder?.enabled && body.length > 0) {
      if (forwarder.submit({ body, ...(compressedBody ? { compressedBody } : {}), format, spans: data.spanCount + data.rejectedSpans }) === 'full') {
        metrics.requestRejected(protocol, 'forward-full');
        metrics.spansRejected(protocol, 'forward-full', data.spanCount);
        return { kind: 'overloaded', message: 'the downstream is not keeping up; retry later', retryAfterMs: FORWARD_FULL_RETRY_MS };
      }
      forwarded = true;
    }

    if (data.spanCount > 0) {
      let outcome;
      try {
        outcome = await ingest.accept(data, { format, body });
      } catch (error) {
        metrics.requestRejected(protocol, 'ingest-error');
        metrics.spansRejected(protocol, 'ingest-error', data.spanCount);
        failed(error);
        if (forwarded) return { kind: 'ok', rejectedSpans: data.rejectedSpans, errorMessage: data.rejectedSpans > 0 ? data.rejectMessage : '' };
        return { kind: 'overloaded', message: 'conduct could not take the spans; retry later', retryAfterMs: INGEST_ERROR_RETRY_MS };
      }
      if (!outcome.ok) {
        if (forwarded) {
          metrics.requestRejected(protocol, 'overloaded');
          metrics.spansRejected(protocol, 'overloaded', data.spanCount);
          return { kind: 'ok', rejectedSpans: data.rejectedSpans, errorMessage: data.rejectedSpans > 0 ? data.rejectMessage : '' };
        }
        return overloaded(protocol, data.spanCount, outcome);
      }
      metrics.spansReceived(protocol, data.spanCount);
    }
    return ok(protocol, data.rejectedSpans, data.rejectMessage);
  };
}
