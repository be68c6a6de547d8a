import { KeyMemo } from './key-memo.js';

/**
 * Chain shapes: the ordered sequence of distinct operations of a chain (first occurrence order),
 * and a normalised edit distance between two shapes. Pure functions, bounded work.
 */

/** Operations kept in one shape; longer chains are cut (their tail does not change the shape). */
export const MAX_SHAPE_LENGTH = 32;

/** The ordered distinct operations of a chain, at most MAX_SHAPE_LENGTH of them. */
export function chainShape(operations: readonly string[]): string[] {
  const shape: string[] = [];
  for (const op of operations) {
    // The shape itself is the set of operations seen: at most MAX_SHAPE_LENGTH, no Set per chain.
    if (shape.includes(op)) continue;
    shape.push(op);
    if (shape.length >= MAX_SHAPE_LENGTH) break;
  }
  return shape;
}

/** Most shape keys remembered. */
export const MAX_MEMO_SHAPES = 20_000;
const shapeKeys = new KeyMemo(MAX_MEMO_SHAPES);
/** Where a shape's key sits below the level of its last operation. */
const SHAPE_END = Symbol('end of shape');

/**
 * A shape as one string key (JSON keeps arbitrary operation text unambiguous). Remembered by its
 * operations: learning and `unusual-chain` ask for the key of every chain, and identities repeat
 * a few shapes.
 */
export function shapeKey(shape: readonly string[]): string {
  // A key made before: a probe per operation read here (KeyMemo.level is a call per level).
  let known: Map<unknown, unknown> | undefined = shapeKeys.root;
  for (let i = 0; i < shape.length && known !== undefined; i++) known = known.get(shape[i]) as Map<unknown, unknown> | undefined;
  const made = known?.get(SHAPE_END) as string | undefined;
  if (made !== undefined) return made;
  let level = shapeKeys.root;
  for (const op of shape) level = shapeKeys.level(level, op);
  return (level.get(SHAPE_END) as string | undefined) ?? shapeKeys.add(level, SHAPE_END, JSON.stringify(shape));
}

/** The distinct operations seen so far by {@link shapeKeyOf} (reused: it is synchronous). */
const seen: string[] = new Array<string>(MAX_SHAPE_LENGTH).fill('');

/**
 * shapeKey(chainShape(operations.slice(0, count))) without the shape's array when the key was made
 * before (learning asks for every chain it learns: the shape's array, grown by push from empty,
 * was 3% of the main thread's allocated bytes, bench/README.md "Main thread per chain (issue 19,
 * 2026-12-07, third)"). The distinct operations are gathered in a scratch array and the memo is
 * walked as they come.
 */
export function shapeKeyOf(operations: readonly string[], count: number): string {
  let n = 0;
  let known: Map<unknown, unknown> | undefined = shapeKeys.root;
  for (let i = 0; i < count && n < MAX_SHAPE_LENGTH; i++) {
    const op = operations[i]!;
    let repeated = false;
    for (let k = 0; k < n; k++) {
      if (seen[k] === op) {
        repeated = true;
        break;
      }
    }
    if (repeated) continue;
    seen[n++] = op;
    if (known !== undefined) known = known.get(op) as Map<unknown, unknown> | undefined;
  }
  const made = known?.get(SHAPE_END) as string | undefined;
  const key = made ?? shapeKey(seen.slice(0, n));
  // The scratch keeps no operation alive.
  for (let k = 0; k < n; k++) seen[k] = '';
  return key;
}

export function parseShapeKey(key: string): string[] {
  try {
    const v: unknown = JSON.parse(key);
    return Array.isArray(v) ? v.map(String) : [];
  } catch {
    return [];
  }
}

/**
 * Levenshtein distance over operations divided by the longer length: 0 for equal shapes, 1 for
 * shapes that share nothing in order.
 */
export function shapeDistance(a: readonly string[], b: readonly string[]): number {
  const n = a.length;
  const m = b.length;
  if (n === 0 && m === 0) return 0;
  let prev = new Array<number>(m + 1);
  let cur = new Array<number>(m + 1);
  for (let j = 0; j <= m; j++) prev[j] = j;
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[m]! / Math.max(n, m);
}

/** The learned shape closest to `shape`, with its distance; undefined when nothing is learned. */
export function nearestShape(
  shape: readonly string[],
  learned: Iterable<readonly string[]>,
): { shape: readonly string[]; distance: number } | undefined {
  let best: { shape: readonly string[]; distance: number } | undefined;
  for (const s of learned) {
    const d = shapeDistance(shape, s);
    if (!best || d < best.distance) best = { shape: s, distance: d };
    if (d === 0) break;
  }
  return best;
}
