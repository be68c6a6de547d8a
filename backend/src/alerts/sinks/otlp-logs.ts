import { encodeLogsRequest, type ExportLogsServiceRequest } from '@conduct/proto';
import { alertAttributes, conductResource, conductScope, hexId, isoToMs, LOG_SEVERITY, msToNanos } from './otlp.js';
import { createOtlpTransport, type OtlpTarget } from './otlp-transport.js';
import type { Sink, SinkEvent } from './types.js';
import { z } from 'zod';
import { otlpProtocolField, sinkDeliveryFields, sinkHeaders } from './settings.js';

/** `alerts.sinks[]` entry of an `otlp-logs` sink. */
export const otlpLogsSinkSchema = z
  .object({
    type: z.literal('otlp-logs'),
    ...sinkDeliveryFields,
    /** OTLP base URL (`/v1/logs` appended for HTTP) or gRPC HOST:PORT. */
    endpoint: z.string().min(1),
    protocol: otlpProtocolField,
    headers: sinkHeaders,
  })
  .strict();

/** Log record `event_name` of an alert, and of an operator's verdict on one. */
export const LOG_EVENT_NAMES = { alert: 'conduct.alert', feedback: 'conduct.alert.feedback' } as const;

type LogRecord = NonNullable<NonNullable<NonNullable<ExportLogsServiceRequest['resourceLogs']>[number]['scopeLogs']>[number]['logRecords']>[number];

/** Builds the OTLP `ExportLogsServiceRequest` (protobufjs object form) carrying one alert event. */
export function alertLogsRequest(event: SinkEvent, version: string, nowMs = Date.now()): ExportLogsServiceRequest {
  const { alert, kind } = event;
  const severity = LOG_SEVERITY[alert.severity] ?? LOG_SEVERITY.info;
  const eventMs = kind === 'alert' ? isoToMs(alert.eventTime, nowMs) : nowMs;
  const record: LogRecord = {
    timeUnixNano: msToNanos(eventMs),
    observedTimeUnixNano: msToNanos(nowMs),
    severityNumber: severity.number,
    severityText: severity.text,
    body: { stringValue: kind === 'alert' ? String(alert.title) : `${String(alert.title)} (marked ${String(alert.status)})` },
    attributes: alertAttributes(alert, kind, event.delivery),
    eventName: LOG_EVENT_NAMES[kind],
  };
  const traceId = hexId(alert.traceId, 16);
  const spanId = hexId(alert.spanIds?.[0], 8);
  if (traceId) {
    record.traceId = traceId;
    if (spanId) record.spanId = spanId;
  }
  return {
    resourceLogs: [
      {
        resource: conductResource(version),
        scopeLogs: [{ scope: conductScope(version), logRecords: [record] }],
      },
    ],
  };
}

/** `otlp-logs`: one OTLP log record per alert (and per verdict), in the alert's trace context. */
export function createOtlpLogsSink(target: OtlpTarget): Sink<Uint8Array> {
  const transport = createOtlpTransport(target, 'logs');
  return {
    accepts: ['alert', 'feedback'],
    prepare: (event) => encodeLogsRequest(alertLogsRequest(event, target.version)),
    send: (body, signal) => transport.send(body, signal),
    close: () => transport.close(),
  };
}
