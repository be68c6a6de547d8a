/**
 * The columnar form of a decoded traces request, for conduct's hot path: one set of typed arrays
 * per request instead of a span object and an attributes object per span. Spans wait for their
 * trace to complete in this form (a pending span is a reference to its request's columns and its
 * index), so what the garbage collector marks and copies per pending span is a few array slots.
 *
 * - ids: 16 bytes per span (span id, parent span id; an all-zero parent is a root) and the index
 *   of its trace in the request's table of distinct trace ids (16 bytes per trace: the spans of a
 *   trace mostly come in one request), made hex text only when asked for, through the same shared
 *   table as the object decoder;
 * - kind and status as 8-bit integers (saturated; the rare value outside -128..127 kept exactly
 *   on the side for span views), start and end times as doubles, names as (table-shared) strings;
 * - attributes as one flat list of (key id, value) per request with per-owner offsets, where an
 *   owner is a span (0 .. spanCount-1) or a resource (spanCount + its index): a resource's
 *   attributes are held once, whatever number of spans it has.
 *
 * Key ids are process-wide small integers ({@link attributeKeyId}); only kept keys (see
 * AttributeKeep) get one, so a reader resolves the ids of the keys it reads once and looks values
 * up by id. Every key outside the kept ones that a presence prefix lets through has the id
 * {@link PRESENCE_KEY_ID}.
 */
import { HexTable } from './string-table.js';
import { KeyDecision, keyFilterOf, VALUE_HINTS, type KeyFilter } from './key-filter.js';
import { attributeKeyName, letterOf, PREFIXED } from './key-ids.js';
import { DecodeError, type AttributeKeep, type Attributes, type AttrValue, type SpanData, type TracesRequestData } from './model.js';
import { fixed64Ms } from './values.js';

// ---- readers -----------------------------------------------------------------------------------

/** Attributes of one span or resource, read by key id. */
export interface AttrReader {
  get(key: number): AttrValue | undefined;
  /** `letterOf` of every key it holds, with PREFIXED when one has a presence prefix. */
  readonly letters: number;
}

/** The fields of a span, with its attributes behind a reader. */
export interface SpanView {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  statusCode: number;
  attributes: AttrReader;
}

/** An attributes object read by key id (tests, and the reference for the columns). */
export class ObjectAttrs implements AttrReader {
  readonly letters: number;

  /** `prefixes`: the presence prefixes that set PREFIXED. */
  constructor(
    readonly record: Attributes,
    prefixes: readonly string[] = [],
  ) {
    let letters = 0;
    for (const key in record) {
      letters |= letterOf(key);
      for (const p of prefixes) if (key.startsWith(p)) letters |= PREFIXED;
    }
    this.letters = letters;
  }

  get(key: number): AttrValue | undefined {
    return this.record[attributeKeyName(key)];
  }
}

/**
 * The attributes of one owner of a SpanColumns. A reader may be moved to another owner
 * ({@link ColumnAttrs.moveTo}): derivation reads span after span through a few readers it moves,
 * instead of one new reader per span (measured: the per-span readers and span views were ~6% of
 * the pipeline thread, plus their share of its garbage collection).
 */
export class ColumnAttrs implements AttrReader {
  letters = 0;
  /** Bit `key & 31` of every key it holds: most keys read are absent, and most of those miss here. */
  private mask = 0;
  private from = 0;
  private to = 0;
  /** Attribute j's key is cols.shapeKeys[j + keyBase]. */
  private keyBase = 0;

  constructor(
    public cols: SpanColumns,
    public owner: number,
  ) {
    this.moveTo(cols, owner);
  }

  /** Points this reader at another owner (of any columns); returns it. */
  moveTo(cols: SpanColumns, owner: number): this {
    this.cols = cols;
    this.owner = owner;
    const shape = cols.shapeOf[owner]!;
    this.letters = cols.shapeLetters[shape]!;
    this.mask = cols.shapeMasks[shape]!;
    this.from = cols.attrStart[owner]!;
    this.to = cols.attrStart[owner + 1]!;
    this.keyBase = cols.shapeStart[shape]! - this.from;
    return this;
  }

  get(key: number): AttrValue | undefined {
    if ((this.mask & (1 << (key & 31))) === 0) return undefined;
    const keys = this.cols.shapeKeys;
    const base = this.keyBase;
    for (let j = this.from; j < this.to; j++) if (keys[j + base] === key) return this.cols.attrValues[this.cols.attrRefs[j]!];
    return undefined;
  }
}

// ---- the columns ---------------------------------------------------------------------------------

/** Bytes of ids per span: span id (8), parent span id (8); the trace id is in the trace table. */
export const ID_BYTES_PER_SPAN = 16;
/** Bytes of a trace id. */
const TRACE_ID_BYTES = 16;

/** Where a span's own id starts in its id bytes (see SpanColumns.idIs). */
export const SPAN_ID_AT = 0;
/** Where its parent's span id starts. */
export const PARENT_ID_AT = 8;

/** Shared by every request: the spans of a trace carry one trace id, a parent id is another span's id. */
export const IDS = new HexTable(14);

/** The value an 8-bit column holds for a kind or status: saturated, so comparisons and max() read as on the wire. */
export function clampInt8(v: number): number {
  return v > 127 ? 127 : v < -128 ? -128 : v;
}

