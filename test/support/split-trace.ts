/**
 * One trace of the late-parts scenario (issue 22), as OTLP/HTTP JSON that can be posted whole or in
 * parts: the storefront (`web`) serves a checkout for a principal and calls `orders` by address;
 * `orders` serves it and calls its database and the payments API (not instrumented). Posted in
 * parts, each after the one before was stored, the caller half alone names the address `orders:8080`
 * as its peer; the callee half then resolves it to the service.
 */
import { expect } from 'vitest';
import type { TestConduct } from './conduct.js';
import { until } from './receivers.js';

export const T0 = Date.UTC(2026, 11, 6, 9, 0, 0);
export const PRINCIPAL = 'system:serviceaccount:shop:storefront';
const SERVER = 2;
const CLIENT = 3;

type Attr = string | number;
interface SpanSpec {
  role: string;
  service: 'web' | 'orders';
  parent?: string;
  kind: number;
  name: string;
  start: number;
  end: number;
  attrs: Record<string, Attr>;
}

/** The trace's spans, times in ms after the trace's start. */
export const SPANS: SpanSpec[] = [
  { role: 'checkout', service: 'web', kind: SERVER, name: 'GET /checkout', start: 0, end: 60, attrs: { 'http.request.method': 'GET', 'http.route': '/checkout', 'enduser.id': PRINCIPAL, 'client.address': '10.9.1.20' } },
  { role: 'get-order', service: 'web', parent: 'checkout', kind: CLIENT, name: 'GET', start: 5, end: 50, attrs: { 'http.request.method': 'GET', 'url.full': 'http://orders:8080/orders/4711', 'server.address': 'orders', 'server.port': 8080 } },
  { role: 'orders', service: 'orders', parent: 'get-order', kind: SERVER, name: 'GET /orders/{id}', start: 7, end: 48, attrs: { 'http.request.method': 'GET', 'http.route': '/orders/{id}', 'client.address': '10.9.1.21' } },
  { role: 'select', service: 'orders', parent: 'orders', kind: CLIENT, name: 'SELECT orders', start: 9, end: 20, attrs: { 'db.system.name': 'postgresql', 'db.namespace': 'shop', 'db.operation.name': 'SELECT', 'db.collection.name': 'orders', 'server.address': 'postgres', 'server.port': 5432 } },
  { role: 'charge', service: 'orders', parent: 'orders', kind: CLIENT, name: 'POST', start: 22, end: 45, attrs: { 'http.request.method': 'POST', 'url.full': 'http://payments:8443/charges', 'server.address': 'payments', 'server.port': 8443 } },
];
export const CALLER_HALF = ['checkout', 'get-order'];
export const CALLEE_HALF = ['orders', 'select', 'charge'];

/** A trace id and span ids of one test trace: `n` tells traces apart, `copy` the split and whole copies. */
export function idsOf(n: number, copy: 'split' | 'whole') {
  const c = copy === 'split' ? 'a' : 'b';
  const traceId = `${c}${n.toString(16).padStart(3, '0')}`.padEnd(32, '7');
  const spanId = (role: string) => `${c}${n.toString(16).padStart(3, '0')}${SPANS.findIndex((s) => s.role === role).toString(16).padStart(12, '0')}`;
  return { traceId, spanId };
}

const value = (v: Attr) => (typeof v === 'number' ? { intValue: String(v) } : { stringValue: v });

/** One OTLP/HTTP JSON request with the given spans of trace `n`, each service its own resource. */
export function request(n: number, copy: 'split' | 'whole', roles: readonly string[], t0 = T0): object {
  const { traceId, spanId } = idsOf(n, copy);
  const t = t0 + n * 1_000;
  const byService = new Map<string, object[]>();
  for (const s of SPANS.filter((x) => roles.includes(x.role))) {
    const list = byService.get(s.service) ?? [];
    byService.set(s.service, list);
    list.push({
      traceId,
      spanId: spanId(s.role),
      ...(s.parent ? { parentSpanId: spanId(s.parent) } : {}),
      name: s.name,
      kind: s.kind,
      startTimeUnixNano: `${(t + s.start) * 1_000_000}`,
      endTimeUnixNano: `${(t + s.end) * 1_000_000}`,
      attributes: Object.entries(s.attrs).map(([key, v]) => ({ key, value: value(v) })),
    });
  }
  return {
    resourceSpans: [...byService].map(([service, spans]) => ({
      resource: {
        attributes: [
          { key: 'service.name', value: { stringValue: service } },
          { key: 'service.namespace', value: { stringValue: 'shop' } },
          { key: 'cloud.region', value: { stringValue: 'eu-west-1' } },
        ],
      },
      scopeSpans: [{ spans }],
    })),
  };
}

/** Posts one request to the OTLP/HTTP receiver at `conduct.http` (a base URL); expects 200. */
export async function post(conduct: Pick<TestConduct, 'http'>, body: object): Promise<void> {
  const res = await fetch(`${conduct.http}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
}

/** Waits until the trace's stored summary counts `spans` spans: its parts so far completed and were stored. */
export async function stored(conduct: TestConduct, traceId: string, spans: number): Promise<void> {
  await until(async () => (await conduct.get(`/api/v1/traces/${traceId}`)).body?.spans === spans, 50);
}

/** Sends trace `n` to `conduct` in parts, each after the one before completed on its own (idle) and was stored. */
export async function sendInParts(conduct: TestConduct, n: number, parts: readonly (readonly string[])[], t0 = T0): Promise<void> {
  let sent = 0;
  for (const roles of parts) {
    await post(conduct, request(n, 'split', roles, t0));
    sent += roles.length;
    await stored(conduct, idsOf(n, 'split').traceId, sent);
  }
}
