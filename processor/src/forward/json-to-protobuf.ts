/**
 * A faithful OTLP/JSON -> protobuf conversion of a traces export request, for passing a request
 * that arrived as JSON on to a gRPC downstream. Unlike the hot-path decoder it keeps everything the
 * schema defines (scopes, events, links, trace state, flags, dropped counts, schema URLs, nested
 * values). It follows the OTLP/JSON rules: lowerCamelCase keys (the proto names are accepted too),
 * trace and span ids as hex, enums as integers (or their names), 64-bit integers as strings or
 * numbers, bytes as base64, unknown fields ignored. Defaults are omitted, as proto3 does.
 *
 * Input is untrusted: nesting is bounded and malformed values throw {@link JsonConversionError}.
 */

export class JsonConversionError extends Error {
  override readonly name = 'JsonConversionError';
}

/** AnyValue nesting beyond this is refused. */
export const MAX_JSON_VALUE_DEPTH = 64;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const SPAN_KIND_NAMES: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};
const STATUS_CODE_NAMES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

type Json = unknown;
type Obj = Record<string, Json>;

/** Collects protobuf output as chunks; nested messages are encoded first, then length-prefixed. */
class Writer {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  private varint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  uint(field: number, value: bigint): void {
    if (value === 0n) return;
    this.tag(field, WIRE_VARINT);
    this.varint(value);
  }

  /** A oneof member: written even when it holds the default value. */
  varintAlways(field: number, value: bigint): void {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
  }

  fixed64(field: number, value: bigint): void {
    if (value === 0n) return;
    this.tag(field, WIRE_FIXED64);
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, value));
    this.push(b);
  }

  fixed32(field: number, value: number): void {
    if (value === 0) return;
    this.tag(field, WIRE_FIXED32);
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value >>> 0);
    this.push(b);
  }

  doubleAlways(field: number, value: number): void {
    this.tag(field, WIRE_FIXED64);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(value);
    this.push(b);
  }

  bytes(field: number, value: Uint8Array, always = false): void {
    if (value.length === 0 && !always) return;
    this.tag(field, WIRE_LEN);
    this.varint(BigInt(value.length));
    this.push(value);
  }

  string(field: number, value: string, always = false): void {
    this.bytes(field, Buffer.from(value, 'utf8'), always);
  }

  message(field: number, build: (w: Writer) => void): void {
    const inner = new Writer();
    build(inner);
    this.tag(field, WIRE_LEN);
    this.varint(BigInt(inner.length));
    for (const chunk of inner.chunks) this.push(chunk);
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

function isObj(v: Json): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a field by its lowerCamelCase name or its proto (snake_case) name. */
function get(o: Obj, camel: string, snake?: string): Json {
  const v = Object.hasOwn(o, camel) ? o[camel] : snake !== undefined && Object.hasOwn(o, snake) ? o[snake] : undefined;
  return v === null ? undefined : v;
}

function list(v: Json, where: string): Json[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new JsonConversionError(`${where}: expected an array`);
  return v;
}

function str(v: Json, where: string): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new JsonConversionError(`${where}: expected a string`);
  return v;
}

function int64(v: Json, where: string, unsigned: boolean): bigint {
  if (v === undefined) return 0n;
  let n: bigint;
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || !Number.isInteger(v)) throw new JsonConversionError(`${where}: expected an integer`);
    n = BigInt(v);
  } else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v.trim())) {
    n = BigInt(v.trim());
  } else {
    throw new JsonConversionError(`${where}: expected an integer`);
  }
  const min = unsigned ? 0n : -(2n ** 63n);
  const max = unsigned ? 2n ** 64n - 1n : 2n ** 63n - 1n;
  if (n < min || n > max) throw new JsonConversionError(`${where}: out of range`);
  return n;
}

function uint32(v: Json, where: string): bigint {
  const n = int64(v, where, true);
  if (n > 0xffffffffn) throw new JsonConversionError(`${where}: out of range`);
  return n;
}

function enumValue(v: Json, names: Record<string, number>, where: string): bigint {
  if (typeof v === 'string' && Object.hasOwn(names, v)) return BigInt(names[v]!);
  const n = int64(v, where, false);
  if (n < -(2n ** 31n) || n >= 2n ** 31n) throw new JsonConversionError(`${where}: out of range`);
  return n;
}

function hexId(v: Json, bytes: number, where: string): Uint8Array {
  const s = str(v, where);
  if (s === '') return new Uint8Array(0);
  if (s.length !== bytes * 2 || !/^[0-9a-fA-F]+$/.test(s)) {
    throw new JsonConversionError(`${where}: expected ${bytes * 2} hex characters`);
  }
  return Buffer.from(s, 'hex');
}

