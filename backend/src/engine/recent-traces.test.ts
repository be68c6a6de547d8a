import { describe, expect, it } from 'vitest';
import { createRecentTraces, EARLIER_TRACES_PER_CHUNK, IdChunks } from './recent-traces.js';

const id = (n: number) => n.toString(16).padStart(32, '0');
const WINDOW = 300_000;

describe('recent trace ids', () => {
  it('holds every id added within the window, in any case, and forgets it after the window', () => {
    const recent = createRecentTraces(WINDOW);
    for (let n = 0; n < 50_000; n++) recent.add(id(n * 7919), 1_000 + n);
    expect(recent.mayHold(id(7919 * 123).toUpperCase(), 60_000)).toBe(true);
    let missed = 0;
    for (let n = 0; n < 50_000; n++) if (!recent.mayHold(id(n * 7919), 60_000)) missed++;
    expect(missed).toBe(0);
    // Ids never added: a few false positives (each costs a store lookup), no more.
    let positives = 0;
    for (let n = 0; n < 50_000; n++) if (recent.mayHold(id(n * 7919 + 1), 60_000)) positives++;
    expect(positives).toBeLessThan(500);
    // Once the newest of them is older than the window, none is held.
    expect(recent.mayHold(id(7919 * 49_999), 1_000 + 49_999 + WINDOW + 1)).toBe(false);
    recent.add(id(1), 1_000 + 49_999 + WINDOW + 1);
    expect(recent.size()).toBe(1);
  });

  it('keeps what was added in earlier slices of the window while new generations fill', () => {
    const recent = createRecentTraces(WINDOW);
    // Four slices of a quarter window each, the rate growing (generations fill before their slice ends).
    let t = 0;
    const added: string[] = [];
    for (let slice = 0; slice < 4; slice++) {
      for (let n = 0; n < 20_000 * (slice + 1); n++) {
        const trace = `${slice}-${n}`;
        recent.add(trace, t);
        added.push(trace);
      }
      t += WINDOW / 4;
    }
    const now = t - WINDOW / 4;
    // The first slice's newest id is exactly one window old minus a slice: still held.
    expect(added.filter((trace) => !recent.mayHold(trace, now))).toEqual([]);
  });

  it('answers maybe for a window once it had to drop ids younger than the window', () => {
    const recent = createRecentTraces(WINDOW, 1 << 15);
    for (let n = 0; n < 100_000; n++) recent.add(id(n), 10);
    // The first ids were dropped to stay within the bound: an id never added may be any of them.
    expect(recent.mayHold(id(999_999_999), 20)).toBe(true);
    expect(recent.mayHold(id(999_999_999), 10 + WINDOW + 1)).toBe(false);
  });

  it('takes the ids stored before it started as its oldest generation, held a window after the seed\'s time', () => {
    const recent = createRecentTraces(WINDOW);
    const seed = recent.seed(1_000);
    for (let n = 0; n < 30_000; n++) seed.add(id(n * 31));
    // Nothing is held until the seed is closed (a read that could not tell adds nothing).
    expect(recent.mayHold(id(31 * 5), 1_000)).toBe(false);
    seed.close();
    recent.add(id(7), 2_000);
    let missed = 0;
    for (let n = 0; n < 30_000; n++) if (!recent.mayHold(id(n * 31), 2_000)) missed++;
    expect(missed).toBe(0);
    expect(recent.mayHold(id(7), 2_000)).toBe(true);
    expect(recent.size()).toBe(30_001);
    // A window after the seed's time it is dropped first; what was added later stays.
    expect(recent.mayHold(id(31 * 5), 1_000 + WINDOW + 1)).toBe(false);
    expect(recent.mayHold(id(7), 1_000 + WINDOW + 1)).toBe(true);
    recent.add(id(8), 1_000 + WINDOW + 1);
    expect(recent.size()).toBe(2);
  });

  it('keeps an id for its window when the clock is set back after it was added', () => {
    const recent = createRecentTraces(WINDOW);
    recent.add(id(1), 10_000);
    recent.add(id(2), 5_000);
    expect(recent.mayHold(id(1), 10_000 + WINDOW - 1)).toBe(true);
  });

  it('sizes the first generation after a seed by its own ids, not the seed\'s (a seed is not a rate)', () => {
    // Room for the seed and a small generation, not for one sized like the seed.
    const recent = createRecentTraces(WINDOW, 1 << 18);
    const seed = recent.seed(1_000);
    for (let n = 0; n < 100_000; n++) seed.add(id(n * 31));
    seed.close();
    recent.add(id(7), 2_000);
    // Had the seed been dropped to make room, every answer would be maybe for a window.
    let positives = 0;
    for (let n = 0; n < 1_000; n++) if (recent.mayHold(id(n * 31 + 1), 2_000)) positives++;
    expect(positives).toBeLessThan(50);
    expect(recent.mayHold(id(31 * 99_999), 2_000)).toBe(true);
  });

  it('packs ids as bytes in chunks of their own buffers, leaving out what is no 16-byte hex id', () => {
    const chunks = new IdChunks();
    const n = EARLIER_TRACES_PER_CHUNK + 3;
    for (let k = 0; k < n; k++) chunks.add(k === 5 ? id(k).toUpperCase() : id(k));
    for (const bad of ['', 'abc', `${id(1).slice(0, 31)}g`, `${id(1)}00`, 'z'.repeat(32)]) chunks.add(bad);
    const out = chunks.take();
    expect(out.map((c) => c.length)).toEqual([EARLIER_TRACES_PER_CHUNK * 16, 3 * 16]);
    expect(out[0]!.buffer).not.toBe(out[1]!.buffer);
    expect(out[0]!.byteLength).toBe(out[0]!.buffer.byteLength);
    const all = Buffer.concat(out).toString('hex');
    for (const k of [0, 5, 7_777, n - 1]) expect(all.slice(32 * k, 32 * k + 32)).toBe(id(k));
    expect(chunks.take()).toEqual([]);
  });
});
