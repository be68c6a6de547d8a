import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startRetention } from './retention.js';
import { chain, testAlert, traceId } from './testdata/fixtures.js';
import { tempSqliteBackend } from './testdata/sqlite.js';

const DAY = 86_400_000;
/** The fake wall clock. */
const NOW = Date.UTC(2026, 0, 10);
const iso = (ms: number) => new Date(ms).toISOString();

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const backend = () => tempSqliteBackend('conduct-alert-retention-', cleanups);

/** A closed (acknowledged) alert last seen at `ms`. */
const closedAt = (id: string, ms: number) => testAlert({ id, identity: 'svc:a', status: 'acknowledged', eventTime: iso(ms), firstSeen: iso(ms), lastSeen: iso(ms) });

describe('retention of chains (storage.retention) against a skewed sender', () => {
  it('a chain stamped a year in the future does not age the others out: the cutoff is never ahead of the wall clock', async () => {
    const b = await backend();
    const registry = new Registry();
    const retention = startRetention({ store: b, retentionMs: 7 * DAY, intervalMs: 3_600_000, now: () => NOW, registry });
    cleanups.push(() => retention.stop());
    await b.chainWriter.writeChains([
      chain(traceId(10), 'svc:a', [['api', 'GET /old']], NOW - 10 * DAY),
      chain(traceId(11), 'svc:a', [['api', 'GET /recent']], NOW - DAY),
      chain(traceId(12), 'svc:a', [['api', 'GET /future']], NOW + 365 * DAY),
    ]);
    expect(await retention.sweep()).toBe(1);
    expect(await b.chainReader.traceChains(traceId(10))).toEqual([]);
    expect(await b.chainReader.traceChains(traceId(11))).toHaveLength(1);
    expect(await b.chainReader.traceChains(traceId(12))).toHaveLength(1);
    expect((await registry.getSingleMetric('conduct_retention_deleted_total')?.get())?.values[0]?.value).toBe(1);
  });
});

describe('retention of alerts (storage.alertRetention)', () => {
  it('ages alerts by the newest chain, never ahead of the wall clock: a span stamped in the future does not empty the alerts', async () => {
    const b = await backend();
    const registry = new Registry();
    const retention = startRetention({ store: b, retentionMs: 0, alertRetentionMs: 30 * DAY, intervalMs: 3_600_000, now: () => NOW, registry });
    cleanups.push(() => retention.stop());
    await b.detection.checkpoint({
      alerts: [closedAt('old', NOW - 40 * DAY), closedAt('recent', NOW - 10 * DAY)].map((alert) => ({ alert, dedupKey: alert.id })),
    });
    // The newest chain is a year ahead of the clock (a skewed sender): the cutoff is the clock's.
    await b.chainWriter.writeChains([chain(traceId(1), 'svc:a', [['api', 'GET /x']], NOW + 365 * DAY)]);
    await retention.sweep();
    expect(await b.detection.getAlert('old')).toBeUndefined();
    expect(await b.detection.getAlert('recent')).toBeDefined();
    expect((await registry.getSingleMetric('conduct_retention_alerts_deleted_total')?.get())?.values[0]?.value).toBe(1);
  });

  it('ages alerts by the newest chain when it is behind the clock (replayed history), and 0 keeps them', async () => {
    const b = await backend();
    const past = NOW - 400 * DAY;
    await b.detection.checkpoint({
      alerts: [closedAt('older', past - 40 * DAY), closedAt('newer', past - 10 * DAY)].map((alert) => ({ alert, dedupKey: alert.id })),
    });
    await b.chainWriter.writeChains([chain(traceId(2), 'svc:a', [['api', 'GET /x']], past)]);
    const keepAll = startRetention({ store: b, retentionMs: 7 * DAY, alertRetentionMs: 0, intervalMs: 3_600_000, now: () => NOW });
    await keepAll.sweep();
    await keepAll.stop();
    expect(await b.detection.getAlert('older')).toBeDefined();
    const retention = startRetention({ store: b, retentionMs: 0, alertRetentionMs: 30 * DAY, intervalMs: 3_600_000, now: () => NOW });
    await retention.sweep();
    await retention.stop();
    expect(await b.detection.getAlert('older')).toBeUndefined();
    expect(await b.detection.getAlert('newer')).toBeDefined();
  });

  it('a sweep that used up its steps leaves the rest to the next from where it stopped', async () => {
    const b = await backend();
    // 6 open alerts (they stay) before 4 closed ones, all old; 2 rows a step, 2 steps a sweep.
    const open = Array.from({ length: 6 }, (_, i) => testAlert({ id: `open-${i}`, identity: 'svc:a', lastSeen: iso(NOW - 90 * DAY + i) }));
    const closed = Array.from({ length: 4 }, (_, i) => closedAt(`closed-${i}`, NOW - 80 * DAY + i));
    await b.detection.checkpoint({ alerts: [...open, ...closed].map((alert) => ({ alert, dedupKey: alert.id })) });
    await b.chainWriter.writeChains([chain(traceId(3), 'svc:a', [['api', 'GET /x']], NOW)]);
    const retention = startRetention({ store: b, retentionMs: 0, alertRetentionMs: 30 * DAY, intervalMs: 3_600_000, batchRows: 2, maxBatchesPerSweep: 2, now: () => NOW });
    cleanups.push(() => retention.stop());
    const closedLeft = async () => (await b.detection.listAlerts({ status: 'acknowledged', limit: 100 })).length;
    await retention.sweep(); // open-0..3
    expect(await closedLeft()).toBe(4);
    await retention.sweep(); // open-4, open-5, closed-0, closed-1
    expect(await closedLeft()).toBe(2);
    await retention.sweep(); // closed-2, closed-3: the end
    expect(await closedLeft()).toBe(0);
    expect((await b.detection.listAlerts({ limit: 100 })).length).toBe(6);
  });
});
