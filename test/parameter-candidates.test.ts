/**
 * Parameter candidates end to end (issue 16, templates that hold on real traffic): real OTLP from
 * the official SDK exporter into a running conduct. A reporting job that learned a handful of
 * report endpoints starts downloading reports by name (`/reports/<name>/download`, names that no id
 * shape matches) after it enforces: the path position becomes a learned parameter only at 12
 * distinct values, and until then each name is a new operation. The first names are medium; once
 * the position shows rarely seen values, each further name is one low incident per template, while
 * a real new endpoint on the same peer stays medium.
 */
import { describe, expect, it } from 'vitest';
import type { ConfigInput } from '@conduct/backend';
import { HOUR, MINUTE, SEVERITY_RANK, SpanKind, alertsOf, describeAlerts, sendersPerTest, serious, type SpanSpec } from './support/traffic.js';

const CONFIG: ConfigInput = { learning: { minCalls: 20, period: '1h' } };
const T0 = Date.UTC(2026, 9, 15, 8, 0, 0);
const ENFORCING_AT = T0 + 2 * HOUR;
const REPORTER = 'svc:bi/reporter';
const RESOURCE = { 'service.namespace': 'bi', 'service.name': 'reporter', 'cloud.region': 'eu-west-1', 'k8s.cluster.name': 'prod-a', 'host.name': 'reporter-0' };
/** Report names: words, not ids, so only learning turns the position into a parameter. */
const NAMES = ['revenue', 'churn', 'headcount', 'pipeline', 'forecast', 'payroll', 'margins', 'backlog', 'renewals', 'returns'];

const senders = sendersPerTest();

const docs = (at: number, method: string, path: string): SpanSpec => ({
  name: method,
  kind: SpanKind.CLIENT,
  at,
  attributes: { 'http.request.method': method, 'url.full': `http://docs.bi.svc:8080${path}`, 'server.address': 'docs.bi.svc', 'server.port': 8080 },
});

/** One job run: list the reports, fetch the summary, then `extra`. */
const job = (extra: SpanSpec[] = []): SpanSpec => ({
  name: 'POST /run',
  kind: SpanKind.SERVER,
  at: 0,
  duration: 60,
  attributes: { 'http.request.method': 'POST', 'http.route': '/run' },
  children: [docs(1, 'GET', '/reports'), docs(10, 'GET', '/reports/summary/download'), ...extra],
});

describe('parameter candidates (real OTLP into a running conduct)', () => {
  it('new values of a path position are one low incident once the position shows rare values; a real new endpoint stays medium', async () => {
    const { conduct, traffic } = await senders.start(CONFIG);
    for (let at = T0; at < ENFORCING_AT; at += 3 * MINUTE) await traffic.trace(at, RESOURCE, job());
    await conduct.flush();
    expect(serious(await alertsOf(conduct, REPORTER)), 'training must be quiet').toEqual([]);

    const byName = new Map<string, string>();
    for (const [i, name] of NAMES.entries()) {
      const sent = await traffic.trace(ENFORCING_AT + (i + 1) * 5 * MINUTE, RESOURCE, job([docs(20, 'GET', `/reports/${name}/download`)]));
      byName.set(name, sent.traceId);
    }
    const endpoint = await traffic.trace(ENFORCING_AT + 70 * MINUTE, RESOURCE, job([docs(20, 'POST', '/admin/reindex')]));
    await conduct.flush();

    const alerts = await alertsOf(conduct, REPORTER);
    const medium = serious(alerts);
    // The first two names are new operations (medium); the other eight are candidates of one template.
    expect(medium.filter((a) => a.traceId !== endpoint.traceId).map((a) => a.traceId), describeAlerts(alerts)).toEqual([byName.get('churn'), byName.get('revenue')]);
    const low = alerts.filter((a) => a.severity === 'low');
    expect(low.length, describeAlerts(alerts)).toBe(1);
    expect(low[0]).toMatchObject({ detector: 'new-operation', traceId: byName.get('headcount'), count: 8 });
    expect(low[0]!.findings[0]!.keys).toEqual(['param:GET /reports/{param}/download']);
    expect(low[0]!.title).toContain('a new value of a path parameter: GET /reports/{param}/download');
    expect(low[0]!.explanation).toContain('"revenue"');
    // A real new endpoint on the same peer is judged as usual.
    const onEndpoint = alerts.filter((a) => a.traceId === endpoint.traceId);
    expect(onEndpoint.length, describeAlerts(alerts)).toBe(1);
    expect(SEVERITY_RANK[onEndpoint[0]!.severity]).toBeGreaterThanOrEqual(SEVERITY_RANK.medium);
    expect(onEndpoint[0]!.findings.find((f) => f.detector === 'new-operation')!.keys).toEqual(['op:POST /admin/reindex']);
  });
});
