import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { RememberedClient } from '../calls/index.js';
import { itemsOfSpans } from '../calls/trace-table.js';
import { resource, span, SpanKind, TRACE_ID } from '../calls/testdata/trace-builder.js';
import { createRecentClients } from './recent-clients.js';

const shop = resource('shop');
const client = (id: string): RememberedClient => ({
  cols: itemsOfSpans([span(shop, { id, kind: SpanKind.CLIENT })]).items[0] as RememberedClient['cols'],
  index: 0,
  service: 'shop',
  identity: { id: 'svc:shop', kind: 'workload' },
});
/** The trace of every span `client` makes: a remembered span's trace is read from its columns. */
const T = TRACE_ID;

function setup(config: Parameters<typeof createRecentClients>[0]) {
  const clock = { t: 0, now() { return this.t; } };
  return { clock, recent: createRecentClients(config, clock) };
}

describe('recent client spans', () => {
  it('hands a remembered span to a callee of another service once, and counts hits and misses', () => {
    const { recent } = setup({});
    const c = client('c1');
    recent.remember(T, 'c1', c);
    // Same service: not a caller/callee pair, kept for the real callee.
    expect(recent.take(T, 'c1', 'shop')).toBeUndefined();
    expect(recent.take(T, 'c1', 'inventory')).toBe(c);
    expect(recent.take(T, 'c1', 'inventory')).toBeUndefined();
    // Same span id in another trace is another span.
    recent.remember(T, 'c2', client('c2'));
    expect(recent.take('b'.repeat(32), 'c2', 'inventory')).toBeUndefined();
    expect(recent.stats()).toMatchObject({ spans: 1, hits: 1, misses: 3 });
  });

  it('forgets spans older than maxAgeMs, by the injected clock', () => {
    const { clock, recent } = setup({ maxAgeMs: 10_000 });
    recent.remember(T, 'old', client('old'));
    clock.t = 5_000;
    recent.remember(T, 'new', client('new'));
    clock.t = 10_000;
    expect(recent.take(T, 'old', 'inventory')).toBeUndefined();
    expect(recent.take(T, 'new', 'inventory')?.cols.spanId(0)).toBe(span(shop, { id: 'new' }).span.spanId);
    expect(recent.stats()).toMatchObject({ spans: 0, expired: 1, hits: 1, misses: 1 });
  });

  it('keeps at most maxSpans, forgetting the oldest first', () => {
    const { recent } = setup({ maxSpans: 3 });
    for (let i = 0; i < 10; i++) recent.remember(T, `s${i}`, client(`s${i}`));
    expect(recent.stats()).toMatchObject({ spans: 3, evicted: 7 });
    expect(recent.take(T, 's6', 'inventory')).toBeUndefined();
    expect(recent.take(T, 's7', 'inventory')).toBeDefined();
  });

  it('counts only live spans as forgotten: one taken or remembered again is not evicted or expired in its old place', () => {
    const { clock, recent } = setup({ maxSpans: 2, maxAgeMs: 10_000 });
    recent.remember(T, 'a', client('a'));
    recent.remember(T, 'b', client('b'));
    expect(recent.take(T, 'a', 'inventory')).toBeDefined();
    clock.t = 5_000;
    recent.remember(T, 'b', client('b')); // lives from now on
    recent.remember(T, 'c', client('c'));
    expect(recent.stats()).toMatchObject({ spans: 2, evicted: 0 });
    clock.t = 12_000; // past the first remember of b, not the second
    expect(recent.take(T, 'b', 'inventory')).toBeDefined();
    clock.t = 15_000;
    expect(recent.take(T, 'c', 'inventory')).toBeUndefined();
    expect(recent.stats()).toMatchObject({ spans: 0, evicted: 0, expired: 1, hits: 2 });
  });

  it('lets go of the columns of spans it forgot, before any compaction', () => {
    // A child with a collector to call: weak references to each remembered span's columns tell
    // which the index still holds after full collections.
    const script = `
      const { createRecentClients } = await import(${JSON.stringify(new URL('../../dist/stitch/recent-clients.js', import.meta.url).href)});
      const clock = { now: () => 0 };
      const recent = createRecentClients({ maxSpans: 10, maxAgeMs: 60_000 }, clock);
      const T = 'f'.repeat(32);
      const refs = [];
      const remember = (i) => {
        const cols = { traceId: () => T, payload: new Array(1_000).fill(i) };
        refs.push(new WeakRef(cols));
        recent.remember(T, 's' + i, { cols, index: 0, service: 'shop', identity: { id: 'svc:shop', kind: 'workload' } });
      };
      for (let i = 0; i < 30; i++) remember(i);
      recent.take(T, 's25', 'inventory');
      await new Promise((resolve) => setTimeout(resolve, 0));
      gc();
      await new Promise((resolve) => setTimeout(resolve, 0));
      gc();
      console.log(JSON.stringify(refs.map((r) => r.deref() !== undefined)));
    `;
    const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const held = JSON.parse(run.stdout) as boolean[];
    // The 20 evicted are let go. The last ten are held, the one handed out too (its slot is stale
    // until the queue's head or a compaction passes it).
    expect(held.map((h, i) => (h ? i : -1)).filter((i) => i >= 0)).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
  }, 30_000);

  it('stays exact through heavy churn (many more spans than it keeps)', () => {
    const { recent } = setup({ maxSpans: 1_000 });
    for (let i = 0; i < 20_000; i++) recent.remember(T, `s${i}`, client(`s${i}`));
    expect(recent.stats()).toMatchObject({ spans: 1_000, evicted: 19_000 });
    expect(recent.take(T, 's18999', 'inventory')).toBeUndefined();
    expect(recent.take(T, 's19000', 'inventory')).toBeDefined();
    expect(recent.take(T, 's19999', 'inventory')).toBeDefined();
  });
});
