/**
 * The per-key decisions of an {@link AttributeKeep}, shared by both decoders. A decision is looked
 * up in one Map per attribute key (the keys come from the scanner's string table, so the same
 * string object and its cached hash are seen again and again).
 */
import { Buffer } from 'node:buffer';
import type { AttributeKeep } from './model.js';
import { attributeKeyId, letterOf, PREFIXED, PRESENCE_KEY_ID } from './key-ids.js';
import { hashWords, pack, sameWords, utf8 } from './string-table.js';

/** What a decoder does with one attribute. */
export const KeyDecision = {
  /** Left out: its value is not decoded. */
  DROP: 0,
  /** Kept with its value. */
  KEEP: 1,
  /** Kept with its value; it also tells that a key with a presence prefix is there. */
  KEEP_PREFIXED: 2,
  /** Outside the kept keys but with a presence prefix: kept only when nothing marks presence yet. */
  PRESENCE: 3,
} as const;
export type KeyDecision = (typeof KeyDecision)[keyof typeof KeyDecision];

/** Decisions remembered per filter at most: keys are attacker-controlled, so the cache is bounded. */
export const MAX_REMEMBERED_KEYS = 4_096;

export class KeyFilter {
  /** Per key: its decision in the low 2 bits, its key id (key-ids.ts) above them. */
  private readonly decisions = new Map<string, number>();
  private readonly prefixes: readonly string[];
  private byteCache: KeyBytes | undefined;

  constructor(private readonly keep: AttributeKeep) {
    this.prefixes = keep.presencePrefixes ?? [];
    for (const key of keep.keys) this.decisions.set(key, this.compute(key));
  }

  decide(key: string): KeyDecision {
    return (this.lookup(key) & 3) as KeyDecision;
  }

  /**
   * The decision for `key` (low 2 bits) and, above them, the id a kept key is stored under:
   * its own for a key of `keys`, PRESENCE_KEY_ID for one kept for its prefix, 0 when dropped.
   */
  lookup(key: string): number {
    const known = this.decisions.get(key);
    if (known !== undefined) return known;
    const found = this.compute(key);
    if (this.decisions.size < MAX_REMEMBERED_KEYS) this.decisions.set(key, found);
    return found;
  }

  /** This filter's decisions looked up from bytes (made on first use). */
  get bytes(): KeyBytes {
    return (this.byteCache ??= new KeyBytes(this));
  }

  private compute(key: string): number {
    let prefixed = false;
    for (const p of this.prefixes) {
      if (key.startsWith(p)) {
        prefixed = true;
        break;
      }
    }
    if (this.keep.keys.has(key)) return (attributeKeyId(key) << 2) | (prefixed ? KeyDecision.KEEP_PREFIXED : KeyDecision.KEEP);
    return prefixed ? (PRESENCE_KEY_ID << 2) | KeyDecision.PRESENCE : KeyDecision.DROP;
  }
}

const filters = new WeakMap<AttributeKeep, KeyFilter>();

/** The filter of `keep`, made on first use and then reused; undefined keeps every attribute. */
export function keyFilterOf(keep: AttributeKeep | undefined): KeyFilter | undefined {
  if (keep === undefined) return undefined;
  let filter = filters.get(keep);
  if (filter === undefined) filters.set(keep, (filter = new KeyFilter(keep)));
  return filter;
}

// ---- keys read straight from request bytes ------------------------------------------------------

/** Longest key (in bytes) the byte cache holds; longer keys take the string route. */
const MAX_KEY_BYTES = 64;
/** Longest value (in bytes) remembered per key. */
const MAX_REMEMBERED_VALUE_BYTES = 256;
const KEY_SLOTS_LOG2 = 10;
export const KEY_SLOTS = 1 << KEY_SLOTS_LOG2;
/** 32-bit words per slot of a key's bytes, and of a remembered value's. */
const KEY_WORDS = MAX_KEY_BYTES / 4;
const VALUE_WORDS = MAX_REMEMBERED_VALUE_BYTES / 4;
/** The slot before an owner's first key (its `next` is the usual first key). */
export const FIRST_KEY = KEY_SLOTS;
/** The slot of a key the cache does not hold (its value is not remembered). */
export const UNCACHED_KEY = KEY_SLOTS + 1;
/** Values remembered per key (a power of two). */
const VALUE_WAYS = 4;
/**
 * Value entries: key slot s remembers values in entries s * VALUE_WAYS .. + VALUE_WAYS - 1 (see
 * KeyBytes.findValue); entries are numbered below VALUE_ENTRIES.
 */
