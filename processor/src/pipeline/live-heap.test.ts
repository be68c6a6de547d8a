import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('live heap reader', () => {
  it('reads what the last full collection left, not garbage allocated since, and the heap before any', () => {
    // A child with gc() exposed, running the built module: garbage is made, then collected, then
    // made again without a collection.
    const script = `
      const { createLiveHeapReader } = await import(${JSON.stringify(new URL('../../dist/pipeline/live-heap.js', import.meta.url).href)});
      const { getHeapStatistics } = await import('node:v8');
      const tick = () => new Promise((r) => setTimeout(r, 50));
      const reader = createLiveHeapReader();
      const MB = 2 ** 20;
      let junk = Array.from({ length: 200_000 }, (_, i) => ({ i, s: 'x'.repeat(100) + i }));
      const before = { used: getHeapStatistics().used_heap_size, read: reader.read() };
      junk = null;
      globalThis.gc();
      await tick();
      const collected = reader.read();
      // Young garbage, too little to bring a full collection.
      let more = [];
      for (let i = 0; i < 100_000; i++) more.push('y'.repeat(50) + i);
      const after = { used: getHeapStatistics().used_heap_size, read: reader.read() };
      more = null;
      reader.stop();
      console.log(JSON.stringify({ before, collected, after, MB }));
    `;
    const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const { before, collected, after, MB } = JSON.parse(run.stdout) as Record<string, { used: number; read: number }> & { collected: number; MB: number };
    // Live data is read as live (within what reading allocates).
    expect(Math.abs(before.read - before.used)).toBeLessThan(MB);
    expect(before.used).toBeGreaterThan(collected + 20 * MB);
    // After one, garbage made since does not count.
    expect(after.used).toBeGreaterThan(collected + 5 * MB);
    expect(after.read).toBeLessThanOrEqual(collected);
  });

  it('limitHeapGrowth keeps the heap near its live data under steady allocation, unless node was given the flag', () => {
    // Steady live data (a ring of 300k objects) replaced at a high rate, as pending spans are: the
    // peak heap in use with the limit against a child without it.
    const peak = (limit: boolean) => {
      const script = `
        const { limitHeapGrowth } = await import(${JSON.stringify(new URL('../../dist/pipeline/live-heap.js', import.meta.url).href)});
        const { getHeapStatistics } = await import('node:v8');
        const set = ${limit} ? limitHeapGrowth() : false;
        const N = 300_000;
        const ring = new Array(N);
        let peak = 0;
        for (let i = 0; i < 4_000_000; i++) {
          ring[i % N] = { a: i, b: 'x' + i, c: [i, i] };
          if ((i & 4095) === 0) peak = Math.max(peak, getHeapStatistics().used_heap_size);
        }
        console.log(JSON.stringify({ set, peak }));
      `;
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      return JSON.parse(run.stdout) as { set: boolean; peak: number };
    };
    const limited = peak(true);
    const unlimited = peak(false);
    expect(limited.set).toBe(true);
    expect(unlimited.peak).toBeGreaterThan(1.3 * limited.peak);
  }, 60_000);

  it('limitHeapGrowth leaves a --heap-growing-percent given to node as it is', async () => {
    const { limitHeapGrowth } = await import('./live-heap.js');
    expect(limitHeapGrowth(60, ['--heap-growing-percent=25'])).toBe(false);
    expect(limitHeapGrowth(60, ['--heap_growing_percent', '25'])).toBe(false);
  });
});