/**
 * A column of small indexes: 16-bit when every value fits (the usual request: a pending span holds
 * 2 bytes where it held 4; bench/README.md, issue 19), else 32-bit.
 */
export type IndexColumn = Uint16Array | Uint32Array;

/**
 * Attribute keys are held by shape: the owners of a request mostly repeat a few sequences of keys
 * (an SDK writes a kind of span's attributes in one order), so each distinct sequence (with its
 * owners' letters) is held once, and an owner holds its shape's index and its values' references.
 * Per pending span this is 4 bytes for the shape and offset where it held 10 for the offset, letters
 * and key mask, and nothing per attribute where it held a 16-bit key (bench/README.md, issue 19).
 */
export class SpanColumns {
  /** Resource index of each span. */
  readonly resourceOf: IndexColumn;
  /** Owner o's attribute references are attrRefs[attrStart[o], attrStart[o + 1]). */
  readonly attrStart: IndexColumn;
  /** Per owner (spans, then resources): its shape. */
  readonly shapeOf: IndexColumn;
  /** Shape s's keys are shapeKeys[shapeStart[s], shapeStart[s + 1]), in its owners' attribute order. */
  readonly shapeStart: IndexColumn;
  readonly shapeKeys: Uint16Array;
  /** Per shape: see AttrReader.letters. */
  readonly shapeLetters: Uint32Array;
  /** Per shape: bit `key & 31` of each of its keys. */
  readonly shapeMasks: Uint32Array;
  /** Made on first use: most copies (copySpans) are never read by resource. */
  private resourceViews: (ColumnAttrs | undefined)[] | undefined = undefined;

  constructor(
    readonly spanCount: number,
    readonly resourceCount: number,
    /** ID_BYTES_PER_SPAN per span: its span id, its parent's (zeros for none). */
    readonly ids: Uint8Array,
    /** Per span: the index of its trace id in traceIds. Distinct indexes are distinct ids. */
    readonly traceOf: IndexColumn,
    /**
     * 16 bytes per distinct trace id of the request, in the order its spans first name them (as a
     * ColumnsBuilder makes them).
     */
    readonly traceIds: Uint8Array,
    readonly names: string[],
    /** Saturated to 8 bits (clampInt8); exact in `wide` when they were not. */
    readonly kinds: Int8Array,
    readonly statuses: Int8Array,
    readonly starts: Float64Array,
    readonly ends: Float64Array,
    resourceOf: IndexColumn,
    attrStart: IndexColumn,
    /** The keys of every shape (see shapeStart), or with `shapeOf` absent of every owner in attribute order. */
    keys: Uint16Array,
    /** Per attribute: the index of its value in attrValues (16 bits unless a request has more distinct values). */
    readonly attrRefs: IndexColumn,
    /** The request's distinct attribute values (see attrValue). */
    readonly attrValues: AttrValue[],
    /** Per shape, or per owner with `shapeOf` absent: see AttrReader.letters. */
    letters: Uint32Array,
    /** Per shape, or per owner with `shapeOf` absent: bit `key & 31` of each of its keys. */
    masks: Uint32Array,
    /** Spans present in the request that could not be used (see TracesRequestData). */
    readonly rejectedSpans = 0,
    readonly rejectMessage = '',
    /** Kinds (key 2i) and statuses (2i + 1) outside -128..127, as sent. */
    readonly wide: Map<number, number> | undefined = undefined,
    /** Per owner, its shape; absent: every owner is a shape of its own (keys, letters, masks per owner). */
    shapeOf?: IndexColumn,
    /** With `shapeOf`: where each shape's keys start in `keys` (one more entry than shapes). */
    shapeStart?: IndexColumn,
  ) {
    this.resourceOf = resourceOf;
    this.attrStart = attrStart;
    this.shapeOf = shapeOf ?? identityRefs(spanCount + resourceCount);
    this.shapeStart = shapeStart ?? attrStart;
    this.shapeKeys = keys;
    this.shapeLetters = letters;
    this.shapeMasks = masks;
  }

  /** The letters of an owner (see AttrReader.letters). */
  lettersOf(owner: number): number {
    return this.shapeLetters[this.shapeOf[owner]!]!;
  }

  /** The key id of attribute j of `owner` (attrStart[owner] <= j < attrStart[owner + 1]). */
  attrKey(owner: number, j: number): number {
    return this.shapeKeys[this.shapeStart[this.shapeOf[owner]!]! + j - this.attrStart[owner]!]!;
  }

  traceId(i: number): string {
    return this.traceIdAt(this.traceOf[i]!);
  }

  /** The trace id of entry t of the trace table (entries are in the order spans first name them). */
  traceIdAt(t: number): string {
    const at = t * TRACE_ID_BYTES;
    return IDS.get(this.traceIds, at, at + TRACE_ID_BYTES);
  }

  spanId(i: number): string {
    const at = i * ID_BYTES_PER_SPAN + SPAN_ID_AT;
    return IDS.get(this.ids, at, at + 8);
  }

  /** True when span i has no parent (an all-zero parent id). */
  isRoot(i: number): boolean {
    const ids = this.ids;
    const at = i * ID_BYTES_PER_SPAN + PARENT_ID_AT;
    for (let k = at; k < at + 8; k++) if (ids[k] !== 0) return false;
    return true;
  }

