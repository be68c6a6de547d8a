/**
 * A fixed-size cache of short strings decoded from bytes. Attribute keys and many values
 * repeat in every request (semantic-convention names, service names, methods); returning the same
 * string object each time saves decoding and lets V8 reuse the string's hash when it becomes a
 * property key. Bounded: a new string replaces whatever shared its slot.
 */

import { Buffer } from 'node:buffer';

/** Node's Buffer has a direct UTF-8 slice decoder that skips toString's encoding dispatch; used when present. */
interface FastSlices {
  utf8Slice?(start: number, end: number): string;
}
const proto = Buffer.prototype as unknown as FastSlices;
const hasFastSlices = typeof proto.utf8Slice === 'function';

/** UTF-8 text of bytes[start, end); invalid sequences become U+FFFD. */
export function utf8(bytes: Buffer, start: number, end: number): string {
  return hasFastSlices ? (bytes as unknown as Required<FastSlices>).utf8Slice(start, end) : bytes.toString('utf8', start, end);
}

/** Strings longer than this (in bytes) are not cached. */
export const MAX_CACHED_BYTES = 64;

/**
 * True when bytes[start, start + len) are the `len` bytes packed at words[base ..] (see pack):
 * four at a time, then the last one to three.
 */
export function sameWords(words: Int32Array, base: number, view: DataView, bytes: Uint8Array, start: number, len: number): boolean {
  let i = 0;
  for (; i + 4 <= len; i += 4) if (view.getInt32(start + i, true) !== words[base + (i >> 2)]) return false;
  for (; i < len; i++) if (bytes[start + i] !== ((words[base + (i >> 2)]! >>> ((i & 3) << 3)) & 255)) return false;
  return true;
}

/** Packs bytes[start, start + len) into little-endian 32-bit words from words[base], the last one padded with zeros. */
export function pack(words: Int32Array, base: number, view: DataView, bytes: Uint8Array, start: number, len: number): void {
  let i = 0;
  for (; i + 4 <= len; i += 4) words[base + (i >> 2)] = view.getInt32(start + i, true);
  if (i === len) return;
  let w = 0;
  for (let k = 0; i + k < len; k++) w |= bytes[start + i + k]! << (k << 3);
  words[base + (i >> 2)] = w;
}

/**
 * A hash of every byte of bytes[start, end), four at a time (a DataView read is inlined), each
 * word mixed down; the last one to three bytes one by one. `view`: a DataView of exactly `bytes`.
 */
export function hashWords(view: DataView, bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5 ^ (end - start);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    h = Math.imul(h ^ view.getInt32(i, true), 0x9e3779b1);
    h ^= h >>> 16;
  }
  for (; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h ^ (h >>> 15);
}

/** 32-bit words per slot of a StringTable: its string's bytes (see pack). */
const SLOT_WORDS = MAX_CACHED_BYTES / 4;

export class StringTable {
  private readonly entries: (string | undefined)[];
  /**
   * Each entry's bytes as packed words, compared with the request four bytes at a time: the
   * character-by-character compare was most of this lookup's self time (8% of the columnar
   * decode, 2026-12-07).
   */
  private readonly words: Int32Array;
  private readonly mask: number;

  /** @param slotsLog2 the table has 2^slotsLog2 slots. */
  constructor(slotsLog2: number) {
    this.entries = new Array<string | undefined>(1 << slotsLog2).fill(undefined);
    this.words = new Int32Array((1 << slotsLog2) * SLOT_WORDS);
    this.mask = (1 << slotsLog2) - 1;
  }

  /**
   * The string for bytes[start, end) when it is at most MAX_CACHED_BYTES long; undefined otherwise.
   * `view`: a DataView of exactly `bytes`.
   */
  get(bytes: Buffer, view: DataView, start: number, end: number): string | undefined {
    const len = end - start;
    if (len === 0) return '';
    if (len > MAX_CACHED_BYTES) return undefined;
    // Every byte goes into the hash: values that differ in one character (addresses, versions in
    // user agents, numbered URLs) would otherwise share a slot and evict each other, and every
    // miss is one more copy of the text held by the spans that wait for their trace. Four bytes
    // at a time (a DataView read is inlined), each word mixed down: hashing byte by byte was most
    // of the scanner's value lookups (keyedString 20% self of the columnar decode, 2026-12-06).
    const slot = hashWords(view, bytes, start, end) & this.mask;
    const cached = this.entries[slot];
    if (cached !== undefined && cached.length === len && sameWords(this.words, slot * SLOT_WORDS, view, bytes, start, len)) return cached;
    const s = utf8(bytes, start, end);
    // Only ASCII text has one UTF-16 unit per byte and can match byte for byte later.
    if (s.length === len) {
      this.entries[slot] = s;
      pack(this.words, slot * SLOT_WORDS, view, bytes, start, len);
    }
    return s;
  }
}

