/**
 * The decoded shape of an OTLP traces export request, as conduct's hot path needs it.
 *
 * Both wire decoders (protobuf scanner and OTLP/JSON) produce exactly this shape, so everything
 * downstream is independent of the wire format. Only what conduct reads is kept: scopes, events,
 * links, trace state and dropped counts are skipped.
 */

/** Attribute values as conduct keeps them. Arrays and key-value lists are kept as JSON text. */
export type AttrValue = string | number | boolean;

/** Attributes of a span or resource. Objects are created with a null prototype. */
export type Attributes = Record<string, AttrValue>;

/** OTLP `Span.SpanKind`, as on the wire. */
export const SpanKind = {
  UNSPECIFIED: 0,
  INTERNAL: 1,
  SERVER: 2,
  CLIENT: 3,
  PRODUCER: 4,
  CONSUMER: 5,
} as const;

/** OTLP `Status.StatusCode`, as on the wire. */
export const StatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export interface SpanData {
  /** 32 lower-case hex characters. */
  traceId: string;
  /** 16 lower-case hex characters. */
  spanId: string;
  /** 16 lower-case hex characters, or '' for a root span. */
  parentSpanId: string;
  name: string;
  /** One of {@link SpanKind}. */
  kind: number;
  /** Start time, milliseconds since the Unix epoch (fractional: sub-millisecond precision kept). */
  startMs: number;
  /** End time, milliseconds since the Unix epoch. */
  endMs: number;
  /** One of {@link StatusCode}. */
  statusCode: number;
  attributes: Attributes;
}

export interface ResourceSpansData {
  /** The resource's attributes (service.name, cloud.region, ...), shared by its spans. */
  resource: Attributes;
  spans: SpanData[];
}

export interface TracesRequestData {
  resourceSpans: ResourceSpansData[];
  /** Number of spans kept in resourceSpans. */
  spanCount: number;
  /** Spans present in the request that conduct could not use (no valid trace or span id...). */
  rejectedSpans: number;
  /** Why spans were rejected; '' when none were. Becomes the partial-success error message. */
  rejectMessage: string;
}

/** Limits applied while decoding, so hostile input stays bounded in memory. */
export interface DecodeLimits {
  /** String attribute values longer than this are cut to this many characters. */
  maxAttributeValueLength: number;
  /** Attributes beyond this count on one span or resource are dropped. */
  maxAttributesPerSpan: number;
  /** Nesting depth of AnyValue (arrays, key-value lists) beyond which the request is refused. */
  maxValueDepth: number;
  /**
   * Which span and resource attributes to keep; absent keeps them all. The value of any other
   * attribute is stepped over without being decoded or validated. Attributes left out do not
   * count towards `maxAttributesPerSpan`.
   */
  keep?: AttributeKeep;
}

/**
 * The attribute keys a reader of the decoded request uses. Build it once and pass the same object
 * with every request: decoders remember their per-key decisions for it.
 */
export interface AttributeKeep {
  /** Keys kept with their values. */
  readonly keys: ReadonlySet<string>;
  /**
   * For readers that only ask whether some key with one of these prefixes is present: among the
   * keys outside `keys` that start with one of them, the first one of a span or resource is kept
   * (with its value), unless a key of `keys` with such a prefix was kept already; the rest are
   * left out.
   */
  readonly presencePrefixes?: readonly string[];
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = {
  maxAttributeValueLength: 4096,
  maxAttributesPerSpan: 256,
  maxValueDepth: 32,
};

/** Thrown by the decoders for a body that is not a valid request: a permanent error (HTTP 400). */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}
