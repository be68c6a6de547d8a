/**
 * Issue 21, durable alert delivery, with `conduct serve` as a child process (the built command):
 * an alert raised while its webhook receiver is down is kept in the store's outbox; after kill -9
 * and a restart it reaches the receiver once the receiver is up, with the same alert id and
 * delivery id, and the API and `/metrics` show it delivered.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTracesRequest } from '@conduct/proto';
import { STORAGE_KINDS, stopTestPostgres, testPostgres, type StorageKind } from '../support/postgres.js';
import { ensureBuilt, serve, type ServeProcess } from './support/child.js';
import { counterSum } from './support/harness.js';
import { randomHex, seededRandom, splitHostPort } from './support/wire.js';

const T0_MS = Date.UTC(2026, 0, 12, 9, 0, 0);
const rand = seededRandom(21);

/** One trace of client spans by `identity` at `atMs` (event time), as OTLP protobuf. */
function traceRequest(identity: string, atMs: number, ops: string[]): Buffer {
  const ns = (ms: number) => String(BigInt(Math.round(ms)) * 1_000_000n);
  const traceId = randomHex(rand, 16);
  const body = encodeTracesRequest({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'deployer' } }] },
        scopeSpans: [
          {
            spans: ops.map((op, i) => {
              const [method, route] = op.split(' ');
              return {
                traceId: Buffer.from(traceId, 'hex'),
                spanId: Buffer.from(randomHex(rand, 8), 'hex'),
                name: op,
                kind: 3,
                startTimeUnixNano: ns(atMs + i * 10),
                endTimeUnixNano: ns(atMs + i * 10 + 5),
                attributes: [
                  { key: 'enduser.id', value: { stringValue: identity } },
                  { key: 'http.request.method', value: { stringValue: method } },
                  { key: 'url.path', value: { stringValue: route } },
                  { key: 'server.address', value: { stringValue: 'kube-api.internal' } },
                ],
              };
            }),
          },
        ],
      },
    ],
  } as never);
  return Buffer.from(body);
}

