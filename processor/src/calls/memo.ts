/**
 * `fn` remembering its answers per text, for derivations that see the same few texts in every
 * request (the decoder hands out one string per text, so a lookup finds its hash computed). Holds
 * at most `size` answers and starts again empty when full: texts with ids in them never repeat.
 */
export function memoised<T>(fn: (text: string) => T, size: number): (text: string) => T {
  const memo = new Map<string, T>();
  return (text) => {
    let out = memo.get(text);
    if (out === undefined) {
      out = fn(text);
      if (memo.size >= size) memo.clear();
      memo.set(text, out);
    }
    return out;
  };
}

/**
 * `a + sep + b` remembered per pair (the same string object for the same pair), for texts made of
 * two parts that repeat in every request. Bounded like `memoised`, over both levels.
 */
export function joinedMemo(sep: string, size: number): (a: string, b: string) => string {
  const memo = new Map<string, Map<string, string>>();
  let count = 0;
  return (a, b) => {
    let byB = memo.get(a);
    let out = byB?.get(b);
    if (out === undefined) {
      out = a + sep + b;
      if (count >= size) {
        memo.clear();
        count = 0;
        byB = undefined;
      }
      if (byB === undefined) memo.set(a, (byB = new Map()));
      byB.set(b, out);
      count++;
    }
    return out;
  };
}
