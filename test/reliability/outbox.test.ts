/**
 * Issue 21, durable alert delivery, with `conduct serve` as a child process (the built command):
 * an alert raised while its webhook receiver is down is kept in the store's outbox; after kill -9
 * and a restart it reaches the receiver once the receiver is up, with the same alert id and
 * delivery id, and the API and `/metrics` show it delivered.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUrlFor, STORAGE_KINDS, stopTestPostgres, type StorageKind } from '../support/postgres.js';
import { recordingHttp, refusedPort, until } from '../support/receivers.js';
import { api, ensureBuilt, sendOtlp, ServeProcesses, writeConfig } from './support/child.js';
import { counterSum } from './support/harness.js';
import { deployerTrace } from './support/otlp.js';
import { seededRandom } from './support/wire.js';

const T0_MS = Date.UTC(2026, 0, 12, 9, 0, 0);
const rand = seededRandom(21);

/** One trace of client spans by `identity` at `atMs` (event time), as OTLP protobuf. */
const traceRequest = (identity: string, atMs: number, ops: string[]) => deployerTrace(rand, identity, atMs, ops).body;

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
  event: string;
  alert: { id: string; detector: string };
  delivery: { id: string; seq: number };
}

let dir: string;
const conducts = new ServeProcesses();

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'conduct-outbox-'));
}, 240_000);

afterAll(async () => {
  conducts.killAll();
  await stopTestPostgres();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

/**
 * `conduct.yaml` in a directory of its own: endpoints on port 0, the store on `kind` (a fresh
 * database of the embedded PostgreSQL, or a SQLite file), one webhook sink to 127.0.0.1:`port`.
 */
async function configFor(kind: StorageKind, port: number): Promise<string> {
  return writeConfig(
    mkdtempSync(join(dir, `${kind}-`)),
    `learning: { minCalls: 20, period: 1m }
alerts:
  sinks:
    - type: webhook
      name: soar
      endpoint: http://127.0.0.1:${port}/hook
      retries: 1000
      backoff: 100ms
`,
    await postgresUrlFor(kind),
  );
}

const start = (configPath: string) => conducts.start(configPath);
const send = (endpoint: string, body: Buffer) => sendOtlp(endpoint, body);

describe.each(STORAGE_KINDS)('durable alert delivery (child processes, %s)', (kind) => {
  it('an alert raised while the webhook is down survives kill -9 and is delivered after the restart, same ids', async () => {
    const port = await refusedPort();
    const config = await configFor(kind, port);
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
    const hook = await recordingHttp({ port });
    try {
      conduct = await start(config);
      await until(() => hook.received.length >= 1);
      const [got] = hook.received;
      const body = JSON.parse(got!.body.toString('utf8')) as Received;
      expect(got!.headers['x-conduct-delivery']).toBe(`${alert.id}/1`);
      expect(got!.headers['x-conduct-event']).toBe('alert');
      expect(body.alert.id).toBe(alert.id);
      expect(body.alert.detector).toBe(alert.detector);
      expect(body.delivery).toEqual({ id: `${alert.id}/1`, seq: 1 });

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
