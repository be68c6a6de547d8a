/**
 * Alert retention as tests (contracts.ts, "(d') Alert retention"), run by `runStoreConformance`
 * on every backend: which alerts a step deletes, what goes with them, what stays, and how a sweep
 * pages through alerts that stay.
 */
import { expect, it } from 'vitest';
import type { Alert, AlertStatus } from '../alerts/model.js';
import type { AlertPruneCursor, AlertPruneResult, StorageBackend } from './contracts.js';
import { chain, testAlert, traceId } from './testdata/fixtures.js';

const DAY = 86_400_000;
/** Event time "now": the cutoff is a day before it. */
const T = 1_800_000_000_000;
const CUTOFF = T - DAY;
/** Wall clock of the deliveries. */
const NOW = 1_900_000_000_000;

const iso = (ms: number) => new Date(ms).toISOString();

function alertAt(id: string, status: AlertStatus, lastSeenMs: number, n: number): Alert {
  return testAlert({
    id,
    identity: 'svc:retained',
    status,
    traceId: traceId(n),
    eventTime: iso(lastSeenMs - 60_000),
    firstSeen: iso(lastSeenMs - 60_000),
    lastSeen: iso(lastSeenMs),
  });
}

/** Runs steps of `maxRows` until the sweep has read every alert before the cutoff. */
async function sweepAll(s: StorageBackend, maxRows: number): Promise<{ steps: AlertPruneResult[]; alerts: number; held: number; deliveries: number }> {
  const steps: AlertPruneResult[] = [];
  let after: AlertPruneCursor | undefined;
  do {
    const step = await s.alertRetention.pruneAlerts(CUTOFF, maxRows, after);
    steps.push(step);
    after = step.next;
    if (steps.length > 100) throw new Error('the sweep does not end');
  } while (after);
  const sum = (k: 'alerts' | 'held' | 'deliveries') => steps.reduce((a, x) => a + x[k], 0);
  return { steps, alerts: sum('alerts'), held: sum('held'), deliveries: sum('deliveries') };
}

