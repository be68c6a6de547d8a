/**
 * Issue 3 end to end: real OTLP from the official SDK into a running conduct, a training period of
 * normal traffic with realistic variation, event time past `learning.period`, then the scenario;
 * the alerts (or their absence) are read back through the API.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '@conduct/backend';
import { cloudTrailRequests, principalOf, readCloudTrail } from './support/cloudtrail.js';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { STORAGE_KINDS, stopTestPostgres, storageOverrides, type StorageKind } from './support/postgres.js';
import {
  HOUR,
  MINUTE,
  SEVERITY_RANK,
  SpanKind,
  Traffic,
  alertsOf,
  describeAlerts,
  seeded,
  serious,
  type ApiAlert,
  type SentTrace,
  type SpanSpec,
} from './support/traffic.js';

const TRACE_URL = 'https://jaeger.example/trace/{traceId}?uiFind={spanId}';
/** Small learning settings so a scenario's training fits in a test. */
const LEARNING: ConfigInput = {
  learning: { minCalls: 20, period: '1h' },
  alerts: { traceUrl: TRACE_URL },
};
/** Training starts here (event time); each scenario runs its own conduct. */
const T0 = Date.UTC(2026, 9, 5, 8, 0, 0);
/** Training covers this much event time, past `learning.period`. */
const TRAINING_MS = 2 * HOUR;
/** One training trace every this often. */
const EVERY_MS = 4 * MINUTE;
const ATTACK_AT = T0 + TRAINING_MS + 10 * MINUTE;

let conduct: TestConduct | undefined;
let traffic: Traffic | undefined;
/** The storage the scenarios run on (describe.each below), and the overrides of the last start. */
let storageKind: StorageKind = 'sqlite';
let storage: ConfigInput = {};
afterAll(stopTestPostgres);
afterEach(async () => {
  await traffic?.close();
  await conduct?.dispose();
  traffic = undefined;
  conduct = undefined;
});

async function start(overrides: ConfigInput = {}, dir?: string): Promise<{ conduct: TestConduct; traffic: Traffic }> {
  storage = await storageOverrides(storageKind);
  conduct = await startTestConduct({ ...LEARNING, ...overrides, ...storage }, dir);
  traffic = new Traffic(conduct);
  return { conduct, traffic };
}

/** Sends `make(t, i)` every EVERY_MS through the training period. */
async function train(t: Traffic, resourceAt: (i: number) => Record<string, string>, make: (i: number) => SpanSpec): Promise<void> {
  for (let i = 0, at = T0; at < T0 + TRAINING_MS; i++, at += EVERY_MS) {
    await t.trace(at + (i % 3) * 1_000, resourceAt(i), make(i));
  }
}

