import type { SpanColumns } from '@conduct/proto';
import type { SpanItems } from '../calls/trace-table.js';
import { findId, ID_BYTES } from './id-bytes.js';

/**
 * The pending spans of one request, linked trace by trace: the span after span i in its trace is
 * span next[i] of nextOf[i] (another request's links, or these). 12 bytes per held span, where
 * an array of (columns, index) pairs per trace cost 16 bytes per span plus the slack of a growing
 * array (a 4-span trace's array held 19 slots) and an array object per trace.
 */
export class Links {
  readonly next: Int32Array;
  readonly nextOf: (Links | undefined)[];

  constructor(readonly cols: SpanColumns) {
    this.next = new Int32Array(cols.spanCount);
    this.nextOf = new Array<Links | undefined>(cols.spanCount).fill(undefined);
  }
}

export const NO_LINKS = new Links({ spanCount: 0 } as SpanColumns);

/** Slots a table starts with (and goes back to when emptied). */
const INITIAL_SLOTS = 1_024;

/**
 * The state of every pending trace, as columns indexed by the trace's slot: no object per trace.
 * An object per trace with three doubles (last arrival, newest end, heap key) was four objects per
 * trace (the doubles boxed as heap numbers) that lived as long as the trace, for V8's marking to
 * visit, and the trace id's hex text and a Map entry kept it. Here the numbers and the id's bytes
 * sit in typed arrays (outside the garbage collector's object graph), slots are found by id bytes
 * through an open-addressing index, and only the two links are references. A slot is reused once
 * its trace completed; `serial` tells one use of a slot from the next (watermark heap entries
 * carry it), and increases with the order traces were opened.
 *
 * Written by hand, as columns of one object, for the hot path of `add` (issue 19): fields of a
 * class per trace are slow to make on Node 20, and each was a long-lived object.
 */
export class TraceSlots {
  /** Its spans, from the first at (firstOf, first) to the last at (lastOf, last), linked through their requests' Links. */
  firstOf: Links[] = [];
  lastOf: Links[] = [];
  first = new Int32Array(INITIAL_SLOTS);
  last = new Int32Array(INITIAL_SLOTS);
  count = new Int32Array(INITIAL_SLOTS);
  lastArrivalMs = new Float64Array(INITIAL_SLOTS);
  maxEndMs = new Float64Array(INITIAL_SLOTS);
  /** Number of its latest arrival: its entry in the activity order is the one with this number; 0 when free. */
  touch = new Float64Array(INITIAL_SLOTS);
  /** Which use of the slot this is (1, 2, ...); 0 when free. */
  serial = new Float64Array(INITIAL_SLOTS);
  /** What is known of earlier parts of the trace (an index of LATE_PARTS), -1 when nothing. */
  late = new Int8Array(INITIAL_SLOTS);
  /** 1 once in the watermark heap (from the end of the first add that touched it). */
  queued = new Uint8Array(INITIAL_SLOTS);
  /** The trace id's bytes, 16 per slot, and their hash. */
  ids = new Uint8Array(INITIAL_SLOTS * ID_BYTES);
  hashes = new Int32Array(INITIAL_SLOTS);
  /** Open addressing on the id hash: slot + 1, 0 empty; at most half full. */
  private index = new Int32Array(2 * INITIAL_SLOTS);
  private free: number[] = [];
  /** Slots ever handed out (the rest of the arrays is unused). */
  private used = 0;
  private serials = 0;
  /** Slots in use. */
  size = 0;

  /** The slot of the pending trace whose id is at bytes[at, at + 16) (hash: idHash of it), or -1. */
  find(bytes: Uint8Array, at: number, hash: number): number {
    return findId(this.index, this.hashes, this.ids, bytes, at, hash);
  }

