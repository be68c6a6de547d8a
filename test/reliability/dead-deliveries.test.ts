/**
 * An operator's retry and discard of dead alert deliveries on a running `conduct serve`
 * (`POST /api/v1/alerts/{id}/deliveries/retry` and `/discard`). A webhook that refuses everything
 * kills the deliveries (no retries); once it is mended, a retry delivers the dead one; a discard
 * gives the other up for good, and the closed alert then ages out with alert retention like any
 * delivered one. Real OTLP from the official exporter, a real webhook receiver, the real retention
 * timer (shortened to 100 ms).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConduct, type TestConduct } from '../support/conduct.js';
import { recordingHttp, until } from '../support/receivers.js';
import { HOUR, MINUTE, SpanKind, Traffic, type SentTrace } from '../support/traffic.js';

const T0 = Date.UTC(2025, 6, 1, 9, 0, 0);
const DEPLOYER = { 'service.namespace': 'ci', 'service.name': 'deployer' };

/** A webhook receiver that refuses (503) every delivery while `refusing`, and records the rest. */
async function webhook() {
  const state = { refusing: true };
  const receiver = await recordingHttp({ refuse: () => state.refusing });
  return {
    ...receiver,
    state,
    refused: () => receiver.received.length - receiver.answered.length,
    delivered: () => receiver.answered.map((r) => String(r.headers['x-conduct-delivery'])),
  };
}

interface Delivery {
  sink: string;
  seq: number;
  event: string;
  state: string;
  attempts: number;
  deadAt?: string;
  discardedAt?: string;
  deliveredAt?: string;
}

let conduct: TestConduct;
let traffic: Traffic;
let hook: Awaited<ReturnType<typeof webhook>>;
const breach: Record<'retried' | 'discarded', { trace?: SentTrace; id?: string }> = { retried: {}, discarded: {} };

const call = (host: string) => ({
  name: 'call',
  kind: SpanKind.CLIENT,
  at: 0,
  attributes: { 'http.request.method': 'PUT', 'url.full': `https://${host}/x`, 'server.address': host },
});
const known = () => ({ ...call('kube-api'), attributes: { ...call('kube-api').attributes, 'peer.service': 'kube-api' } });
const path = (id: string, rest = '') => `/api/v1/alerts/${encodeURIComponent(id)}${rest}`;
const deliveries = async (id: string) => (await conduct.get<{ deliveries: Delivery[] }>(path(id))).body.deliveries;

beforeAll(async () => {
  hook = await webhook();
  conduct = await startTestConduct(
    {
      learning: { minCalls: 3, period: 0 },
      policies: [{ match: 'svc:ci/*', expectedPeers: ['kube-api'] }],
      storage: { retention: '0', alertRetention: '2h' },
      // No retries: the first refusal kills a delivery.
      alerts: { sinks: [{ type: 'webhook', name: 'hook', endpoint: `${hook.url}/hook`, retries: 0 }] },
    },
    undefined,
    { retentionIntervalMs: 100 },
  );
  traffic = new Traffic(conduct, 'http-proto');
  for (let i = 0; i < 3; i++) await traffic.trace(T0 + i * MINUTE, DEPLOYER, known());
  breach.retried.trace = await traffic.trace(T0 + 10 * MINUTE, DEPLOYER, call('drop-1.example.com'));
  breach.discarded.trace = await traffic.trace(T0 + 11 * MINUTE, DEPLOYER, call('drop-2.example.com'));
  await conduct.flush();
  const alerts = (await conduct.get<{ alerts: Array<{ id: string; traceId: string }> }>('/api/v1/alerts?limit=100')).body.alerts;
  for (const b of Object.values(breach)) b.id = alerts.find((a) => a.traceId === b.trace!.traceId)?.id;
  expect(alerts).toHaveLength(2);
  expect(Object.values(breach).every((b) => b.id)).toBe(true);
  // Both deliveries die at their first refusal.
  for (const b of Object.values(breach)) await until(async () => (await deliveries(b.id!)).every((d) => d.state === 'dead'));
  expect(hook.refused()).toBe(2);
});

