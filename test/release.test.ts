/**
 * Releases end to end (issue 16, change awareness): real OTLP from the official SDK exporters
 * into a running conduct. A storefront learns on version 3.1.0, then its new replicas run 3.2.0.
 * A benign release that adds an endpoint on a known service and a new internal dependency is one
 * low `release` finding and nothing of medium or above, learned once its grace period is over
 * (event time), also across a restart of conduct in between; a release judged malicious during its
 * grace period is never learned; a poisoned release that also contacts a new external host is an
 * attack (medium or above).
 */
import { describe, expect, it } from 'vitest';
import type { ConfigInput } from '@conduct/backend';
import type { TestConduct } from './support/conduct.js';
import { HOUR, MINUTE, SEVERITY_RANK, SpanKind, Traffic, alertsOf, describeAlerts, seeded, sendersPerTest, serious, type ApiAlert, type Sender, type SpanSpec } from './support/traffic.js';

const CONFIG: ConfigInput = { learning: { minCalls: 20, period: '1h' } };
const T0 = Date.UTC(2026, 9, 12, 8, 0, 0);
const TRAINING_MS = 2 * HOUR;
const EVERY_MS = 3 * MINUTE;
const RELEASE_AT = T0 + TRAINING_MS + 10 * MINUTE;
const STOREFRONT = 'svc:shop/storefront';
const GRACE_MS = 6 * HOUR;
/** The first product page after the release's grace period (6h by default) is over. */
const AFTER_GRACE = RELEASE_AT + GRACE_MS + 10 * MINUTE;
const REVIEWS = 'GET /products/{id}/reviews';

interface IdentityView {
  baseline: { operations: { key: string }[]; peers: { key: string }[] };
}
const operationsOf = async (c: TestConduct) =>
  (await c.get<IdentityView>(`/api/v1/identities/${encodeURIComponent(STOREFRONT)}`)).body.baseline.operations.map((o) => o.key);
const peersOf = async (c: TestConduct) => (await c.get<IdentityView>(`/api/v1/identities/${encodeURIComponent(STOREFRONT)}`)).body.baseline.peers.map((p) => p.key);

const senders = sendersPerTest();

const rnd = seeded(16);
/** A storefront replica of `version`: every pod has its own host name. */
const replica = (version: string) => ({
  'service.namespace': 'shop',
  'service.name': 'storefront',
  'service.version': version,
  'cloud.region': 'eu-west-1',
  'cloud.account.id': '111111111111',
  'k8s.cluster.name': 'prod-a',
  'host.name': `node-${Math.floor(rnd() * 0xffff).toString(16)}`,
  'k8s.pod.name': `storefront-${version.replace(/\./g, '-')}-${Math.floor(rnd() * 0xffffff).toString(36)}`,
});

const get = (at: number, url: string): SpanSpec => {
  const host = new URL(url).hostname;
  return { name: 'GET', kind: SpanKind.CLIENT, at, attributes: { 'http.request.method': 'GET', 'url.full': url, 'server.address': host, 'server.port': Number(new URL(url).port || 443) } };
};

/** A product page: the catalog entry, its price, and (on some pages) the stock level. */
function productPage(i: number, extra: SpanSpec[] = []): SpanSpec {
  const id = 1000 + ((i * 37) % 500);
  const children = [get(1, `http://catalog.shop.svc:8080/products/${id}`), get(10, `http://pricing.shop.svc:8080/prices/${id}`)];
  if (i % 3 === 0) children.push(get(20, `http://inventory.shop.svc:8080/stock/${id}`));
  return { name: 'GET /products/{id}', kind: SpanKind.SERVER, at: 0, duration: 80, attributes: { 'http.request.method': 'GET', 'http.route': '/products/{id}' }, children: [...children, ...extra] };
}

/** What 3.2.0 adds to a product page: the reviews endpoint of the catalog and the new recommendations service. */
const releaseCalls = (i: number): SpanSpec[] => [
  get(30, `http://catalog.shop.svc:8080/products/${1000 + i}/reviews`),
  get(40, `http://recommendations.shop.svc:8080/similar/${1000 + i}`),
];

async function trained(dir?: string): Promise<Sender> {
  const { conduct, traffic } = await senders.start(CONFIG, dir);
  for (let i = 0, at = T0; at < T0 + TRAINING_MS; i++, at += EVERY_MS) await traffic.trace(at, replica('3.1.0'), productPage(i));
  await conduct.flush();
  const res = await conduct.get<{ status: string }>(`/api/v1/identities/${encodeURIComponent(STOREFRONT)}`);
  expect(res.body.status).toBe('enforcing');
  expect(serious(await alertsOf(conduct, STOREFRONT)), 'training must be quiet').toEqual([]);
  return { conduct, traffic };
}