function double(v: Json, where: string): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return Number.NaN;
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  throw new JsonConversionError(`${where}: expected a number`);
}

function anyValue(w: Writer, v: Obj, depth: number): void {
  if (depth > MAX_JSON_VALUE_DEPTH) throw new JsonConversionError('attribute value nested too deeply');
  const s = get(v, 'stringValue', 'string_value');
  if (s !== undefined) return w.string(1, str(s, 'stringValue'), true);
  const b = get(v, 'boolValue', 'bool_value');
  if (b !== undefined) {
    if (typeof b !== 'boolean') throw new JsonConversionError('boolValue: expected a boolean');
    return w.varintAlways(2, b ? 1n : 0n);
  }
  const i = get(v, 'intValue', 'int_value');
  if (i !== undefined) return w.varintAlways(3, int64(i, 'intValue', false));
  const d = get(v, 'doubleValue', 'double_value');
  if (d !== undefined) return w.doubleAlways(4, double(d, 'doubleValue'));
  const a = get(v, 'arrayValue', 'array_value');
  if (a !== undefined) {
    if (!isObj(a)) throw new JsonConversionError('arrayValue: expected an object');
    return w.message(5, (aw) => {
      for (const item of list(get(a, 'values'), 'arrayValue.values')) {
        aw.message(1, (iw) => anyValue(iw, asObj(item, 'arrayValue.values[]'), depth + 1));
      }
    });
  }
  const kv = get(v, 'kvlistValue', 'kvlist_value');
  if (kv !== undefined) {
    if (!isObj(kv)) throw new JsonConversionError('kvlistValue: expected an object');
    return w.message(6, (kw) => keyValues(kw, 1, get(kv, 'values'), depth + 1));
  }
  const by = get(v, 'bytesValue', 'bytes_value');
  if (by !== undefined) {
    const text = str(by, 'bytesValue');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) throw new JsonConversionError('bytesValue: expected base64');
    return w.bytes(7, Buffer.from(text, 'base64'), true);
  }
}

function asObj(v: Json, where: string): Obj {
  if (!isObj(v)) throw new JsonConversionError(`${where}: expected an object`);
  return v;
}

function keyValues(w: Writer, field: number, v: Json, depth: number): void {
  for (const entry of list(v, 'attributes')) {
    const kv = asObj(entry, 'attribute');
    w.message(field, (kw) => {
      kw.string(1, str(get(kv, 'key'), 'attribute.key'));
      const value = get(kv, 'value');
      if (value !== undefined) kw.message(2, (vw) => anyValue(vw, asObj(value, 'attribute.value'), depth));
    });
  }
}

function scope(w: Writer, s: Obj): void {
  w.string(1, str(get(s, 'name'), 'scope.name'));
  w.string(2, str(get(s, 'version'), 'scope.version'));
  keyValues(w, 3, get(s, 'attributes'), 0);
  w.uint(4, uint32(get(s, 'droppedAttributesCount', 'dropped_attributes_count'), 'scope.droppedAttributesCount'));
}

function resource(w: Writer, r: Obj): void {
  keyValues(w, 1, get(r, 'attributes'), 0);
  w.uint(2, uint32(get(r, 'droppedAttributesCount', 'dropped_attributes_count'), 'resource.droppedAttributesCount'));
  for (const ref of list(get(r, 'entityRefs', 'entity_refs'), 'resource.entityRefs')) {
    const e = asObj(ref, 'resource.entityRefs[]');
    w.message(3, (ew) => {
      ew.string(1, str(get(e, 'schemaUrl', 'schema_url'), 'entityRef.schemaUrl'));
      ew.string(2, str(get(e, 'type'), 'entityRef.type'));
      for (const k of list(get(e, 'idKeys', 'id_keys'), 'entityRef.idKeys')) ew.string(3, str(k, 'entityRef.idKeys[]'), true);
      for (const k of list(get(e, 'descriptionKeys', 'description_keys'), 'entityRef.descriptionKeys')) {
        ew.string(4, str(k, 'entityRef.descriptionKeys[]'), true);
      }
    });
  }
}

function event(w: Writer, e: Obj): void {
  w.fixed64(1, int64(get(e, 'timeUnixNano', 'time_unix_nano'), 'event.timeUnixNano', true));
  w.string(2, str(get(e, 'name'), 'event.name'));
  keyValues(w, 3, get(e, 'attributes'), 0);
  w.uint(4, uint32(get(e, 'droppedAttributesCount', 'dropped_attributes_count'), 'event.droppedAttributesCount'));
}

