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