  /**
   * True when the id at `field` of span i (SPAN_ID_AT: its span id, PARENT_ID_AT: its parent's)
   * is the span id of span j of `other`: ids compared as bytes, no hex text made.
   */
  idIs(i: number, field: number, other: SpanColumns, j: number): boolean {
    const a = this.ids;
    const b = other.ids;
    const x = i * ID_BYTES_PER_SPAN + field;
    const y = j * ID_BYTES_PER_SPAN + SPAN_ID_AT;
    for (let k = 0; k < 8; k++) if (a[x + k] !== b[y + k]) return false;
    return true;
  }

  /** A 32-bit hash of the id at `field` of span i (see idIs), mixed with `seed`. */
  idHash(i: number, field: number, seed: number): number {
    const a = this.ids;
    const x = i * ID_BYTES_PER_SPAN + field;
    const lo = a[x]! | (a[x + 1]! << 8) | (a[x + 2]! << 16) | (a[x + 3]! << 24);
    const hi = a[x + 4]! | (a[x + 5]! << 8) | (a[x + 6]! << 16) | (a[x + 7]! << 24);
    return mixWord(mixWord(lo ^ seed) ^ hi);
  }

  /** True when span i carries the trace id of span j (both of these columns). */
  sameTrace(i: number, j: number): boolean {
    return this.traceOf[i] === this.traceOf[j];
  }

  /** '' for a root span. */
  parentSpanId(i: number): string {
    const at = i * ID_BYTES_PER_SPAN + PARENT_ID_AT;
    const ids = this.ids;
    for (let k = at; k < at + 8; k++) if (ids[k] !== 0) return IDS.get(ids, at, at + 8);
    return '';
  }

  /** The value of attribute j (of any owner: see attrStart). */
  attrValue(j: number): AttrValue {
    return this.attrValues[this.attrRefs[j]!]!;
  }

  /** The kind of span i as sent (kinds[i] is saturated to 8 bits). */
  kind(i: number): number {
    return this.wide?.get(2 * i) ?? this.kinds[i]!;
  }

  /** The status code of span i as sent (statuses[i] is saturated to 8 bits). */
  status(i: number): number {
    return this.wide?.get(2 * i + 1) ?? this.statuses[i]!;
  }

  /** The attributes of span i (a new reader). */
  spanAttrs(i: number): ColumnAttrs {
    return new ColumnAttrs(this, i);
  }

  /** The attributes of resource r: one reader per resource, so per-resource memos hit. */
  resourceAttrs(r: number): ColumnAttrs {
    const views = (this.resourceViews ??= new Array<ColumnAttrs | undefined>(this.resourceCount).fill(undefined));
    let view = views[r];
    if (view === undefined) views[r] = view = new ColumnAttrs(this, this.spanCount + r);
    return view;
  }

  /** Span i with its fields read out (a new object); `traceId` when the caller has it already. */
  span(i: number, traceId = this.traceId(i)): SpanView {
    return {
      traceId,
      spanId: this.spanId(i),
      parentSpanId: this.parentSpanId(i),
      name: this.names[i]!,
      kind: this.kind(i),
      startMs: this.starts[i]!,
      endMs: this.ends[i]!,
      statusCode: this.status(i),
      attributes: this.spanAttrs(i),
    };
  }

  /**
   * Spans `indices` (span k of the copy is span indices[k]) and their resources, each resource once,
   * in columns of their own, so that holding them does not hold the request. The spans share their
   * values and shapes: ~150 bytes of heap a span for 30 spans a copy, where a copy per span was
   * ~1.3 KB (bench/README.md, "Remembered spans of completed traces").
   */
  copySpans(indices: readonly number[]): SpanColumns {
    return copyOfSpans(this, indices);
  }
}

// ---- building ---------------------------------------------------------------------------------

/** Reused by copyOfSpans (a ColumnsBuilder's arrays are sized once, then reset). */
let copier: ColumnsBuilder | undefined;
/** A span's trace id, span id and parent id, for copyOfSpans' builder. */
const COPY_IDS = new Uint8Array(TRACE_ID_BYTES + ID_BYTES_PER_SPAN);

/**
 * The spans `indices` of `from` and their resources, rebuilt through a ColumnsBuilder of its own: the
 * builder shares values and shapes among the copied spans, so that a span copied with others costs
 * a share of one set of arrays (bench/README.md, "Remembered spans of completed traces").
 */