export const VALUE_ENTRIES = KEY_SLOTS * VALUE_WAYS;
/**
 * Hints the scanner gives the columns builder with a value (ColumnsBuilder.put): a value entry for
 * a string found in or written to the key cache, VALUE_ENTRIES + the key's slot for any other value
 * of a cached key, -1 for none; all below VALUE_HINTS.
 */
export const VALUE_HINTS = VALUE_ENTRIES + KEY_SLOTS;

/** Per key slot, one record of META_STRIDE 32-bit fields (16: one cache line) in KeyBytes.meta. */
const META_STRIDE = 16;
/** The key's length in bytes (-1: empty slot). */
const M_LEN = 0;
/** Its decision and id (KeyFilter.lookup). */
const M_FOUND = 1;
/** Its letter (letterOf, with PREFIXED for a presence-prefixed key). */
const M_LETTER = 2;
/** The slot of the key that followed it last, and of the other one before that. */
const M_NEXT = 3;
const M_NEXT2 = 4;
/** The way of its value entries found or written last (tried first). */
const M_LAST_WAY = 5;
/** The byte lengths of its remembered values, one per way (-1: none). */
const M_VALUE_LEN = 8;

/**
 * A filter's decisions looked up from a key's bytes, for the columnar scanner: on a hit no key
 * string is made or hashed and no Map is asked. Hand-written because decoding and hashing each
 * key, then its Map lookup, was a fifth of the decode CPU (proto/bench profile, 2026-12-06).
 *
 * Keys come in the same order span after span (every SDK writes a span kind's attributes in one
 * order), so each slot remembers the slots of the last two distinct keys that followed it: the
 * next key is compared with those first, without hashing. Two, not one: spans of a few kinds
 * interleave, and after the same key (or at an owner's start) come different keys; in the bench
 * workload the last successor is the next key for 65% of keys, one of the last two for 95%
 * (issue 19, second pass). A key found neither way is hashed four bytes at a time.
 *
 * Each key also remembers its last four distinct values (values such as methods, routes, ports'
 * hosts and service names repeat under their key), which the scanner compares before hashing a
 * value into the shared value table. Four, not one: in the bench workload 37-41% of string values
 * are their key's last one and 73-75% one of its last four (82-88% of the last eight), because
 * spans of a few kinds interleave; the value entry found also lets the columns builder find the
 * value's reference in the request without its Map.
 *
 * Only ASCII keys are cached (one byte per character). Each cached key and remembered value is
 * also kept as little-endian 32-bit words, compared with the request's bytes four at a time
 * through a DataView (sameWords): comparing character by character was a third of the decode CPU
 * (KeyBytes.lookup 18.5% and the scanner's keyedString 16.6% self, proto profile 2026-12-06 night);
 * in isolation the word compare takes 0.2-0.35 of the time for the bench workload's keys. What a
 * lookup reads of a slot (lengths of the key and its values, decision, letter, successors) is one
 * record of 16 words, so that a key found costs one cache line besides its words, where separate
 * arrays and the strings' own lengths cost one each (issue 19, second pass).
 * Bounded: a key replaces whatever shared its slot.
 */
export class KeyBytes {
  /** Per slot, a record of META_STRIDE fields (M_LEN ...); FIRST_KEY's and UNCACHED_KEY's hold only successors. */
  private readonly meta = newMeta();
  private readonly keyWords = new Int32Array((KEY_SLOTS + 2) * KEY_WORDS);
  private readonly valueWords = new Int32Array(VALUE_ENTRIES * VALUE_WORDS);
  /** Per value entry (see VALUE_ENTRIES): a value read under its key, when short and ASCII. */
  readonly values: (string | undefined)[] = new Array<string | undefined>(VALUE_ENTRIES).fill(undefined);
  /** Set by lookup: the key's letter (letterOf, with PREFIXED for a presence-prefixed key) and its slot. */
  letter = 0;
  slot = UNCACHED_KEY;

  constructor(private readonly filter: KeyFilter) {}

