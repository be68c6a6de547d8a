/**
 * Issue 2 end to end: the official OpenTelemetry exporters send real SDK spans to a running
 * conduct over each transport; the chains come back from the API with the right identities,
 * peers and operations.
 */
import { readFileSync } from 'node:fs';
import { SpanKind, type Span } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { STORAGE_KINDS, stopTestPostgres, storageOverrides, type StorageKind } from './support/postgres.js';
import { sendShopTrace } from './support/shop.js';
import { exporterFor, TestService, type Transport } from './support/otel.js';

interface ApiCall {
  service: string;
  peer: string;
  peerKind: string;
  operation: string;
  spanId: string;
  serverSpanId?: string;
  target?: string;
}
interface ApiChain {
  identity: string;
  identityKind: string;
  displayName?: string;
  calls: ApiCall[];
}

const T0 = Date.UTC(2026, 10, 27, 9, 0, 0);

/** Sends a shop trace (web -> checkout -> payments with a principal, checkout -> postgres) and an agent trace. */
async function sendTraffic(conduct: TestConduct, transport: Transport, offsetMs: number) {
  const t = T0 + offsetMs;
  const shop = await sendShopTrace(conduct, { t, transport, paymentsPrincipal: 'sa:checkout-payments' });
  const svc = (name: string, ns: string) =>
    new TestService({ 'service.name': name, 'service.namespace': ns, 'cloud.region': 'eu-west-1' }, exporterFor(transport, conduct));
  const orders = svc('orders', 'shop');
  const agent = svc('triage-agent', 'agents');
  const end = (span: Span, ms: number) => span.end(t + ms);

  const invoke = agent.start('invoke_agent support-triage', {
    kind: SpanKind.INTERNAL,
    startMs: t + 20,
    attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': 'triage-1', 'gen_ai.agent.name': 'support-triage' },
  });
  const tool = agent.start('execute_tool lookup_order', {
    kind: SpanKind.INTERNAL,
    parent: invoke,
    startMs: t + 21,
    attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup_order' },
  });
  const get = agent.start('GET', {
    kind: SpanKind.CLIENT,
    parent: tool,
    startMs: t + 22,
    attributes: { 'http.request.method': 'GET', 'url.full': 'http://orders.shop.svc/orders/77' },
  });
  const ordersServer = orders.start('GET /orders/{id}', {
    kind: SpanKind.SERVER,
    parent: get,
    startMs: t + 23,
    attributes: { 'http.request.method': 'GET', 'http.route': '/orders/{id}' },
  });
  end(ordersServer, 24);
  end(get, 25);
  end(tool, 26);
  end(invoke, 27);

  await Promise.all([orders, agent].map((s) => s.shutdown())); // shutdown flushes
  return { shopTrace: shop.traceId, agentTrace: invoke.spanContext().traceId, spans: { ...shop.spans, tool, get } };
}

function chainOf(chains: ApiChain[], identity: string): ApiChain {
  const chain = chains.find((c) => c.identity === identity);
  if (!chain) throw new Error(`no chain for ${identity}; have ${chains.map((c) => c.identity).join(', ')}`);
  return chain;
}

afterAll(stopTestPostgres);

const CASES = (['grpc', 'http-json', 'http-proto'] as const).flatMap((transport) => STORAGE_KINDS.map((storage): [Transport, StorageKind] => [transport, storage]));