function copyOfSpans(from: SpanColumns, indices: readonly number[]): SpanColumns {
  const b = (copier ??= new ColumnsBuilder());
  b.reset();
  // Per resource of `from`, its index in the copy + 1 (0: not copied yet).
  const resources = new Int32Array(from.resourceCount);
  for (const i of indices) {
    const r = from.resourceOf[i]!;
    if (resources[r] === 0) {
      resources[r] = b.resources + 1;
      b.beginResource();
      putOwner(b, from, from.spanCount + r);
      b.endResource();
    }
    b.beginSpan();
    putOwner(b, from, i);
    const at = from.traceOf[i]! * TRACE_ID_BYTES;
    for (let k = 0; k < TRACE_ID_BYTES; k++) COPY_IDS[k] = from.traceIds[at + k]!;
    for (let k = 0; k < ID_BYTES_PER_SPAN; k++) COPY_IDS[TRACE_ID_BYTES + k] = from.ids[i * ID_BYTES_PER_SPAN + k]!;
    // A root's parent is zeros, copied as they are.
    b.idsOfNext(COPY_IDS, 0, TRACE_ID_BYTES + SPAN_ID_AT, TRACE_ID_BYTES + PARENT_ID_AT);
    b.msOfNext(from.starts[i]!, from.ends[i]!);
    b.endSpanInPlace(from.names[i]!, from.kind(i), from.status(i), resources[r]! - 1);
  }
  return b.finish(0, '');
}

/** Puts every attribute of `owner` of `from` on the builder's owner, in order, with the owner's letters. */
function putOwner(b: ColumnsBuilder, from: SpanColumns, owner: number): void {
  const letters = from.lettersOf(owner);
  const end = from.attrStart[owner + 1]!;
  for (let j = from.attrStart[owner]!; j < end; j++) b.put(from.attrKey(owner, j), from.attrValue(j), letters, Infinity);
}

/** The side table of a span's kind and status when either does not fit 8 bits (else undefined). */
function wideOf(kind: number, status: number, i: number, into?: Map<number, number>): Map<number, number> | undefined {
  if (kind === clampInt8(kind) && status === clampInt8(status)) return into;
  const wide = into ?? new Map<number, number>();
  if (kind !== clampInt8(kind)) wide.set(2 * i, kind);
  if (status !== clampInt8(status)) wide.set(2 * i + 1, status);
  return wide;
}

/**
 * Collects spans and resources into growing arrays, then hands out exactly sized columns. Span
 * attributes go to the flat list as they come; a resource's attributes are kept apart until its
 * ResourceSpans ends (they may come after its spans) and go after every span's at the end.
 */
export class ColumnsBuilder {
  private n = 0;
  private ids = new Uint8Array(ID_BYTES_PER_SPAN * 64);
  private traceOf = new Uint32Array(64);
  /** The request's distinct trace ids, TRACE_ID_BYTES each, found through traceSlots. */
  private traceIds = new Uint8Array(TRACE_ID_BYTES * 64);
  private traces = 0;
  /** Open addressing on a hash of the trace id: slot value t + 1 for trace t, 0 empty. */
  private traceSlots = new Int32Array(256);
  /** The trace of the span before: the next span's trace id is compared with it first. */
  private lastTrace = -1;
  private names: string[] = [];
  private kinds = new Int8Array(64);
  private statuses = new Int8Array(64);
  /** Kinds and statuses that did not fit 8 bits (see SpanColumns.wide). */
  private wide: Map<number, number> | undefined;
  private starts = new Float64Array(64);
  private ends = new Float64Array(64);
  private resourceOf = new Uint32Array(64);
  private spanAttrEnd = new Uint32Array(65);
  /** Per span: its shape (see SpanColumns.shapeOf). */
  private spanShape = new Uint32Array(64);
  /** The request's distinct shapes: keys from shapeKeys[shapeStart[s]], letters, masks; found through shapeSlots. */
  private shapes = 0;
  private shapeKeys = new Uint16Array(512);
  private shapeStart = new Uint32Array(65);
  private shapeLetters = new Uint32Array(64);
  private shapeMasks = new Uint32Array(64);
  /** Open addressing on a hash of the shape: slot value s + 1 for shape s, 0 empty. */
  private shapeSlots = new Int32Array(256);
  private keys = new Uint16Array(512);
  /** Per attribute: its value's index in `dict`. */
  private refs = new Uint32Array(512);
  /**
   * The request's distinct values, found through `seen`. Values repeat within a request (ports,
   * methods, services, addresses of one peer: 12% of the bench workload's attribute values in a
   * request are distinct), so a pending span holds a 16-bit reference per attribute where it held
   * a pointer of 8 bytes (bench/README.md, issue 19). Reused from request to request: only
   * [0, dictSize) is this request's.
   */
  private dict: AttrValue[] = [];
  private dictSize = 0;
  /**
   * Values seen, across requests: value -> entry e, whose seenRef is its index in `dict` when
   * seenGen[e] is this request's number. Kept from request to request (a Map emptied per request
   * grew its table again in every request: decode 1.29x before, measured with bench/ab-columns.mjs)
   * and bounded: emptied when MAX_SEEN values are in it, which loses only repeats found.
   */
  private readonly seen = new Map<AttrValue, number>();
  private readonly seenGen = new Int32Array(MAX_SEEN);
  private readonly seenRef = new Int32Array(MAX_SEEN);
  private gen = 1;
  /** Per value hint (see VALUE_HINTS): the request number and reference of the last value put with it. */
  private readonly slotGen = new Int32Array(VALUE_HINTS);
  private readonly slotRef = new Int32Array(VALUE_HINTS);
  private count = 0;
  /** Where the owner being collected starts in keys/values. */
  private ownerStart = 0;
  private letters = 0;
  /** Bit `key & 31` of every key of the span being collected: most keys put are new, and most of those skip the search. */
  private mask = 0;
  private inResource = false;
  private resKeys: number[] = [];
  private resValues: AttrValue[] = [];
  private resEnd: number[] = [];
  private resLetters: number[] = [];
  private resLettersNow = 0;
  private resStart = 0;

