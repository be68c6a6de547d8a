import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Chain } from '@conduct/processor';
import { chain, tempDir, testAlert, traceId } from '../testdata/fixtures.js';
import { startRetention } from '../retention.js';
import { openSqliteBackend, type SqliteBackend } from './backend.js';
import { readSpaceReport, spaceReport } from './space.js';
import { WAL_SIZE_LIMIT_BYTES } from './store.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const HOUR = 3_600_000;
const T0 = 1_700_000_000_000;
const PERIODS = 8;
const CHAINS_PER_PERIOD = 200;

/** A period's chains: the same identities and calls every period (no churn), an event time apart. */
function periodChains(period: number): Chain[] {
  return Array.from({ length: CHAINS_PER_PERIOD }, (_, i) => {
    const ops: Array<[string, string]> = Array.from({ length: 6 }, (_, k) => [`peer-${k}`, `GET /items/{id}/part-${k}`]);
    return chain(traceId(period * 10_000 + i + 1), `svc:worker-${i % 10}`, ops, T0 + period * HOUR + i * 10_000);
  });
}

/** Writes a period as the engine does: the chains, and an open incident of svc:worker-0 counted on by each of its chains, holding them. */
async function writePeriod(backend: SqliteBackend, period: number): Promise<void> {
  const chains = periodChains(period);
  const noisy = chains.filter((c) => c.identity === 'svc:worker-0');
  const alert = testAlert({ id: 'incident-1', identity: 'svc:worker-0', count: (period + 1) * noisy.length });
  await backend.chainWriter.commitBatch({
    chains,
    checkpoint: {
      alerts: [{ alert, dedupKey: 'svc:worker-0/new-peer' }],
      held: noisy.map((c) => ({ identity: c.identity, traceId: c.traceId, alertId: alert.id, chain: c })),
    },
  });
}

/** A backend on a new file, closed and removed after the test. */
async function openTemp(): Promise<{ path: string; backend: SqliteBackend }> {
  const t = tempDir('conduct-steady-');
  cleanups.push(t.cleanup);
  const path = join(t.dir, 'db.sqlite');
  const backend = await openSqliteBackend({ path });
  cleanups.push(() => backend.close());
  return { path, backend };
}

const rows = (backend: SqliteBackend, table: string) => backend.store.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;

describe('retention in a steady state (SQLite)', () => {
  it('deletes held chains with the chains, so the file stops growing after the first retention period', async () => {
    const { path, backend } = await openTemp();
    // Retention of two periods, swept by hand (no timer): the retention loop the server runs.
    const retention = startRetention({ store: backend, retentionMs: 2 * HOUR, intervalMs: 3_600_000, batchRows: 50 });
    cleanups.push(() => retention.stop());

    const pageCounts: number[] = [];
    const heldPages: number[] = [];
    for (let p = 0; p < PERIODS; p++) {
      await writePeriod(backend, p);
      await retention.sweep();
      const space = spaceReport(backend.store.db);
      pageCounts.push(space.pageCount);
      heldPages.push(space.objects.filter((o) => o.table === 'held_chains').reduce((n, o) => n + o.pages, 0));
      // What retention keeps: the chains and held chains of the last two periods and a bit.
      expect(rows(backend, 'held_chains')).toBeLessThanOrEqual(3 * (CHAINS_PER_PERIOD / 10));
      expect(rows(backend, 'chains')).toBeLessThanOrEqual(3 * CHAINS_PER_PERIOD);
    }
    // The incident stays, holding its chains within retention: an `expected` verdict learns those.
    expect((await backend.detection.getAlert('incident-1'))?.count).toBe(PERIODS * (CHAINS_PER_PERIOD / 10));
    const held = await backend.detection.heldByAlert('incident-1');
    expect(held.length).toBeGreaterThan(0);
    expect(Math.min(...held.map((h) => h.chain.startMs))).toBeGreaterThanOrEqual(T0 + (PERIODS - 3) * HOUR);
    // Flat once retention runs: freed pages are reused (no VACUUM). Holding every repeat's chain
    // grew held_chains by about 20 pages a period.
    const settled = pageCounts.slice(3);
    expect(Math.max(...settled) - settled[0]!).toBeLessThanOrEqual(2);
    expect(Math.max(...heldPages.slice(3)) - heldPages[3]!).toBeLessThanOrEqual(1);

    // The report reads a file another connection has open (the bench samples a running server).
    const report = readSpaceReport(path);
    expect(report.pageCount).toBe(pageCounts.at(-1));
    expect(report.objects.map((o) => o.name)).toEqual(expect.arrayContaining(['chains', 'held_chains', 'held_chains_by_start', 'strings']));
    expect(report.objects.find((o) => o.name === 'held_chains_by_start')?.table).toBe('held_chains');
    expect(report.objects.reduce((n, o) => n + o.pages, 0) + report.freePages).toBe(report.pageCount);
  });

  it('cuts the WAL file back after a long read held its checkpoint back', async () => {
    const { path, backend } = await openTemp();
    const walBytes = () => statSync(`${path}-wal`).size;
    // A reader in the middle of a long read: no checkpoint can pass its snapshot, the WAL grows.
    const reader = new Database(path, { readonly: true });
    cleanups.push(() => reader.close());
    reader.prepare('BEGIN').run();
    reader.prepare('SELECT count(*) FROM chains').get();
    let period = 0;
    while (walBytes() < 2 * WAL_SIZE_LIMIT_BYTES && period < 2_000) await writePeriod(backend, period++);
    const grown = walBytes();
    expect(grown).toBeGreaterThanOrEqual(2 * WAL_SIZE_LIMIT_BYTES);
    reader.prepare('COMMIT').run();
    // The next checkpoint copies everything back; the write after it starts the WAL over, cut to the limit.
    for (let i = 0; i < 3; i++) await writePeriod(backend, period++);
    backend.store.db.pragma('wal_checkpoint(PASSIVE)');
    await writePeriod(backend, period++);
    expect(walBytes()).toBeLessThanOrEqual(WAL_SIZE_LIMIT_BYTES);
    expect(rows(backend, 'chains')).toBe(period * CHAINS_PER_PERIOD);
  });
});
