import type { Chain } from '@conduct/processor';
import { describe, expect, it } from 'vitest';
import { inStartOrder } from './start-order.js';

/** A chain with `calls` calls starting at `startMs`, told apart by its trace id. */
const chain = (traceId: string, startMs: number, calls = 1): Chain =>
  ({ traceId, identity: 'svc:a', identityKind: 'workload', startMs, calls: Array.from({ length: calls }, () => ({ startMs })) }) as unknown as Chain;

/** The order the detection used before: filter, then the built-in stable sort. */
const builtIn = (chains: readonly Chain[]) => chains.filter((c) => c.calls.length > 0).sort((a, b) => a.startMs - b.startMs);

/** A small seeded generator (the same cases every run). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('inStartOrder', () => {
  it('orders like the built-in stable sort, equal start times and empty chains included', () => {
    const next = random(19);
    for (const n of [0, 1, 2, 15, 16, 17, 31, 33, 100, 257, 1024, 2049]) {
      for (const spread of [3, 50, 1e6]) {
        const chains = Array.from({ length: n }, (_, i) => chain(`t${i}`, 1_700_000_000_000 + Math.floor(next() * spread) + (next() < 0.3 ? 0.5 : 0), next() < 0.05 ? 0 : 1));
        const got = inStartOrder(chains).map((c) => c.traceId);
        expect(got).toEqual(builtIn(chains).map((c) => c.traceId));
      }
    }
  });

  it('keeps pairs that arrive downstream chain second but started first in start order', () => {
    const chains = [chain('a-entry', 10), chain('a-down', 5), chain('b-entry', 12), chain('b-down', 11), chain('c', 11)];
    expect(inStartOrder(chains).map((c) => c.traceId)).toEqual(['a-down', 'a-entry', 'b-down', 'c', 'b-entry']);
  });

  it('returns chains already in order as they are, without those without calls', () => {
    const chains = [chain('a', 1), chain('empty', 2, 0), chain('b', 2), chain('c', 2)];
    expect(inStartOrder(chains).map((c) => c.traceId)).toEqual(['a', 'b', 'c']);
  });
});