const HEX_DIGITS = '0123456789abcdef';
const HEX_CODES = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  HEX_CODES[2 * b] = HEX_DIGITS.charCodeAt(b >> 4);
  HEX_CODES[2 * b + 1] = HEX_DIGITS.charCodeAt(b & 15);
}

/** Reused character-code buffers for the two id sizes (16 and 32 hex digits). */
const HEX_BUFFERS = new Map<number, number[]>([16, 32].map((n) => [n, new Array<number>(n).fill(0)]));

/** Node's Buffer has a direct hex slice encoder (any Uint8Array may be its `this`); used when present. */
interface HexSlice {
  hexSlice?(this: Uint8Array, start: number, end: number): string;
}
const hexSlice = (Buffer.prototype as unknown as HexSlice).hexSlice;

/** Lower-case hex of bytes[start, end), for ids (a few bytes long). */
export function hex(bytes: Uint8Array, start: number, end: number): string {
  // Node's encoder takes 0.4-0.6 of the time of the character codes applied to fromCharCode.
  if (hexSlice !== undefined) return hexSlice.call(bytes, start, end);
  const codes = HEX_BUFFERS.get((end - start) * 2) ?? new Array<number>((end - start) * 2);
  for (let i = start, j = 0; i < end; i++, j += 2) {
    const b = bytes[i];
    codes[j] = HEX_CODES[2 * b];
    codes[j + 1] = HEX_CODES[2 * b + 1];
  }
  return String.fromCharCode.apply(null, codes);
}

/** Longest id (bytes) a HexTable holds; longer ones are made each time. */
const MAX_ID_BYTES = 16;
/** 32-bit words per slot of a HexTable: its id's bytes. */
const ID_WORDS = MAX_ID_BYTES / 4;

/**
 * A fixed-size cache of the hex text of ids (trace and span ids). The spans of one trace carry the
 * same trace id, and a parent span id is another span's id: returning the same string object for
 * the same bytes keeps one copy of each in memory while spans wait for their trace to complete,
 * and lets its hash be computed once. Bounded: a new id replaces whatever shared its slot.
 *
 * Each slot keeps its id's bytes as 32-bit words and its length: an id is hashed and compared a
 * word at a time (derive asks for the trace, span and parent ids of every span; hashing byte by
 * byte and comparing the text two characters a byte were 1.7% of the pipeline thread, issue 19,
 * fourth pass).
 */
export class HexTable {
  private readonly entries: (string | undefined)[];
  private readonly words: Int32Array;
  /** Per slot: its id's length in bytes (0: empty). */
  private readonly lengths: Uint8Array;
  private readonly mask: number;

  /** @param slotsLog2 the table has 2^slotsLog2 slots. */
  constructor(slotsLog2: number) {
    this.entries = new Array<string | undefined>(1 << slotsLog2).fill(undefined);
    this.words = new Int32Array((1 << slotsLog2) * ID_WORDS);
    this.lengths = new Uint8Array(1 << slotsLog2);
    this.mask = (1 << slotsLog2) - 1;
  }

  /** Lower-case hex of bytes[start, end). */
  get(bytes: Uint8Array, start: number, end: number): string {
    const len = end - start;
    if (len > MAX_ID_BYTES || (len & 3) !== 0 || len === 0) return hex(bytes, start, end);
    // Every byte goes into the hash (ids may share long runs of bytes), each word mixed down.
    let h = 0x811c9dc5 ^ len;
    for (let i = start; i < end; i += 4) {
      h = Math.imul(h ^ word(bytes, i), 0x9e3779b1);
      h ^= h >>> 16;
    }
    const slot = (h ^ (h >>> 15)) & this.mask;
    const words = this.words;
    const base = slot * ID_WORDS;
    if (this.lengths[slot] === len) {
      let i = start;
      let w = base;
      while (i < end && words[w] === word(bytes, i)) {
        i += 4;
        w++;
      }
      if (i === end) return this.entries[slot]!;
    }
    const text = hex(bytes, start, end);
    this.entries[slot] = text;
    this.lengths[slot] = len;
    for (let i = start, w = base; i < end; i += 4, w++) words[w] = word(bytes, i);
    return text;
  }
}

/** The little-endian 32-bit word at bytes[at, at + 4). */
function word(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}