async function identityStatus(c: TestConduct, id: string): Promise<{ status: string; progress?: number; baseline?: any; openAlerts: number }> {
  const res = await c.get(`/api/v1/identities/${encodeURIComponent(id)}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/**
 * The incident the scenario must raise: the one alert of this identity and trace, holding a
 * finding of medium or above from one of the detectors whose explanation names `mention`, with
 * the configured trace link and span ids of the trace.
 */
function expectAlert(alerts: ApiAlert[], want: { identity: string; trace: SentTrace; detectors: string[]; mention: RegExp }): ApiAlert {
  const onTrace = alerts.filter((a) => a.identity === want.identity && a.traceId === want.trace.traceId);
  expect(onTrace.length, `one incident per identity and trace; have:\n${describeAlerts(alerts)}`).toBe(1);
  const found = onTrace.find((a) =>
    a.findings.some(
      (f) => want.detectors.includes(f.detector) && SEVERITY_RANK[f.severity] >= SEVERITY_RANK.medium && want.mention.test(f.explanation),
    ),
  );
  expect(found, `no ${want.detectors.join('|')} finding naming ${want.mention} on ${want.trace.traceId}; have:\n${describeAlerts(alerts)}`).toBeDefined();
  const alert = found!;
  expect(SEVERITY_RANK[alert.severity]).toBeGreaterThanOrEqual(SEVERITY_RANK.medium);
  expect(alert.links.trace).toBe(`https://jaeger.example/trace/${want.trace.traceId}?uiFind=${alert.spanIds[0]}`);
  expect(alert.spanIds.length).toBeGreaterThan(0);
  for (const id of alert.spanIds) expect(want.trace.allSpanIds).toContain(id);
  expect(alert.explanation.length).toBeGreaterThan(40);
  expect(alert.status).toBe('open');
  return alert;
}

/** Every alert carries what an on-call person needs. */
function expectWellFormed(alerts: ApiAlert[]): void {
  for (const a of alerts) {
    expect(a.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.spanIds.length).toBeGreaterThan(0);
    expect(a.links.trace).toContain(a.traceId);
    expect(a.explanation).toMatch(/\w+/);
  }
}

// --- traffic of the scenarios ---------------------------------------------------------------

const rnd = seeded(42);
const pod = (prefix: string) => `${prefix}-${Math.floor(rnd() * 0xffffff).toString(16)}-${Math.floor(rnd() * 0xffff).toString(36)}`;

const CI = 'svc:ci/deployer';
const ciResource = (i: number) => ({
  'service.namespace': 'ci',
  'service.name': 'deployer',
  'cloud.region': 'eu-west-1',
  'cloud.account.id': '111111111111',
  'k8s.cluster.name': 'ci-runners',
  // Every job runs in a fresh runner pod.
  'host.name': pod('runner'),
  'k8s.pod.name': `deployer-job-${1000 + i}`,
});
const APPS = ['checkout', 'catalog', 'web'];
function ciDeploy(i: number): SpanSpec {
  const app = APPS[i % APPS.length]!;
  const calls: SpanSpec[] = [
    {
      name: 'GET',
      kind: SpanKind.CLIENT,
      at: 1,
      attributes: {
        'http.request.method': 'GET',
        'url.full': `https://k8s-api.prod-eu.internal:6443/apis/apps/v1/namespaces/shop/deployments/${app}`,
        'server.address': 'k8s-api.prod-eu.internal',
        'server.port': 6443,
      },
    },
    {
      name: 'PATCH',
      kind: SpanKind.CLIENT,
      at: 20,
      attributes: {
        'http.request.method': 'PATCH',
        'url.full': `https://k8s-api.prod-eu.internal:6443/apis/apps/v1/namespaces/shop/deployments/${app}`,
        'server.address': 'k8s-api.prod-eu.internal',
        'server.port': 6443,
      },
    },
  ];
  // Optional: a registry login only some jobs need.
  if (i % 4 === 0) {
    calls.unshift({
      name: 'ECR.GetAuthorizationToken',
      kind: SpanKind.CLIENT,
      at: 0,
      attributes: { 'rpc.system': 'aws-api', 'rpc.service': 'ECR', 'rpc.method': 'GetAuthorizationToken', 'server.address': 'api.ecr.eu-west-1.amazonaws.com', 'cloud.account.id': '111111111111' },
    });
  }
  return { name: 'deploy', kind: SpanKind.INTERNAL, at: 0, duration: 60, children: calls };
}

const AGENT = 'agent:triage-7';
const agentResource = (i: number) => ({ 'service.namespace': 'agents', 'service.name': 'support-triage', 'host.name': pod('triage'), 'cloud.region': 'eu-west-1', 'k8s.pod.name': `triage-${i % 2}` });
function tool(tool: string, at: number, url: string): SpanSpec {
  return {
    name: `execute_tool ${tool}`,
    kind: SpanKind.INTERNAL,
    at,
    attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': tool },
    children: [{ name: 'GET', kind: SpanKind.CLIENT, at: at + 1, attributes: { 'http.request.method': 'GET', 'url.full': url } }],
  };
}
function agentRun(i: number, tools: SpanSpec[]): SpanSpec {
  return {
    name: 'invoke_agent support-triage',
    kind: SpanKind.INTERNAL,
    at: 0,
    duration: 10,
    attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': 'triage-7', 'gen_ai.agent.name': 'support-triage', 'gen_ai.conversation.id': `conv-${i}` },
    children: [
      { name: 'chat gpt-4o', kind: SpanKind.CLIENT, at: 1, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.system': 'openai', 'server.address': 'llm-gateway.ai.svc', 'server.port': 8080 } },
      ...tools,
    ],
  };
}
function agentNormal(i: number): SpanSpec {
  const tools = [tool('lookup_ticket', 10, `http://tickets.support.svc/tickets/${5000 + i}`)];
  if (i % 2 === 0) tools.push(tool('lookup_order', 30, `http://orders.shop.svc/orders/${80000 + i * 7}`));
  return agentRun(i, tools);
}


const ORDERS = 'svc:shop/orders';
/** An orders pod: cluster, region and account, and its address in its node's /24. */
const ordersPod = (cluster: string, subnet: number) => ({
  resource: { 'service.namespace': 'shop', 'service.name': 'orders', 'k8s.cluster.name': cluster, 'cloud.region': 'eu-west-1', 'cloud.account.id': '111111111111', 'host.name': pod('node'), 'k8s.pod.name': pod('orders') },
  ip: `10.1.${subnet}.${2 + Math.floor(rnd() * 200)}`,
});
const paymentsResource = { 'service.namespace': 'shop', 'service.name': 'payments', 'k8s.cluster.name': 'prod-a', 'cloud.region': 'eu-west-1', 'host.name': 'payments-node-1' };
/** An order: a charge at the payments service (whose server span sees the pod's address) and the order row in PostgreSQL. */
function placeOrder(ip: string, dbHost: string): SpanSpec {
  return {
    name: 'POST /orders',
    kind: SpanKind.SERVER,
    at: 0,
    duration: 60,
    attributes: { 'http.request.method': 'POST', 'http.route': '/orders' },
    children: [
      {
        name: 'POST',
        kind: SpanKind.CLIENT,
        at: 2,
        duration: 20,
        attributes: { 'http.request.method': 'POST', 'url.full': 'http://payments.shop.svc:8080/charges', 'server.address': 'payments.shop.svc', 'server.port': 8080 },
        children: [{ name: 'POST /charges', kind: SpanKind.SERVER, at: 3, duration: 15, resource: paymentsResource, attributes: { 'http.request.method': 'POST', 'http.route': '/charges', 'client.address': ip } }],
      },
      {
        name: 'INSERT shop.orders',
        kind: SpanKind.CLIENT,
        at: 30,
        attributes: { 'db.system.name': 'postgresql', 'db.namespace': 'shop', 'db.operation.name': 'INSERT', 'db.collection.name': 'orders', 'server.address': dbHost, 'server.port': 5432 },
      },
    ],
  };
}

// --- scenarios -----------------------------------------------------------------------------

describe.each(STORAGE_KINDS)('stored in %s', (kind) => {
  beforeAll(() => {
    storageKind = kind;
  });

  describe('detection scenarios (real OTLP into a running conduct)', () => {
    it('CI/CD service account that deploys to one cluster starts enumerating buckets and IAM across accounts', async () => {
      const { conduct, traffic } = await start();
      await train(traffic, ciResource, ciDeploy);
      await conduct.flush();
      const before = await identityStatus(conduct, CI);
      expect(before.status).toBe('enforcing');
      expect(serious(await alertsOf(conduct, CI)), 'training must be quiet').toEqual([]);

      const accounts = ['222222222222', '333333333333', '444444444444', '555555555555'];
      const enumerate: SpanSpec[] = accounts.flatMap((account, k) => [
        { name: 'S3.ListBuckets', kind: SpanKind.CLIENT, at: k * 40, attributes: { 'rpc.system': 'aws-api', 'rpc.service': 'S3', 'rpc.method': 'ListBuckets', 'server.address': 's3.amazonaws.com', 'cloud.account.id': account } },
        { name: 'IAM.GetAccountAuthorizationDetails', kind: SpanKind.CLIENT, at: k * 40 + 20, attributes: { 'rpc.system': 'aws-api', 'rpc.service': 'IAM', 'rpc.method': 'GetAccountAuthorizationDetails', 'server.address': 'iam.amazonaws.com', 'cloud.account.id': account } },
      ]);
      const attack = await traffic.trace(ATTACK_AT, ciResource(999), { name: 'deploy', kind: SpanKind.INTERNAL, at: 0, duration: 400, children: enumerate });
      await conduct.flush();

      const alerts = await alertsOf(conduct, CI);
      expectWellFormed(alerts);
      const reach = expectAlert(alerts, { identity: CI, trace: attack, detectors: ['new-peer', 'new-operation'], mention: /ListBuckets|s3\.amazonaws\.com|GetAccountAuthorizationDetails|iam\.amazonaws\.com/ });
      // The baseline evidence: what the deployer normally does.
      expect(reach.explanation).toMatch(/k8s-api\.prod-eu\.internal|PATCH/);
      expect(reach.techniques.length).toBeGreaterThan(0);
      expect(reach.detectors).toContain('fan-out');
      // The attack chain is held out of the baseline and shown as alert-only in the graph.
      const graph = await conduct.get<{ nodes: any[]; edges: any[] }>(`/api/v1/identities/${encodeURIComponent(CI)}/graph`);
      expect(graph.status).toBe(200);
      const patches = graph.body.edges.filter((e) => /^PATCH /.test(e.operation));
      expect(patches.length).toBe(APPS.length);
      for (const e of patches) expect(e).toMatchObject({ count: expect.any(Number), firstSeen: expect.any(String), lastSeen: expect.any(String) });
      // One deploy per training trace, every one learned.
      expect(patches.reduce((n, e) => n + e.count, 0)).toBe(TRAINING_MS / EVERY_MS);
      expect(graph.body.edges.some((e) => /ListBuckets/.test(e.operation) && e.alertOnly === true)).toBe(true);
      expect(graph.body.nodes.some((n) => n.kind === 'identity')).toBe(true);
    });

    it('AI agent starts high-frequency tool calls and retrieves records outside its workflow', async () => {
      const { conduct, traffic } = await start();
      await train(traffic, agentResource, agentNormal);
      await conduct.flush();
      expect((await identityStatus(conduct, AGENT)).status).toBe('enforcing');

      const tools: SpanSpec[] = [];
      for (let k = 0; k < 60; k++) tools.push(tool('lookup_customer', 10 + k * 500, `http://crm.sales.svc/customers/${70000 + k}/records`));
      const attack = await traffic.trace(ATTACK_AT, agentResource(500), agentRun(500, tools));
      await conduct.flush();

      const alerts = await alertsOf(conduct, AGENT);
      expectWellFormed(alerts);
      const incident = expectAlert(alerts, { identity: AGENT, trace: attack, detectors: ['new-operation', 'new-peer'], mention: /lookup_customer|crm\.sales\.svc|customers/ });
      const burst = incident.findings.find((f) => f.detector === 'rate-burst');
      expect(burst, describeAlerts(alerts)).toBeDefined();
      expect(SEVERITY_RANK[burst!.severity]).toBeGreaterThanOrEqual(SEVERITY_RANK.medium);
    });

    it('certificate-authenticated workload with no instrumented caller calls sensitive endpoints from an unexpected network segment', async () => {
      const { conduct, traffic } = await start({ policies: [{ match: 'cert:settlement-batch', sensitiveOperations: ['* /v1/admin/*'] }] });
      const SUBJECT = 'CN=settlement-batch,OU=payments,O=Example';
      const CERT = 'cert:settlement-batch';
      const server = { 'service.namespace': 'payments', 'service.name': 'ledger-api', 'cloud.region': 'eu-west-1' };
      const call = (method: string, route: string, path: string, client: string, at = 0): SpanSpec => ({
        name: `${method} ${route}`,
        kind: SpanKind.SERVER,
        at,
        attributes: {
          'http.request.method': method,
          'http.route': route,
          'url.path': path,
          'tls.client.subject': SUBJECT,
          'client.address': client,
          'user_agent.original': 'settlement-client/2.4.1 (linux; amd64)',
        },
      });
      await train(traffic, () => server, (i) =>
        i % 3 === 0
          ? call('POST', '/v1/settlements', '/v1/settlements', `10.20.30.${11 + (i % 4)}`)
          : call('GET', '/v1/settlements/{id}', `/v1/settlements/${90000 + i}`, `10.20.30.${11 + (i % 4)}`),
      );
      await conduct.flush();
      expect((await identityStatus(conduct, CERT)).status).toBe('enforcing');

      const attack = await traffic.trace(ATTACK_AT, server, call('POST', '/v1/admin/signing-keys/rotate', '/v1/admin/signing-keys/rotate', '10.99.7.23'));
      await conduct.flush();
      const alerts = await alertsOf(conduct, CERT);
      expectWellFormed(alerts);
      expectAlert(alerts, { identity: CERT, trace: attack, detectors: ['new-source'], mention: /10\.99\.7/ });
      expectAlert(alerts, { identity: CERT, trace: attack, detectors: ['new-operation'], mention: /signing-keys/ });
    });

    it('data job makes outbound requests to an unfamiliar external service', async () => {
      const { conduct, traffic } = await start();
      const JOB = 'svc:data/nightly-etl';
      const res = (i: number) => ({ 'service.namespace': 'data', 'service.name': 'nightly-etl', 'host.name': pod('etl'), 'cloud.region': 'eu-west-1' });
      const run = (i: number, extra: SpanSpec[] = []): SpanSpec => ({
        name: 'etl run',
        kind: SpanKind.INTERNAL,
        at: 0,
        duration: 100,
        children: [
          { name: 'SELECT warehouse.orders', kind: SpanKind.CLIENT, at: 1, attributes: { 'db.system.name': 'postgresql', 'db.namespace': 'warehouse', 'db.operation.name': 'SELECT', 'db.collection.name': 'orders' } },
          { name: 'S3.PutObject', kind: SpanKind.CLIENT, at: 30, attributes: { 'rpc.system': 'aws-api', 'rpc.service': 'S3', 'rpc.method': 'PutObject', 'aws.s3.bucket': 'etl-exports', 'server.address': 'minio.data.svc', 'server.port': 9000 } },
          ...(i % 5 === 0 ? [{ name: 'GET', kind: SpanKind.CLIENT, at: 60, attributes: { 'http.request.method': 'GET', 'url.full': `http://schema-registry.data.svc/subjects/orders-value/versions/${i}` } }] : []),
          ...extra,
        ],
      });
      await train(traffic, res, run);
      await conduct.flush();
      const attack = await traffic.trace(ATTACK_AT, res(999), run(999, [
        { name: 'POST', kind: SpanKind.CLIENT, at: 80, attributes: { 'http.request.method': 'POST', 'url.full': 'https://upload.filedrop-share.io/api/v2/files', 'server.address': 'upload.filedrop-share.io', 'server.port': 443 } },
      ]));
      await conduct.flush();
      const alerts = await alertsOf(conduct, JOB);
      const alert = expectAlert(alerts, { identity: JOB, trace: attack, detectors: ['new-peer'], mention: /upload\.filedrop-share\.io/ });
      expect(SEVERITY_RANK[alert.severity]).toBeGreaterThanOrEqual(SEVERITY_RANK.high);
      expect(alert.techniques).toContain('T1567');
    });

    it('workload calls internal services it never called (lateral movement)', async () => {
      const { conduct, traffic } = await start();
      const WEB = 'svc:shop/web';
      const res = (i: number) => ({ 'service.namespace': 'shop', 'service.name': 'web', 'host.name': pod('web'), 'k8s.pod.name': pod('web'), 'cloud.region': 'eu-west-1' });
      const get = (peer: string, path: string, at: number): SpanSpec => ({ name: 'GET', kind: SpanKind.CLIENT, at, attributes: { 'http.request.method': 'GET', 'url.full': `http://${peer}${path}` } });
      const page = (i: number, extra: SpanSpec[] = []): SpanSpec => ({
        name: 'GET /product/{id}',
        kind: SpanKind.SERVER,
        at: 0,
        duration: 50,
        attributes: { 'http.request.method': 'GET', 'http.route': '/product/{id}' },
        children: [get('catalog.shop.svc', `/products/${3000 + i}`, 1), ...(i % 2 ? [get('recommendations.shop.svc', `/recommendations?product=${3000 + i}`, 10)] : []), ...extra],
      });
      await train(traffic, res, page);
      await conduct.flush();
      const attack = await traffic.trace(ATTACK_AT, res(999), page(999, [get('payments-admin.payments.svc', '/admin/merchants', 20), get('users-db-proxy.identity.svc', '/users/export', 30)]));
      await conduct.flush();
      const alerts = await alertsOf(conduct, WEB);
      const alert = expectAlert(alerts, { identity: WEB, trace: attack, detectors: ['new-peer'], mention: /payments-admin\.payments\.svc|users-db-proxy\.identity\.svc/ });
      expect(alert.techniques).toContain('T1021.007');
      expect(alert.explanation).toMatch(/catalog\.shop\.svc/);
    });

    it('a workload credential used minutes after issue from a second network and client raises credential-reuse while learning', async () => {
      const { conduct, traffic } = await start();
      const SA = 'system:serviceaccount:billing:invoicer';
      const server = { 'service.namespace': 'billing', 'service.name': 'invoices-api' };
      const call = (client: string, agent: string, n: number): SpanSpec => ({
        name: 'GET /v1/invoices/{id}',
        kind: SpanKind.SERVER,
        at: 0,
        attributes: { 'http.request.method': 'GET', 'http.route': '/v1/invoices/{id}', 'url.path': `/v1/invoices/${n}`, 'enduser.id': SA, 'client.address': client, 'user_agent.original': agent },
      });
      const issued = T0 + 5 * HOUR;
      await traffic.trace(issued, server, call('10.8.1.17', 'invoicer/3.2.0 (+grpc-go)', 1));
      await traffic.trace(issued + 2 * MINUTE, server, call('10.8.1.17', 'invoicer/3.2.0 (+grpc-go)', 2));
      const stolen = await traffic.trace(issued + 4 * MINUTE, server, call('172.31.200.9', 'python-requests/2.31.0', 3));
      await conduct.flush();
      expect((await identityStatus(conduct, SA)).status).toBe('learning');
      const alerts = await alertsOf(conduct, SA);
      const alert = expectAlert(alerts, { identity: SA, trace: stolen, detectors: ['credential-reuse'], mention: /172\.31\.200|python-requests/ });
      expect(alert.severity).toBe('high');
      expect(alert.techniques).toContain('T1078.004');
    });

    it('real CloudTrail: the stolen EC2 role used from a desktop CLI is flagged, the console user is not', async () => {
      const { conduct } = await start();
      const records = readCloudTrail(fileURLToPath(new URL('./data/otrf-aws-ec2-proxy-s3/ec2_proxy_s3_exfiltration_2020-09-14011940.json', import.meta.url)));
      const requests = cloudTrailRequests(records);
      for (const r of requests) {
        const res = await fetch(`${conduct.http}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.request) });
        expect(res.status).toBe(200);
      }
      await conduct.flush();
      const role = requests.map((r) => principalOf(r.record)!).find((p) => p.includes('assumed-role/MordorNginxStack-BankingWAFRole'))!;
      const roleTraces = new Set(requests.filter((r) => principalOf(r.record) === role).map((r) => r.traceId));
      const alerts = await alertsOf(conduct, role);
      expectWellFormed(alerts);
      const flagged = serious(alerts).filter((a) => roleTraces.has(a.traceId));
      expect(flagged.flatMap((a) => a.detectors), describeAlerts(alerts)).toContain('credential-reuse');
      const reuse = flagged.find((a) => a.detectors.includes('credential-reuse'))!;
      expect(reuse.explanation).toMatch(/aws-cli/);
      expect(reuse.explanation).toMatch(/Darwin/);
      expect(reuse.techniques).toContain('T1078.004');
      // Every S3 call of the stolen session is covered (the first raised, the others counted).
      const s3Calls = requests.filter((r) => principalOf(r.record) === role && r.record.eventSource === 's3.amazonaws.com').length;
      expect(s3Calls).toBe(11);
      expect(flagged.reduce((n, a) => n + (a.detectors.includes('credential-reuse') ? a.count : 0), 0)).toBe(s3Calls);

      const user = 'arn:aws:iam::123456789123:user/pedro';
      expect(serious(await alertsOf(conduct, user)), 'the console user must not be flagged above low').toEqual([]);
    });
  });

  describe('must stay quiet (nothing of medium or above)', () => {
    it('the same automation bursting to 8x its volume over its usual peers and operations', async () => {
      const { conduct, traffic } = await start();
      await train(traffic, ciResource, ciDeploy);
      await conduct.flush();
      // Eight deploy jobs at once, each the usual calls, on fresh runner pods.
      for (let k = 0; k < 8; k++) await traffic.trace(ATTACK_AT + k * 2_000, ciResource(2000 + k), ciDeploy(k));
      await conduct.flush();
      const alerts = await alertsOf(conduct, CI);
      expect(serious(alerts), describeAlerts(alerts)).toEqual([]);
    });

    it('new pod names and new ids in URLs', async () => {
      const { conduct, traffic } = await start();
      await train(traffic, agentResource, agentNormal);
      await conduct.flush();
      for (let k = 0; k < 5; k++) {
        const res = { ...agentResource(0), 'host.name': `triage-new-node-${k}`, 'k8s.pod.name': `triage-7f9c-${k}x` };
        await traffic.trace(ATTACK_AT + k * MINUTE, res, agentRun(3000 + k, [tool('lookup_ticket', 10, `http://tickets.support.svc/tickets/${987654 + k}`), tool('lookup_order', 30, `http://orders.shop.svc/orders/5f1c2a9e-3b7d-4c1e-9a2b-${String(k).padStart(12, '0')}`)]));
      }
      await conduct.flush();
      const alerts = await alertsOf(conduct, AGENT);
      expect(serious(alerts), describeAlerts(alerts)).toEqual([]);
    });

    it('a node-pool rotation, a failover to the standby cluster and to the standby database', async () => {
      const { conduct, traffic } = await start();
      // Learned: pods on two nodes of cluster prod-a, the primary database.
      for (let i = 0, at = T0; at < T0 + TRAINING_MS; i++, at += EVERY_MS) {
        const p = ordersPod('prod-a', 1 + (i % 2));
        await traffic.trace(at, p.resource, placeOrder(p.ip, 'orders-db-0.db.internal'));
      }
      await conduct.flush();
      // The node pool is rotated: every pod on a new node, in a /24 never seen.
      for (let k = 0; k < 4; k++) {
        const p = ordersPod('prod-a', 60 + k);
        await traffic.trace(ATTACK_AT + k * MINUTE, p.resource, placeOrder(p.ip, 'orders-db-0.db.internal'));
      }
      // Then the primary fails over: orders runs in the standby cluster and writes to the standby database.
      for (let k = 0; k < 3; k++) {
        const p = ordersPod('prod-b', 90);
        await traffic.trace(ATTACK_AT + (10 + k) * MINUTE, p.resource, placeOrder(p.ip, 'orders-db-1.db.internal'));
      }
      await conduct.flush();
      const alerts = await alertsOf(conduct, ORDERS);
      expect(serious(alerts), describeAlerts(alerts)).toEqual([]);
      // The failover stays visible, at low: the new cluster and the standby host.
      const findings = alerts.flatMap((a) => a.findings);
      expect(findings.find((f) => f.detector === 'new-source' && f.keys.includes('cluster:prod-b')), describeAlerts(alerts)).toMatchObject({ severity: 'low' });
      expect(findings.find((f) => f.detector === 'new-peer' && f.keys.includes('peer:orders-db-1.db.internal:5432')), describeAlerts(alerts)).toMatchObject({ severity: 'low' });
      expect(findings.some((f) => f.keys.some((k) => k.startsWith('network:10.1.6'))), 'a new node of a known cluster is no finding').toBe(false);
    });

    it('a brand-new identity while it is learning', async () => {
      const { conduct, traffic } = await start();
      const fresh = 'svc:reports/monthly-report';
      const res = { 'service.namespace': 'reports', 'service.name': 'monthly-report', 'host.name': pod('report'), 'cloud.region': 'eu-west-1' };
      for (let k = 0; k < 6; k++) {
        await traffic.trace(T0 + k * MINUTE, res, {
          name: 'report',
          kind: SpanKind.INTERNAL,
          at: 0,
          duration: 40,
          children: [
            { name: 'SELECT warehouse.invoices', kind: SpanKind.CLIENT, at: 1, attributes: { 'db.system.name': 'postgresql', 'db.namespace': 'warehouse', 'db.operation.name': 'SELECT', 'db.collection.name': k % 2 ? 'invoices' : 'payments' } },
            { name: 'POST', kind: SpanKind.CLIENT, at: 10, attributes: { 'http.request.method': 'POST', 'url.full': `http://mailer.notify.svc/send/${k}` } },
          ],
        });
      }
      await conduct.flush();
      const status = await identityStatus(conduct, fresh);
      expect(status.status).toBe('learning');
      const alerts = await alertsOf(conduct, fresh);
      expect(serious(alerts), describeAlerts(alerts)).toEqual([]);
    });
  });

  describe('alerts and baselines through the API', () => {
    it('a restart keeps baselines and alerts; feedback is validated and announced', async () => {
      const first = await start();
      await train(first.traffic, ciResource, ciDeploy);
      const attack = await first.traffic.trace(ATTACK_AT, ciResource(7), {
        name: 'deploy',
        kind: SpanKind.INTERNAL,
        at: 0,
        duration: 30,
        children: [{ name: 'GET', kind: SpanKind.CLIENT, at: 1, attributes: { 'http.request.method': 'GET', 'url.full': 'https://vault.security.internal:8200/v1/secret/data/prod/db-root' } }],
      });
      await first.conduct.flush();
      const raised = serious(await alertsOf(first.conduct, CI)).filter((a) => a.traceId === attack.traceId);
      expect(raised.length, 'the secret read must raise an alert').toBeGreaterThan(0);
      const listBefore = await first.conduct.get(`/api/v1/identities`);
      const entry = listBefore.body.identities.find((i: any) => i.id === CI);
      expect(entry).toMatchObject({ status: 'enforcing', openAlerts: raised.length });
      expect(entry.progress).toBe(1);

      const dir = first.conduct.dir;
      await first.traffic.close();
      await first.conduct.stop();
      traffic = undefined;
      conduct = undefined;
      const events = join(dir, 'alerts.jsonl');
      const second = await startTestConduct({ ...LEARNING, alerts: { traceUrl: TRACE_URL, sinks: [{ type: 'jsonl', path: events }] }, ...storage }, dir);
      conduct = second;
      try {
        const after = await identityStatus(second, CI);
        expect(after.status).toBe('enforcing');
        expect(after.baseline.peers.map((p: any) => p.key)).toContain('k8s-api.prod-eu.internal:6443');
        const alert = await second.get<ApiAlert>(`/api/v1/alerts/${raised[0]!.id}`);
        expect(alert.status).toBe(200);
        expect(alert.body).toMatchObject({ id: raised[0]!.id, traceId: attack.traceId, detector: raised[0]!.detector, status: 'open' });

        expect((await second.post(`/api/v1/alerts/${raised[0]!.id}/feedback`, { verdict: 'fine' })).status).toBe(400);
        expect((await second.post(`/api/v1/alerts/${raised[0]!.id}/feedback`, {})).status).toBe(400);
        expect((await second.post(`/api/v1/alerts/no-such-alert/feedback`, { verdict: 'expected' })).status).toBe(404);
        const ok = await second.post<ApiAlert>(`/api/v1/alerts/${raised[0]!.id}/feedback`, { verdict: 'expected' });
        expect(ok.status).toBe(200);
        expect(ok.body.status).toBe('expected');
        // The verdict is announced to the alert listeners (here a JSON lines sink).
        await expect.poll(() => (existsSync(events) ? readFileSync(events, 'utf8') : '')).toMatch(/"event":"feedback"/);
        const line = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'feedback');
        expect(line).toMatchObject({ id: raised[0]!.id, status: 'expected' });
        // Expected: the chain is absorbed and the same call no longer alerts.
        const again = new Traffic(second);
        const repeat = await again.trace(ATTACK_AT + 20 * MINUTE, ciResource(8), {
          name: 'deploy',
          kind: SpanKind.INTERNAL,
          at: 0,
          duration: 30,
          children: [{ name: 'GET', kind: SpanKind.CLIENT, at: 1, attributes: { 'http.request.method': 'GET', 'url.full': 'https://vault.security.internal:8200/v1/secret/data/prod/db-root' } }],
        });
        await again.close();
        await second.flush();
        const afterFeedback = serious(await alertsOf(second, CI)).filter((a) => a.traceId === repeat.traceId);
        expect(afterFeedback, describeAlerts(afterFeedback)).toEqual([]);
        const filtered = await second.get<{ alerts: ApiAlert[] }>(`/api/v1/alerts?status=expected&identity=${encodeURIComponent(CI)}`);
        expect(filtered.body.alerts.map((a) => a.id)).toContain(raised[0]!.id);
        const since = await second.get<{ alerts: ApiAlert[] }>(`/api/v1/alerts?since=${new Date(ATTACK_AT + HOUR).toISOString()}`);
        expect(since.body.alerts).toEqual([]);
        const sinceMs = await second.get<{ alerts: ApiAlert[] }>(`/api/v1/alerts?since=${ATTACK_AT - MINUTE}&detector=${raised[0]!.detector}`);
        expect(sinceMs.body.alerts.map((a) => a.id)).toContain(raised[0]!.id);
      } finally {
        await second.dispose();
        conduct = undefined;
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
