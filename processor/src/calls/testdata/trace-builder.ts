import { SpanKind, StatusCode, type Attributes, type SpanData, type TracesRequestData } from '@conduct/proto';
import type { TraceSpan } from '../../identity/index.js';

/** Builds spans of one trace for tests: plain objects, ids derived from short names. */
export const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';

export function resource(service: string, extra: Record<string, string | number> = {}): Attributes {
  return Object.assign(Object.create(null) as Attributes, { 'service.name': service }, extra);
}

export function spanId(name: string): string {
  return Buffer.from(name).toString('hex').padEnd(16, '0').slice(0, 16);
}

export interface SpanSpec {
  id: string;
  parent?: string;
  kind?: number;
  name?: string;
  start?: number;
  end?: number;
  attrs?: Record<string, string | number | boolean>;
  status?: number;
  traceId?: string;
}

export function span(res: Attributes, spec: SpanSpec): TraceSpan {
  const start = spec.start ?? 1_700_000_000_000;
  const data: SpanData = {
    traceId: spec.traceId ?? TRACE_ID,
    spanId: spanId(spec.id),
    parentSpanId: spec.parent ? spanId(spec.parent) : '',
    name: spec.name ?? spec.id,
    kind: spec.kind ?? SpanKind.INTERNAL,
    startMs: start,
    endMs: spec.end ?? start + 10,
    statusCode: spec.status ?? StatusCode.UNSET,
    attributes: Object.assign(Object.create(null) as Attributes, spec.attrs ?? {}),
  };
  return { span: data, resource: res };
}

/** Wraps trace spans into a request, one resourceSpans entry per distinct resource object. */
export function request(spans: readonly TraceSpan[]): TracesRequestData {
  const groups = new Map<Attributes, SpanData[]>();
  for (const ts of spans) {
    let list = groups.get(ts.resource);
    if (!list) groups.set(ts.resource, (list = []));
    list.push(ts.span);
  }
  return {
    resourceSpans: [...groups].map(([res, list]) => ({ resource: res, spans: list })),
    spanCount: spans.length,
    rejectedSpans: 0,
    rejectMessage: '',
  };
}

export { SpanKind, StatusCode };