afterAll(async () => {
  await traffic?.close();
  await conduct?.dispose();
  await hook?.close();
});

describe('dead alert deliveries: retry and discard by an operator', () => {
  it('refuses a malformed choice, an unknown alert and an unknown action, and changes nothing', async () => {
    const id = breach.retried.id!;
    for (const body of [{ seq: 0 }, { seq: 1.5 }, { sink: 7 }, { sink: '' }, ['hook']]) {
      const r = await conduct.post(path(id, '/deliveries/retry'), body);
      expect(r.status, JSON.stringify(body)).toBe(400);
    }
    expect((await conduct.post(path('no-such-alert', '/deliveries/discard'), {})).status).toBe(404);
    expect((await conduct.post(path(id, '/deliveries/forget'), {})).status).toBe(404);
    expect((await deliveries(id)).map((d) => d.state)).toEqual(['dead']);
  });

  it('retry: the dead delivery is pending again with its retries anew and goes out once the receiver is mended', async () => {
    const id = breach.retried.id!;
    hook.state.refusing = false;
    // Another sink's name or another event: nothing of this alert's is chosen.
    const none = await conduct.post<{ changed: unknown[] }>(path(id, '/deliveries/retry'), { sink: 'other' });
    expect([none.status, none.body.changed]).toEqual([200, []]);
    const r = await conduct.post<{ changed: Array<{ sink: string; seq: number }>; deliveries: Delivery[] }>(path(id, '/deliveries/retry'), { sink: 'hook', seq: 1 });
    expect(r.status).toBe(200);
    expect(r.body.changed).toEqual([{ sink: 'hook', seq: 1 }]);
    await until(() => hook.delivered().includes(`${id}/1`));
    await until(async () => (await deliveries(id))[0]?.state === 'delivered');
    expect((await deliveries(id))[0]).toMatchObject({ sink: 'hook', seq: 1, state: 'delivered', attempts: 1 });
    // Delivered now: a second retry changes nothing.
    expect((await conduct.post<{ changed: unknown[] }>(path(id, '/deliveries/retry'), {})).body.changed).toEqual([]);
  });

  it('discard: the dead delivery is given up for good, and the closed alert ages out like a delivered one', async () => {
    const id = breach.discarded.id!;
    const r = await conduct.post<{ changed: Array<{ sink: string; seq: number }>; deliveries: Delivery[] }>(path(id, '/deliveries/discard'));
    expect(r.status).toBe(200);
    expect(r.body.changed).toEqual([{ sink: 'hook', seq: 1 }]);
    expect(r.body.deliveries[0]).toMatchObject({ sink: 'hook', seq: 1, state: 'discarded' });
    expect(Date.parse(r.body.deliveries[0]!.discardedAt!)).toBeGreaterThan(0);
    expect(hook.delivered().some((d) => d.startsWith(`${id}/`))).toBe(false);
    const metrics = await (await fetch(`${conduct.api}/metrics`)).text();
    expect(metrics).toContain('conduct_sink_outbox_entries{sink="hook",state="discarded"} 1');

    // Closed with a verdict (delivered: the receiver is mended), then three hours later in event
    // time it is past the 2h alert retention: it goes, as a dead delivery would have kept it.
    expect((await conduct.post(path(id, '/feedback'), { verdict: 'acknowledged' })).status).toBe(200);
    await until(() => hook.delivered().includes(`${id}/2`));
    await until(async () => (await deliveries(id)).every((d) => d.state !== 'pending'));
    await traffic.trace(T0 + 11 * MINUTE + 3 * HOUR, DEPLOYER, known());
    await conduct.flush();
    await until(async () => (await conduct.get(path(id))).status === 404);
    // The open (retried) alert stays.
    expect((await conduct.get(path(breach.retried.id!))).status).toBe(200);
  });
});