  /** Empties the builder, keeping its arrays (a scanner reuses one builder for every request). */
  reset(): void {
    this.n = 0;
    if (this.traces > 0) this.traceSlots.fill(0);
    this.traces = 0;
    this.lastTrace = -1;
    if (this.shapes > 0) this.shapeSlots.fill(0);
    this.shapes = 0;
    this.wide = undefined;
    this.gen = (this.gen + 1) | 0;
    this.dictSize = 0;
    this.count = 0;
    this.ownerStart = 0;
    this.letters = 0;
    this.inResource = false;
    this.resKeys = [];
    this.resValues = [];
    this.resEnd = [];
    this.resLetters = [];
  }

  /** Number of resources begun. */
  get resources(): number {
    return this.resEnd.length + (this.inResource ? 1 : 0);
  }

  beginResource(): void {
    this.inResource = true;
    this.resStart = this.resKeys.length;
    this.resLettersNow = 0;
  }

  endResource(): void {
    this.inResource = false;
    this.resEnd.push(this.resKeys.length);
    this.resLetters.push(this.resLettersNow);
  }

  beginSpan(): void {
    this.ownerStart = this.count;
    this.letters = 0;
    this.mask = 0;
  }

  /** Number of attributes of the owner being collected. */
  ownerSize(): number {
    return this.inResource ? this.resKeys.length - this.resStart : this.count - this.ownerStart;
  }

  /** True when the owner being collected holds `key`. */
  has(key: number): boolean {
    if (this.inResource) {
      for (let j = this.resStart; j < this.resKeys.length; j++) if (this.resKeys[j] === key) return true;
      return false;
    }
    for (let j = this.ownerStart; j < this.count; j++) if (this.keys[j] === key) return true;
    return false;
  }

  /**
   * Puts an attribute on the owner being collected: a key it holds already gets the new value,
   * a new key is added while the owner holds fewer than `max`. True when the owner holds the key.
   * `hint`: the scanner's hint for the value (see VALUE_HINTS), or -1.
   */
  put(key: number, value: AttrValue, letter: number, max: number, hint = -1): boolean {
    if (this.inResource) {
      const keys = this.resKeys;
      for (let j = this.resStart; j < keys.length; j++) {
        if (keys[j] === key) {
          this.resValues[j] = value;
          return true;
        }
      }
      if (keys.length - this.resStart >= max) return false;
      keys.push(key);
      this.resValues.push(value);
      this.resLettersNow |= letter;
      return true;
    }
    const keys = this.keys;
    if ((this.mask & (1 << (key & 31))) !== 0) {
      for (let j = this.ownerStart; j < this.count; j++) {
        if (keys[j] === key) {
          this.refs[j] = this.ref(value, hint);
          return true;
        }
      }
    }
    if (this.count - this.ownerStart >= max) return false;
    this.append(key, value, hint);
    this.letters |= letter;
    return true;
  }

  /** Adds an attribute unchecked (copies). */
  append(key: number, value: AttrValue, hint = -1): void {
    if (this.inResource) {
      this.resKeys.push(key);
      this.resValues.push(value);
      return;
    }
    if (this.count === this.keys.length) {
      this.keys = grow(this.keys, this.count * 2);
      this.refs = grow(this.refs, this.count * 2);
    }
    this.keys[this.count] = key;
    this.refs[this.count] = this.ref(value, hint);
    this.count++;
    this.mask |= 1 << (key & 31);
  }

  /**
   * The index of `value` in the request's distinct values, added when new. The value last put
   * with the same `hint` in this request (the same entry of the scanner's key cache, or for other
   * values the same key) is tried first, without the Map (its lookups were 9% of decoding the bench
   * workload, most of them for such repeats).
   */
  private ref(value: AttrValue, hint: number): number {
    const hinted = hint >= 0 && hint < VALUE_HINTS;
    if (hinted && this.slotGen[hint] === this.gen) {
      const last = this.slotRef[hint]!;
      // 0 is left to the Map path, which tells -0 from it.
      if (last < this.dictSize && this.dict[last] === value && value !== 0) return last;
    }
    const r = this.refOf(value);
    if (hinted) {
      this.slotGen[hint] = this.gen;
      this.slotRef[hint] = r;
    }
    return r;
  }

  private refOf(value: AttrValue): number {
    const r = this.dictSize;
    // -0 would find 0 (a Map compares keys with SameValueZero), and long strings are seldom repeated
    // and would be held after their request: each gets an entry of its own.
    if ((value === 0 && 1 / value < 0) || (typeof value === 'string' && value.length > MAX_SEEN_LENGTH)) {
      this.dict[this.dictSize++] = value;
      return r;
    }
    let e = this.seen.get(value);
    if (e === undefined) {
      if (this.seen.size >= MAX_SEEN) this.seen.clear();
      e = this.seen.size;
      this.seen.set(value, e);
    } else if (this.seenGen[e] === this.gen) {
      // Checked against the value (not only the request number, which wraps after 2^32 requests).
      const known = this.seenRef[e]!;
      if (known < r && this.dict[known] === value) return known;
    }
    this.seenGen[e] = this.gen;
    this.seenRef[e] = r;
    this.dict[this.dictSize++] = value;
    return r;
  }