/** After the grace period of a release that was never learned: its new operation raises one alert of medium or above. */
async function expectStillNew(conduct: TestConduct, traffic: Traffic): Promise<void> {
  const after = await traffic.trace(AFTER_GRACE, replica('3.2.0'), productPage(30, releaseCalls(30)));
  await conduct.flush();
  expect(await operationsOf(conduct)).not.toContain(REVIEWS);
  const alerts = await alertsOf(conduct, STOREFRONT);
  const onTrace = alerts.filter((a) => a.traceId === after.traceId);
  expect(onTrace.length, describeAlerts(alerts)).toBe(1);
  expect(SEVERITY_RANK[onTrace[0]!.severity], describeAlerts(alerts)).toBeGreaterThanOrEqual(SEVERITY_RANK.medium);
  expect(onTrace[0]!.detectors).toContain('new-operation');
  expect(onTrace[0]!.detectors).not.toContain('release');
}

describe('releases (real OTLP into a running conduct)', () => {
  it('a benign release adding an endpoint and an internal dependency is one low release finding, learned after its grace period, nothing medium or above', async () => {
    const { conduct, traffic } = await trained();
    // The rollout: old replicas keep serving while new ones start.
    await traffic.trace(RELEASE_AT - MINUTE, replica('3.1.0'), productPage(1));
    const first = await traffic.trace(RELEASE_AT, replica('3.2.0'), productPage(2, releaseCalls(2)));
    for (let k = 1; k <= 6; k++) await traffic.trace(RELEASE_AT + k * MINUTE, replica(k % 2 ? '3.2.0' : '3.1.0'), productPage(2 + k, k % 2 ? releaseCalls(2 + k) : []));
    await conduct.flush();

    const alerts = await alertsOf(conduct, STOREFRONT);
    expect(serious(alerts), describeAlerts(alerts)).toEqual([]);
    expect(alerts.length, describeAlerts(alerts)).toBe(1);
    const release = alerts[0]!;
    expect(release).toMatchObject({ traceId: first.traceId, severity: 'low', detector: 'release', detectors: ['release'] });
    expect(release.findings).toHaveLength(1);
    const finding = release.findings[0]!;
    expect(finding.title).toBe(`${STOREFRONT} rolled out shop/storefront 3.2.0: 2 new operations, 1 new internal peer`);
    expect(finding.explanation).toContain('runs a new version, "3.2.0"');
    expect(finding.explanation).toContain('"3.1.0"');
    expect(finding.explanation).toContain('"GET /products/{id}/reviews"');
    expect(finding.explanation).toContain('recommendations.shop.svc');
    for (const id of release.spanIds) expect(first.allSpanIds).toContain(id);
    // Held within the grace period: not in the baseline yet; the release says until when.
    expect(await operationsOf(conduct)).not.toContain(REVIEWS);
    expect(finding.evidence?.learning).toEqual({ state: 'held', until: new Date(Date.parse(String(finding.evidence?.firstSeen)) + GRACE_MS).toISOString() });
    // Two hours later (past the repeat window of an incident) the same changes are low again, never medium.
    await traffic.trace(RELEASE_AT + 2 * HOUR, replica('3.2.0'), productPage(20, releaseCalls(20)));
    await conduct.flush();
    const later = await alertsOf(conduct, STOREFRONT);
    expect(serious(later), describeAlerts(later)).toEqual([]);
    expect(later.every((a) => a.detector === 'release'), describeAlerts(later)).toBe(true);

    // After the grace period the release is learned: its operation and peer are baseline and raise nothing.
    const after = await traffic.trace(AFTER_GRACE, replica('3.2.0'), productPage(30, releaseCalls(30)));
    await conduct.flush();
    expect(await operationsOf(conduct)).toContain(REVIEWS);
    expect((await peersOf(conduct)).some((p) => p.startsWith('recommendations.shop.svc'))).toBe(true);
    const all = await alertsOf(conduct, STOREFRONT);
    expect(all.filter((a) => a.traceId === after.traceId), describeAlerts(all)).toEqual([]);
    const learned = all.find((a) => a.id === release.id)!;
    expect(learned.findings[0]!.evidence?.learning).toMatchObject({ state: 'learned' });
  });

  it('a release judged malicious during its grace period is never learned: after it, its new operation still raises', async () => {
    const { conduct, traffic } = await trained();
    await traffic.trace(RELEASE_AT, replica('3.2.0'), productPage(2, releaseCalls(2)));
    await traffic.trace(RELEASE_AT + MINUTE, replica('3.2.0'), productPage(3, releaseCalls(3)));
    await conduct.flush();
    const [release] = await alertsOf(conduct, STOREFRONT);
    expect(release, 'the release must be reported').toMatchObject({ detector: 'release', severity: 'low', count: 2 });
    const judged = await conduct.post<ApiAlert>(`/api/v1/alerts/${release!.id}/feedback`, { verdict: 'malicious' });
    expect(judged.status).toBe(200);
    expect(judged.body.findings[0]!.evidence?.learning).toEqual({ state: 'withheld', reason: 'judged malicious' });

    await expectStillNew(conduct, traffic);
  });

  it('a release that turns into an attack during its grace period is never learned', async () => {
    const { conduct, traffic } = await trained();
    await traffic.trace(RELEASE_AT, replica('3.2.0'), productPage(2, releaseCalls(2)));
    // An hour later a replica of the same version reads a secret: an attack on that version.
    const secret = get(50, 'http://vault.security.svc:8200/v1/secret/data/prod/db');
    const attack = await traffic.trace(RELEASE_AT + HOUR, replica('3.2.0'), productPage(4, [...releaseCalls(4), secret]));
    await conduct.flush();
    const during = await alertsOf(conduct, STOREFRONT);
    expect(serious(during).map((a) => a.traceId), describeAlerts(during)).toEqual([attack.traceId]);
    const release = during.find((a) => a.detector === 'release')!;
    expect(release.findings[0]!.evidence?.learning).toMatchObject({ state: 'withheld' });

    await expectStillNew(conduct, traffic);
  });

  it('a restart during the grace period keeps the hold: not learned before it ends, learned after', async () => {
    const first = await trained();
    const dir = first.conduct.dir;
    await first.traffic.trace(RELEASE_AT, replica('3.2.0'), productPage(2, releaseCalls(2)));
    await first.traffic.trace(RELEASE_AT + MINUTE, replica('3.2.0'), productPage(3, releaseCalls(3)));
    await first.conduct.flush();
    expect(await operationsOf(first.conduct)).not.toContain(REVIEWS);
    await senders.stop(first);

    const { conduct, traffic } = await senders.start(CONFIG, dir);
    expect(await operationsOf(conduct)).not.toContain(REVIEWS);
    // Still within the grace period: held, the same release (low), nothing medium or above.
    await traffic.trace(RELEASE_AT + 3 * HOUR, replica('3.2.0'), productPage(5, releaseCalls(5)));
    await conduct.flush();
    expect(await operationsOf(conduct)).not.toContain(REVIEWS);
    const during = await alertsOf(conduct, STOREFRONT);
    expect(serious(during), describeAlerts(during)).toEqual([]);

    const after = await traffic.trace(AFTER_GRACE, replica('3.2.0'), productPage(30, releaseCalls(30)));
    await conduct.flush();
    expect(await operationsOf(conduct)).toContain(REVIEWS);
    const alerts = await alertsOf(conduct, STOREFRONT);
    expect(alerts.filter((a) => a.traceId === after.traceId), describeAlerts(alerts)).toEqual([]);
    expect(alerts.every((a) => a.findings.every((f) => f.detector !== 'release' || (f.evidence?.learning as { state: string } | undefined)?.state === 'learned')), describeAlerts(alerts)).toBe(true);
  });

  it('a poisoned release that also contacts a new external host is an attack: medium or above, saying it is no release', async () => {
    const { conduct, traffic } = await trained();
    const exfil = get(50, 'https://drop.paste-share.example:443/upload/a1b2c3');
    const poisoned = await traffic.trace(RELEASE_AT, replica('3.2.0'), productPage(2, [...releaseCalls(2), exfil]));
    await conduct.flush();

    const alerts = await alertsOf(conduct, STOREFRONT);
    const onTrace = alerts.filter((a) => a.traceId === poisoned.traceId);
    expect(onTrace.length, describeAlerts(alerts)).toBe(1);
    const incident = onTrace[0]!;
    expect(SEVERITY_RANK[incident.severity], describeAlerts(alerts)).toBeGreaterThanOrEqual(SEVERITY_RANK.medium);
    expect(incident.detectors).not.toContain('release');
    const peer = incident.findings.find((f) => f.detector === 'new-peer')!;
    expect(SEVERITY_RANK[peer.severity]).toBeGreaterThanOrEqual(SEVERITY_RANK.high);
    expect(peer.explanation).toContain('drop.paste-share.example');
    expect(peer.explanation).toMatch(/new version of "shop\/storefront", "3\.2\.0", and is judged as it stands: the chain brought an external peer/);
  });
});