describe.each(CASES)('ingest through the official %s exporter, stored in %s', (transport, storage) => {
  let conduct: TestConduct;
  beforeAll(async () => {
    conduct = await startTestConduct(await storageOverrides(storage));
    expect(conduct.running.storage.kind).toBe(storage);
  });
  afterAll(async () => {
    await conduct?.dispose();
  });

  it('derives each identity chain of a trace that crossed three services', async () => {
    const sent = await sendTraffic(conduct, transport, 0);
    await conduct.flush();

    const shop = await conduct.get<{ traceId: string; chains: ApiChain[] }>(`/api/v1/traces/${sent.shopTrace}`);
    expect(shop.status).toBe(200);
    expect(shop.body.traceId).toBe(sent.shopTrace);
    expect(shop.body.chains.map((c) => c.identity).sort()).toEqual(['sa:checkout-payments', 'svc:shop/checkout', 'svc:shop/web']);

    // The caller's own workload identity owns an unauthenticated call...
    const web = chainOf(shop.body.chains, 'svc:shop/web');
    expect(web.identityKind).toBe('workload');
    expect(web.calls).toHaveLength(1);
    expect(web.calls[0]).toMatchObject({ service: 'shop/web', peer: 'shop/checkout', peerKind: 'service', operation: 'POST /orders/{id}' });
    expect(web.calls[0]!.spanId).toBe(sent.spans.toCheckout.spanContext().spanId);

    // ...the principal the callee authenticated owns the call it authenticated...
    const principal = chainOf(shop.body.chains, 'sa:checkout-payments');
    expect(principal.identityKind).toBe('principal');
    expect(principal.calls).toHaveLength(1);
    expect(principal.calls[0]).toMatchObject({ service: 'shop/checkout', peer: 'shop/payments', operation: 'POST /charge' });
    expect(principal.calls[0]!.serverSpanId).toBe(sent.spans.paymentsServer.spanContext().spanId);

    // ...and an uninstrumented database is a virtual peer.
    const checkout = chainOf(shop.body.chains, 'svc:shop/checkout');
    expect(checkout.calls).toHaveLength(1);
    expect(checkout.calls[0]).toMatchObject({ peer: 'postgresql/shop', peerKind: 'database', operation: 'SELECT orders' });

    // The agent's tool call and the HTTP call under it belong to the agent, in time order.
    const agentTrace = await conduct.get<{ chains: ApiChain[] }>(`/api/v1/traces/${sent.agentTrace}`);
    expect(agentTrace.status).toBe(200);
    const agent = chainOf(agentTrace.body.chains, 'agent:triage-1');
    expect(agent.identityKind).toBe('agent');
    expect(agent.displayName).toBe('support-triage');
    expect(agent.calls.map((c) => c.operation)).toEqual(['execute_tool lookup_order', 'GET /orders/{id}']);
    expect(agent.calls[1]).toMatchObject({ service: 'agents/triage-agent', peer: 'shop/orders' });

    const ids = await conduct.get<{ identities: { id: string; kind: string; calls: number }[] }>('/api/v1/identities');
    expect(ids.status).toBe(200);
    expect(ids.body.identities.map((i) => i.id)).toEqual(
      expect.arrayContaining(['svc:shop/web', 'svc:shop/checkout', 'sa:checkout-payments', 'agent:triage-1']),
    );

    const chains = await conduct.get<{ chains: ApiChain[] }>(`/api/v1/identities/${encodeURIComponent('agent:triage-1')}/chains?limit=5`);
    expect(chains.status).toBe(200);
    expect(chains.body.chains[0]!.calls).toHaveLength(2);
  });
});

describe.each(STORAGE_KINDS)('stored in %s', (storage) => {
  describe('the specification example and restarts', () => {
    it('accepts the OTLP/JSON example with upper-case ids and string timestamps', async () => {
      const conduct = await startTestConduct(await storageOverrides(storage));
      try {
        const body = readFileSync(new URL('./data/otlp-examples/trace.json', import.meta.url));
        const res = await fetch(`${conduct.http}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        const answer = (await res.json()) as { partialSuccess?: { rejectedSpans?: number | string } };
        expect(Number(answer.partialSuccess?.rejectedSpans ?? 0)).toBe(0);
        await conduct.flush();
        const trace = await conduct.get(`/api/v1/traces/5b8efff798038103d269b633813fc60c`);
        expect(trace.status).toBe(200);
        expect(trace.body.traceId).toBe('5b8efff798038103d269b633813fc60c');
        expect(trace.body.spans).toBe(1);
        const upper = await conduct.get(`/api/v1/traces/5B8EFFF798038103D269B633813FC60C`);
        expect(upper.status).toBe(200);
        const metrics = await fetch(`${conduct.api}/metrics`).then((r) => r.text());
        expect(metrics).toMatch(/conduct_/);
      } finally {
        await conduct.dispose();
      }
    });

    it('keeps identities and chains across a restart on the same database', async () => {
      // The second start reads the same database: the same file, or the same PostgreSQL database.
      const overrides = await storageOverrides(storage);
      const first = await startTestConduct(overrides);
      const sent = await sendTraffic(first, 'http-proto', 0);
      await first.flush();
      await first.stop();

      const second = await startTestConduct(overrides, first.dir);
      try {
        const ids = await second.get<{ identities: { id: string }[] }>('/api/v1/identities');
        expect(ids.body.identities.map((i) => i.id)).toEqual(expect.arrayContaining(['svc:shop/web', 'agent:triage-1']));
        const trace = await second.get<{ chains: ApiChain[] }>(`/api/v1/traces/${sent.shopTrace}`);
        expect(trace.status).toBe(200);
        expect(trace.body.chains).toHaveLength(3);
        const unknown = await second.get(`/api/v1/traces/${'ab'.repeat(16)}`);
        expect(unknown.status).toBe(404);
      } finally {
        await second.dispose();
        const { rmSync } = await import('node:fs');
        rmSync(first.dir, { recursive: true, force: true });
      }
    });
  });
});
