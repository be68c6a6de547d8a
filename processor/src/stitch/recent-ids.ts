/**
 * Ids seen lately, each given as a 32-bit hash of it (well mixed: every bit of the hash depends on
 * the whole id), answering "not seen within the window" (certain) or "maybe". Two users:
 *
 * - the stitcher's memory of completed traces beyond its exact one (stitcher.ts): a new span of a
 *   trace it completed within `stitching.lateTraceWindow` but no longer remembers exactly is
 *   marked `late: 'maybe'`, and any other new trace is not;
 * - the engine's memory of the traces it stored (backend/src/engine/recent-traces.ts), so that a
 *   part marked `maybe` is looked up in the store only when the engine may have stored its trace.
 *
 * Blocked Bloom filters (every probe of an id in one cache line: the plain filter's eight cache
 * misses per id measured 300-400 ns an id) in generations of processing time: a generation takes
 * ids for a quarter of the window (or until it holds its capacity) and is dropped once its newest
 * id is older than the window. A false positive only costs what "maybe" costs. When the
 * generations would exceed MAX_RECENT_IDS, the oldest is dropped early and every answer is
 * "maybe" until what it held is older than the window.
 */
export interface RecentIds {
  /** Notes an id (its hash) as seen at `nowMs`; times come in order. */
  add(hash: number, nowMs: number): void;
  /** False when no id of this hash was added within the window before `nowMs`. */
  mayHold(hash: number, nowMs: number): boolean;
  /**
   * Takes ids seen before this memory was made (by an engine, from its store at start): add them
   * to the seed, then `close()` it. They become one generation, the oldest, held as if all had been
   * seen at `asOfMs`. A seed never closed adds nothing.
   */
  seed(asOfMs: number): RecentIdsSeed;
  /** Ids held in the live generations (for tests and sizing). */
  size(): number;
}

export interface RecentIdsSeed {
  add(hash: number): void;
  close(): void;
}

/** Bits per id of a full generation and probes per id: about 0.5% false positives per full generation (blocked). */
const BITS_PER_ID = 12;
const PROBES = 8;
const MIN_CAPACITY = 1 << 14;
const MAX_CAPACITY = 1 << 22;
/** Ids over all generations (12 bits each: 24 MB at most); beyond, answers are "maybe" for a window. */
export const MAX_RECENT_IDS = 1 << 24;
/** Ids a seed holds at most without more false positives (one generation's capacity). */
export const MAX_SEEDED_IDS = MAX_CAPACITY;

interface Generation {
  /** Blocks of 512 bits (a cache line): an id's probes all fall in one block. */
  bits: Int32Array;
  /** 32 minus log2 of the block count: the block is the top bits of a multiplicative hash. */
  shift: number;
  capacity: number;
  count: number;
  openedMs: number;
  lastAddMs: number;
}

export function createRecentIds(windowMs: number, maxIds = MAX_RECENT_IDS): RecentIds {
  const sliceMs = Math.max(1, windowMs / 4);
  const generations: Generation[] = [];
  let held = 0;
  /** Answers are "maybe" before this (ids were dropped before they were a window old). */
  let unsureUntilMs = -Infinity;

  const open = (capacity: number, nowMs: number): Generation => {
    const blocks = nextPowerOfTwo(Math.ceil((capacity * BITS_PER_ID) / 512));
    const g = { bits: new Int32Array(blocks << 4), shift: 32 - Math.log2(blocks), capacity, count: 0, openedMs: nowMs, lastAddMs: nowMs };
    generations.push(g);
    held += capacity;
    return g;
  };
  const dropOldest = () => {
    const g = generations.shift()!;
    held -= g.capacity;
    return g;
  };
  /** The generation that takes ids now: the newest, or a new one once it is full or its slice is over. */
  const current = (nowMs: number): Generation => {
    while (generations.length > 0 && generations[0]!.lastAddMs < nowMs - windowMs) dropOldest();
    // A seed (openedMs -Infinity) takes no more ids and says nothing of the rate.
    const last = generations.at(-1);
    if (last && last.count < last.capacity && nowMs - last.openedMs < sliceMs) return last;
    // Sized for the rate seen: twice a generation that filled before its slice was over.
    const capacity = !last || last.openedMs === -Infinity ? MIN_CAPACITY : last.count >= last.capacity ? Math.min(MAX_CAPACITY, last.capacity * 2) : clamp(nextPowerOfTwo(last.count + (last.count >>> 1)), MIN_CAPACITY, MAX_CAPACITY);
    while (generations.length > 0 && held + capacity > maxIds) unsureUntilMs = Math.max(unsureUntilMs, dropOldest().lastAddMs + windowMs);
    return open(capacity, nowMs);
  };

  return {
    add(hash, nowMs) {
      const g = current(nowMs);
      g.count++;
      // A clock set back does not make the generation older than what it holds.
      if (nowMs > g.lastAddMs) g.lastAddMs = nowMs;
      setBits(g, hash);
    },
    mayHold(h, nowMs) {
      if (nowMs < unsureUntilMs) return true;
      const since = nowMs - windowMs;
      const h2 = fmix(h ^ 0x85ebca6b);
      const step = fmix(h ^ 0xc2b2ae35) | 1;
      for (let n = generations.length - 1; n >= 0; n--) {
        const g = generations[n]!;
        if (g.lastAddMs < since) continue;
        const block = (Math.imul(h, 0x9e3779b1) >>> g.shift) << 4;
        let all = true;
        for (let i = 0; i < PROBES && all; i++) {
          const bit = (h2 + Math.imul(i, step)) & 511;
          all = (g.bits[block + (bit >>> 5)]! & (1 << (bit & 31))) !== 0;
        }
        if (all) return true;
      }
      return false;
    },
    seed(asOfMs) {
      // The ids' hashes until their number is known (a generation's size is fixed when it opens).
      let hashes = new Int32Array(1024);
      let count = 0;
      return {
        add(hash) {
          if (count === hashes.length) {
            const more = new Int32Array(hashes.length * 2);
            more.set(hashes);
            hashes = more;
          }
          hashes[count++] = hash;
        },
        close() {
          if (count === 0) return;
          const capacity = clamp(nextPowerOfTwo(count), MIN_CAPACITY, MAX_CAPACITY);
          const g = open(capacity, asOfMs);
          // The oldest generation: the first to be dropped.
          generations.pop();
          generations.unshift(g);
          g.count = count;
          // Closed: ids stored from now on go to generations of their own.
          g.openedMs = -Infinity;
          for (let i = 0; i < count; i++) setBits(g, hashes[i]!);
          hashes = new Int32Array(0);
          count = 0;
        },
      };
    },
    size: () => generations.reduce((n, g) => n + g.count, 0),
  };
}

/** Sets an id's probe bits (`h`: its hash) in the generation. */
function setBits(g: Generation, h: number): void {
  const block = (Math.imul(h, 0x9e3779b1) >>> g.shift) << 4;
  const h2 = fmix(h ^ 0x85ebca6b);
  const step = fmix(h ^ 0xc2b2ae35) | 1;
  for (let i = 0; i < PROBES; i++) {
    const bit = (h2 + Math.imul(i, step)) & 511;
    g.bits[block + (bit >>> 5)]! |= 1 << (bit & 31);
  }
}

/** A 32-bit finaliser: every bit of the result depends on every bit of `h`. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}