  /** Drops the attributes of the span being collected (it is rejected). */
  dropSpan(): void {
    this.count = this.ownerStart;
  }

  /**
   * Copies the next span's ids: its trace id bytes[trace, trace + 16) into the request's table of
   * trace ids (once per distinct id), bytes[span, span + 8) and bytes[parent, parent + 8)
   * (parent < 0: a root, zeros). Then timesOfNext or msOfNext, and endSpanInPlace.
   */
  idsOfNext(bytes: Uint8Array, trace: number, span: number, parent: number): void {
    if (this.n === this.kinds.length) this.growSpans(this.n * 2);
    const ids = this.ids;
    const at = this.n * ID_BYTES_PER_SPAN;
    for (let k = 0; k < 8; k++) ids[at + SPAN_ID_AT + k] = bytes[span + k]!;
    if (parent < 0) for (let k = 0; k < 8; k++) ids[at + PARENT_ID_AT + k] = 0;
    else for (let k = 0; k < 8; k++) ids[at + PARENT_ID_AT + k] = bytes[parent + k]!;
    this.traceOf[this.n] = this.traceIndex(bytes, trace);
  }

  /**
   * The index of the trace id at bytes[at, at + 16) in this request's table, added when new.
   * Hand-written (byte compare with the previous span's trace, then open addressing on a seeded
   * hash) so that no hex text is made per span: holding 16 bytes of trace id per pending span was
   * 16 of the ~90 bytes of typed arrays each pending span cost (bench/README.md, issue 19).
   */
  private traceIndex(bytes: Uint8Array, at: number): number {
    const table = this.traceIds;
    const last = this.lastTrace;
    if (last >= 0 && sameId(table, last * TRACE_ID_BYTES, bytes, at)) return last;
    const slots = this.traceSlots;
    const mask = slots.length - 1;
    for (let s = idHash16(bytes, at) & mask; ; s = (s + 1) & mask) {
      const v = slots[s]!;
      if (v === 0) {
        const t = this.traces++;
        if ((t + 1) * TRACE_ID_BYTES > table.length) this.traceIds = grow(table, table.length * 2);
        const into = this.traceIds;
        for (let k = 0; k < TRACE_ID_BYTES; k++) into[t * TRACE_ID_BYTES + k] = bytes[at + k]!;
        slots[s] = t + 1;
        // At most half full: a probe ends soon.
        if (2 * this.traces > slots.length) this.rehashTraces(slots.length * 2);
        return (this.lastTrace = t);
      }
      if (sameId(table, (v - 1) * TRACE_ID_BYTES, bytes, at)) return (this.lastTrace = v - 1);
    }
  }

  private rehashTraces(size: number): void {
    const slots = new Int32Array(size);
    const mask = size - 1;
    for (let t = 0; t < this.traces; t++) {
      let s = idHash16(this.traceIds, t * TRACE_ID_BYTES) & mask;
      while (slots[s] !== 0) s = (s + 1) & mask;
      slots[s] = t + 1;
    }
    this.traceSlots = slots;
  }

  /**
   * The next span's start and end times from the OTLP fixed64 nanoseconds at bytes[start] and
   * bytes[end] (-1: absent, 0). After idsOfNext. The scanner hands over where the times are, not
   * the times: a double returned or passed between functions V8 did not inline is a heap number,
   * two allocated per span.
   */
  timesOfNext(bytes: Uint8Array, start: number, end: number): void {
    this.starts[this.n] = start < 0 ? 0 : fixed64Ms(bytes, start);
    this.ends[this.n] = end < 0 ? 0 : fixed64Ms(bytes, end);
  }

  /** The next span's start and end times in ms. After idsOfNext. */
  msOfNext(startMs: number, endMs: number): void {
    this.starts[this.n] = startMs;
    this.ends[this.n] = endMs;
  }

  /** Ends a span whose ids were written into idsOfNext() and times into timesOfNext() or msOfNext(). */
  endSpanInPlace(name: string, kind: number, status: number, resource: number): void {
    const i = this.n;
    this.names[i] = name;
    this.kinds[i] = clampInt8(kind);
    this.statuses[i] = clampInt8(status);
    if (kind !== clampInt8(kind) || status !== clampInt8(status)) this.wide = wideOf(kind, status, i, this.wide);
    this.resourceOf[i] = resource;
    this.spanShape[i] = this.shapeIndex(this.keys, this.ownerStart, this.count, this.letters);
    this.spanAttrEnd[i + 1] = this.count;
    this.n = i + 1;
  }

  /**
   * The index of the shape of keys[from, to) with `letters` in this request's table, added when new.
   * Hand-written open addressing on a seeded hash (a Map would need a string key per owner).
   */
  private shapeIndex(keys: Uint16Array, from: number, to: number, letters: number): number {
    const len = to - from;
    const slots = this.shapeSlots;
    const mask = slots.length - 1;
    for (let slot = shapeHash(keys, from, to, letters) & mask; ; slot = (slot + 1) & mask) {
      const v = slots[slot]!;
      if (v === 0) {
        slots[slot] = this.addShape(keys, from, to, letters) + 1;
        // At most half full: a probe ends soon.
        if (2 * this.shapes > slots.length) this.rehashShapes(slots.length * 2);
        return this.shapes - 1;
      }
      const s = v - 1;
      const at = this.shapeStart[s]!;
      if (this.shapeLetters[s] !== letters || this.shapeStart[s + 1]! - at !== len) continue;
      let j = 0;
      while (j < len && this.shapeKeys[at + j] === keys[from + j]) j++;
      if (j === len) return s;
    }
  }

