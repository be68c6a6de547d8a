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

  it('stays exact through heavy churn (many more spans than it keeps)', () => {
    const { recent } = setup({ maxSpans: 1_000 });
    for (let i = 0; i < 20_000; i++) recent.remember(T, `s${i}`, client(`s${i}`));
    expect(recent.stats()).toMatchObject({ spans: 1_000, evicted: 19_000 });
    expect(recent.take(T, 's18999', 'inventory')).toBeUndefined();
    expect(recent.take(T, 's19000', 'inventory')).toBeDefined();
    expect(recent.take(T, 's19999', 'inventory')).toBeDefined();
  });
});
