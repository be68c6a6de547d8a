import { describe, expect, it } from 'vitest';
import { google, opentelemetry } from '../generated/otlp.js';
import { RETRY_INFO_TYPE_URL, encodeExportTraceResponse, encodeRpcStatus, exportTraceResponseJson, rpcStatusJson } from './responses.js';
import { decodeLogsRequest, decodeTracesRequestFull, encodeLogsRequest, encodeLogsResponse, encodeTracesRequest } from './messages.js';
import { DecodeError } from './model.js';

const traceV1 = opentelemetry.proto.collector.trace.v1;
const logsV1 = opentelemetry.proto.collector.logs.v1;

describe('export responses', () => {
  it('omits an empty partial success', () => {
    expect(encodeExportTraceResponse({ rejectedSpans: 0, errorMessage: '' })).toHaveLength(0);
    expect(exportTraceResponseJson({ rejectedSpans: 0, errorMessage: '' })).toEqual({});
  });

  it('reports rejected spans and the message', () => {
    const decoded = traceV1.ExportTraceServiceResponse.decode(encodeExportTraceResponse({ rejectedSpans: 2, errorMessage: 'bad ids' }));
    expect(decoded.partialSuccess?.rejectedSpans).toBe(2);
    expect(decoded.partialSuccess?.errorMessage).toBe('bad ids');
    expect(exportTraceResponseJson({ rejectedSpans: 2, errorMessage: 'bad ids' })).toEqual({ partialSuccess: { rejectedSpans: '2', errorMessage: 'bad ids' } });
    expect(exportTraceResponseJson({ rejectedSpans: 0, errorMessage: 'a warning' })).toEqual({ partialSuccess: { errorMessage: 'a warning' } });
  });
});

describe('google.rpc.Status', () => {
  it('carries a RetryInfo detail when a delay is given', () => {
    const status = google.rpc.Status.decode(encodeRpcStatus({ code: 14, message: 'overloaded', retryDelayMs: 1500 }));
    expect(status.code).toBe(14);
    expect(status.message).toBe('overloaded');
    expect(status.details).toHaveLength(1);
    expect(status.details[0].type_url).toBe(RETRY_INFO_TYPE_URL);
    const retry = google.rpc.RetryInfo.decode(status.details[0].value!);
    expect(retry.retryDelay?.seconds).toBe(1);
    expect(retry.retryDelay?.nanos).toBe(500_000_000);
  });

  it('has no details without a delay', () => {
    const status = google.rpc.Status.decode(encodeRpcStatus({ code: 3, message: 'bad body' }));
    expect(status.code).toBe(3);
    expect(status.details).toHaveLength(0);
    expect(rpcStatusJson({ code: 3, message: 'bad body' })).toEqual({ code: 3, message: 'bad body' });
  });

  it('writes the JSON form with a protobuf JSON duration', () => {
    expect(rpcStatusJson({ code: 8, message: 'slow down', retryDelayMs: 250 })).toEqual({
      code: 8,
      message: 'slow down',
      details: [{ '@type': RETRY_INFO_TYPE_URL, retryDelay: '0.250s' }],
    });
    expect(rpcStatusJson({ code: 8, message: '', retryDelayMs: 2000 }).details?.[0].retryDelay).toBe('2s');
  });
});

describe('generated-code helpers', () => {
  it('round-trips a traces request with ids as bytes and 64-bit values as numbers', () => {
    const traceId = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    const bytes = encodeTracesRequest({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, name: 'x', startTimeUnixNano: 1_700_000_000_000_000_000 }] }] }] });
    const span = decodeTracesRequestFull(bytes).resourceSpans[0].scopeSpans![0].spans![0];
    expect(Buffer.from(span.traceId!).equals(Buffer.from(traceId))).toBe(true);
    expect(span.startTimeUnixNano).toBe(1_700_000_000_000_000_000);
    expect(() => decodeTracesRequestFull(Uint8Array.from([0x0a, 0x05]))).toThrow(DecodeError);
  });

  it('round-trips a logs request and encodes the logs response', () => {
    const bytes = encodeLogsRequest({
      resourceLogs: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'conduct' } }] },
          scopeLogs: [{ logRecords: [{ timeUnixNano: 5_000_000, severityNumber: 13, body: { stringValue: 'alert' }, traceId: new Uint8Array(16).fill(7), eventName: 'conduct.alert' }] }],
        },
      ],
    });
    const record = decodeLogsRequest(bytes).resourceLogs[0].scopeLogs![0].logRecords![0];
    expect(record.body?.stringValue).toBe('alert');
    expect(record.severityNumber).toBe(13);
    expect(record.timeUnixNano).toBe(5_000_000);
    expect(record.eventName).toBe('conduct.alert');
    expect(Buffer.from(record.traceId!).toString('hex')).toBe('07'.repeat(16));
    expect(encodeLogsResponse({ rejectedLogRecords: 0, errorMessage: '' })).toHaveLength(0);
    const response = logsV1.ExportLogsServiceResponse.decode(encodeLogsResponse({ rejectedLogRecords: 4, errorMessage: 'full' }));
    expect(response.partialSuccess?.rejectedLogRecords).toBe(4);
  });
});
