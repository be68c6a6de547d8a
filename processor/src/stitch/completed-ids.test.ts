import { describe, expect, it } from 'vitest';
import { CompletedIds } from './completed-ids.js';

/** A trace id's 16 bytes for a number (its bytes spread, so that ids differ early and late). */
function idOf(n: number): Uint8Array {
  const bytes = new Uint8Array(16);
  for (let k = 0; k < 16; k++) bytes[k] = (Math.imul(n + 1, 2_654_435_761 + k) >>> (k % 24)) & 0xff;
  bytes[15] = n & 0xff;
  bytes[14] = n >>> 8;
  return bytes;
}

/** The reference: a Map kept in completion order (deleted and set again), read from its start. */
class Reference {
  readonly byId = new Map<number, number>();
  note(id: number, ms: number): void {
    this.byId.delete(id);
    this.byId.set(id, ms);
  }
  forgetOldest(): number {
    const [id, ms] = this.byId.entries().next().value as [number, number];
    this.byId.delete(id);
    return ms;
  }
}

describe('completed trace ids', () => {
  it('forgets ids oldest latest-completion first, and knows each remembered id time, through the rewrites of its log', () => {
    const ids = new CompletedIds();
    const ref = new Reference();
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    // Phases: many distinct ids (forgotten ones stay in the log until it is rewritten), then a few
    // ids completed again and again (stale entries outnumber the ids).
    for (let step = 0; step < 60_000; step++) {
      const few = step > 30_000;
      const id = Math.floor(rnd() * (few ? 40 : 5_000));
      ids.note(idOf(id), 0, step);
      ref.note(id, step);
      const limit = few ? 30 : 2_000;
      while (ids.size > limit) expect(ids.forgetOldest()).toBe(ref.forgetOldest());
      expect(ids.size).toBe(ref.byId.size);
      if (step % 997 === 0) {
        for (const [k, ms] of ref.byId) expect(ids.timeOf(idOf(k), 0)).toBe(ms);
        // Forgotten ids are not known, whether or not their entries are still in the log.
        for (let k = 0; k < (few ? 40 : 5_000); k += few ? 1 : 7) if (!ref.byId.has(k)) expect(ids.timeOf(idOf(k), 0)).toBeUndefined();
      }
    }
    // Read at an offset, as from a request's table of trace ids.
    const table = new Uint8Array(48);
    table.set(idOf(5_000), 16);
    expect(ids.timeOf(table, 16)).toBeUndefined();
    const [latest] = [...ref.byId.keys()].slice(-1);
    table.set(idOf(latest!), 32);
    expect(ids.timeOf(table, 32)).toBe(ref.byId.get(latest!));
  });
});
