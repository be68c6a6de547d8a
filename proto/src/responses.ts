/**
 * Response bodies for the OTLP receivers: the export response (with partial success) and the
 * google.rpc.Status error body, in protobuf bytes and as objects for JSON bodies.
 */
import { google, opentelemetry } from '../generated/otlp.js';

const ExportTraceServiceResponse = opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;

/** Type URL of a google.rpc.RetryInfo packed in a google.protobuf.Any. */
export const RETRY_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.RetryInfo';

/** What the receiver reports about one export request. */
export interface ExportOutcome {
  /** Spans refused; 0 when all were kept. */
  rejectedSpans: number;
  /** Why they were refused; '' when nothing is to be said. */
  errorMessage: string;
}

/** Body of a protobuf ExportTraceServiceResponse; empty (all accepted) when there is nothing to report. */
export function encodeExportTraceResponse(outcome: ExportOutcome): Uint8Array {
  if (outcome.rejectedSpans === 0 && outcome.errorMessage === '') return new Uint8Array(0);
  const partialSuccess = { rejectedSpans: outcome.rejectedSpans, errorMessage: outcome.errorMessage };
  return ExportTraceServiceResponse.encode({ partialSuccess }).finish();
}

/** The OTLP/JSON form of an ExportTraceServiceResponse (64-bit counts as decimal strings). */
export interface ExportTraceResponseJson {
  partialSuccess?: { rejectedSpans?: string; errorMessage?: string };
}

/** ExportTraceServiceResponse for a JSON body; `{}` when there is nothing to report. */
export function exportTraceResponseJson(outcome: ExportOutcome): ExportTraceResponseJson {
  if (outcome.rejectedSpans === 0 && outcome.errorMessage === '') return {};
  const partialSuccess: { rejectedSpans?: string; errorMessage?: string } = {};
  if (outcome.rejectedSpans !== 0) partialSuccess.rejectedSpans = String(outcome.rejectedSpans);
  if (outcome.errorMessage !== '') partialSuccess.errorMessage = outcome.errorMessage;
  return { partialSuccess };
}

/** A google.rpc.Status to send back. */
export interface RpcStatusInput {
  /** A google.rpc.Code / gRPC status code (3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 14 UNAVAILABLE...). */
  code: number;
  message: string;
  /** When set, a RetryInfo detail asks the client to wait this long before retrying. */
  retryDelayMs?: number;
}

function splitDelay(ms: number): { seconds: number; nanos: number } {
  const whole = Math.max(0, Math.round(ms));
  return { seconds: Math.floor(whole / 1000), nanos: (whole % 1000) * 1e6 };
}

/** google.rpc.Status bytes, for HTTP error bodies and for the gRPC `grpc-status-details-bin` trailer. */
export function encodeRpcStatus(status: RpcStatusInput): Uint8Array {
  const details: google.protobuf.Any.$Properties[] = [];
  if (status.retryDelayMs !== undefined) {
    const value = google.rpc.RetryInfo.encode({ retryDelay: splitDelay(status.retryDelayMs) }).finish();
    details.push({ type_url: RETRY_INFO_TYPE_URL, value });
  }
  return google.rpc.Status.encode({ code: status.code, message: status.message, details }).finish();
}

/** The JSON form of a google.rpc.Status. */
export interface RpcStatusJson {
  code: number;
  message: string;
  details?: { '@type': string; retryDelay: string }[];
}

/** google.rpc.Status for a JSON error body; the RetryInfo delay is a protobuf JSON Duration ("1.500s"). */
export function rpcStatusJson(status: RpcStatusInput): RpcStatusJson {
  const body: RpcStatusJson = { code: status.code, message: status.message };
  if (status.retryDelayMs !== undefined) {
    const { seconds, nanos } = splitDelay(status.retryDelayMs);
    const retryDelay = nanos === 0 ? `${seconds}s` : `${seconds}.${String(nanos / 1e6).padStart(3, '0')}s`;
    body.details = [{ '@type': RETRY_INFO_TYPE_URL, retryDelay }];
  }
  return body;
}
