/**
 * Issue 16, point 2, end to end: real OTLP from the official SDK exporters into a running conduct.
 * A CI identity's URLs churn with ids of every kind (image digests, user names, dates, e-mail
 * addresses); once it enforces, the churn raises no new-operation alert, a truly new endpoint
 * still does, and a restart keeps the learned path parameter.
 */
import { describe, expect, it } from 'vitest';
import type { TestConduct } from './support/conduct.js';
import { HOUR, MINUTE, SpanKind, alertsOf, describeAlerts, seeded, sendersPerTest, serious, type SentTrace, type SpanSpec } from './support/traffic.js';

const IDENTITY = 'svc:ci/deployer';
const RESOURCE = { 'service.namespace': 'ci', 'service.name': 'deployer' };
const LEARNING = { learning: { minCalls: 20, period: '1h' } };
const T0 = Date.UTC(2026, 10, 9, 8, 0, 0);
const EVERY_MS = 4 * MINUTE;
const NAMES = [
  'alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'niaj', 'olivia', 'peggy',
  'rupert', 'sybil', 'trent', 'victor', 'walter', 'xena', 'yusuf', 'zoe', 'amara', 'bruno', 'chen', 'dmitri', 'elif', 'farah',
  'goran', 'hana', 'ines', 'jonas', 'kofi', 'lena', 'mateo', 'nora', 'oskar', 'priya', 'quinn', 'rosa', 'sami', 'tomas',
];

const random = seeded(16);
const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(random() * 16)]).join('');

/** An outbound HTTP call of the deployer, described only by its URL (no http.route). */
function get(name: string, at: number, method: string, host: string, path: string): SpanSpec {
  const [hostname, port] = host.split(':');
  return {
    name,
    kind: SpanKind.CLIENT,
    at,
    attributes: {
      'http.request.method': method,
      'url.full': `http://${host}${path}`,
      'server.address': hostname!,
      ...(port ? { 'server.port': Number(port) } : {}),
      'http.response.status_code': 200,
    },
  };
}

/** One deploy: pull the image manifest by digest, read the committer's profile, file the day's report, mail the committer. */
function deploy(i: number, at: number, extra: SpanSpec[] = [], user = NAMES[i % NAMES.length]!): SpanSpec {
  const day = new Date(at).toISOString().slice(0, 10);
  return {
    name: 'deploy',
    kind: SpanKind.INTERNAL,
    at: 0,
    duration: 200,
    children: [
      get('manifest', 5, 'GET', 'registry.internal:5000', `/v2/team/api/manifests/sha256:${hex(64)}`),
      get('profile', 20, 'GET', 'users.internal', `/users/${user}/profile`),
      get('report', 40, 'PUT', 'reports.internal', `/reports/${day}/deploys/${new Date(at).toISOString()}`),
      get('mail', 60, 'POST', 'mail.internal', `/mailboxes/${user}.${hex(4)}@example.com/messages`),
      ...extra,
    ],
  };
}

const senders = sendersPerTest();

async function metric(c: TestConduct, name: string): Promise<number> {
  const res = await c.get<string>('/metrics');
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(String(res.body));
  return m ? Number(m[1]) : NaN;
}

describe('operation templates on real traffic', () => {
  it('id churn in URLs raises no new-operation alert, a new endpoint does, and the learned parameter survives a restart', async () => {
    const started = await senders.start(LEARNING);
    const first = started.conduct;
    let traffic = started.traffic;
    // Training: two hours of deploys, a new committer each time (past the parameter threshold).
    let i = 0;
    let at = T0;
    for (; at < T0 + 2 * HOUR; i++, at += EVERY_MS) await traffic.trace(at, RESOURCE, deploy(i, at));
    await first.flush();
    const identity = await first.get(`/api/v1/identities/${encodeURIComponent(IDENTITY)}`);
    expect(identity.body.status).toBe('enforcing');
    const ops = (identity.body.baseline.operations as Array<{ key: string }>).map((o) => o.key).sort();
    expect(ops).toEqual([
      'GET /users/{param}/profile',
      'GET /v2/team/api/manifests/{id}',
      'POST /mailboxes/{id}/messages',
      'PUT /reports/{id}/deploys/{id}',
    ]);
    expect(await metric(first, 'conduct_operation_path_parameters')).toBe(1);
    expect(serious(await alertsOf(first, IDENTITY))).toEqual([]);

    // Enforcing: more churn of every kind, with committers it never saw.
    const churn: SentTrace[] = [];
    for (let k = 0; k < 12; k++, i++, at += EVERY_MS) churn.push(await traffic.trace(at, RESOURCE, deploy(i, at)));
    // A truly new endpoint, on a known peer, in an otherwise ordinary deploy.
    const purge = await traffic.trace(at, RESOURCE, deploy(i++, at, [get('purge', 80, 'DELETE', 'users.internal', '/admin/purge-cache')]));
    at += EVERY_MS;
    await first.flush();

    const alerts = await alertsOf(first, IDENTITY);
    const onChurn = alerts.filter((a) => churn.some((t) => t.traceId === a.traceId));
    expect(onChurn, describeAlerts(onChurn)).toEqual([]);
    const onPurge = alerts.filter((a) => a.traceId === purge.traceId);
    expect(onPurge, describeAlerts(alerts)).toHaveLength(1);
    const finding = onPurge[0]!.findings.find((f) => f.detector === 'new-operation');
    expect(finding?.title).toContain('DELETE /admin/purge-cache');
    expect(['medium', 'high', 'critical']).toContain(finding?.severity);
    expect(finding?.spanIds).toEqual([purge.spans.get('purge')]);

    // Restart on the same database: the parameter is loaded, a new committer is still no new operation.
    // The work directory is the first run's (removed after the test).
    await senders.stop(started);
    const restarted = await senders.start(LEARNING, first.dir);
    const second = restarted.conduct;
    traffic = restarted.traffic;
    expect(await metric(second, 'conduct_operation_path_parameters')).toBe(1);
    const afterRestart = await traffic.trace(at, RESOURCE, deploy(i, at, [], 'ursula'));
    await second.flush();
    const stored = await second.get(`/api/v1/traces/${afterRestart.traceId}`);
    expect(stored.body.chains[0].calls.map((c: { operation: string }) => c.operation)).toContain('GET /users/{param}/profile');
    const later = (await alertsOf(second, IDENTITY)).filter((a) => a.traceId === afterRestart.traceId);
    expect(later, describeAlerts(later)).toEqual([]);
  });
});