async function send(endpoint: string, body: Buffer): Promise<number> {
  const [host, port] = splitHostPort(endpoint);
  const res = await fetch(`http://${host}:${port}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array(body) });
  await res.arrayBuffer();
  return res.status;
}

async function api<T = any>(p: ServeProcess, method: string, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(p.api + path, { method, headers: method === 'POST' ? { 'content-type': 'application/json' } : {}, body: method === 'POST' ? '{}' : undefined });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as T };
  } catch {
    return { status: res.status, body: text as T };
  }
}

/** Polls until `check` passes (no wall-clock assertion: the test's own timeout bounds it). */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50));
}

interface Delivery {
  sink: string;
  seq: number;
  event: string;
  state: string;
  attempts: number;
  lastError?: string;
  deliveredAt?: string;
}

interface Received {
  headers: http.IncomingHttpHeaders;
  body: { event: string; alert: { id: string; detector: string }; delivery: { id: string; seq: number } };
}

/** A webhook receiver on `port` that records every request and answers 200. */
async function receiver(port: number): Promise<{ received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received['body'] });
      res.writeHead(200).end();
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    received,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A port nothing listens on (taken from the system, then released). */
async function freePort(): Promise<number> {
  const server = http.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

let dir: string;
const running: ServeProcess[] = [];

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'conduct-outbox-'));
}, 240_000);

afterAll(async () => {
  for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await stopTestPostgres();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

/**
 * `conduct.yaml` in a directory of its own: endpoints on port 0, the store on `kind` (a fresh
 * database of the embedded PostgreSQL, or a SQLite file), one webhook sink to 127.0.0.1:`port`.
 */
async function writeConfig(kind: StorageKind, port: number): Promise<string> {
  const work = mkdtempSync(join(dir, `${kind}-`));
  const path = join(work, 'conduct.db');
  const storage = kind === 'postgres' ? `{ path: "${path}", postgres: { url: "${await (await testPostgres()).createDatabase()}" } }` : `{ path: "${path}" }`;
  const config = join(work, 'conduct.yaml');
  writeFileSync(
    config,
    `receivers:
  grpc: { endpoint: "127.0.0.1:0" }
  http: { endpoint: "127.0.0.1:0" }
api: { endpoint: "127.0.0.1:0" }
storage: ${storage}
log: { level: info }
learning: { minCalls: 20, period: 1m }
alerts:
  sinks:
    - type: webhook
      name: soar
      endpoint: http://127.0.0.1:${port}/hook
      retries: 1000
      backoff: 100ms
`,
  );
  return config;
}

async function start(configPath: string): Promise<ServeProcess> {
  const p = await serve(configPath);
  running.push(p);
  return p;
}

describe.each(STORAGE_KINDS)('durable alert delivery (child processes, %s)', (kind) => {
  it('an alert raised while the webhook is down survives kill -9 and is delivered after the restart, same ids', async () => {
    const port = await freePort();
    const config = await writeConfig(kind, port);
    let conduct = await start(config);
    // A learned baseline (30 deploys over 5 minutes of event time), then a new operation: an alert.
    for (let i = 0; i < 30; i++) expect(await send(conduct.http, traceRequest('deployer', T0_MS + i * 10_000, ['GET /deployments/{id}']))).toBe(200);
    expect((await api(conduct, 'POST', '/api/v1/flush')).status).toBe(200);
    expect(await send(conduct.http, traceRequest('deployer', T0_MS + 400_000, ['DELETE /clusters/{id}']))).toBe(200);
    expect((await api(conduct, 'POST', '/api/v1/flush')).status).toBe(200);
    const alerts = (await api<{ alerts: Array<{ id: string; detector: string }> }>(conduct, 'GET', '/api/v1/alerts')).body.alerts;
    expect(alerts).toHaveLength(1);
    const alert = alerts[0]!;

    // The receiver is down: attempts fail and are recorded; the delivery stays pending.
    let deliveries: Delivery[] = [];
    await until(async () => {
      deliveries = (await api<{ deliveries: Delivery[] }>(conduct, 'GET', `/api/v1/alerts/${alert.id}`)).body.deliveries;
      return (deliveries[0]?.attempts ?? 0) >= 2;
    });
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ sink: 'soar', seq: 1, event: 'alert', state: 'pending' });
    expect(deliveries[0]!.lastError).toMatch(/failed/);
    const before = String((await api(conduct, 'GET', '/metrics')).body);
    expect(counterSum(before, 'conduct_sink_outbox_entries', { sink: 'soar', state: 'pending' })).toBe(1);
    expect(counterSum(before, 'conduct_sink_retries_total', { sink: 'soar' })).toBeGreaterThanOrEqual(1);

    conduct.child.kill('SIGKILL');
    expect(await conduct.exited).toBe('SIGKILL');

    // The receiver comes up, conduct restarts: the pending delivery goes out.
    const hook = await receiver(port);
    try {
      conduct = await start(config);
      await until(() => hook.received.length >= 1);
      const [got] = hook.received;
      expect(got!.headers['x-conduct-delivery']).toBe(`${alert.id}/1`);
      expect(got!.headers['x-conduct-event']).toBe('alert');
      expect(got!.body.alert.id).toBe(alert.id);
      expect(got!.body.alert.detector).toBe(alert.detector);
      expect(got!.body.delivery).toEqual({ id: `${alert.id}/1`, seq: 1 });

      await until(async () => {
        deliveries = (await api<{ deliveries: Delivery[] }>(conduct, 'GET', `/api/v1/alerts/${alert.id}`)).body.deliveries;
        return deliveries[0]?.state === 'delivered';
      });
      expect(deliveries[0]!.deliveredAt).toMatch(/^\d{4}-\d\d-\d\dT/);
      const after = String((await api(conduct, 'GET', '/metrics')).body);
      expect(counterSum(after, 'conduct_sink_outbox_entries', { sink: 'soar', state: 'delivered' })).toBe(1);
      expect(counterSum(after, 'conduct_sink_outbox_entries', { sink: 'soar', state: 'pending' })).toBe(0);
      expect(counterSum(after, 'conduct_sink_deliveries_total', { sink: 'soar', outcome: 'delivered' })).toBe(1);
      // The restart raised no second alert: the same one, delivered.
      const again = (await api<{ alerts: Array<{ id: string }> }>(conduct, 'GET', '/api/v1/alerts')).body.alerts;
      expect(again.map((a) => a.id)).toEqual([alert.id]);

      conduct.child.kill('SIGTERM');
      expect(await conduct.exited).toBe(0);
    } finally {
      await hook.close();
    }
  }, 180_000);
});
