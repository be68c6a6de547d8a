import { columnsFromData, ObjectAttrs, SpanKind, StatusCode, type Attributes, type SpanColumns, type SpanData, type TracesRequestData } from '@conduct/proto';
import type { TraceSpan } from '../../identity/index.js';
import { objectAttrs } from '../../keys.js';
import { attributeKeepFor } from '../../pipeline/keep.js';
import { DEFAULT_IDENTITY_RULES } from '../../identity/resolver.js';

/**
 * Builds spans of one trace for tests: plain objects read through ObjectAttrs (one reader per
 * resource object), ids derived from short names.
 */
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
  return { span: { ...data, attributes: objectAttrs(data.attributes) }, resource: readerOf(res) };
}

const readers = new WeakMap<Attributes, ObjectAttrs>();

/** The one reader of a resource object. */
export function readerOf(res: Attributes): ObjectAttrs {
  let reader = readers.get(res);
  if (!reader) readers.set(res, (reader = objectAttrs(res)));
  return reader;
}

/** The attributes object behind a reader made here. */
function recordOf(reader: unknown): Attributes {
  return (reader as ObjectAttrs).record;
}

const KEEP = attributeKeepFor(DEFAULT_IDENTITY_RULES);

/** A request's columns, as the pipeline reads it with the default rules. */
export function columns(data: TracesRequestData): SpanColumns {
  return columnsFromData(data, KEEP);
}

/** Wraps trace spans into a request, one resourceSpans entry per distinct resource object. */
export function request(spans: readonly TraceSpan[]): TracesRequestData {
  const groups = new Map<Attributes, SpanData[]>();
  for (const ts of spans) {
    const res = recordOf(ts.resource);
    let list = groups.get(res);
    if (!list) groups.set(res, (list = []));
    list.push({ ...ts.span, attributes: recordOf(ts.span.attributes) });
  }
  return {
    resourceSpans: [...groups].map(([res, list]) => ({ resource: res, spans: list })),
    spanCount: spans.length,
    rejectedSpans: 0,
    rejectMessage: '',
  };
}

export { SpanKind, StatusCode };
