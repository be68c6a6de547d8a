/**
 * Full encode and decode of OTLP messages with the generated code, for tests, sinks and
 * benchmarks. The hot path uses decodeTracesRequest instead.
 */
import { opentelemetry } from '../generated/otlp.js';
import { DecodeError } from './model.js';

const traceV1 = opentelemetry.proto.collector.trace.v1;
const logsV1 = opentelemetry.proto.collector.logs.v1;

export type ExportTraceServiceRequest = opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest.$Properties;
export type ExportLogsServiceRequest = opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest.$Properties;

function decodeWith<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    throw new DecodeError(`invalid ${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Protobuf bytes of an ExportTraceServiceRequest (ids as Uint8Array, 64-bit values as numbers). */
export function encodeTracesRequest(request: ExportTraceServiceRequest): Uint8Array {
  return traceV1.ExportTraceServiceRequest.encode(request).finish();
}

/** Every field of an ExportTraceServiceRequest, decoded by protobufjs (ids as Uint8Array). */
export function decodeTracesRequestFull(bytes: Uint8Array): opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest {
  return decodeWith('ExportTraceServiceRequest', () => traceV1.ExportTraceServiceRequest.decode(bytes));
}

/** Protobuf bytes of an ExportLogsServiceRequest. */
export function encodeLogsRequest(request: ExportLogsServiceRequest): Uint8Array {
  return logsV1.ExportLogsServiceRequest.encode(request).finish();
}

/** Every field of an ExportLogsServiceRequest, decoded by protobufjs (ids as Uint8Array). */
export function decodeLogsRequest(bytes: Uint8Array): opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest {
  return decodeWith('ExportLogsServiceRequest', () => logsV1.ExportLogsServiceRequest.decode(bytes));
}

/** Body of a protobuf ExportLogsServiceResponse; empty when everything was accepted. */
export function encodeLogsResponse(outcome: { rejectedLogRecords: number; errorMessage: string }): Uint8Array {
  if (outcome.rejectedLogRecords === 0 && outcome.errorMessage === '') return new Uint8Array(0);
  return logsV1.ExportLogsServiceResponse.encode({ partialSuccess: outcome }).finish();
}
