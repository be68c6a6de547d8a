import { randomBytes } from 'node:crypto';
import { encodeTracesRequest, type ExportTraceServiceRequest } from '@conduct/proto';
import type { Forwarder } from '@conduct/processor';
import { alertAttributes, clip, conductResource, conductScope, findingsOf, hexId, isoToMs, msToNanos } from './otlp.js';
import { ATTR } from './attributes.js';
import { createOtlpTransport, type OtlpTarget } from './otlp-transport.js';
import { DeliveryError, type Sink, type SinkEvent } from './types.js';
import { z } from 'zod';
import { otlpProtocolField, sinkDeliveryFields, sinkHeaders } from './settings.js';

/** `alerts.sinks[]` entry of a `finding-span` sink. */
export const findingSpanSinkSchema = z
  .object({
    type: z.literal('finding-span'),
    ...sinkDeliveryFields,
    /** OTLP base URL (`/v1/traces` appended for HTTP) or gRPC HOST:PORT; required unless `via: forward`. */
    endpoint: z.string().min(1).optional(),
    protocol: otlpProtocolField,
    headers: sinkHeaders,
    /** `forward` sends the finding spans through the `forward[]` downstreams instead of to `endpoint`. */
    via: z.enum(['endpoint', 'forward']).optional(),
  })
  .strict();

/** OTLP `Span.SpanKind.SPAN_KIND_INTERNAL`. */
const SPAN_KIND_INTERNAL = 1;

type SpanProps = NonNullable<NonNullable<NonNullable<ExportTraceServiceRequest['resourceSpans']>[number]['scopeSpans']>[number]['spans']>[number];

/** Name of the finding span of an alert raised by `detector`. */
export const findingSpanName = (detector: string) => `conduct.finding ${detector}`;

function newSpanId(): Uint8Array {
  for (;;) {
    const id = randomBytes(8);
    if (id.some((b) => b !== 0)) return Uint8Array.from(id);
  }
}

/**
 * Builds the OTLP `ExportTraceServiceRequest` (protobufjs object form) holding the finding span
 * of one alert: in the alert's trace, a child of its first span, at the alert's event time, with
 * one span event per finding of the incident.
 */
export function findingSpanRequest(event: SinkEvent, version: string, spanId: Uint8Array = newSpanId()): ExportTraceServiceRequest {
  const { alert, kind } = event;
  const traceId = hexId(alert.traceId, 16);
  if (!traceId) throw new DeliveryError(`alert ${String(alert.id)} has no valid trace id`, false);
  const parent = hexId(alert.spanIds?.[0], 8);
  const at = msToNanos(isoToMs(alert.eventTime, Date.now()));
  const span: SpanProps = {
    traceId,
    spanId,
    name: findingSpanName(String(alert.detector)),
    kind: SPAN_KIND_INTERNAL,
    startTimeUnixNano: at,
    endTimeUnixNano: at,
    attributes: alertAttributes(alert, kind, event.delivery),
    // One event per finding of the incident, so trace views list each with its own severity.
    events: findingsOf(alert)
      .slice(0, 16)
      .map((f) => ({
        timeUnixNano: at,
        name: findingSpanName(String(f.detector)),
        attributes: [
          { key: ATTR.detector, value: { stringValue: String(f.detector) } },
          { key: ATTR.severity, value: { stringValue: String(f.severity) } },
          { key: ATTR.score, value: { doubleValue: Number(f.score) || 0 } },
          { key: 'conduct.finding.title', value: { stringValue: clip(String(f.title), 1024) } },
          {
            key: ATTR.techniques,
            value: { arrayValue: { values: (Array.isArray(f.techniques) ? f.techniques : []).slice(0, 16).map((t) => ({ stringValue: clip(String(t), 64) })) } },
          },
        ],
      })),
  };
  if (parent) span.parentSpanId = parent;
  return {
    resourceSpans: [{ resource: conductResource(version), scopeSpans: [{ scope: conductScope(version), spans: [span] }] }],
  };
}

/** `finding-span`: writes each alert into its own trace as an INTERNAL span. Verdicts are not sent. */
export function createFindingSpanSink(target: OtlpTarget): Sink<Uint8Array> {
  const transport = createOtlpTransport(target, 'traces');
  return {
    accepts: ['alert'],
    prepare: (event) => encodeTracesRequest(findingSpanRequest(event, target.version)),
    send: (body, signal) => transport.send(body, signal),
    close: () => transport.close(),
  };
}

/** What the `finding-span` sink needs of the forwarder when it sends `via: forward`. */
export type FindingSpanForwarder = Pick<Forwarder, 'submitSpans' | 'enabled'>;

/**
 * `finding-span` with `via: forward`: the finding spans join the traffic forwarded to the
 * `forward[]` downstreams, behind the requests already queued there, so each finding reaches the
 * back end after the spans of its trace that conduct had received. A full forwarder is a
 * retryable failure (the sink's own queue and backoff take over).
 */
export function createForwardedFindingSpanSink(forwarder: FindingSpanForwarder, version: string): Sink<Buffer> {
  return {
    accepts: ['alert'],
    prepare: (event) => Buffer.from(encodeTracesRequest(findingSpanRequest(event, version))),
    async send(body) {
      if (forwarder.submitSpans(body, 1) === 'full') {
        throw new DeliveryError('the forwarder is full (every forward[] queue and spool)', true);
      }
    },
  };
}
