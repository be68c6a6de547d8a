/**
 * The OTLP/JSON decoder: the protobuf JSON mapping with OTLP's exceptions (hex trace and span ids,
 * enums as integers). Accepts lowerCamelCase and the original snake_case keys, hex ids in either
 * case, enum names as well as numbers, 64-bit integers as strings or numbers; ignores unknown
 * fields. Produces exactly what the protobuf scanner produces for the same request.
 */
import { Buffer } from 'node:buffer';
import { DecodeError, type AttrValue, type DecodeLimits, type ResourceSpansData, type SpanData, type TracesRequestData } from './model.js';
import {
  AttributeCollector,
  JsonTextBuilder,
  REJECT_PARENT_ID,
  REJECT_SPAN_ID,
  REJECT_TRACE_ID,
  RejectTally,
  SPAN_ID_BYTES,
  TRACE_ID_BYTES,
  ValueKind,
  asDecodeError,
  bytesToBase64,
  elementJson,
  nanosToMs,
  resolveLimits,
  truncate,
} from './values.js';
import { KeyDecision, keyFilterOf, type KeyFilter } from './key-filter.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SPAN_KIND_NAMES: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};
const STATUS_CODE_NAMES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

const UINT64_LIMIT = 1n << 64n;
const MAX_UINT64_DIGITS = 20;
const LEADING_ZEROS = /^0+(?=[0-9])/;
const DECIMAL_UNSIGNED = /^[0-9]+$/;
const DECIMAL_SIGNED = /^-?[0-9]+$/;
const HEX = /^[0-9a-fA-F]*$/;
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

const utf8 = new TextDecoder('utf-8');

/** AnyValue members read before arrayValue and kvlistValue (the first present one wins). */
const SCALAR_VALUE_FIELDS: ReadonlyArray<[string, string]> = [
  ['stringValue', 'string_value'],
  ['boolValue', 'bool_value'],
  ['intValue', 'int_value'],
  ['doubleValue', 'double_value'],
  ['bytesValue', 'bytes_value'],
];

/**
 * Decodes an OTLP/JSON ExportTraceServiceRequest body (text, or UTF-8 bytes) into what conduct needs.
 * @throws DecodeError for invalid JSON or a value of the wrong type; the message names its path.
 */
