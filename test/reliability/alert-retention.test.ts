/**
 * Alert retention on a running `conduct serve`: closed alerts last seen longer ago than
 * `storage.alertRetention` (event time, behind the newest stored chain) are deleted by the
 * background sweep with their held chains and delivered deliveries; an open alert, and a closed
 * one whose delivery has not gone through yet, stay until they qualify. Real OTLP from the official
 * exporter, a real webhook receiver, the real retention timer (shortened to 100 ms).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConduct, type TestConduct } from '../support/conduct.js';
import { recordingHttp, until } from '../support/receivers.js';
import { HOUR, MINUTE, SpanKind, Traffic, type SentTrace } from '../support/traffic.js';

const T0 = Date.UTC(2025, 5, 1, 9, 0, 0);
const DEPLOYER = { 'service.namespace': 'ci', 'service.name': 'deployer' };

/** A webhook receiver that refuses (503) every delivery whose alert mentions a text in `refusing`. */
async function webhook() {
  const refusing = new Set<string>();
  const receiver = await recordingHttp({ refuse: (r) => [...refusing].some((text) => r.body.toString('utf8').includes(text)) });
  return { ...receiver, refusing, delivered: () => receiver.answered.map((r) => String(r.headers['x-conduct-delivery'])) };
}

let conduct: TestConduct;
let traffic: Traffic;
let hook: Awaited<ReturnType<typeof webhook>>;
/** The deployer's three breaches: acknowledged (goes), left open (stays), acknowledged but undelivered (stays until delivered). */
const breach: Record<'acked' | 'open' | 'undelivered', { trace?: SentTrace; id?: string }> = { acked: {}, open: {}, undelivered: {} };

const deletedTotal = async (): Promise<number> => {
  const text = await (await fetch(`${conduct.api}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('conduct_retention_alerts_deleted_total '));
  return line ? Number(line.split(' ')[1]) : NaN;
};
const status = async (id: string) => (await conduct.get(`/api/v1/alerts/${encodeURIComponent(id)}`)).status;

const call = (host: string) => ({
  name: 'call',
  kind: SpanKind.CLIENT,
  at: 0,
  attributes: { 'http.request.method': 'PUT', 'url.full': `https://${host}/x`, 'server.address': host },
});

beforeAll(async () => {
  hook = await webhook();
  conduct = await startTestConduct(
    {
      learning: { minCalls: 3, period: 0 },
      policies: [{ match: 'svc:ci/*', expectedPeers: ['kube-api'] }],
      // Chains (and the held copies) are kept: what goes with an alert goes by its retention.
      storage: { retention: '0', alertRetention: '2h' },
      alerts: { sinks: [{ type: 'webhook', name: 'hook', endpoint: `${hook.url}/hook`, retries: 1000, backoff: '50ms' }] },
    },
    undefined,
    { retentionIntervalMs: 100 },
  );
  traffic = new Traffic(conduct, 'http-proto');
  // The third breach's deliveries (raised and verdict) are refused: they stay pending.
  hook.refusing.add('drop-3.example.com');
  for (let i = 0; i < 3; i++) {
    await traffic.trace(T0 + i * MINUTE, DEPLOYER, { ...call('kube-api'), attributes: { ...call('kube-api').attributes, 'peer.service': 'kube-api' } });
  }
  breach.acked.trace = await traffic.trace(T0 + 10 * MINUTE, DEPLOYER, call('drop-1.example.com'));
  breach.open.trace = await traffic.trace(T0 + 9 * MINUTE, DEPLOYER, call('drop-2.example.com'));
  breach.undelivered.trace = await traffic.trace(T0 + 11 * MINUTE, DEPLOYER, call('drop-3.example.com'));
  await conduct.flush();
  const alerts = (await conduct.get<{ alerts: Array<{ id: string; traceId: string; status: string }> }>('/api/v1/alerts?limit=100')).body.alerts;
  for (const b of Object.values(breach)) b.id = alerts.find((a) => a.traceId === b.trace!.traceId)?.id;
  expect(Object.values(breach).every((b) => b.id)).toBe(true);
  expect(alerts).toHaveLength(3);

  for (const b of [breach.acked, breach.undelivered]) {
    expect((await conduct.post(`/api/v1/alerts/${encodeURIComponent(b.id!)}/feedback`, { verdict: 'acknowledged' })).status).toBe(200);
  }
  // The acknowledged alert's two events (raised, verdict) are delivered.
  await until(() => hook.delivered().filter((d) => d.startsWith(`${breach.acked.id}/`)).length === 2);
});

afterAll(async () => {
  await traffic?.close();
  await conduct?.dispose();
  await hook?.close();
});

describe('alert retention on a running server (storage.alertRetention)', () => {
  it('deletes the closed, delivered alert once newer data puts it past retention; the open and the undelivered ones stay', async () => {
    const storage = conduct.running.storage;
    // The breach held its chain out of the deployer's baseline.
    expect((await storage.detection.heldByAlert(breach.acked.id!)).map((h) => h.traceId)).toEqual([breach.acked.trace!.traceId]);
    // Three hours later in event time: every breach is now older than the 2h alert retention.
    await traffic.trace(T0 + 10 * MINUTE + 3 * HOUR, DEPLOYER, { ...call('kube-api'), attributes: { ...call('kube-api').attributes, 'peer.service': 'kube-api' } });
    await conduct.flush();
    await until(async () => (await status(breach.acked.id!)) === 404);
    expect(await deletedTotal()).toBe(1);
    // The sweep that deleted it read the other two in the same step: they stay.
    expect(await status(breach.open.id!)).toBe(200);
    expect(await status(breach.undelivered.id!)).toBe(200);
    expect(await storage.detection.heldByAlert(breach.acked.id!)).toEqual([]);
    expect(await storage.outbox.deliveries(breach.acked.id!, 10)).toEqual([]);
    expect((await storage.outbox.deliveries(breach.undelivered.id!, 10)).map((d) => d.state)).toEqual(['pending', 'pending']);
  });

  it('deletes the undelivered one once its deliveries went through', async () => {
    hook.refusing.clear();
    await until(async () => (await status(breach.undelivered.id!)) === 404);
    expect(hook.delivered().filter((d) => d.startsWith(`${breach.undelivered.id}/`)).sort()).toEqual([`${breach.undelivered.id}/1`, `${breach.undelivered.id}/2`]);
    expect(await deletedTotal()).toBe(2);
    expect(await status(breach.open.id!)).toBe(200);
  });
});
