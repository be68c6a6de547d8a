/**
 * The alert outbox part of the storage contract as tests (contracts.ts, "(d)"), run by
 * `runStoreConformance` on every backend.
 */
import { expect, it } from 'vitest';
import type { StorageBackend } from './contracts.js';
import { testAlert } from './testdata/fixtures.js';

const NOW = 1_800_000_000_000;
const LEASE = 30_000;

export function outboxConformance(fresh: () => Promise<StorageBackend>): void {
  it('enqueues an event per sink in the checkpoint that stores its alert, numbered per alert', async () => {
    const s = await fresh();
    const a = testAlert({ id: 'o1', identity: 'svc:o' });
    await s.detection.checkpoint({
      alerts: [{ alert: a, dedupKey: 'k' }],
      outbox: [{ alert: a, event: 'alert', sinks: ['hook', 'siem', 'hook'], atMs: NOW }],
    });
    // A repeat changes the alert: the next event carries the new count, sequence 2.
    const repeat = { ...a, count: 2 };
    await s.detection.checkpoint({
      alerts: [{ alert: repeat, dedupKey: 'k' }],
      outbox: [{ alert: repeat, event: 'alert', sinks: ['hook'], atMs: NOW + 1 }],
    });
    expect(await s.outbox.counts()).toEqual([
      { sink: 'hook', state: 'pending', count: 2 },
      { sink: 'siem', state: 'pending', count: 1 },
    ]);
    const claimed = await s.outbox.claim('hook', NOW + 5, 10, LEASE);
    expect(claimed.map((e) => [e.alertId, e.seq, e.sink, e.event, e.alert.count, e.attempts])).toEqual([
      ['o1', 1, 'hook', 'alert', 1, 1],
      ['o1', 2, 'hook', 'alert', 2, 1],
    ]);
    expect(claimed[0]!.alert).toEqual(a);
    // Claimed: not due again before the lease ends, then claimable again (a worker died mid-attempt).
    expect(await s.outbox.claim('hook', NOW + 6, 10, LEASE)).toEqual([]);
    expect(await s.outbox.pending('hook')).toEqual({ count: 2, nextDueMs: NOW + 5 + LEASE });
    const again = await s.outbox.claim('hook', NOW + 5 + LEASE, 1, LEASE);
    expect(again.map((e) => [e.seq, e.attempts])).toEqual([[1, 2]]);
    expect((await s.outbox.claim('siem', NOW, 10, LEASE)).map((e) => [e.seq, e.sink])).toEqual([[1, 'siem']]);
  });

  it('enqueues nothing for an unknown alert or without sinks, and nothing when the checkpoint fails', async () => {
    const s = await fresh();
    const ghost = testAlert({ id: 'ghost', identity: 'svc:o' });
    const quiet = testAlert({ id: 'quiet', identity: 'svc:o' });
    await s.detection.checkpoint({
      alerts: [{ alert: quiet, dedupKey: 'q' }],
      outbox: [
        { alert: ghost, event: 'alert', sinks: ['hook'], atMs: NOW },
        { alert: quiet, event: 'alert', sinks: [], atMs: NOW },
      ],
    });
    expect(await s.outbox.counts()).toEqual([]);
    const ok = testAlert({ id: 'o2', identity: 'svc:o' });
    await expect(
      s.detection.checkpoint({
        alerts: [
          { alert: ok, dedupKey: 'k' },
          { alert: testAlert({ id: 'bad', identity: 'svc:o' }), dedupKey: null as unknown as string },
        ],
        outbox: [{ alert: ok, event: 'alert', sinks: ['hook'], atMs: NOW }],
      }),
    ).rejects.toThrow();
    expect(await s.outbox.counts()).toEqual([]);
    expect(await s.outbox.claim('hook', NOW, 10, LEASE)).toEqual([]);
    // The sequence did not move either: the next event of the alert is number 1.
    await s.detection.checkpoint({ alerts: [{ alert: ok, dedupKey: 'k' }], outbox: [{ alert: ok, event: 'alert', sinks: ['hook'], atMs: NOW }] });
    expect((await s.outbox.claim('hook', NOW, 10, LEASE)).map((e) => e.seq)).toEqual([1]);
  });

  it('marks deliveries delivered, retried or dead, shows them per alert, and prunes only the delivered', async () => {
    const s = await fresh();
    const a = testAlert({ id: 'o3', identity: 'svc:o' });
    await s.detection.checkpoint({ alerts: [{ alert: a, dedupKey: 'k' }], outbox: [{ alert: a, event: 'alert', sinks: ['hook', 'logs', 'siem'], atMs: NOW }] });
    const [hook] = await s.outbox.claim('hook', NOW, 1, LEASE);
    const [logs] = await s.outbox.claim('logs', NOW, 1, LEASE);
    const [siem] = await s.outbox.claim('siem', NOW, 1, LEASE);
    expect(await s.outbox.delivered(hook!, NOW + 10)).toBe(true);
    expect(await s.outbox.delivered(hook!, NOW + 11)).toBe(false);
    expect(await s.outbox.failed(logs!, 'POST http://x answered 503', NOW + 500, NOW + 10)).toBe(true);
    expect(await s.outbox.failed(siem!, 'answered 400', undefined, NOW + 10)).toBe(true);
    expect(await s.outbox.failed(siem!, 'again', NOW + 1, NOW + 11)).toBe(false);
    // The retried one is due at its retry time, not before.
    expect(await s.outbox.claim('logs', NOW + 499, 1, LEASE)).toEqual([]);
    expect(await s.outbox.pending('logs')).toEqual({ count: 1, nextDueMs: NOW + 500 });
    expect(await s.outbox.pending('hook')).toEqual({ count: 0 });

    const records = await s.outbox.deliveries('o3', 10);
    expect(records.map((r) => [r.sink, r.seq, r.event, r.state, r.attempts, r.lastError ?? null, r.doneMs ?? null, r.dueMs ?? null])).toEqual([
      ['hook', 1, 'alert', 'delivered', 1, null, NOW + 10, null],
      ['logs', 1, 'alert', 'pending', 1, 'POST http://x answered 503', null, NOW + 500],
      ['siem', 1, 'alert', 'dead', 1, 'answered 400', NOW + 10, null],
    ]);
    expect(records.every((r) => r.alertId === 'o3' && r.createdMs === NOW)).toBe(true);
    expect(await s.outbox.deliveries('nothing', 10)).toEqual([]);

    // A restart: what was backing off is due now.
    expect(await s.outbox.resume('logs', NOW + 20)).toBe(1);
    expect((await s.outbox.claim('logs', NOW + 20, 1, LEASE)).map((e) => e.attempts)).toEqual([2]);

    expect(await s.outbox.pruneDelivered(NOW + 10, 100)).toBe(0);
    expect(await s.outbox.pruneDelivered(NOW + 11, 100)).toBe(1);
    expect((await s.outbox.counts()).map((c) => [c.sink, c.state, c.count])).toEqual([
      ['logs', 'pending', 1],
      ['siem', 'dead', 1],
    ]);
  });

  it('redrives or discards only dead deliveries, all of an alert or one sink and event', async () => {
    const s = await fresh();
    const a = testAlert({ id: 'o-dead', identity: 'svc:o' });
    const other = testAlert({ id: 'o-other', identity: 'svc:o' });
    await s.detection.checkpoint({
      alerts: [a, other].map((alert) => ({ alert, dedupKey: alert.id })),
      outbox: [
        { alert: a, event: 'alert', sinks: ['hook', 'siem', 'logs'], atMs: NOW },
        { alert: a, event: 'feedback', sinks: ['hook'], atMs: NOW + 1 },
        { alert: other, event: 'alert', sinks: ['hook'], atMs: NOW },
      ],
    });
    // Every delivery of both alerts dies but logs' (delivered).
    for (const sink of ['hook', 'siem', 'logs']) {
      for (const e of await s.outbox.claim(sink, NOW + 5, 10, LEASE)) {
        if (sink === 'logs') expect(await s.outbox.delivered(e, NOW + 6)).toBe(true);
        else expect(await s.outbox.failed(e, `${sink} refused`, undefined, NOW + 6)).toBe(true);
      }
    }
    const stateOf = async (id: string) => (await s.outbox.deliveries(id, 10)).map((d) => [d.sink, d.seq, d.state, d.attempts, d.dueMs ?? null, d.doneMs ?? null]);

    // One event of one sink: pending again, due now, attempts from 0, the last error kept.
    expect(await s.outbox.redrive({ alertId: 'o-dead', sink: 'hook', seq: 1 }, NOW + 100)).toEqual([{ alertId: 'o-dead', seq: 1, sink: 'hook' }]);
    expect(await stateOf('o-dead')).toEqual([
      ['hook', 2, 'dead', 1, null, NOW + 6],
      ['hook', 1, 'pending', 0, NOW + 100, null],
      ['logs', 1, 'delivered', 1, null, NOW + 6],
      ['siem', 1, 'dead', 1, null, NOW + 6],
    ]);
    expect((await s.outbox.deliveries('o-dead', 10)).find((d) => d.sink === 'hook' && d.seq === 1)?.lastError).toBe('hook refused');
    const [again] = await s.outbox.claim('hook', NOW + 100, 1, LEASE);
    expect([again?.alertId, again?.seq, again?.attempts]).toEqual(['o-dead', 1, 1]);
    // Not dead (pending, delivered) or no match: nothing changes.
    expect(await s.outbox.redrive({ alertId: 'o-dead', sink: 'hook', seq: 1 }, NOW + 101)).toEqual([]);
    expect(await s.outbox.discard({ alertId: 'o-dead', sink: 'logs' }, NOW + 101)).toEqual([]);
    expect(await s.outbox.redrive({ alertId: 'nothing' }, NOW + 101)).toEqual([]);

    // The rest of the alert's dead ones: discarded, done now; the other alert's stay dead.
    const discarded = await s.outbox.discard({ alertId: 'o-dead' }, NOW + 200);
    expect(discarded.map((k) => `${k.sink}/${k.seq}`).sort()).toEqual(['hook/2', 'siem/1']);
    expect((await stateOf('o-dead')).filter((d) => d[2] === 'discarded')).toEqual([
      ['hook', 2, 'discarded', 1, null, NOW + 200],
      ['siem', 1, 'discarded', 1, null, NOW + 200],
    ]);
    expect((await stateOf('o-other')).map((d) => d[2])).toEqual(['dead']);
    // A discarded delivery is not redriven, nor pruned with the delivered.
    expect(await s.outbox.redrive({ alertId: 'o-dead' }, NOW + 300)).toEqual([]);
    await s.outbox.pruneDelivered(NOW + 10_000, 100);
    expect((await s.outbox.counts()).map((c) => [c.sink, c.state, c.count])).toEqual([
      ['hook', 'dead', 1],
      ['hook', 'discarded', 1],
      ['hook', 'pending', 1],
      ['siem', 'discarded', 1],
    ]);
  });

  it('raises the delivery sequence of an alert to a given one (a copy), never lowers it, and numbers events after it', async () => {
    const s = await fresh();
    const a = testAlert({ id: 'o5', identity: 'svc:o' });
    expect(await s.outbox.sequence('o5')).toBe(0);
    await s.detection.checkpoint({ alerts: [{ alert: a, dedupKey: 'k', deliverySeq: 7 }] });
    expect(await s.outbox.sequence('o5')).toBe(7);
    // A later write of the alert without a sequence, or with a lower one, keeps it.
    await s.detection.checkpoint({ alerts: [{ alert: { ...a, count: 2 }, dedupKey: 'k' }] });
    await s.detection.checkpoint({ alerts: [{ alert: a, dedupKey: 'k', deliverySeq: 3 }], outbox: [{ alert: a, event: 'alert', sinks: ['hook'], atMs: NOW }] });
    expect(await s.outbox.sequence('o5')).toBe(8);
    expect((await s.outbox.claim('hook', NOW, 10, LEASE)).map((e) => e.seq)).toEqual([8]);
    expect(await s.outbox.sequence('unknown')).toBe(0);
  });

  it('keeps texts with NUL and marker characters intact in alerts, sinks and errors', async () => {
    const s = await fresh();
    const a = testAlert({ id: 'o\u00004', identity: 'svc:\u0001o', title: 'x\u0000y' });
    await s.detection.checkpoint({ alerts: [{ alert: a, dedupKey: 'k' }], outbox: [{ alert: a, event: 'feedback', sinks: ['s\u00001'], atMs: NOW }] });
    const [e] = await s.outbox.claim('s\u00001', NOW, 1, LEASE);
    expect(e?.alert).toEqual(a);
    expect(e?.event).toBe('feedback');
    await s.outbox.failed(e!, 'err\u0000or', NOW + 1, NOW);
    expect((await s.outbox.deliveries(a.id, 1)).map((r) => [r.sink, r.lastError])).toEqual([['s\u00001', 'err\u0000or']]);
  });
}
