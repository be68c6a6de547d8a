import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Chain } from '@conduct/processor';
import { chain, tempDir, traceId } from '../testdata/fixtures.js';
import { openStore, type Store } from './store.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

const HOUR = 3_600_000;
const T0 = 1_700_000_000_000;
const PERIODS = 8;
const CHAINS_PER_PERIOD = 240;

/** A period's chains: identities, peers and operations new to it (id churn), and some that every period shares. */
function periodChains(period: number): Chain[] {
  const pad = 'x'.repeat(80);
  return Array.from({ length: CHAINS_PER_PERIOD }, (_, i) => {
    const at = T0 + period * HOUR + i * 1_000;
    const id = traceId(period * 10_000 + i + 1);
    if (i % 4 === 0) return chain(id, 'svc:stable', [['postgres', 'SELECT 1'], ['cache', 'GET /health']], at);
    return chain(id, `svc:churn-${period}-${i % 40}`, [[`peer-${period}-${i}`, `GET /p${period}/item/${i}/${pad}`], ['cache', 'GET /health']], at);
  });
}

/** Every retention step until it has nothing more to do; the text sweep steps included. */
function pruneAll(store: Store, beforeMs: number, writeBetween?: () => void): { texts: number } {
  let texts = 0;
  for (let i = 0; ; i++) {
    const step = store.pruneStep(beforeMs, 100);
    texts += step.texts ?? 0;
    // New chains arrive while the sweep marks and deletes.
    if (i === 2) writeBetween?.();
    if (step.chains === 0 && step.traces === 0 && !step.identities && !step.edges && !step.more) return { texts };
  }
}

const pages = (store: Store) => store.db.pragma('page_count', { simple: true }) as number;
const rows = (store: Store, table: string) => store.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;

describe('retention under id churn (SQLite)', () => {
  it('frees unreferenced texts, identities and edges in steps, so the file stops growing after the first period', async () => {
    const t = tempDir('conduct-sweep-');
    cleanups.push(t.cleanup);
    const store = await openStore({ path: join(t.dir, 'db.sqlite'), textSweepMinGrowth: 100 });
    cleanups.push(() => store.close());

    const pageCounts: number[] = [];
    const stringRows: number[] = [];
    let freed = 0;
    for (let p = 0; p < PERIODS; p++) {
      const chains = periodChains(p);
      const half = chains.length / 2;
      store.writeChains(chains.slice(0, half));
      // Keep one period: everything that ended before this one goes, while the rest of it arrives.
      freed += pruneAll(store, T0 + p * HOUR, () => store.writeChains(chains.slice(half))).texts;
      if (p === 0) store.writeChains(chains.slice(half));
      pruneAll(store, T0 + p * HOUR);
      pageCounts.push(pages(store));
      stringRows.push(rows(store, 'strings'));
      // What is kept reads back whole: no text it refers to was freed.
      const expected = chains.filter((c) => c.identity === 'svc:stable').slice(-3);
      expect(store.recentChains('svc:stable', 3).map((c) => c.calls.map((x) => [x.peer, x.operation]))).toEqual(
        expected.reverse().map((c) => c.calls.map((x) => [x.peer, x.operation])),
      );
      const churned = chains.find((c) => c.identity.startsWith('svc:churn'))!;
      expect(store.traceChains(churned.traceId).flatMap((c) => c.calls.map((x) => x.operation))).toEqual(churned.calls.map((x) => x.operation));
    }
    expect(freed).toBeGreaterThan((PERIODS - 3) * CHAINS_PER_PERIOD);
    // One period of texts (plus the sweep's slack of growth) at most; identities of one period.
    expect(Math.max(...stringRows)).toBeLessThan(3 * CHAINS_PER_PERIOD + 200);
    expect(rows(store, 'identities')).toBeLessThanOrEqual(41);
    // Flat after the first periods of retention: freed pages are reused (no VACUUM). Without
    // freeing, the strings, identities and edges of each period add about 8 pages.
    const settled = pageCounts.slice(2);
    expect(Math.max(...settled) - settled[0]!).toBeLessThanOrEqual(2);
    expect(pageCounts.at(-1)! - pageCounts[1]!).toBeLessThanOrEqual(Math.ceil(pageCounts[1]! * 0.06));
  });
});
