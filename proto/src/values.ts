/**
 * Pieces shared by the protobuf scanner and the OTLP/JSON decoder, so that both produce exactly
 * the same TracesRequestData for the same request: limits, id and time conversion, string
 * truncation, the JSON text of arrays and key-value lists, and the tally of rejected spans.
 */
import { Buffer } from 'node:buffer';
import { DEFAULT_DECODE_LIMITS, DecodeError, type Attributes, type AttrValue, type DecodeLimits } from './model.js';

/** Length in bytes of a valid trace id. */
export const TRACE_ID_BYTES = 16;
/** Length in bytes of a valid span id. */
export const SPAN_ID_BYTES = 8;

const TWO_POW_32 = 4294967296;
const NANOS_PER_MS = 1e6;

/**
 * Fills in missing limits from {@link DEFAULT_DECODE_LIMITS}; a limit that is not a non-negative
 * integer is refused. `keep` is passed on as given.
 */
export function resolveLimits(limits: Partial<DecodeLimits> | undefined): DecodeLimits {
  if (limits === undefined) return DEFAULT_DECODE_LIMITS;
  const resolved = { ...DEFAULT_DECODE_LIMITS };
  for (const key of Object.keys(DEFAULT_DECODE_LIMITS) as Exclude<keyof DecodeLimits, 'keep'>[]) {
    const value = limits[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`decode limit ${key} must be a non-negative integer`);
    resolved[key] = value;
  }
  if (limits.keep !== undefined) resolved.keep = limits.keep;
  return resolved;
}

/**
 * A fresh attribute map: null prototype, so keys such as `__proto__` are plain keys.
 * (Made from a literal rather than Object.create(null), which V8 starts in slow dictionary mode.)
 */
export function newAttributes(): Attributes {
  return Object.setPrototypeOf({}, null) as Attributes;
}

/** Nanoseconds since the epoch, as two unsigned 32-bit halves, to fractional milliseconds. */
export function nanosToMs(hi: number, lo: number): number {
  return (hi * TWO_POW_32 + lo) / NANOS_PER_MS;
}

/** A signed 64-bit integer, as two unsigned 32-bit halves (two's complement), to the nearest JS number. */
export function int64ToNumber(hi: number, lo: number): number {
  // Returned as is, a value below 2^32 stays a small integer where V8 can keep it one (ports,
  // status codes, sizes): the arithmetic below yields a heap-allocated double even for 0 * 2^32.
  if (hi === 0) return lo;
  if (hi < 0x80000000) return hi * TWO_POW_32 + lo;
  // Negate in two halves so that the result is rounded once, like Number() of the decimal text.
  return lo === 0 ? -((TWO_POW_32 - hi) * TWO_POW_32) : -((~hi >>> 0) * TWO_POW_32 + (TWO_POW_32 - lo));
}

/** Cuts `s` to at most `limit` UTF-16 units, without leaving half a surrogate pair at the end. */
export function truncate(s: string, limit: number): string {
  if (s.length <= limit) return s;
  let cut = s.slice(0, limit);
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return cut;
}

/** Base64 of bytes[start, end), cut to whole 4-character groups within `limit` characters. */
export function bytesToBase64(bytes: Buffer, start: number, end: number, limit: number): string {
  const maxBytes = Math.floor(limit / 4) * 3;
  if (end - start > maxBytes && Math.ceil((end - start) / 3) * 4 > limit) end = start + maxBytes;
  return bytes.toString('base64', start, end);
}

/** Kinds of a decoded AnyValue. JSON means the value is already JSON text (array or kvlist). */
export const ValueKind = { EMPTY: 0, SCALAR: 1, JSON: 2 } as const;
export type ValueKind = (typeof ValueKind)[keyof typeof ValueKind];

/** The JSON text of one element of an array or key-value list. */
export function elementJson(kind: ValueKind, value: AttrValue | undefined): string {
  if (kind === ValueKind.JSON) return value as string;
  if (kind === ValueKind.EMPTY) return 'null';
  return JSON.stringify(value) ?? 'null';
}

/**
 * Builds the JSON text of an array or key-value list, never longer than `limit` characters:
 * elements that would not fit are left out (the text stays valid JSON).
 */
export class JsonTextBuilder {
  private text: string;
  private empty = true;

  constructor(
    private readonly open: '[' | '{',
    private readonly limit: number,
  ) {
    this.text = open;
  }

  /** Appends one element; `key` is given for key-value lists. */
  add(elementText: string, key?: string): void {
    let piece = key === undefined ? elementText : `${JSON.stringify(key)}:${elementText}`;
    if (!this.empty) piece = `,${piece}`;
    // +1 for the closing bracket.
    if (this.text.length + piece.length + 1 > this.limit) return;
    this.text += piece;
    this.empty = false;
  }

  finish(): string {
    return this.text + (this.open === '[' ? ']' : '}');
  }
}

/**
 * Adds one attribute, keeping at most `max` distinct keys (later duplicates overwrite).
 * Returns the new count of distinct keys.
 */
export function putAttribute(attrs: Attributes, count: number, max: number, key: string, value: AttrValue): number {
  if (key in attrs) {
    attrs[key] = value;
    return count;
  }
  if (count >= max) return count;
  attrs[key] = value;
  return count + 1;
}

/** Counts spans that cannot be used, by reason, and words the partial-success message. */
export class RejectTally {
  total = 0;
  private readonly reasons = new Map<string, number>();

  add(reason: string): void {
    this.total++;
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
  }

  message(): string {
    if (this.total === 0) return '';
    const parts = [...this.reasons].map(([reason, n]) => `${reason} (${n})`);
    return `rejected ${this.total} span${this.total === 1 ? '' : 's'}: ${parts.join(', ')}`;
  }
}

export const REJECT_TRACE_ID = 'trace id missing, not 16 bytes or all zero';
export const REJECT_SPAN_ID = 'span id missing, not 8 bytes or all zero';
export const REJECT_PARENT_ID = 'parent span id not 8 bytes';

/** Wraps engine errors (stack overflow on absurd limits, string too long) into DecodeError. */
export function asDecodeError(err: unknown): never {
  if (err instanceof DecodeError) throw err;
  if (err instanceof RangeError) throw new DecodeError(`request too large or too deeply nested (${err.message})`);
  throw err;
}
