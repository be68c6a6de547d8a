import { describe, expect, it } from 'vitest';
import { Recency } from './recency.js';

describe('Recency', () => {
  it('reads the least recently noted item, skipping entries superseded by a later note, across compaction', () => {
    const order = new Recency<string>();
    const latest = new Map<string, number>();
    const live = (item: string, seq: number) => latest.get(item) === seq;
    const current = () => [...latest].sort((a, b) => a[1] - b[1]);
    // Five items noted again and again (thousands of stale entries), b last of all.
    for (let round = 0; round < 2_000; round++) {
      for (const item of ['a', 'b', 'c', 'd', 'e']) if (item !== 'b' || round % 2 === 0) latest.set(item, order.note(item));
      order.compact(latest.size, current);
    }
    latest.set('b', order.note('b'));
    const seen: string[] = [];
    for (let item = order.oldest(live); item !== undefined; item = order.oldest(live)) {
      seen.push(item);
      latest.delete(item);
      order.compact(latest.size, current);
    }
    expect(seen).toEqual(['a', 'c', 'd', 'e', 'b']);
  });
});
