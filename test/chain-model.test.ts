/**
 * The chain model end to end (issue 16, point 3): real OTLP from the official SDK exporters into a
 * running conduct. A checkout that always reads the cart, checks the stock and charges the card
 * learns that order; afterwards a cache hit that skips the stock check and a retry of a failed
 * stock check raise nothing, while a jump it never made (charging before reading the cart) is an
 * unusual chain whose explanation gives the score.
 */
import { describe, expect, it } from 'vitest';
import { HOUR, MINUTE, SEVERITY_RANK, SpanKind, alertsOf, describeAlerts, seeded, sendersPerTest, serious, type SpanSpec } from './support/traffic.js';

const T0 = Date.UTC(2026, 9, 19, 8, 0, 0);
const TRAINING_MS = 2 * HOUR;
const EVERY_MS = 3 * MINUTE;
const AFTER = T0 + TRAINING_MS + 10 * MINUTE;
const CHECKOUT = 'svc:shop/checkout';

const senders = sendersPerTest();

const rnd = seeded(3);
const resource = () => ({ 'service.namespace': 'shop', 'service.name': 'checkout', 'cloud.region': 'eu-west-1', 'k8s.cluster.name': 'prod-a', 'host.name': `node-${Math.floor(rnd() * 999)}` });
const call = (at: number, method: string, url: string, failed = false): SpanSpec => ({
  name: method,
  kind: SpanKind.CLIENT,
  at,
  failed,
  attributes: { 'http.request.method': method, 'url.full': url, 'server.address': new URL(url).hostname, 'server.port': 8080 },
});
const cart = (at: number, id: number) => call(at, 'GET', `http://cart.shop.svc:8080/carts/${id}`);
const stock = (at: number, id: number, failed = false) => call(at, 'GET', `http://inventory.shop.svc:8080/stock/${id}`, failed);
const charge = (at: number) => call(at, 'POST', 'http://payments.shop.svc:8080/charges');
const checkout = (children: SpanSpec[]): SpanSpec => ({ name: 'POST /checkout', kind: SpanKind.SERVER, at: 0, duration: 100, attributes: { 'http.request.method': 'POST', 'http.route': '/checkout' }, children });

describe('chain model (real OTLP into a running conduct)', () => {
  it('a skipped step and a retry after an error are usual; a jump the identity never made is unusual, with its score explained', async () => {
    const { conduct, traffic } = await senders.start({ learning: { minCalls: 20, period: '1h' } });
    for (let i = 0, at = T0; at < T0 + TRAINING_MS; i++, at += EVERY_MS) await traffic.trace(at, resource(), checkout([cart(1, 100 + i), stock(10, 200 + i), charge(20)]));
    await conduct.flush();
    expect(await alertsOf(conduct, CHECKOUT), 'training must be quiet').toEqual([]);

    // A cache hit: the stock level came from the cache, the check is skipped.
    await traffic.trace(AFTER, resource(), checkout([cart(1, 7), charge(20)]));
    // The stock check failed and was retried.
    await traffic.trace(AFTER + MINUTE, resource(), checkout([cart(1, 8), stock(10, 8, true), stock(15, 8), charge(20)]));
    await conduct.flush();
    const quiet = await alertsOf(conduct, CHECKOUT);
    expect(quiet, describeAlerts(quiet)).toEqual([]);

    // Charging before the cart was read: a step out of the start it never took.
    const jump = await traffic.trace(AFTER + 2 * MINUTE, resource(), checkout([charge(1), cart(10, 9), stock(20, 9)]));
    await conduct.flush();
    const alerts = await alertsOf(conduct, CHECKOUT);
    expect(alerts.length, describeAlerts(alerts)).toBe(1);
    const incident = alerts[0]!;
    expect(incident.traceId).toBe(jump.traceId);
    expect(serious(alerts)).toHaveLength(1);
    const finding = incident.findings.find((f) => f.detector === 'unusual-chain')!;
    expect(SEVERITY_RANK[finding.severity]).toBe(SEVERITY_RANK.medium);
    expect(finding.explanation).toMatch(/least likely step had a chance of 1 in \d+ \([\d.]+ bits\); 99% of the \d+ chains it learned had no step less likely than 1 in \d+/);
    expect(finding.explanation).toContain('followed by "POST /charges"');
  });
});