export function alertRetentionConformance(fresh: () => Promise<StorageBackend>): void {
  it('deletes closed alerts last seen before the time with their held chains and delivered deliveries; open ones, undelivered ones and newer ones stay', async () => {
    const s = await fresh();
    const old = T - 2 * DAY;
    const acknowledged = alertAt('a-ack', 'acknowledged', old, 1);
    const open = alertAt('a-open', 'open', T - 3 * DAY, 2);
    const pending = alertAt('a-pending', 'expected', old, 3);
    const dead = alertAt('a-dead', 'malicious', old, 4);
    const superseded = alertAt('a-superseded', 'superseded', old + 1, 5);
    const recent = alertAt('a-recent', 'acknowledged', CUTOFF + 1, 6);
    const all = [acknowledged, open, pending, dead, superseded, recent];
    await s.detection.checkpoint({
      alerts: all.map((alert) => ({ alert, dedupKey: `k-${alert.id}` })),
      held: [
        { identity: 'svc:retained', traceId: traceId(1), alertId: 'a-ack', chain: chain(traceId(1), 'svc:retained', [['api', 'GET /x']], old) },
        { identity: 'svc:retained', traceId: traceId(2), alertId: 'a-open', chain: chain(traceId(2), 'svc:retained', [['api', 'GET /y']], old) },
      ],
      // The acknowledged alert's verdict suppressed a finding key: learned state, it stays.
      suppressions: [{ identity: 'svc:retained', detector: 'new-peer', key: 'api', alertId: 'a-ack' }],
      outbox: [acknowledged, pending, dead].map((alert) => ({ alert, event: 'alert' as const, sinks: ['hook'], atMs: NOW })),
    });
    // Delivered, still pending, given up.
    const claimed = await s.outbox.claim('hook', NOW, 10, 30_000);
    for (const e of claimed) {
      if (e.alertId === 'a-ack') expect(await s.outbox.delivered(e, NOW + 1)).toBe(true);
      if (e.alertId === 'a-dead') expect(await s.outbox.failed(e, 'refused', undefined, NOW + 1)).toBe(true);
    }
    expect(claimed).toHaveLength(3);

    const swept = await sweepAll(s, 100);
    expect({ alerts: swept.alerts, held: swept.held, deliveries: swept.deliveries }).toEqual({ alerts: 2, held: 1, deliveries: 1 });
    expect(await s.detection.getAlert('a-ack')).toBeUndefined();
    expect(await s.detection.getAlert('a-superseded')).toBeUndefined();
    expect(await s.detection.heldByAlert('a-ack')).toEqual([]);
    expect(await s.outbox.deliveries('a-ack', 10)).toEqual([]);
    for (const kept of [open, pending, dead, recent]) expect(await s.detection.getAlert(kept.id), kept.id).toEqual(kept);
    expect((await s.detection.heldByAlert('a-open')).map((h) => h.traceId)).toEqual([traceId(2)]);
    expect((await s.detection.listAlerts({ limit: 100 })).map((a) => a.id).sort()).toEqual(['a-dead', 'a-open', 'a-pending', 'a-recent']);
    expect((await s.detection.loadSuppressions()).map((x) => x.alertId)).toEqual(['a-ack']);
    expect(await s.outbox.counts()).toEqual([
      { sink: 'hook', state: 'dead', count: 1 },
      { sink: 'hook', state: 'pending', count: 1 },
    ]);

    // Once its delivery is done, the closed alert goes with the next sweep; the rest stay.
    const [waiting] = await s.outbox.claim('hook', NOW + 60_000, 10, 30_000);
    expect(waiting?.alertId).toBe('a-pending');
    expect(await s.outbox.delivered(waiting!, NOW + 60_001)).toBe(true);
    expect(await sweepAll(s, 100)).toMatchObject({ alerts: 1, held: 0, deliveries: 1 });
    expect(await s.detection.getAlert('a-pending')).toBeUndefined();
    expect((await s.detection.listAlerts({ limit: 100 })).map((a) => a.id).sort()).toEqual(['a-dead', 'a-open', 'a-recent']);
    // Nothing more to do: a sweep deletes nothing.
    expect(await sweepAll(s, 100)).toMatchObject({ alerts: 0, held: 0, deliveries: 0 });
    // An operator discards the dead delivery: the alert is done and goes, its discarded entry with it.
    expect(await s.outbox.discard({ alertId: 'a-dead' }, NOW + 70_000)).toHaveLength(1);
    expect(await sweepAll(s, 100)).toMatchObject({ alerts: 1, held: 0, deliveries: 1 });
    expect(await s.detection.getAlert('a-dead')).toBeUndefined();
    expect(await s.outbox.counts()).toEqual([]);
  });

  it('reads at most maxRows alerts a step, oldest first, and goes on after the cursor past alerts that stay', async () => {
    const s = await fresh();
    // Ten alerts before the cutoff, one a minute: the even ones open (they stay), the odd ones acknowledged.
    const alerts = Array.from({ length: 10 }, (_, i) => alertAt(`b-${i}`, i % 2 === 0 ? 'open' : 'acknowledged', T - 2 * DAY + i * 60_000, 10 + i));
    // Two more last seen at the same time as b-9: ties are ordered by id.
    alerts.push(alertAt('b-9a', 'acknowledged', T - 2 * DAY + 9 * 60_000, 30), alertAt('b-9b', 'open', T - 2 * DAY + 9 * 60_000, 31));
    await s.detection.checkpoint({ alerts: alerts.map((alert) => ({ alert, dedupKey: 'k' })) });

    const first = await s.alertRetention.pruneAlerts(CUTOFF, 4);
    // b-0..b-3 read: b-1 and b-3 deleted.
    expect(first.alerts).toBe(2);
    expect(first.next?.id).toBe('b-3');
    const swept = await sweepAll(s, 4);
    // The rest: b-5, b-7, b-9, b-9a; a page of the open ones alone still moves on.
    expect(swept.alerts).toBe(4);
    expect(swept.steps.every((x) => x.alerts <= 4)).toBe(true);
    expect((await s.detection.listAlerts({ limit: 100 })).map((a) => a.id).sort()).toEqual(['b-0', 'b-2', 'b-4', 'b-6', 'b-8', 'b-9b']);
    const onlyOpen = await s.alertRetention.pruneAlerts(CUTOFF, 3);
    expect(onlyOpen.alerts).toBe(0);
    expect(onlyOpen.next?.id).toBe('b-4');
  });

  it('an alert deleted and then written again by a checkpoint (a late verdict) is stored again', async () => {
    const s = await fresh();
    const a = alertAt('c-1', 'acknowledged', T - 2 * DAY, 40);
    await s.detection.checkpoint({ alerts: [{ alert: a, dedupKey: 'k' }] });
    expect((await s.alertRetention.pruneAlerts(CUTOFF, 10)).alerts).toBe(1);
    const judged = { ...a, status: 'malicious' as const };
    await s.detection.checkpoint({ alerts: [{ alert: judged, dedupKey: 'k' }], outbox: [{ alert: judged, event: 'feedback', sinks: ['hook'], atMs: NOW }] });
    expect(await s.detection.getAlert('c-1')).toEqual(judged);
    // Its verdict waits to be delivered: it stays.
    expect((await s.alertRetention.pruneAlerts(CUTOFF, 10)).alerts).toBe(0);
    expect((await s.outbox.deliveries('c-1', 10)).map((d) => d.state)).toEqual(['pending']);
  });
}