  /** A slot for a new pending trace (not pending now) with no spans yet. */
  open(bytes: Uint8Array, at: number, hash: number, late: number): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      if (this.used === this.first.length) this.grow(2 * this.used);
      slot = this.used++;
    }
    const ids = this.ids;
    for (let k = 0; k < ID_BYTES; k++) ids[slot * ID_BYTES + k] = bytes[at + k]!;
    this.hashes[slot] = hash;
    this.insert(slot);
    this.firstOf[slot] = NO_LINKS;
    this.lastOf[slot] = NO_LINKS;
    this.count[slot] = 0;
    this.maxEndMs[slot] = -Infinity;
    this.serial[slot] = ++this.serials;
    this.late[slot] = late;
    this.queued[slot] = 0;
    this.size++;
    return slot;
  }

  /** The spans of the trace in `slot` as (columns, index) pairs, in arrival order; unlinks them as it goes. */
  takeItems(slot: number): SpanItems {
    const count = this.count[slot]!;
    const items: SpanItems = new Array(2 * count);
    let links = this.firstOf[slot]!;
    let i = this.first[slot]!;
    for (let k = 0; k < count; k++) {
      items[2 * k] = links.cols;
      items[2 * k + 1] = i;
      const nextOf = links.nextOf[i]!;
      links.nextOf[i] = undefined;
      i = links.next[i]!;
      links = nextOf;
    }
    this.firstOf[slot] = this.lastOf[slot] = NO_LINKS;
    this.count[slot] = 0;
    return items;
  }

  /** Frees `slot` (its spans taken): heap and activity entries of it are stale from now on. */
  close(slot: number): void {
    this.remove(slot);
    this.firstOf[slot] = this.lastOf[slot] = NO_LINKS;
    this.touch[slot] = 0;
    this.serial[slot] = 0;
    this.free.push(slot);
    this.size--;
  }

  /** The slots in use, in the order their traces were opened. */
  inOpeningOrder(): number[] {
    const open: number[] = [];
    for (let slot = 0; slot < this.used; slot++) if (this.serial[slot] !== 0) open.push(slot);
    return open.sort((a, b) => this.serial[a]! - this.serial[b]!);
  }

  /** Back to the first size; only when no slot is in use. */
  reset(): void {
    const fresh = new TraceSlots();
    this.firstOf = fresh.firstOf;
    this.lastOf = fresh.lastOf;
    this.first = fresh.first;
    this.last = fresh.last;
    this.count = fresh.count;
    this.lastArrivalMs = fresh.lastArrivalMs;
    this.maxEndMs = fresh.maxEndMs;
    this.touch = fresh.touch;
    this.serial = fresh.serial;
    this.late = fresh.late;
    this.queued = fresh.queued;
    this.ids = fresh.ids;
    this.hashes = fresh.hashes;
    this.index = fresh.index;
    this.free = [];
    this.used = 0;
    this.size = 0;
  }

  private insert(slot: number): void {
    const index = this.index;
    const mask = index.length - 1;
    let s = this.hashes[slot]! & mask;
    while (index[s] !== 0) s = (s + 1) & mask;
    index[s] = slot + 1;
  }

  /** Takes `slot` out of the index, moving back the entries after it that its place would hide (linear probing). */
  private remove(slot: number): void {
    const index = this.index;
    const mask = index.length - 1;
    let hole = this.hashes[slot]! & mask;
    while (index[hole] !== slot + 1) hole = (hole + 1) & mask;
    for (let s = (hole + 1) & mask; index[s] !== 0; s = (s + 1) & mask) {
      const home = this.hashes[index[s]! - 1]! & mask;
      // The entry at s stays when its home lies cyclically in (hole, s]; else it moves into the hole.
      if (hole <= s ? hole < home && home <= s : hole < home || home <= s) continue;
      index[hole] = index[s]!;
      hole = s;
    }
    index[hole] = 0;
  }

  private grow(size: number): void {
    this.first = grown(this.first, new Int32Array(size));
    this.last = grown(this.last, new Int32Array(size));
    this.count = grown(this.count, new Int32Array(size));
    this.lastArrivalMs = grown(this.lastArrivalMs, new Float64Array(size));
    this.maxEndMs = grown(this.maxEndMs, new Float64Array(size));
    this.touch = grown(this.touch, new Float64Array(size));
    this.serial = grown(this.serial, new Float64Array(size));
    this.late = grown(this.late, new Int8Array(size));
    this.queued = grown(this.queued, new Uint8Array(size));
    this.ids = grown(this.ids, new Uint8Array(size * ID_BYTES));
    this.hashes = grown(this.hashes, new Int32Array(size));
    this.index = new Int32Array(2 * size);
    for (let slot = 0; slot < this.used; slot++) if (this.serial[slot] !== 0) this.insert(slot);
  }
}

function grown<T extends Int32Array | Float64Array | Int8Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/**
 * A binary min-heap of (key, slot, serial) entries in three typed arrays: the watermark order of
 * pending traces. An entry whose serial is no longer its slot's is stale (its trace completed)
 * and is dropped when reached. Sifted through a hole (the same moves as swapping pairs).
 */
export class WatermarkHeap {
  length = 0;
  keys = new Float64Array(INITIAL_SLOTS);
  slots = new Int32Array(INITIAL_SLOTS);
  serials = new Float64Array(INITIAL_SLOTS);

  push(key: number, slot: number, serial: number): void {
    if (this.length === this.keys.length) this.grow(2 * this.length);
    const keys = this.keys;
    const slots = this.slots;
    const serials = this.serials;
    let i = this.length++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[i] = keys[parent]!;
      slots[i] = slots[parent]!;
      serials[i] = serials[parent]!;
      i = parent;
    }
    keys[i] = key;
    slots[i] = slot;
    serials[i] = serial;
  }

  /** Removes the top entry (read it first from index 0). Not when empty. */
  removeTop(): void {
    const n = --this.length;
    if (n === 0) return;
    const keys = this.keys;
    const slots = this.slots;
    const serials = this.serials;
    const key = keys[n]!;
    const slot = slots[n]!;
    const serial = serials[n]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      let smallestKey = key;
      if (l < n && keys[l]! < smallestKey) {
        smallest = l;
        smallestKey = keys[l]!;
      }
      if (r < n && keys[r]! < smallestKey) smallest = r;
      if (smallest === i) break;
      keys[i] = keys[smallest]!;
      slots[i] = slots[smallest]!;
      serials[i] = serials[smallest]!;
      i = smallest;
    }
    keys[i] = key;
    slots[i] = slot;
    serials[i] = serial;
  }

  clear(): void {
    this.length = 0;
    if (this.keys.length > INITIAL_SLOTS) {
      this.keys = new Float64Array(INITIAL_SLOTS);
      this.slots = new Int32Array(INITIAL_SLOTS);
      this.serials = new Float64Array(INITIAL_SLOTS);
    }
  }

  private grow(size: number): void {
    this.keys = grown(this.keys, new Float64Array(size));
    this.slots = grown(this.slots, new Int32Array(size));
    this.serials = grown(this.serials, new Float64Array(size));
  }
}
