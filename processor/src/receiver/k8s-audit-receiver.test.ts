import { readFileSync } from 'node:fs';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../model.js';
import { createCollectingIngest, createK8sAuditReceiver, K8S_AUDIT_PATH, METRIC_REQUESTS_REJECTED, METRIC_SPANS_RECEIVED, METRIC_SPANS_REJECTED, type K8sAuditReceiverConfig, type Receiver } from './index.js';

const TOKEN = 'audit-webhook-token-for-tests';
const fixture = (name: string) => fileURLToPath(new URL(`./testdata/${name}`, import.meta.url));

const event = (i: number, over: Record<string, unknown> = {}) => ({
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'Metadata',
  auditID: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  stage: 'ResponseComplete',
  requestURI: '/api/v1/namespaces/shop/pods',
  verb: 'list',
  user: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
  sourceIPs: ['10.0.0.5'],
  userAgent: 'kube-controller-manager/v1.31.0 (linux/amd64) kubernetes/abc/system:serviceaccount:kube-system:replicaset-controller',
  objectRef: { resource: 'pods', namespace: 'shop', apiVersion: 'v1' },
  responseStatus: { metadata: {}, code: 200 },
  requestReceivedTimestamp: `2026-11-27T08:00:0${i % 10}.000000Z`,
  stageTimestamp: `2026-11-27T08:00:0${i % 10}.004000Z`,
  ...over,
});
const eventList = (items: unknown[]) => JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items });

const running: Receiver[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

async function start(config: Partial<K8sAuditReceiverConfig> = {}) {
  const ingest = createCollectingIngest();
  const registry = new Registry();
  const receiver = createK8sAuditReceiver({ endpoint: '127.0.0.1:0', maxRequestBytes: 64 * 1024, ...config }, ingest, { registry, logger: silentLogger });
  running.push(receiver);
  const endpoint = await receiver.start();
  const metric = async (name: string, labels: Record<string, string>) => {
    const m = (await registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
    return m?.value ?? 0;
  };
  return { ingest, endpoint, metric, url: `http://${endpoint}${K8S_AUDIT_PATH}` };
}

const post = (url: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: body as BodyInit });

describe('Kubernetes audit webhook receiver', () => {
  it('takes an EventList: ResponseComplete events become server spans at the API server, other stages are skipped', async () => {
    const { ingest, url, metric } = await start();
    const res = await post(url, eventList([event(1), event(2, { stage: 'RequestReceived' }), event(3), event(4, { auditID: undefined })]));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 2, skipped: 1, rejected: 1, errors: ['items[3]: no auditID'] });
    const spans = ingest.spans();
    expect(spans).toHaveLength(2);
    expect(spans[0]!.resource['service.name']).toBe('kube-apiserver');
    expect(spans[0]!.attributes['enduser.id']).toBe('system:serviceaccount:kube-system:replicaset-controller');
    expect(spans[0]!.attributes['rpc.method']).toBe('list pods');
    expect(spans[0]!.attributes['conduct.audit.record_id']).toBe('00000000-0000-4000-8000-000000000001');
    expect(spans[0]!.traceId).toBe(spans[1]!.traceId);
    expect(await metric(METRIC_SPANS_RECEIVED, { protocol: 'k8s-audit' })).toBe(2);
    expect(await metric(METRIC_SPANS_REJECTED, { protocol: 'k8s-audit', reason: 'not-a-call' })).toBe(1);
    expect(await metric(METRIC_SPANS_REJECTED, { protocol: 'k8s-audit', reason: 'invalid-span' })).toBe(1);
  });

  it('answers malformed, foreign and oversized bodies 400/413, wrong routes 404/405, other media 415, and keeps nothing', async () => {
    const { ingest, url, endpoint, metric } = await start({ maxRequestBytes: 4096 });
    expect((await post(url, '{"kind":"EventList","items":[')).status).toBe(400);
    expect((await post(url, JSON.stringify({ kind: 'PodList', items: [] }))).status).toBe(400);
    expect((await post(url, JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1beta1', items: [] }))).status).toBe(400);
    expect((await post(url, Buffer.from('not gzip'), { 'content-encoding': 'gzip' })).status).toBe(400);
    expect((await post(url, eventList(Array.from({ length: 40 }, (_, i) => event(i))))).status).toBe(413);
    // A gzip bomb stops at the cap after inflation.
    expect((await post(url, gzipSync(Buffer.alloc(1024 * 1024, 32)), { 'content-encoding': 'gzip' })).status).toBe(413);
    expect((await fetch(`http://${endpoint}/v1/traces`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await fetch(url)).status).toBe(405);
    expect((await post(url, eventList([event(1)]), { 'content-type': 'text/plain' })).status).toBe(415);
    expect(ingest.spans()).toEqual([]);
    expect(await metric(METRIC_REQUESTS_REJECTED, { protocol: 'k8s-audit', reason: 'decode-error' })).toBe(4);
    expect(await metric(METRIC_REQUESTS_REJECTED, { protocol: 'k8s-audit', reason: 'too-large' })).toBe(2);
    // Still serving.
    expect((await post(url, gzipSync(eventList([event(1)])), { 'content-encoding': 'gzip' })).status).toBe(200);
    expect(ingest.spans()).toHaveLength(1);
  });

  it('requires the bearer token when one is set', async () => {
    const { ingest, url, metric } = await start({ auth: { token: TOKEN } });
    expect((await post(url, eventList([event(1)]))).status).toBe(401);
    expect((await post(url, eventList([event(1)]), { authorization: 'Bearer wrong' })).status).toBe(401);
    expect(ingest.spans()).toEqual([]);
    expect((await post(url, eventList([event(1)]), { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect(ingest.spans()).toHaveLength(1);
    expect(await metric(METRIC_REQUESTS_REJECTED, { protocol: 'k8s-audit', reason: 'unauthenticated' })).toBe(2);
  });

  it('answers 503 with Retry-After when the pipeline is overloaded (the API server retries)', async () => {
    const { ingest, url } = await start();
    ingest.setOverloaded(true, 3_000);
    const res = await post(url, eventList([event(1)]));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('3');
  });

  it('speaks mutual TLS: a client without a certificate from the CA is refused', async () => {
    const { ingest, endpoint } = await start({ tls: { cert: fixture('server.pem'), key: fixture('server.key'), ca: fixture('ca.pem'), clientAuth: true } });
    const [host, port] = [endpoint.slice(0, endpoint.lastIndexOf(':')), Number(endpoint.slice(endpoint.lastIndexOf(':') + 1))];
    const send = (withCert: boolean) =>
      new Promise<number>((resolve, reject) => {
        const req = https.request(
          {
            host,
            port,
            path: K8S_AUDIT_PATH,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            ca: readFileSync(fixture('ca.pem')),
            servername: 'localhost',
            ...(withCert ? { cert: readFileSync(fixture('client.pem')), key: readFileSync(fixture('client.key')) } : {}),
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(eventList([event(1)]));
      });
    await expect(send(false)).rejects.toThrow();
    expect(await send(true)).toBe(200);
    expect(ingest.spans()).toHaveLength(1);
  });
});
