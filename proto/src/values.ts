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

/** Nanoseconds since the epoch, as two unsigned 32-bit halves, to fractional milliseconds. */
export function nanosToMs(hi: number, lo: number): number {
  return (hi * TWO_POW_32 + lo) / NANOS_PER_MS;
}

/** The little-endian fixed64 nanoseconds at bytes[p, p + 8), in ms (see nanosToMs). */
export function fixed64Ms(bytes: Uint8Array, p: number): number {
  const lo = (bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16)) + bytes[p + 3]! * 0x1000000;
  const hi = (bytes[p + 4]! | (bytes[p + 5]! << 8) | (bytes[p + 6]! << 16)) + bytes[p + 7]! * 0x1000000;
  return nanosToMs(hi, lo);
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

/** Attribute objects of up to this many properties are made to hold exactly that many. */
export const SIZED_MAX = 10;

/**
 * One constructor per property count up to SIZED_MAX. V8 settles the size of a constructor's
 * objects after its first few constructions, to room for the most properties any of them was
 * given, up to SIZED_MAX here: so the first ones get n (throw-away keys) and every later object
 * of SIZED[n] holds n properties in itself. An object made with `{}` holds 4 and puts the rest in a
 * separate, over-allocated array: 16 to 40 bytes more for the 5 to 10 attributes of a typical span.
 */
const SIZED: (new () => object)[] = [];
for (let n = 0; n <= SIZED_MAX; n++) {
  const Sized = class {};
  for (let i = 0; i < 10; i++) {
    const o = Object.setPrototypeOf(new Sized(), null) as Record<string, number>;
    for (let k = 0; k < n; k++) o[`\u0000sized${k}`] = 0;
  }
  SIZED.push(Sized);
}

/** Key sets seen this many times get a factory of their own. */
export const SHAPE_FACTORY_AFTER = 8;
/** Factories made at most (attribute keys come from senders: the set is bounded). */
const MAX_SHAPE_FACTORIES = 1_024;
/** Nodes of the key-set tree at most. */
const MAX_SHAPE_NODES = 4_096;
/** Keys longer than this never get into a factory. */
const MAX_FACTORY_KEY_LENGTH = 128;

type Factory = (values: readonly AttrValue[]) => Attributes;

interface ShapeNode {
  next: Map<string, ShapeNode> | undefined;
  seen: number;
  make: Factory | undefined;
}

/**
 * Factories for the attribute key sets that keep coming (the same instrumentation sends the same
 * keys in the same order), each an object literal of those keys. V8 allocates an object literal
 * straight in the old generation once it sees that nearly all objects made by it survive, as the
 * attributes of spans waiting for their trace do; objects made with `new` always start young, and
 * the scavenges then copy them: most of what the collector copies per held span. Keyed by a tree of
 * the keys in order, so that a lookup makes no garbage. Shared by all collectors, and bounded.
 */
class AttributeShapes {
  private readonly root: ShapeNode = { next: undefined, seen: 0, make: undefined };
  private nodes = 1;
  private factories = 0;
  private codegen = true;

  /** The factory for keys[0, count), once that key set has been seen often enough. */
  factory(keys: readonly string[], count: number): Factory | undefined {
    // `{}` is made with room for 4 properties: SIZED[0] holds none.
    if (count === 0) return undefined;
    let node = this.root;
    for (let i = 0; i < count; i++) {
      const key = keys[i]!;
      let child = node.next?.get(key);
      if (child === undefined) {
        if (this.nodes >= MAX_SHAPE_NODES) return undefined;
        child = { next: undefined, seen: 0, make: undefined };
        (node.next ??= new Map()).set(key, child);
        this.nodes++;
      }
      node = child;
    }
    if (node.make !== undefined) return node.make;
    if (++node.seen < SHAPE_FACTORY_AFTER || this.factories >= MAX_SHAPE_FACTORIES) return undefined;
    for (let i = 0; i < count; i++) if (!literalKey(keys[i]!)) return undefined;
    if (!this.codegen) return undefined;
    const properties = keys.slice(0, count).map((key, i) => `${JSON.stringify(key)}: v[${i}]`);
    try {
      // A literal with `__proto__: null` would start in slow dictionary mode: the prototype is set after.
      node.make = new Function('v', `return Object.setPrototypeOf({ ${properties.join(', ')} }, null);`) as Factory;
    } catch {
      // Code generation from strings turned off (--disallow-code-generation-from-strings): the
      // collector builds every object itself, as before.
      this.codegen = false;
      return undefined;
    }
    this.factories++;
    return node.make;
  }
}

/**
 * Keys that an object literal makes a plain named property of: `__proto__` would set the
 * prototype, and array-index keys would become elements.
 */
function literalKey(key: string): boolean {
  if (key.length > MAX_FACTORY_KEY_LENGTH || key === '__proto__') return false;
  const c = key.charCodeAt(0);
  return !(c >= 0x30 && c <= 0x39);
}

const SHAPES = new AttributeShapes();

/**
 * Collects the attributes of one span or resource, then makes their object, in the order the keys
 * first came: null prototype, so keys such as `__proto__` are plain keys (and not made with
 * Object.create(null), which V8 starts in slow dictionary mode). At most `max` distinct keys are
 * kept; a later duplicate overwrites the value. Reused: `begin` starts the next object.
 */
export class AttributeCollector {
  private readonly keys: string[] = [];
  private readonly values: AttrValue[] = [];
  /** Distinct keys collected. */
  count = 0;
  /** Beyond SIZED_MAX keys, the object itself (a plain one) collects. */
  private spill: Attributes | undefined;

  constructor(private readonly max: number) {}

  /** Starts a new object, with the attributes of `from` when given (a repeated message merges). */
  begin(from?: Attributes): void {
    this.count = 0;
    this.spill = undefined;
    if (from !== undefined) for (const key of Object.keys(from)) this.put(key, from[key]!);
  }

  has(key: string): boolean {
    if (this.spill !== undefined) return key in this.spill;
    for (let i = 0; i < this.count; i++) if (this.keys[i] === key) return true;
    return false;
  }

  put(key: string, value: AttrValue): void {
    const spill = this.spill;
    if (spill !== undefined) {
      if (key in spill) spill[key] = value;
      else if (this.count < this.max) {
        spill[key] = value;
        this.count++;
      }
      return;
    }
    for (let i = 0; i < this.count; i++) {
      if (this.keys[i] === key) {
        this.values[i] = value;
        return;
      }
    }
    if (this.count >= this.max) return;
    if (this.count === SIZED_MAX) {
      // Not a factory's object: one of those given more properties gets a new map of its own.
      this.spill = this.sized();
      this.put(key, value);
      return;
    }
    this.keys[this.count] = key;
    this.values[this.count] = value;
    this.count++;
  }

  finish(): Attributes {
    if (this.spill !== undefined) return this.spill;
    const make = SHAPES.factory(this.keys, this.count);
    return make !== undefined ? make(this.values) : this.sized();
  }

  private sized(): Attributes {
    const attrs = Object.setPrototypeOf(new SIZED[this.count]!(), null) as Attributes;
    for (let i = 0; i < this.count; i++) attrs[this.keys[i]!] = this.values[i]!;
    return attrs;
  }
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
