/**
 * Issue 8, cardinality attack: a flood of distinct identities, operations and peers keeps the
 * detection state bounded, raises one flood alert instead of thousands, and leaves established
 * baselines as they were.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Call, Chain } from '@conduct/processor';
import { createDetection, FLOOD_IDENTITY, openSqliteBackend, parseConfig, type Alert, type Detection, type SqliteBackend } from '@conduct/backend';

const T0 = Date.UTC(2026, 2, 2, 8, 0, 0);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const CI = 'svc:ci/deployer';
const LIMITS = { maxIdentities: 500, maxNewIdentitiesPerMinute: 100, maxAlertsPerIdentityPerHour: 10 };

let seq = 0;
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

function chain(identity: string, startMs: number, specs: Array<Pick<Call, 'operation' | 'peer'> & Partial<Call>>): Chain {
  const traceId = hex(++seq, 32);
  const calls: Call[] = specs.map((s, i) => ({
    traceId,
    spanId: hex(++seq, 16),
    parentSpanId: '',
    identity,
    identityKind: 'workload',
    service: 'ci/deployer',
    peerKind: 'service',
    external: false,
    protocol: 'http',
    startMs: startMs + i * 100,
    durationMs: 20,
    status: 'ok',
    name: s.operation,
    source: { region: 'eu-west-1' },
    ...s,
  }));
  return { traceId, identity, identityKind: 'workload', startMs, endMs: startMs + specs.length * 100, calls };
}

const deploy = (identity: string, at: number) =>
  chain(identity, at, [
    { operation: 'GET /deployments/{id}', peer: 'kube-api', target: 'deployments' },
    { operation: 'PATCH /deployments/{id}', peer: 'kube-api', target: 'deployments' },
  ]);

let dir: string;
let backend: SqliteBackend;
let detection: Detection;
/** Every alert announcement (new and repeated) the engine would hand to the sinks. */
let announced: Alert[];

async function analyse(chains: Chain[]): Promise<void> {
  const r = await detection.analyse(chains);
  announced.push(...r.alerts, ...r.updated);
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conduct-cardinality-'));
  backend = await openSqliteBackend({ path: join(dir, 'conduct.db') });
  const learning = { minCalls: 50, period: HOUR, forgetAfter: 30 * 24 * HOUR };
  detection = await createDetection({ state: backend.detection, learning, traceUrl: 'http://t/{traceId}', limits: LIMITS });
  announced = [];
  // An established identity: 80 deploys over 4 hours.
  await analyse(Array.from({ length: 80 }, (_, i) => deploy(CI, T0 + i * 3 * MINUTE)));
  expect(detection.identity(CI)?.status).toBe('enforcing');
  expect(announced).toEqual([]);
});

afterEach(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('cardinality attack', () => {
  it('a flood of distinct identities stays under the caps and raises one alert', async () => {
    const before = detection.baseline(CI);
    const at = T0 + 5 * HOUR;
    // 6000 new identities over 10 minutes, in batches as the engine would hand them over.
    for (let batch = 0; batch < 60; batch++) {
      await analyse(Array.from({ length: 100 }, (_, i) => deploy(`spiffe://evil/sa/${batch}-${i}`, at + batch * 10_000 + i)));
    }
    const stats = detection.stats();
    expect(stats.identities).toBeLessThanOrEqual(LIMITS.maxIdentities);
    expect(stats.identitiesRefused).toBeGreaterThanOrEqual(6000 - LIMITS.maxIdentities);

    // One alert about the flood, on the synthetic ingest identity, counting the refused chains.
    const all = await detection.listAlerts({ limit: 1000 });
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ identity: FLOOD_IDENTITY, detector: 'fan-out' });
    expect(all[0]!.title).toMatch(/Identity flood/);
    expect(all[0]!.count).toBe(stats.identitiesRefused);
    // Repeats are announced at counts 2, 4, 8, ...: a few announcements, not thousands.
    expect(announced.length).toBeLessThanOrEqual(Math.ceil(Math.log2(stats.identitiesRefused)) + 1);

    // The established identity is untouched and still enforcing; its normal work raises nothing.
    expect(detection.baseline(CI)).toEqual(before);
    const quiet = await detection.analyse([deploy(CI, at + 11 * MINUTE)]);
    expect(quiet.alerts).toEqual([]);
    expect(detection.identity(CI)?.status).toBe('enforcing');
  });

  it('an established identity flooding new operations and peers raises a bounded number of alerts and keeps its baseline', async () => {
    const before = detection.baseline(CI)!;
    const at = T0 + 5 * HOUR;
    const flood = Array.from({ length: 3000 }, (_, i) =>
      chain(CI, at + i * 500, [{ operation: `GET /probe-${i}`, peer: `host-${i}.internal` }]),
    );
    for (let i = 0; i < flood.length; i += 250) await analyse(flood.slice(i, i + 250));

    const alerts = await detection.listAlerts({ identity: CI, limit: 1000 });
    // Within the hour: the budget, plus one flood alert that takes the rest.
    const floodAlerts = alerts.filter((a) => /flooding/.test(a.title));
    expect(floodAlerts).toHaveLength(1);
    expect(floodAlerts[0]!.detector).toBe('fan-out');
    expect(alerts.length).toBeLessThanOrEqual(LIMITS.maxAlertsPerIdentityPerHour + 1);
    expect(detection.stats().findingsFolded).toBeGreaterThan(2000);
    expect(announced.length).toBeLessThan(LIMITS.maxAlertsPerIdentityPerHour + 20);

    // Nothing of the flood entered the baseline, and nothing learned was displaced.
    const after = detection.baseline(CI)!;
    expect(after.peers).toEqual(before.peers);
    expect(after.operations).toEqual(before.operations);
  });

  it('caps come from the `limits` section of the config', async () => {
    const config = parseConfig({ limits: { maxIdentities: 42, maxNewIdentitiesPerMinute: 7 } });
    expect(config.limits).toMatchObject({ maxIdentities: 42, maxNewIdentitiesPerMinute: 7, maxAlertsPerIdentityPerHour: 50 });
    expect(() => parseConfig({ limits: { maxIdentities: -1 } })).toThrow(/limits\.maxIdentities/);
  });
});