function link(w: Writer, l: Obj): void {
  w.bytes(1, hexId(get(l, 'traceId', 'trace_id'), 16, 'link.traceId'));
  w.bytes(2, hexId(get(l, 'spanId', 'span_id'), 8, 'link.spanId'));
  w.string(3, str(get(l, 'traceState', 'trace_state'), 'link.traceState'));
  keyValues(w, 4, get(l, 'attributes'), 0);
  w.uint(5, uint32(get(l, 'droppedAttributesCount', 'dropped_attributes_count'), 'link.droppedAttributesCount'));
  w.fixed32(6, Number(uint32(get(l, 'flags'), 'link.flags')));
}

function span(w: Writer, s: Obj): void {
  w.bytes(1, hexId(get(s, 'traceId', 'trace_id'), 16, 'span.traceId'));
  w.bytes(2, hexId(get(s, 'spanId', 'span_id'), 8, 'span.spanId'));
  w.string(3, str(get(s, 'traceState', 'trace_state'), 'span.traceState'));
  w.bytes(4, hexId(get(s, 'parentSpanId', 'parent_span_id'), 8, 'span.parentSpanId'));
  w.string(5, str(get(s, 'name'), 'span.name'));
  w.uint(6, enumValue(get(s, 'kind'), SPAN_KIND_NAMES, 'span.kind'));
  w.fixed64(7, int64(get(s, 'startTimeUnixNano', 'start_time_unix_nano'), 'span.startTimeUnixNano', true));
  w.fixed64(8, int64(get(s, 'endTimeUnixNano', 'end_time_unix_nano'), 'span.endTimeUnixNano', true));
  keyValues(w, 9, get(s, 'attributes'), 0);
  w.uint(10, uint32(get(s, 'droppedAttributesCount', 'dropped_attributes_count'), 'span.droppedAttributesCount'));
  for (const e of list(get(s, 'events'), 'span.events')) w.message(11, (ew) => event(ew, asObj(e, 'span.events[]')));
  w.uint(12, uint32(get(s, 'droppedEventsCount', 'dropped_events_count'), 'span.droppedEventsCount'));
  for (const l of list(get(s, 'links'), 'span.links')) w.message(13, (lw) => link(lw, asObj(l, 'span.links[]')));
  w.uint(14, uint32(get(s, 'droppedLinksCount', 'dropped_links_count'), 'span.droppedLinksCount'));
  const status = get(s, 'status');
  if (status !== undefined) {
    const st = asObj(status, 'span.status');
    w.message(15, (sw) => {
      sw.string(2, str(get(st, 'message'), 'status.message'));
      sw.uint(3, enumValue(get(st, 'code'), STATUS_CODE_NAMES, 'status.code'));
    });
  }
  w.fixed32(16, Number(uint32(get(s, 'flags'), 'span.flags')));
}

/**
 * Converts the body of an OTLP/JSON traces request to the protobuf encoding of the same
 * `ExportTraceServiceRequest`. Throws {@link JsonConversionError} for a body that is not one.
 */
export function tracesJsonToProtobuf(body: Buffer | string): Buffer {
  let parsed: Json;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    throw new JsonConversionError('body is not JSON');
  }
  const root = asObj(parsed, 'request');
  const w = new Writer();
  for (const rs of list(get(root, 'resourceSpans', 'resource_spans'), 'resourceSpans')) {
    const r = asObj(rs, 'resourceSpans[]');
    w.message(1, (rw) => {
      const res = get(r, 'resource');
      if (res !== undefined) rw.message(1, (resw) => resource(resw, asObj(res, 'resource')));
      for (const ss of list(get(r, 'scopeSpans', 'scope_spans'), 'scopeSpans')) {
        const sc = asObj(ss, 'scopeSpans[]');
        rw.message(2, (sw) => {
          const sco = get(sc, 'scope');
          if (sco !== undefined) sw.message(1, (scw) => scope(scw, asObj(sco, 'scope')));
          for (const sp of list(get(sc, 'spans'), 'spans')) sw.message(2, (spw) => span(spw, asObj(sp, 'spans[]')));
          sw.string(3, str(get(sc, 'schemaUrl', 'schema_url'), 'scopeSpans.schemaUrl'));
        });
      }
      rw.string(3, str(get(r, 'schemaUrl', 'schema_url'), 'resourceSpans.schemaUrl'));
    });
  }
  return w.finish();
}