  private addShape(keys: Uint16Array, from: number, to: number, letters: number): number {
    const s = this.shapes++;
    if (s + 2 > this.shapeStart.length) {
      this.shapeStart = grow(this.shapeStart, this.shapeStart.length * 2);
      this.shapeLetters = grow(this.shapeLetters, this.shapeStart.length);
      this.shapeMasks = grow(this.shapeMasks, this.shapeStart.length);
    }
    const at = this.shapeStart[s]!;
    if (at + to - from > this.shapeKeys.length) this.shapeKeys = grow(this.shapeKeys, Math.max(2 * this.shapeKeys.length, at + to - from));
    let mask = 0;
    for (let j = from; j < to; j++) {
      const key = keys[j]!;
      this.shapeKeys[at + j - from] = key;
      mask |= 1 << (key & 31);
    }
    this.shapeStart[s + 1] = at + to - from;
    this.shapeLetters[s] = letters;
    this.shapeMasks[s] = mask;
    return s;
  }

  private rehashShapes(size: number): void {
    const slots = new Int32Array(size);
    const mask = size - 1;
    for (let s = 0; s < this.shapes; s++) {
      let slot = shapeHash(this.shapeKeys, this.shapeStart[s]!, this.shapeStart[s + 1]!, this.shapeLetters[s]!) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = s + 1;
    }
    this.shapeSlots = slots;
  }

  private growSpans(size: number): void {
    this.ids = grow(this.ids, size * ID_BYTES_PER_SPAN);
    this.traceOf = grow(this.traceOf, size);
    this.kinds = grow(this.kinds, size);
    this.statuses = grow(this.statuses, size);
    this.starts = grow(this.starts, size);
    this.ends = grow(this.ends, size);
    this.resourceOf = grow(this.resourceOf, size);
    this.spanShape = grow(this.spanShape, size);
    this.spanAttrEnd = grow(this.spanAttrEnd, size + 1);
  }

  finish(rejectedSpans: number, rejectMessage: string): SpanColumns {
    const n = this.n;
    const r = this.resEnd.length;
    const count = this.count;
    const total = count + this.resKeys.length;
    // Offsets up to `total`: 16-bit when they fit.
    const attrStart = total <= 0xffff ? new Uint16Array(n + r + 1) : new Uint32Array(n + r + 1);
    attrStart.set(this.spanAttrEnd.subarray(0, n + 1));
    // The resources' attributes go after the spans' in the reused arrays, which are then copied once.
    if (total > this.refs.length) this.refs = grow(this.refs, total);
    if (total > this.keys.length) this.keys = grow(this.keys, total);
    const refsAll = this.refs;
    const keys = this.keys;
    const resShapes: number[] = [];
    let prev = 0;
    for (let k = 0; k < r; k++) {
      const end = this.resEnd[k]!;
      for (let j = prev; j < end; j++) {
        keys[count + j] = this.resKeys[j]!;
        refsAll[count + j] = this.ref(this.resValues[j]!, -1);
      }
      attrStart[n + k + 1] = count + end;
      resShapes.push(this.shapeIndex(keys, count + prev, count + end, this.resLetters[k]!));
      prev = end;
    }
    const shapes = this.shapes;
    const shapeOf = shapes <= 0x10000 ? new Uint16Array(n + r) : new Uint32Array(n + r);
    shapeOf.set(this.spanShape.subarray(0, n));
    for (let k = 0; k < r; k++) shapeOf[n + k] = resShapes[k]!;
    const shapeKeys = this.shapeStart[shapes]!;
    return new SpanColumns(
      n,
      r,
      this.ids.slice(0, n * ID_BYTES_PER_SPAN),
      this.traces <= 0x10000 ? narrow(this.traceOf, n) : this.traceOf.slice(0, n),
      this.traceIds.slice(0, this.traces * TRACE_ID_BYTES),
      this.names.slice(0, n),
      this.kinds.slice(0, n),
      this.statuses.slice(0, n),
      this.starts.slice(0, n),
      this.ends.slice(0, n),
      r <= 0x10000 ? narrow(this.resourceOf, n) : this.resourceOf.slice(0, n),
      attrStart,
      this.shapeKeys.slice(0, shapeKeys),
      // 16-bit references unless the request has more distinct values (then every read of this
      // request's columns takes the 32-bit path).
      this.dictSize <= 0x10000 ? narrow(refsAll, total) : refsAll.slice(0, total),
      this.dict.slice(0, this.dictSize),
      this.shapeLetters.slice(0, shapes),
      this.shapeMasks.slice(0, shapes),
      rejectedSpans,
      rejectMessage,
      this.wide,
      shapeOf,
      shapeKeys <= 0xffff ? narrow(this.shapeStart, shapes + 1) : this.shapeStart.slice(0, shapes + 1),
    );
  }

}

