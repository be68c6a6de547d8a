import { clampInt8, ColumnAttrs, hexInto, ID_BYTES_PER_SPAN, identityRefs, knownAttributeKeyId, ObjectAttrs, PARENT_ID_AT, SPAN_ID_AT, SpanColumns, type AttrReader, type AttrValue } from '@conduct/proto';
import type { TraceSpan } from '../identity/index.js';

/**
 * The spans of one trace as they wait in the stitcher and reach derivation: each span as its
 * request's columns followed by its index in them (two array slots per span, no object).
 */
export type SpanItems = (SpanColumns | number)[];

/** Traces up to this many spans find ids by scanning; larger ones through a hash index. */
const SCAN_MAX = 16;
/** Stands in the reused arrays for columns released. */
const NO_COLUMNS = placeholder();
const NO_RESOURCE = NO_COLUMNS.resourceAttrs(0);
/** Mixed into the id hashes, so that a sender cannot choose ids that all collide. */
const SEED = (Math.random() * 0x7fffffff) | 0;

/**
 * Span ids of one trace, compared as bytes: a span's index in the order added, its first span of
 * each id kept. Hand-written instead of a Map keyed by hex text because making that text for every
 * span (and its parent) was most of what completing a trace cost, and most ids are never kept.
 */
export class SpanIndex {
  n = 0;
  cols: SpanColumns[] = [];
  at: number[] = [];
  /**
   * Open addressing on the id hash (hashed traces only): slot value k + 1 for span k, 0 empty.
   * Hand-written: a Map here was 6.5% of deriving 40-span traces (2026-12-06).
   */
  private slots = new Int32Array(64);
  private mask = 0;

  /** Empties the index for a trace of at most `spans` spans. */
  reset(spans: number): void {
    this.n = 0;
    if (spans <= SCAN_MAX) {
      this.mask = 0;
      return;
    }
    let size = 64;
    while (size < 2 * spans) size *= 2;
    if (this.slots.length < size) this.slots = new Int32Array(size);
    else this.slots.fill(0, 0, size);
    this.mask = size - 1;
  }

  /** The index of the span whose span id is the id at `field` of span i of `c`, else -1. */
  find(c: SpanColumns, i: number, field: number): number {
    if (this.mask === 0) {
      for (let k = 0; k < this.n; k++) if (c.idIs(i, field, this.cols[k]!, this.at[k]!)) return k;
      return -1;
    }
    const slots = this.slots;
    for (let s = c.idHash(i, field, SEED) & this.mask; slots[s] !== 0; s = (s + 1) & this.mask) {
      const k = slots[s]! - 1;
      if (c.idIs(i, field, this.cols[k]!, this.at[k]!)) return k;
    }
    return -1;
  }

  /** Adds span i of `c` unless a span of its id is there; true when added. */
  add(c: SpanColumns, i: number): boolean {
    if (this.mask === 0) {
      if (this.find(c, i, SPAN_ID_AT) >= 0) return false;
    } else {
      // Probe once: the empty slot the search ends on is where the span goes.
      const slots = this.slots;
      let s = c.idHash(i, SPAN_ID_AT, SEED) & this.mask;
      for (; slots[s] !== 0; s = (s + 1) & this.mask) {
        const k = slots[s]! - 1;
        if (c.idIs(i, SPAN_ID_AT, this.cols[k]!, this.at[k]!)) return false;
      }
      slots[s] = this.n + 1;
    }
    const k = this.n++;
    this.cols[k] = c;
    this.at[k] = i;
    return true;
  }

  /**
   * Drops the references to columns (so that an index kept for reuse holds no request); keeps the
   * arrays' storage (emptying them by length cost 2.6% of the pipeline thread: storage freed and
   * grown again for every trace).
   */
  release(): void {
    const cols = this.cols;
    for (let k = 0; k < this.n; k++) cols[k] = NO_COLUMNS;
    this.n = 0;
  }
}

/**
 * Keeps the first span of each span id in `items` (in place); returns the number dropped. A span
 * id seen twice in a trace is the same span sent again.
 */
export function dropDuplicateSpans(items: SpanItems, index: SpanIndex): number {
  const total = items.length >> 1;
  if (total < 2) return 0;
  index.reset(total);
  let out = 0;
  for (let k = 0; k < items.length; k += 2) {
    const c = items[k] as SpanColumns;
    const i = items[k + 1] as number;
    if (!index.add(c, i)) continue;
    items[out++] = c;
    items[out++] = i;
  }
  index.release();
  items.length = out;
  return total - (out >> 1);
}

/**
 * One trace loaded for derivation: its spans (first of each id) by index, each span's parent as an
 * index (-1: a root, or a parent not in the trace), and per-span state the derivation fills in.
 * Reused from trace to trace; everything a call keeps is copied out of it.
 */
export class TraceTable extends SpanIndex {
  /** The trace id of every span; '' when they may differ (see traceIdOf). */
  traceId = '';
  parent: number[] = [];
  /** Each span's resource reader (one per resource of a request). */
  resource: ColumnAttrs[] = [];
  /** Filled by the caller: the caller service of each span. */
  service: string[] = [];
  /** Reader moved from span to span by `attrs` (it holds the last span's columns until moved). */
  private cursor: ColumnAttrs | undefined;

  /** Loads `items`; `traceId` when every span carries it (a stitched trace). */
  load(traceId: string, items: SpanItems): this {
    this.traceId = traceId;
    this.reset(items.length >> 1);
    for (let k = 0; k < items.length; k += 2) this.add(items[k] as SpanColumns, items[k + 1] as number);
    const n = this.n;
    for (let k = 0; k < n; k++) {
      const c = this.cols[k]!;
      const i = this.at[k]!;
      this.parent[k] = c.isRoot(i) ? -1 : this.find(c, i, PARENT_ID_AT);
      this.resource[k] = c.resourceAttrs(c.resourceOf[i]!);
    }
    return this;
  }

