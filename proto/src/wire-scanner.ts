/**
 * The hot-path decoder for OTLP/protobuf ExportTraceServiceRequest bodies: a hand-written wire
 * scanner that reads only the fields conduct keeps (see model.ts) and skips everything else
 * (scopes, events, links, trace state, dropped counts, unknown fields) without decoding it.
 *
 * Skipped fields are stepped over by their wire type; their contents are not validated. Every
 * field that is read must have the wire type the schema gives it.
 */
import { Buffer } from 'node:buffer';
import { DecodeError, type Attributes, type AttrValue, type DecodeLimits, type ResourceSpansData, type SpanData, type TracesRequestData } from './model.js';
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
  fixed64Ms,
  int64ToNumber,
  resolveLimits,
  truncate,
} from './values.js';
import { StringTable, utf8 } from './string-table.js';
import { IDS } from './columns.js';
import { KeyDecision, keyFilterOf, type KeyFilter } from './key-filter.js';

/** Shared by all requests: keys and values repeat across requests, not only within one. */
export const KEYS = new StringTable(12);
const VALUES = new StringTable(14);

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_SGROUP = 3;
const WIRE_EGROUP = 4;
const WIRE_I32 = 5;

/** Longest varint: 10 bytes carry 64 bits. */
const MAX_VARINT_BYTES = 10;

/**
 * Decodes an OTLP/protobuf ExportTraceServiceRequest into what conduct needs.
 * @throws DecodeError for any malformed input.
 */
export function decodeTracesRequest(bytes: Uint8Array, limits?: Partial<DecodeLimits>): TracesRequestData {
  const scanner = new Scanner(bytes, resolveLimits(limits));
  try {
    return scanner.request();
  } catch (err) {
    return asDecodeError(err);
  }
}

export class Scanner {
  protected readonly buf: Buffer;
  /** The same bytes, read four at a time by the string tables and the key cache. */
  protected readonly view: DataView;
  protected pos = 0;
  /** High 32 bits of the last varint read; the low 32 bits are its return value. */
  protected hi = 0;
  /** Kind of the last AnyValue read. */
  protected kind: ValueKind = ValueKind.EMPTY;
  protected readonly rejects = new RejectTally();
  protected spanCount = 0;
  /** Which attributes to keep; undefined keeps all. */
  protected readonly filter: KeyFilter | undefined;
  /** The span or resource being read holds a key with a presence prefix (see AttributeKeep). */
  protected present = false;
  /** The attributes of the span or resource being read. */
  protected readonly attrs: AttributeCollector;

  constructor(
    bytes: Uint8Array,
    protected readonly limits: DecodeLimits,
  ) {
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.filter = keyFilterOf(limits.keep);
    this.attrs = new AttributeCollector(limits.maxAttributesPerSpan);
  }

