import { describe, expect, it } from 'vitest';
import { CompletedIds } from './completed-ids.js';

/** The reference: a Map kept in completion order (deleted and set again), read from its start. */
class Reference {
  readonly byId = new Map<string, number>();
  note(id: string, ms: number): void {
    this.byId.delete(id);
    this.byId.set(id, ms);
  }
  forgetOldest(): number {
    const [id, ms] = this.byId.entries().next().value as [string, number];
    this.byId.delete(id);
    return ms;
  }
}

describe('completed trace ids', () => {
  it('forgets ids oldest latest-completion first, and knows each remembered id time, through both compactions', () => {
    const ids = new CompletedIds();
    const ref = new Reference();
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    // Phases: many distinct ids (the log's front is sliced off), then a few ids completed again and
    // again (stale entries outnumber the ids: the log is rebuilt and renumbered).
    for (let step = 0; step < 60_000; step++) {
      const few = step > 30_000;
      const id = `t${Math.floor(rnd() * (few ? 40 : 5_000))}`;
      ids.note(id, step);
      ref.note(id, step);
      const limit = few ? 30 : 2_000;
      while (ids.size > limit) expect(ids.forgetOldest()).toBe(ref.forgetOldest());
      ids.compact();
      expect(ids.size).toBe(ref.byId.size);
      if (step % 997 === 0) for (const [k, ms] of ref.byId) expect(ids.timeOf(k)).toBe(ms);
    }
    expect(ids.timeOf('never')).toBeUndefined();
  });
});
