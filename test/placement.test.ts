/**
 * A certificate used from another segment or cluster (issue 16), end to end: real OTLP from the
 * official SDK exporter into a running conduct. A settlement job in cluster prod-a presents its
 * client certificate to the ledger (mutual TLS: the ledger's server span names the subject, so the
 * certificate owns the call). A failover of the same job to the standby cluster of the same region
 * and account is placement and stays low; the same certificate presented by another workload, in
 * the standby cluster or on a new node of the usual one, is a new source at medium or above.
 */
import { describe, expect, it } from 'vitest';
import type { ConfigInput } from '@conduct/backend';
import type { TestConduct } from './support/conduct.js';
import { HOUR, MINUTE, SEVERITY_RANK, SpanKind, Traffic, alertsOf, describeAlerts, seeded, sendersPerTest, serious, type SpanSpec } from './support/traffic.js';

const CONFIG: ConfigInput = { learning: { minCalls: 20, period: '1h' } };
const SUBJECT = 'CN=settlement-batch.finance.svc,OU=workloads,O=Example Corp';
/** Two hours of training every 3 minutes from T0, then the case 10 minutes after. */
const T0 = Date.UTC(2026, 9, 14, 8, 0, 0);
const TRAINING_END = T0 + 2 * HOUR;
const AFTER = TRAINING_END + 10 * MINUTE;

const senders = sendersPerTest();

const rnd = seeded(33);
const ground = { 'cloud.region': 'eu-west-1', 'cloud.account.id': '222222222222' };
/** A pod of `service` (namespace/name) in `cluster`. */
const pod = (service: string, cluster: string) => ({
  'service.namespace': service.split('/')[0]!,
  'service.name': service.split('/')[1]!,
  ...ground,
  'k8s.cluster.name': cluster,
  'host.name': `node-${Math.floor(rnd() * 0xffff).toString(16)}`,
  'k8s.pod.name': `${service.split('/')[1]}-${Math.floor(rnd() * 0xffffff).toString(36)}`,
});
const LEDGER = { 'service.namespace': 'finance', 'service.name': 'ledger', ...ground, 'k8s.cluster.name': 'prod-a', 'host.name': 'ledger-0' };

/** One balance read: the job's client span, the ledger's server span naming the certificate and the client address. */
function balanceRead(i: number, clientAddress: string): SpanSpec {
  const account = `ACC-${100000 + ((i * 7919) % 900000)}`;
  return {
    name: 'GET',
    kind: SpanKind.CLIENT,
    at: 0,
    duration: 40,
    attributes: { 'http.request.method': 'GET', 'url.full': `https://ledger.finance.svc:8443/accounts/${account}/balance`, 'server.address': 'ledger.finance.svc', 'server.port': 8443 },
    children: [
      {
        name: 'GET /accounts/{account}/balance',
        kind: SpanKind.SERVER,
        at: 2,
        duration: 30,
        resource: LEDGER,
        attributes: {
          'http.request.method': 'GET',
          'http.route': '/accounts/{account}/balance',
          'tls.client.subject': SUBJECT,
          'client.address': clientAddress,
          'http.response.status_code': 200,
        },
      },
    ],
  };
}

async function trained(): Promise<{ conduct: TestConduct; traffic: Traffic; identity: string }> {
  const { conduct, traffic } = await senders.start(CONFIG);
  // The job's pods run on two nodes of prod-a (two /24s).
  for (let i = 0, at = T0; at < TRAINING_END; i++, at += 3 * MINUTE) await traffic.trace(at, pod('finance/settlement', 'prod-a'), balanceRead(i, `10.1.${i % 2}.${20 + (i % 30)}`));
  await conduct.flush();
  const list = await conduct.get<{ identities: Array<{ id: string; status: string }> }>('/api/v1/identities');
  const cert = list.body.identities.find((x) => x.id.startsWith('cert:') || x.id.includes('settlement-batch'));
  expect(cert, JSON.stringify(list.body.identities.map((x) => x.id))).toBeDefined();
  expect(cert!.status).toBe('enforcing');
  expect(serious(await alertsOf(conduct, cert!.id)), 'training must be quiet').toEqual([]);
  return { conduct, traffic, identity: cert!.id };
}

describe('a certificate used from another segment or cluster (real OTLP into a running conduct)', () => {
  it('the same job failed over to the standby cluster of its region and account stays low', async () => {
    const { conduct, traffic, identity } = await trained();
    const moved = await traffic.trace(AFTER, pod('finance/settlement', 'prod-b'), balanceRead(500, '10.2.7.15'));
    await conduct.flush();
    const alerts = await alertsOf(conduct, identity);
    expect(serious(alerts), describeAlerts(alerts)).toEqual([]);
    const low = alerts.find((a) => a.traceId === moved.traceId);
    expect(low, describeAlerts(alerts)).toMatchObject({ detector: 'new-source', severity: 'low' });
  });

  /** The certificate presented by tools/debug-shell from `cluster` and `clientAddress`: one incident, its new-source finding medium or above. */
  async function expectStolen(cluster: string, clientAddress: string): Promise<void> {
    const { conduct, traffic, identity } = await trained();
    const stolen = await traffic.trace(AFTER, pod('tools/debug-shell', cluster), balanceRead(501, clientAddress));
    await conduct.flush();
    const alerts = await alertsOf(conduct, identity);
    const onTrace = alerts.filter((a) => a.traceId === stolen.traceId);
    expect(onTrace.length, describeAlerts(alerts)).toBe(1);
    expect(SEVERITY_RANK[onTrace[0]!.severity], describeAlerts(alerts)).toBeGreaterThanOrEqual(SEVERITY_RANK.medium);
    const source = onTrace[0]!.findings.find((f) => f.detector === 'new-source')!;
    expect(SEVERITY_RANK[source.severity], describeAlerts(alerts)).toBeGreaterThanOrEqual(SEVERITY_RANK.medium);
    expect(source.explanation).toContain('"tools/debug-shell", a service it never acted through');
  }

  it('the certificate presented by another workload in the standby cluster is a new source at medium or above', () => expectStolen('prod-b', '10.2.7.16'));

  it('the certificate presented by another workload on a new node of the usual cluster is a new source at medium or above', () => expectStolen('prod-a', '10.1.44.9'));
});
