import { findId, ID_BYTES, idHash, sameId } from './id-bytes.js';

/** Entries the log starts with. */
const INITIAL_ENTRIES = 1_024;

/**
 * Ids of recently completed traces (16 bytes each) with the processing time of their latest
 * completion, forgotten oldest first. The stitcher notes every completed trace here (to tell late
 * spans), so it is written for that rate and for its size (`stitching`'s 100,000 remembered traces
 * by default, which live long enough for V8 to mark them again and again): the entries are an
 * append-only log in typed arrays (id bytes, time, a stale mark), found through an open-addressing
 * index of log positions keyed by the id bytes. No string and no object per remembered trace: a
 * Map from hex text to entry number held a 48-byte string and a Map entry per trace, on the heap.
 *
 * An id completed again gets a new entry; the older one is marked stale and is skipped when
 * reached. Entries before `head` are forgotten; the index may still point at one (an id noted
 * again then gets a new entry) until the log is rewritten, when it runs out of room, with only its
 * live entries (an index rebuilt with them).
 */
export class CompletedIds {
  private ids = new Uint8Array(INITIAL_ENTRIES * ID_BYTES);
  private times = new Float64Array(INITIAL_ENTRIES);
  private hashes = new Int32Array(INITIAL_ENTRIES);
  /** 1: a later entry of the same id exists. */
  private stale = new Uint8Array(INITIAL_ENTRIES);
  /** Open addressing on the id hash: log position + 1, 0 empty; at most half full. */
  private index = new Int32Array(2 * INITIAL_ENTRIES);
  /** Entries written. */
  private length = 0;
  /** First entry not yet forgotten or stepped past. */
  private head = 0;
  private count = 0;

  /** Ids remembered. */
  get size(): number {
    return this.count;
  }

  /** Processing time of the latest completion of the id at bytes[at, at + 16), or undefined when not remembered. */
  timeOf(bytes: Uint8Array, at: number, hash = idHash(bytes, at)): number | undefined {
    const pos = this.find(bytes, at, hash);
    return pos >= this.head ? this.times[pos] : undefined;
  }

  /** Notes a completion of the id at bytes[at, at + 16) at `ms`, the latest. */
  note(bytes: Uint8Array, at: number, ms: number, hash = idHash(bytes, at)): void {
    if (this.length === this.times.length) this.rewrite();
    const index = this.index;
    const mask = index.length - 1;
    let s = hash & mask;
    for (; index[s] !== 0; s = (s + 1) & mask) {
      const pos = index[s]! - 1;
      if (this.hashes[pos] === hash && sameId(this.ids, pos * ID_BYTES, bytes, at)) {
        if (pos >= this.head) this.stale[pos] = 1;
        else this.count++;
        break;
      }
    }
    if (index[s] === 0) this.count++;
    const pos = this.length++;
    const into = this.ids;
    for (let k = 0; k < ID_BYTES; k++) into[pos * ID_BYTES + k] = bytes[at + k]!;
    this.times[pos] = ms;
    this.hashes[pos] = hash;
    this.stale[pos] = 0;
    index[s] = pos + 1;
  }

  /** The hash of the id `forgetOldest` forgot last. */
  forgottenHash = 0;

  /** Forgets the id whose latest completion is the oldest; returns that completion's time (its hash: forgottenHash). Not when empty. */
  forgetOldest(): number {
    while (this.stale[this.head] === 1) this.head++;
    this.count--;
    this.forgottenHash = this.hashes[this.head]!;
    return this.times[this.head++]!;
  }

  /** The log position of the id's entry (its latest), or -1. */
  private find(bytes: Uint8Array, at: number, hash: number): number {
    return findId(this.index, this.hashes, this.ids, bytes, at, hash);
  }

  /**
   * Rewrites the full log with its live entries only (in order), with room for as many again (at
   * least INITIAL_ENTRIES in all), and rebuilds the index: a rewrite of n live entries follows at
   * least n notes.
   */
  private rewrite(): void {
    const room = Math.max(INITIAL_ENTRIES, 2 * this.count + 2);
    let slots = 2 * INITIAL_ENTRIES;
    while (slots < 2 * room) slots *= 2;
    const ids = new Uint8Array(room * ID_BYTES);
    const times = new Float64Array(room);
    const hashes = new Int32Array(room);
    const index = new Int32Array(slots);
    const mask = index.length - 1;
    let n = 0;
    for (let pos = this.head; pos < this.length; pos++) {
      if (this.stale[pos] === 1) continue;
      for (let k = 0; k < ID_BYTES; k++) ids[n * ID_BYTES + k] = this.ids[pos * ID_BYTES + k]!;
      times[n] = this.times[pos]!;
      const hash = (hashes[n] = this.hashes[pos]!);
      let s = hash & mask;
      while (index[s] !== 0) s = (s + 1) & mask;
      index[s] = ++n;
    }
    this.ids = ids;
    this.times = times;
    this.hashes = hashes;
    this.stale = new Uint8Array(room);
    this.index = index;
    this.length = n;
    this.head = 0;
  }
}