/** Values the builder remembers at most (see ColumnsBuilder.seen). */
const MAX_SEEN = 8_192;
/** Longer strings are not looked up (see ColumnsBuilder.ref). */
const MAX_SEEN_LENGTH = 256;

/** Mixed into the trace id hashes, so that a sender cannot choose ids that all collide. */
const SEED = (Math.random() * 0x7fffffff) | 0;

function idHash16(b: Uint8Array, at: number): number {
  let h = SEED;
  for (let k = at; k < at + TRACE_ID_BYTES; k += 4) h = mixWord(h ^ (b[k]! | (b[k + 1]! << 8) | (b[k + 2]! << 16) | (b[k + 3]! << 24)));
  return h;
}

/**
 * Mixes a 32-bit word so that every input bit reaches every output bit (MurmurHash3's finaliser,
 * a bijection). The id hashes mix each word with it before the next comes in: a single multiply
 * only carries bits upwards, so ids that differ in their words' top bits alone all fell into one
 * bucket of a small table whatever the seed (16,384 such span ids: one bucket of 1,024), and a
 * sender could make a trace's or a request's lookups quadratic.
 */
export function mixWord(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) | 0;
}

/** A seeded hash of a shape: keys[from, to) and its owners' letters. */
function shapeHash(keys: Uint16Array, from: number, to: number, letters: number): number {
  let h = Math.imul(SEED ^ letters, 0x9e3779b1) ^ (to - from);
  for (let j = from; j < to; j++) {
    h = Math.imul(h ^ keys[j]!, 0x85ebca77);
    h ^= h >>> 13;
  }
  return h ^ (h >>> 16);
}

function sameId(a: Uint8Array, x: number, b: Uint8Array, y: number): boolean {
  for (let k = 0; k < TRACE_ID_BYTES; k++) if (a[x + k] !== b[y + k]) return false;
  return true;
}

/** The first n values of `column`, each below 2^16, as 16-bit. */
function narrow(column: Uint32Array, n: number): Uint16Array {
  const out = new Uint16Array(n);
  out.set(column.subarray(0, n));
  return out;
}

/** References 0 .. n - 1: each attribute its own value. */
export function identityRefs(n: number): IndexColumn {
  const refs = n <= 0x10000 ? new Uint16Array(n) : new Uint32Array(n);
  for (let j = 0; j < n; j++) refs[j] = j;
  return refs;
}

type Growable = Uint8Array | Int8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;
function grow<T extends Growable>(a: T, size: number): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(size, 16));
  b.set(a as never);
  return b;
}

// ---- from decoded objects ---------------------------------------------------------------------

/**
 * The columns of a request decoded into objects (OTLP/JSON, audit records, a request handed over
 * decoded), with `keep` applied as the decoders apply it: only kept keys, and of the keys outside
 * them with a presence prefix only the first one, unless a kept key with such a prefix came first.
 */
export function columnsFromData(data: TracesRequestData, keep: AttributeKeep): SpanColumns {
  const filter = keyFilterOf(keep)!;
  const b = new ColumnsBuilder();
  const ids = new Uint8Array(32);
  for (let r = 0; r < data.resourceSpans.length; r++) {
    const rs = data.resourceSpans[r]!;
    b.beginResource();
    putAll(b, rs.resource, filter);
    b.endResource();
    for (const span of rs.spans) {
      b.beginSpan();
      putAll(b, span.attributes, filter);
      idBytes(span, ids);
      b.idsOfNext(ids, 0, 16, span.parentSpanId === '' ? -1 : 24);
      b.msOfNext(span.startMs, span.endMs);
      b.endSpanInPlace(span.name, span.kind, span.statusCode, r);
    }
  }
  return b.finish(data.rejectedSpans, data.rejectMessage);
}

function putAll(b: ColumnsBuilder, attrs: Attributes, filter: KeyFilter): void {
  let present = false;
  for (const key in attrs) {
    const found = filter.lookup(key);
    const decision = found & 3;
    if (decision === KeyDecision.DROP || (decision === KeyDecision.PRESENCE && present)) continue;
    const kept = b.put(found >>> 2, attrs[key]!, decision === KeyDecision.KEEP ? letterOf(key) : letterOf(key) | PREFIXED, Infinity);
    if (decision !== KeyDecision.KEEP && kept) present = true;
  }
}

function idBytes(span: SpanData, into: Uint8Array): void {
  hexInto(span.traceId, into, 0, 16);
  hexInto(span.spanId, into, 16, 8);
  if (span.parentSpanId === '') into.fill(0, 24, 32);
  else hexInto(span.parentSpanId, into, 24, 8);
}

export function hexInto(hex: string, into: Uint8Array, at: number, bytes: number): void {
  if (hex.length !== bytes * 2) throw new DecodeError(`id ${JSON.stringify(hex.slice(0, 40))} is not ${bytes} bytes of hex`);
  for (let k = 0; k < bytes; k++) {
    const v = parseInt(hex.substr(2 * k, 2), 16);
    if (Number.isNaN(v)) throw new DecodeError(`id ${JSON.stringify(hex.slice(0, 40))} is not hex`);
    into[at + k] = v;
  }
}