  /**
   * The decision and id (as KeyFilter.lookup) of the key in bytes[start, end), at most `limit`
   * bytes long (a longer key is cut and must take the string route); `prev` is the slot of the
   * key before it in the same owner, or FIRST_KEY; `view` is a DataView of exactly `bytes`.
   */
  lookup(bytes: Uint8Array, view: DataView, start: number, end: number, prev: number): number {
    const len = end - start;
    const meta = this.meta;
    const words = this.keyWords;
    const at = prev * META_STRIDE;
    let slot = meta[at + M_NEXT]!;
    if (meta[slot * META_STRIDE + M_LEN] === len && sameWords(words, slot * KEY_WORDS, view, bytes, start, len)) return this.hit(slot);
    const other = meta[at + M_NEXT2]!;
    if (meta[other * META_STRIDE + M_LEN] === len && sameWords(words, other * KEY_WORDS, view, bytes, start, len)) {
      // The most recent successor first.
      meta[at + M_NEXT2] = slot;
      meta[at + M_NEXT] = other;
      return this.hit(other);
    }
    if (len > MAX_KEY_BYTES) return this.uncached(bytes, start, end);
    slot = hashWords(view, bytes, start, end) & (KEY_SLOTS - 1);
    const m = slot * META_STRIDE;
    if (meta[m + M_LEN] !== len || !sameWords(words, slot * KEY_WORDS, view, bytes, start, len)) {
      const key = utf8Text(bytes, start, end);
      if (key.length !== len) return this.uncached(bytes, start, end, key);
      pack(words, slot * KEY_WORDS, view, bytes, start, len);
      const found = this.filter.lookup(key);
      meta[m + M_LEN] = len;
      meta[m + M_FOUND] = found;
      meta[m + M_LETTER] = letterOf(key) | ((found & 3) >= KeyDecision.KEEP_PREFIXED ? PREFIXED : 0);
      meta.fill(-1, m + M_VALUE_LEN, m + M_VALUE_LEN + VALUE_WAYS);
      this.values.fill(undefined, slot * VALUE_WAYS, (slot + 1) * VALUE_WAYS);
    }
    if (meta[at + M_NEXT] !== slot) {
      meta[at + M_NEXT2] = meta[at + M_NEXT]!;
      meta[at + M_NEXT] = slot;
    }
    return this.hit(slot);
  }

  private hit(slot: number): number {
    const m = slot * META_STRIDE;
    this.slot = slot;
    this.letter = this.meta[m + M_LETTER]!;
    return this.meta[m + M_FOUND]!;
  }

  /**
   * The value entry (values[entry]) remembered under the key of `slot` whose bytes are
   * bytes[start, start + len), or -1 (see lookup for `view`).
   */
  findValue(slot: number, view: DataView, bytes: Uint8Array, start: number, len: number): number {
    if (slot >= KEY_SLOTS) return -1;
    const meta = this.meta;
    const m = slot * META_STRIDE;
    const base = slot * VALUE_WAYS;
    const first = meta[m + M_LAST_WAY]!;
    for (let k = 0; k < VALUE_WAYS; k++) {
      const way = (first + k) & (VALUE_WAYS - 1);
      if (meta[m + M_VALUE_LEN + way] === len && sameWords(this.valueWords, (base + way) * VALUE_WORDS, view, bytes, start, len)) {
        meta[m + M_LAST_WAY] = way;
        return base + way;
      }
    }
    return -1;
  }

  /**
   * Remembers `value`, just read under the key of `slot` from bytes[start, start + len), in place of
   * the entry after the one used last (see lookup for `view`). Its entry, or -1 when not remembered
   * (not ASCII, too long, or a key the cache does not hold).
   */
  remember(slot: number, value: string, view: DataView, bytes: Uint8Array, start: number, len: number): number {
    if (slot >= KEY_SLOTS || value.length !== len || len > MAX_REMEMBERED_VALUE_BYTES) return -1;
    const m = slot * META_STRIDE;
    const way = (this.meta[m + M_LAST_WAY]! + 1) & (VALUE_WAYS - 1);
    const entry = slot * VALUE_WAYS + way;
    this.values[entry] = value;
    pack(this.valueWords, entry * VALUE_WORDS, view, bytes, start, len);
    this.meta[m + M_VALUE_LEN + way] = len;
    this.meta[m + M_LAST_WAY] = way;
    return entry;
  }

  private uncached(bytes: Uint8Array, start: number, end: number, key = utf8Text(bytes, start, end)): number {
    const found = this.filter.lookup(key);
    this.slot = UNCACHED_KEY;
    this.letter = letterOf(key) | ((found & 3) >= KeyDecision.KEEP_PREFIXED ? PREFIXED : 0);
    return found;
  }
}

/** Every slot empty (no key, no values), no successors known. */
function newMeta(): Int32Array {
  const meta = new Int32Array((KEY_SLOTS + 2) * META_STRIDE);
  for (let s = 0; s < KEY_SLOTS + 2; s++) {
    const m = s * META_STRIDE;
    meta[m + M_LEN] = -1;
    meta[m + M_NEXT] = UNCACHED_KEY;
    meta[m + M_NEXT2] = UNCACHED_KEY;
    meta.fill(-1, m + M_VALUE_LEN, m + M_VALUE_LEN + VALUE_WAYS);
  }
  return meta;
}

function utf8Text(bytes: Uint8Array, start: number, end: number): string {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return utf8(buf, start, end);
}