  request(): TracesRequestData {
    const end = this.buf.length;
    const resourceSpans: ResourceSpansData[] = [];
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag >>> 3 === 1) {
        const sub = this.len(tag, end, 'ExportTraceServiceRequest.resource_spans');
        resourceSpans.push(this.resourceSpans(sub));
      } else this.skip(tag, end);
    }
    return { resourceSpans, spanCount: this.spanCount, rejectedSpans: this.rejects.total, rejectMessage: this.rejects.message() };
  }

  protected resourceSpans(end: number): ResourceSpansData {
    let resource: Attributes | undefined;
    const spans: SpanData[] = [];
    while (this.pos < end) {
      const tag = this.tag(end);
      switch (tag >>> 3) {
        case 1: {
          const sub = this.len(tag, end, 'ResourceSpans.resource');
          resource = this.resource(sub, resource);
          break;
        }
        case 2: {
          const sub = this.len(tag, end, 'ResourceSpans.scope_spans');
          this.scopeSpans(sub, spans);
          break;
        }
        default:
          this.skip(tag, end);
      }
    }
    if (resource === undefined) {
      this.attrs.begin();
      resource = this.attrs.finish();
    }
    return { resource, spans };
  }

  /** A repeated resource field merges, as protobuf merges repeated singular messages. */
  protected resource(end: number, into: Attributes | undefined): Attributes {
    this.attrs.begin(into);
    this.present = false;
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag >>> 3 === 1) {
        const sub = this.len(tag, end, 'Resource.attributes');
        this.keyValue(sub);
      } else this.skip(tag, end);
    }
    return this.attrs.finish();
  }

  protected scopeSpans(end: number, spans: SpanData[]): void {
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag >>> 3 === 2) {
        const sub = this.len(tag, end, 'ScopeSpans.spans');
        const span = this.span(sub);
        if (span !== undefined) spans.push(span);
      } else this.skip(tag, end);
    }
  }

  protected span(end: number): SpanData | undefined {
    const limit = this.limits.maxAttributeValueLength;
    let traceStart = -1;
    let traceEnd = -1;
    let spanStart = -1;
    let spanEnd = -1;
    let parentStart = -1;
    let parentEnd = -1;
    let name = '';
    let kind = 0;
    let startMs = 0;
    let endMs = 0;
    let statusCode = 0;
    this.attrs.begin();
    this.present = false;
    while (this.pos < end) {
      const tag = this.tag(end);
      switch (tag >>> 3) {
        case 1:
          traceEnd = this.len(tag, end, 'Span.trace_id');
          traceStart = this.pos;
          this.pos = traceEnd;
          break;
        case 2:
          spanEnd = this.len(tag, end, 'Span.span_id');
          spanStart = this.pos;
          this.pos = spanEnd;
          break;
        case 4:
          parentEnd = this.len(tag, end, 'Span.parent_span_id');
          parentStart = this.pos;
          this.pos = parentEnd;
          break;
        case 5: {
          const sub = this.len(tag, end, 'Span.name');
          name = this.string(sub, limit);
          break;
        }
        case 6:
          this.expect(tag, WIRE_VARINT, 'Span.kind');
          kind = this.varint(end) | 0;
          break;
        case 7:
          this.expect(tag, WIRE_I64, 'Span.start_time_unix_nano');
          startMs = this.fixed64Ms(end);
          break;
        case 8:
          this.expect(tag, WIRE_I64, 'Span.end_time_unix_nano');
          endMs = this.fixed64Ms(end);
          break;
        case 9: {
          const sub = this.len(tag, end, 'Span.attributes');
          this.keyValue(sub);
          break;
        }
        case 15: {
          const sub = this.len(tag, end, 'Span.status');
          statusCode = this.statusCode(sub, statusCode);
          break;
        }
        default:
          this.skip(tag, end);
      }
    }
    const attributes = this.attrs.finish();
    if (!this.validId(traceStart, traceEnd, TRACE_ID_BYTES)) return this.reject(REJECT_TRACE_ID);
    if (!this.validId(spanStart, spanEnd, SPAN_ID_BYTES)) return this.reject(REJECT_SPAN_ID);
    let parentSpanId = '';
    if (parentEnd > parentStart) {
      if (parentEnd - parentStart !== SPAN_ID_BYTES) return this.reject(REJECT_PARENT_ID);
      if (this.validId(parentStart, parentEnd, SPAN_ID_BYTES)) parentSpanId = IDS.get(this.buf, parentStart, parentEnd);
    }
    this.spanCount++;
    return {
      traceId: IDS.get(this.buf, traceStart, traceEnd),
      spanId: IDS.get(this.buf, spanStart, spanEnd),
      parentSpanId,
      name,
      kind,
      startMs,
      endMs,
      statusCode,
      attributes,
    };
  }

  protected reject(reason: string): undefined {
    this.rejects.add(reason);
    return undefined;
  }

  /** True when bytes[start, end) is an id of `size` bytes that is not all zero. */
  protected validId(start: number, end: number, size: number): boolean {
    if (end - start !== size) return false;
    const buf = this.buf;
    for (let i = start; i < end; i++) if (buf[i] !== 0) return true;
    return false;
  }

  protected statusCode(end: number, current: number): number {
    let code = current;
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag >>> 3 === 3) {
        this.expect(tag, WIRE_VARINT, 'Status.code');
        code = this.varint(end) | 0;
      } else this.skip(tag, end);
    }
    return code;
  }

  /** Reads one KeyValue into this.attrs. */
  protected keyValue(end: number): void {
    const limit = this.limits.maxAttributeValueLength;
    const filter = this.filter;
    let key = '';
    let decision: KeyDecision = KeyDecision.KEEP;
    let value: AttrValue | undefined;
    let kind: ValueKind = ValueKind.EMPTY;
    while (this.pos < end) {
      const tag = this.tag(end);
      switch (tag >>> 3) {
        case 1: {
          const sub = this.len(tag, end, 'KeyValue.key');
          key = this.string(sub, limit, KEYS);
          if (filter !== undefined) decision = filter.decide(key);
          break;
        }
        case 2: {
          const sub = this.len(tag, end, 'KeyValue.value');
          // The key comes first on the wire as every encoder writes it; a value seen before its
          // key is decoded and the decision is made below.
          if (decision === KeyDecision.DROP || (decision === KeyDecision.PRESENCE && this.present)) {
            this.skipValue(sub, 1);
            kind = ValueKind.EMPTY;
          } else {
            value = this.anyValue(sub, 1);
            kind = this.kind;
          }
          break;
        }
        default:
          this.skip(tag, end);
      }
    }
    if (kind === ValueKind.EMPTY) return;
    if (filter !== undefined) {
      if (decision === KeyDecision.DROP || (decision === KeyDecision.PRESENCE && this.present)) return;
      if (decision !== KeyDecision.KEEP) {
        this.attrs.put(key, value as AttrValue);
        if (this.attrs.has(key)) this.present = true;
        return;
      }
    }
    this.attrs.put(key, value as AttrValue);
  }

  /** Reads an AnyValue at nesting `depth` (1 for an attribute's own value); sets this.kind. */
  protected anyValue(end: number, depth: number): AttrValue | undefined {
    if (depth > this.limits.maxValueDepth) throw new DecodeError(`attribute value nested deeper than ${this.limits.maxValueDepth}`);
    const limit = this.limits.maxAttributeValueLength;
    let value: AttrValue | undefined;
    let kind: ValueKind = ValueKind.EMPTY;
    // The last member of the oneof on the wire wins.
    while (this.pos < end) {
      const tag = this.tag(end);
      switch (tag >>> 3) {
        case 1: {
          const sub = this.len(tag, end, 'AnyValue.string_value');
          value = this.string(sub, limit);
          kind = ValueKind.SCALAR;
          break;
        }
        case 2:
          this.expect(tag, WIRE_VARINT, 'AnyValue.bool_value');
          value = this.varint(end) !== 0 || this.hi !== 0;
          kind = ValueKind.SCALAR;
          break;
        case 3: {
          this.expect(tag, WIRE_VARINT, 'AnyValue.int_value');
          const lo = this.varint(end);
          value = int64ToNumber(this.hi, lo);
          kind = ValueKind.SCALAR;
          break;
        }
        case 4:
          this.expect(tag, WIRE_I64, 'AnyValue.double_value');
          this.need(8, end);
          value = this.buf.readDoubleLE(this.pos);
          this.pos += 8;
          kind = ValueKind.SCALAR;
          break;
        case 5: {
          const sub = this.len(tag, end, 'AnyValue.array_value');
          value = this.list(sub, depth, '[');
          kind = ValueKind.JSON;
          break;
        }
        case 6: {
          const sub = this.len(tag, end, 'AnyValue.kvlist_value');
          value = this.list(sub, depth, '{');
          kind = ValueKind.JSON;
          break;
        }
        case 7: {
          const sub = this.len(tag, end, 'AnyValue.bytes_value');
          value = bytesToBase64(this.buf, this.pos, sub, limit);
          this.pos = sub;
          kind = ValueKind.SCALAR;
          break;
        }
        default:
          this.skip(tag, end);
      }
    }
    this.kind = kind;
    return value;
  }

  /**
   * Steps over an AnyValue that is left out, decoding nothing: only its nesting is followed, so
   * that the depth limit holds for every value of the request, read or not.
   */
  protected skipValue(end: number, depth: number): void {
    if (depth > this.limits.maxValueDepth) throw new DecodeError(`attribute value nested deeper than ${this.limits.maxValueDepth}`);
    while (this.pos < end) {
      const tag = this.tag(end);
      const field = tag >>> 3;
      if ((field !== 5 && field !== 6) || (tag & 7) !== WIRE_LEN) {
        this.skip(tag, end);
        continue;
      }
      // ArrayValue.values (AnyValue) or KeyValueList.values (KeyValue, its value in field 2).
      const listEnd = this.lenEnd(end);
      while (this.pos < listEnd) {
        const item = this.tag(listEnd);
        if (item >>> 3 !== 1 || (item & 7) !== WIRE_LEN) {
          this.skip(item, listEnd);
          continue;
        }
        const itemEnd = this.lenEnd(listEnd);
        if (field === 5) {
          this.skipValue(itemEnd, depth + 1);
          continue;
        }
        while (this.pos < itemEnd) {
          const kvTag = this.tag(itemEnd);
          if (kvTag >>> 3 === 2 && (kvTag & 7) === WIRE_LEN) this.skipValue(this.lenEnd(itemEnd), depth + 1);
          else this.skip(kvTag, itemEnd);
        }
      }
    }
  }

  /** An ArrayValue (`[`) or KeyValueList (`{`) as JSON text. */
  protected list(end: number, depth: number, open: '[' | '{'): string {
    const builder = new JsonTextBuilder(open, this.limits.maxAttributeValueLength);
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag >>> 3 === 1) {
        const sub = this.len(tag, end, open === '[' ? 'ArrayValue.values' : 'KeyValueList.values');
        if (open === '[') {
          const value = this.anyValue(sub, depth + 1);
          builder.add(elementJson(this.kind, value));
        } else this.listEntry(sub, depth, builder);
      } else this.skip(tag, end);
    }
    return builder.finish();
  }

  protected listEntry(end: number, depth: number, builder: JsonTextBuilder): void {
    let key = '';
    let text = 'null';
    while (this.pos < end) {
      const tag = this.tag(end);
      switch (tag >>> 3) {
        case 1: {
          const sub = this.len(tag, end, 'KeyValue.key');
          key = this.string(sub, this.limits.maxAttributeValueLength, KEYS);
          break;
        }
        case 2: {
          const sub = this.len(tag, end, 'KeyValue.value');
          const value = this.anyValue(sub, depth + 1);
          text = elementJson(this.kind, value);
          break;
        }
        default:
          this.skip(tag, end);
      }
    }
    builder.add(text, key);
  }

  /** UTF-8 text of bytes[pos, end), cut to `limit` characters; invalid bytes become U+FFFD. */
  protected string(end: number, limit: number, table: StringTable = VALUES): string {
    const start = this.pos;
    this.pos = end;
    const cached = table.get(this.buf, this.view, start, end);
    if (cached !== undefined) return cached.length <= limit ? cached : truncate(cached, limit);
    // A character is at most 4 bytes: decoding 4 * (limit + 1) bytes yields more than `limit` characters.
    const stop = Math.min(end, start + 4 * (limit + 1));
    return truncate(utf8(this.buf, start, stop), limit);
  }

  /** Where the fixed64 at pos is (its 8 bytes are within `end`), stepping past it. */
  protected fixed64At(end: number): number {
    this.need(8, end);
    const at = this.pos;
    this.pos = at + 8;
    return at;
  }

  protected fixed64Ms(end: number): number {
    return fixed64Ms(this.buf, this.fixed64At(end));
  }

  /** Reads a field tag; refuses field number 0 and tags wider than 32 bits. */
  protected tag(end: number): number {
    const tag = this.varint(end);
    if (this.hi !== 0) throw new DecodeError(`invalid field tag at byte ${this.pos}`);
    if (tag >>> 3 === 0) throw new DecodeError(`invalid field number 0 at byte ${this.pos}`);
    return tag;
  }

  /** Reads a varint; returns its low 32 bits (unsigned) and leaves the high 32 bits in this.hi. */
  protected varint(end: number): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos >= end) throw new DecodeError(`truncated varint at byte ${pos}`);
    let b = buf[pos++];
    if (b < 0x80) {
      this.pos = pos;
      this.hi = 0;
      return b;
    }
    let lo = b & 0x7f;
    let hi = 0;
    let i = 1;
    for (; i < MAX_VARINT_BYTES; i++) {
      if (pos >= end) throw new DecodeError(`truncated varint at byte ${pos}`);
      b = buf[pos++];
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi = (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if (b < 0x80) break;
    }
    if (i === MAX_VARINT_BYTES) throw new DecodeError(`varint longer than 10 bytes at byte ${this.pos}`);
    this.pos = pos;
    this.hi = hi >>> 0;
    return lo >>> 0;
  }

  /** Checks a length-delimited field and returns the offset where its contents end. */
  protected len(tag: number, end: number, field: string): number {
    this.expect(tag, WIRE_LEN, field);
    return this.lenEnd(end);
  }

  protected lenEnd(end: number): number {
    const n = this.varint(end);
    if (this.hi !== 0 || n > end - this.pos) throw new DecodeError(`length ${this.hi !== 0 ? 'over 4 GiB' : n} at byte ${this.pos} runs past the end of its message`);
    return this.pos + n;
  }

  protected need(n: number, end: number): void {
    if (end - this.pos < n) throw new DecodeError(`truncated fixed-width field at byte ${this.pos}`);
  }

  protected expect(tag: number, wireType: number, field: string): void {
    if ((tag & 7) !== wireType) throw new DecodeError(`wrong wire type ${tag & 7} for ${field}`);
  }

  /** Steps over a field conduct does not read. */
  protected skip(tag: number, end: number): void {
    switch (tag & 7) {
      case WIRE_VARINT:
        this.varint(end);
        return;
      case WIRE_I64:
        this.need(8, end);
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.pos = this.lenEnd(end);
        return;
      case WIRE_I32:
        this.need(4, end);
        this.pos += 4;
        return;
      case WIRE_SGROUP:
      case WIRE_EGROUP:
        throw new DecodeError(`group wire type (field ${tag >>> 3}) is not supported`);
      default:
        throw new DecodeError(`invalid wire type ${tag & 7} (field ${tag >>> 3})`);
    }
  }
}