export function decodeTracesRequestJson(body: string | Uint8Array, limits?: Partial<DecodeLimits>): TracesRequestData {
  const resolved = resolveLimits(limits);
  let parsed: Json;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : utf8.decode(body)) as Json;
  } catch (err) {
    throw new DecodeError(`invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return new JsonDecoder(resolved).request(parsed);
  } catch (err) {
    return asDecodeError(err);
  }
}

function typeOf(value: Json): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'array' : typeof value;
}

function wrongType(path: string, expected: string, value: Json): never {
  throw new DecodeError(`${path}: expected ${expected}, got ${typeOf(value)}`);
}

/** Reads a field by its lowerCamelCase or snake_case name; own properties only; null means absent. */
function field(obj: JsonObject, camel: string, snake?: string): Json | undefined {
  if (Object.hasOwn(obj, camel) && obj[camel] !== null) return obj[camel];
  if (snake !== undefined && Object.hasOwn(obj, snake) && obj[snake] !== null) return obj[snake];
  return undefined;
}

function asObject(value: Json, path: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) wrongType(path, 'an object', value);
  return value;
}

function asArray(value: Json | undefined, path: string): Json[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) wrongType(path, 'an array', value);
  return value;
}

function asString(value: Json | undefined, path: string): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') wrongType(path, 'a string', value);
  return value;
}

function asEnum(value: Json | undefined, names: Record<string, number>, path: string): number {
  if (value === undefined) return 0;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) throw new DecodeError(`${path}: ${value} is not a 32-bit integer`);
    return value;
  }
  if (typeof value === 'string') {
    if (Object.hasOwn(names, value)) return names[value];
    if (DECIMAL_SIGNED.test(value)) return asEnum(Number(value), names, path);
    throw new DecodeError(`${path}: unknown enum value ${JSON.stringify(truncate(value, 64))}`);
  }
  return wrongType(path, 'an enum number or name', value);
}

/** A fixed64 nanosecond timestamp (decimal string or number) as fractional milliseconds. */
function asNanosMs(value: Json | undefined, path: string): number {
  if (value === undefined) return 0;
  let n: bigint;
  if (typeof value === 'string') {
    if (!DECIMAL_UNSIGNED.test(value)) throw new DecodeError(`${path}: ${JSON.stringify(truncate(value, 64))} is not an unsigned integer`);
    // 2^64 has 20 digits; refusing longer text early also keeps BigInt parsing cheap on hostile input.
    const digits = value.replace(LEADING_ZEROS, '');
    if (digits.length > MAX_UINT64_DIGITS) throw new DecodeError(`${path}: out of the 64-bit range`);
    n = BigInt(digits);
  } else if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) throw new DecodeError(`${path}: ${value} is not an unsigned integer`);
    n = BigInt(value);
  } else return wrongType(path, 'an integer string or number', value);
  if (n >= UINT64_LIMIT) throw new DecodeError(`${path}: out of the 64-bit range`);
  return nanosToMs(Number(n >> 32n), Number(n & 0xffffffffn));
}

function asInt64(value: Json, path: string): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new DecodeError(`${path}: ${value} is not an integer`);
    return value;
  }
  if (typeof value === 'string') {
    if (!DECIMAL_SIGNED.test(value)) throw new DecodeError(`${path}: ${JSON.stringify(truncate(value, 64))} is not an integer`);
    return Number(value);
  }
  return wrongType(path, 'an integer string or number', value);
}

function asDouble(value: Json, path: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    if (value === 'NaN') return NaN;
    if (value === 'Infinity') return Infinity;
    if (value === '-Infinity') return -Infinity;
    const n = Number(value);
    if (value.trim() !== '' && !Number.isNaN(n)) return n;
    throw new DecodeError(`${path}: ${JSON.stringify(truncate(value, 64))} is not a number`);
  }
  return wrongType(path, 'a number', value);
}

function asBool(value: Json, path: string): boolean {
  if (typeof value !== 'boolean') wrongType(path, 'a boolean', value);
  return value;
}

/** Lower-case hex of a valid id, or undefined when the text is missing, not hex, the wrong length or all zero. */
function hexId(value: Json | undefined, bytes: number, path: string): string | undefined {
  const text = asString(value, path);
  if (text.length !== bytes * 2 || !HEX.test(text) || /^0*$/.test(text)) return undefined;
  return text.toLowerCase();
}

class JsonDecoder {
  private readonly rejects = new RejectTally();
  private spanCount = 0;
  /** Kind of the last AnyValue read. */
  private kind: ValueKind = ValueKind.EMPTY;
  /** Which attributes to keep; undefined keeps all. */
  private readonly filter: KeyFilter | undefined;
  /** The attributes of the span or resource being read. */
  private readonly attrs: AttributeCollector;

  constructor(private readonly limits: DecodeLimits) {
    this.filter = keyFilterOf(limits.keep);
    this.attrs = new AttributeCollector(limits.maxAttributesPerSpan);
  }

  request(parsed: Json): TracesRequestData {
    const root = asObject(parsed, '$');
    const list = asArray(field(root, 'resourceSpans', 'resource_spans'), 'resourceSpans');
    const resourceSpans: ResourceSpansData[] = [];
    for (let i = 0; i < list.length; i++) resourceSpans.push(this.resourceSpans(list[i], `resourceSpans[${i}]`));
    return { resourceSpans, spanCount: this.spanCount, rejectedSpans: this.rejects.total, rejectMessage: this.rejects.message() };
  }

  private resourceSpans(value: Json, path: string): ResourceSpansData {
    const obj = asObject(value, path);
    this.attrs.begin();
    const res = field(obj, 'resource');
    if (res !== undefined) {
      const resObj = asObject(res, `${path}.resource`);
      this.attributes(field(resObj, 'attributes'), `${path}.resource.attributes`);
    }
    const resource = this.attrs.finish();
    const spans: SpanData[] = [];
    const scopes = asArray(field(obj, 'scopeSpans', 'scope_spans'), `${path}.scopeSpans`);
    for (let s = 0; s < scopes.length; s++) {
      const scopePath = `${path}.scopeSpans[${s}]`;
      const scope = asObject(scopes[s], scopePath);
      const list = asArray(field(scope, 'spans'), `${scopePath}.spans`);
      for (let i = 0; i < list.length; i++) {
        const span = this.span(list[i], `${scopePath}.spans[${i}]`);
        if (span !== undefined) spans.push(span);
      }
    }
    return { resource, spans };
  }

  private span(value: Json, path: string): SpanData | undefined {
    const obj = asObject(value, path);
    const limit = this.limits.maxAttributeValueLength;
    const traceId = hexId(field(obj, 'traceId', 'trace_id'), TRACE_ID_BYTES, `${path}.traceId`);
    const spanId = hexId(field(obj, 'spanId', 'span_id'), SPAN_ID_BYTES, `${path}.spanId`);
    const parentText = asString(field(obj, 'parentSpanId', 'parent_span_id'), `${path}.parentSpanId`);
    const name = truncate(asString(field(obj, 'name'), `${path}.name`), limit);
    const kind = asEnum(field(obj, 'kind'), SPAN_KIND_NAMES, `${path}.kind`);
    const startMs = asNanosMs(field(obj, 'startTimeUnixNano', 'start_time_unix_nano'), `${path}.startTimeUnixNano`);
    const endMs = asNanosMs(field(obj, 'endTimeUnixNano', 'end_time_unix_nano'), `${path}.endTimeUnixNano`);
    let statusCode = 0;
    const status = field(obj, 'status');
    if (status !== undefined) {
      const statusObj = asObject(status, `${path}.status`);
      statusCode = asEnum(field(statusObj, 'code'), STATUS_CODE_NAMES, `${path}.status.code`);
    }
    this.attrs.begin();
    this.attributes(field(obj, 'attributes'), `${path}.attributes`);
    const attributes = this.attrs.finish();

    if (traceId === undefined) return this.reject(REJECT_TRACE_ID);
    if (spanId === undefined) return this.reject(REJECT_SPAN_ID);
    let parentSpanId = '';
    if (parentText !== '') {
      if (parentText.length !== SPAN_ID_BYTES * 2 || !HEX.test(parentText)) return this.reject(REJECT_PARENT_ID);
      if (!/^0*$/.test(parentText)) parentSpanId = parentText.toLowerCase();
    }
    this.spanCount++;
    return { traceId, spanId, parentSpanId, name, kind, startMs, endMs, statusCode, attributes };
  }

  private reject(reason: string): undefined {
    this.rejects.add(reason);
    return undefined;
  }

  /** Reads a KeyValue list into this.attrs. */
  private attributes(value: Json | undefined, path: string): void {
    const list = asArray(value, path);
    const limit = this.limits.maxAttributeValueLength;
    const filter = this.filter;
    // A key with a presence prefix is held (see AttributeKeep).
    let present = false;
    for (let i = 0; i < list.length; i++) {
      const itemPath = `${path}[${i}]`;
      const kv = asObject(list[i], itemPath);
      const key = truncate(asString(field(kv, 'key'), `${itemPath}.key`), limit);
      const decision = filter === undefined ? KeyDecision.KEEP : filter.decide(key);
      const raw = field(kv, 'value');
      // Left-out values are not read, as the protobuf scanner steps over them; only the depth limit applies.
      if (decision === KeyDecision.DROP || (decision === KeyDecision.PRESENCE && present)) {
        if (raw !== undefined) this.checkDepth(raw, 1, `${itemPath}.value`);
        continue;
      }
      if (raw === undefined) continue;
      const attr = this.anyValue(raw, 1, `${itemPath}.value`);
      if (this.kind === ValueKind.EMPTY) continue;
      this.attrs.put(key, attr as AttrValue);
      if (decision !== KeyDecision.KEEP && this.attrs.has(key)) present = true;
    }
  }

  /** Reads an AnyValue at nesting `depth` (1 for an attribute's own value); sets this.kind. */
  private anyValue(value: Json, depth: number, path: string): AttrValue | undefined {
    if (depth > this.limits.maxValueDepth) throw new DecodeError(`${path}: attribute value nested deeper than ${this.limits.maxValueDepth}`);
    const obj = asObject(value, path);
    const limit = this.limits.maxAttributeValueLength;
    let v: Json | undefined;
    this.kind = ValueKind.SCALAR;
    if ((v = field(obj, 'stringValue', 'string_value')) !== undefined) return truncate(asString(v, `${path}.stringValue`), limit);
    if ((v = field(obj, 'boolValue', 'bool_value')) !== undefined) return asBool(v, `${path}.boolValue`);
    if ((v = field(obj, 'intValue', 'int_value')) !== undefined) return asInt64(v, `${path}.intValue`);
    if ((v = field(obj, 'doubleValue', 'double_value')) !== undefined) return asDouble(v, `${path}.doubleValue`);
    if ((v = field(obj, 'bytesValue', 'bytes_value')) !== undefined) {
      const bytes = Buffer.from(asString(v, `${path}.bytesValue`), 'base64');
      return bytesToBase64(bytes, 0, bytes.length, limit);
    }
    if ((v = field(obj, 'arrayValue', 'array_value')) !== undefined) {
      const text = this.list(v, depth, '[', `${path}.arrayValue`);
      this.kind = ValueKind.JSON;
      return text;
    }
    if ((v = field(obj, 'kvlistValue', 'kvlist_value')) !== undefined) {
      const text = this.list(v, depth, '{', `${path}.kvlistValue`);
      this.kind = ValueKind.JSON;
      return text;
    }
    this.kind = ValueKind.EMPTY;
    return undefined;
  }

  /** Follows the nesting of a left-out AnyValue, as anyValue would, to apply the depth limit. */
  private checkDepth(value: Json, depth: number, path: string): void {
    if (depth > this.limits.maxValueDepth) throw new DecodeError(`${path}: attribute value nested deeper than ${this.limits.maxValueDepth}`);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
    for (const [camel, snake] of SCALAR_VALUE_FIELDS) if (field(value, camel, snake) !== undefined) return;
    const array = field(value, 'arrayValue', 'array_value');
    const kvlist = array === undefined ? field(value, 'kvlistValue', 'kvlist_value') : undefined;
    const list = array ?? kvlist;
    if (typeof list !== 'object' || list === null || Array.isArray(list)) return;
    const values = field(list, 'values');
    if (!Array.isArray(values)) return;
    for (const item of values) {
      if (array !== undefined) this.checkDepth(item, depth + 1, path);
      else if (typeof item === 'object' && item !== null && !Array.isArray(item)) {
        const inner = field(item, 'value');
        if (inner !== undefined) this.checkDepth(inner, depth + 1, path);
      }
    }
  }

  private list(value: Json, depth: number, open: '[' | '{', path: string): string {
    const limit = this.limits.maxAttributeValueLength;
    const obj = asObject(value, path);
    const values = asArray(field(obj, 'values'), `${path}.values`);
    const builder = new JsonTextBuilder(open, limit);
    for (let i = 0; i < values.length; i++) {
      const itemPath = `${path}.values[${i}]`;
      if (open === '[') {
        const v = this.anyValue(values[i], depth + 1, itemPath);
        builder.add(elementJson(this.kind, v));
        continue;
      }
      const kv = asObject(values[i], itemPath);
      const key = truncate(asString(field(kv, 'key'), `${itemPath}.key`), limit);
      const raw = field(kv, 'value');
      let text = 'null';
      if (raw !== undefined) {
        const v = this.anyValue(raw, depth + 1, `${itemPath}.value`);
        text = elementJson(this.kind, v);
      }
      builder.add(text, key);
    }
    return builder.finish();
  }
}