  /** Drops every reference to the trace's columns. */
  unload(): void {
    const resource = this.resource;
    for (let k = 0; k < this.n; k++) resource[k] = NO_RESOURCE;
    this.release();
  }

  /** True when span k names a parent (in the trace or not). */
  hasParent(k: number): boolean {
    return !this.cols[k]!.isRoot(this.at[k]!);
  }

  traceIdOf(k: number): string {
    return this.traceId || this.cols[k]!.traceId(this.at[k]!);
  }

  spanIdOf(k: number): string {
    return this.cols[k]!.spanId(this.at[k]!);
  }

  parentSpanIdOf(k: number): string {
    return this.cols[k]!.parentSpanId(this.at[k]!);
  }

  /** The attributes of span k, through one reader moved here: read them before the next call. */
  attrs(k: number): ColumnAttrs {
    const c = this.cols[k]!;
    const i = this.at[k]!;
    return this.cursor ? this.cursor.moveTo(c, i) : (this.cursor = new ColumnAttrs(c, i));
  }
}

/**
 * Spans handed over as objects (tests, and callers of the object API) in columns of their own,
 * read as the decoders' columns are: the same fields, ids as bytes, each attribute whose key has
 * an id (a key without one is read by nobody) and the reader's letters. The trace id is '' unless
 * every span has the same.
 */
export function itemsOfSpans(spans: readonly TraceSpan[]): { traceId: string; items: SpanItems } {
  const n = spans.length;
  const resources: AttrReader[] = [];
  const resourceOf = new Uint32Array(n);
  const ids = new Uint8Array(n * ID_BYTES_PER_SPAN);
  const traceOf = new Uint32Array(n);
  const traceIds = new Uint8Array(n * 16);
  const traceIndex = new Map<string, number>();
  const names: string[] = [];
  const kinds = new Int8Array(n);
  const statuses = new Int8Array(n);
  let wide: Map<number, number> | undefined;
  const starts = new Float64Array(n);
  const ends = new Float64Array(n);
  let traceId = n > 0 ? spans[0]!.span.traceId : '';
  for (let i = 0; i < n; i++) {
    const { span, resource } = spans[i]!;
    let r = resources.indexOf(resource);
    if (r < 0) r = resources.push(resource) - 1;
    resourceOf[i] = r;
    if (span.traceId !== traceId) traceId = '';
    let t = traceIndex.get(span.traceId);
    if (t === undefined) {
      traceIndex.set(span.traceId, (t = traceIndex.size));
      hexInto(span.traceId, traceIds, t * 16, 16);
    }
    traceOf[i] = t;
    hexInto(span.spanId, ids, i * ID_BYTES_PER_SPAN + SPAN_ID_AT, 8);
    if (span.parentSpanId !== '') hexInto(span.parentSpanId, ids, i * ID_BYTES_PER_SPAN + PARENT_ID_AT, 8);
    names.push(span.name);
    kinds[i] = clampInt8(span.kind);
    statuses[i] = clampInt8(span.statusCode);
    if (kinds[i] !== span.kind) (wide ??= new Map()).set(2 * i, span.kind);
    if (statuses[i] !== span.statusCode) (wide ??= new Map()).set(2 * i + 1, span.statusCode);
    starts[i] = span.startMs;
    ends[i] = span.endMs;
  }
  const owners = [...spans.map((s) => s.span.attributes), ...resources];
  const attrStart = new Uint32Array(owners.length + 1);
  const keys: number[] = [];
  const values: AttrValue[] = [];
  const letters = new Uint32Array(owners.length);
  const masks = new Uint32Array(owners.length);
  owners.forEach((reader, o) => {
    copyAttrs(reader, keys, values);
    attrStart[o + 1] = keys.length;
    letters[o] = reader.letters;
    for (let j = attrStart[o]!; j < keys.length; j++) masks[o] |= 1 << (keys[j]! & 31);
  });
  const cols = new SpanColumns(n, resources.length, ids, traceOf, traceIds.slice(0, traceIndex.size * 16), names, kinds, statuses, starts, ends, resourceOf, attrStart, Uint16Array.from(keys), identityRefs(keys.length), values, letters, masks, 0, '', wide);
  const items: SpanItems = [];
  for (let i = 0; i < n; i++) items.push(cols, i);
  return { traceId, items };
}

function copyAttrs(reader: AttrReader, keys: number[], values: AttrValue[]): void {
  if (reader instanceof ColumnAttrs) {
    const { cols, owner } = reader;
    for (let j = cols.attrStart[owner]!; j < cols.attrStart[owner + 1]!; j++) {
      keys.push(cols.attrKey(owner, j));
      values.push(cols.attrValue(j));
    }
  } else if (reader instanceof ObjectAttrs) {
    for (const key in reader.record) {
      const id = knownAttributeKeyId(key);
      if (id === undefined) continue;
      keys.push(id);
      values.push(reader.record[key]!);
    }
  } else {
    throw new TypeError('attributes must be read through ColumnAttrs or ObjectAttrs');
  }
}

/** Columns of one empty span and resource. */
function placeholder(): SpanColumns {
  const u32 = (...xs: number[]) => Uint32Array.from(xs);
  return new SpanColumns(1, 1, new Uint8Array(ID_BYTES_PER_SPAN), u32(0), new Uint8Array(16), [''], new Int8Array(1), new Int8Array(1), new Float64Array(1), new Float64Array(1), u32(0), u32(0, 0, 0), new Uint16Array(0), new Uint16Array(0), [], u32(0, 0), u32(0, 0));
}
