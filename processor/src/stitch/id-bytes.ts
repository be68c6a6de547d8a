import { mixWord } from '@conduct/proto';

/** Bytes of a trace id. */
export const ID_BYTES = 16;

/** Mixed into the id hashes, so that a sender cannot choose trace ids that all collide. */
const SEED = (Math.random() * 0x7fffffff) | 0;

/** A 32-bit hash of the trace id at bytes[at, at + 16), four bytes at a time. */
export function idHash(bytes: Uint8Array, at: number): number {
  let h = SEED;
  for (let k = at; k < at + ID_BYTES; k += 4) h = mixWord(h ^ (bytes[k]! | (bytes[k + 1]! << 8) | (bytes[k + 2]! << 16) | (bytes[k + 3]! << 24)));
  return h;
}

/** True when a[x, x + 16) and b[y, y + 16) hold the same id. */
export function sameId(a: Uint8Array, x: number, b: Uint8Array, y: number): boolean {
  for (let k = 0; k < ID_BYTES; k++) if (a[x + k] !== b[y + k]) return false;
  return true;
}

/**
 * Finds an id in an open-addressing index over a table of ids (`index` holds table position + 1, 0
 * empty; its length a power of two): the table position of the id at bytes[at, at + 16) whose hash
 * is `hash`, or -1. `hashes` and `ids` hold each table entry's hash and 16 id bytes.
 */
export function findId(index: Int32Array, hashes: Int32Array, ids: Uint8Array, bytes: Uint8Array, at: number, hash: number): number {
  const mask = index.length - 1;
  for (let s = hash & mask; index[s] !== 0; s = (s + 1) & mask) {
    const pos = index[s]! - 1;
    if (hashes[pos] === hash && sameId(ids, pos * ID_BYTES, bytes, at)) return pos;
  }
  return -1;
}
