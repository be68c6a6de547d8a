import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Chain } from '@conduct/processor';
import { SEVERITY_RANK, type Alert } from '../alerts/model.js';
import { openSqliteBackend, type SqliteBackend } from '../store/index.js';
import { ALERT_FLOOD_KEY, createDetection, type CardinalityLimits, type Detection } from './detection.js';
import { HOUR, MINUTE, T0, chain } from './testdata/chains.js';

const CI = 'svc:ci/deployer';
const SOURCE = { region: 'us-east-1', account: '111111111111', cluster: 'prod-a' };
/** Training: 60 chains, one every 3 minutes, ends here. */
const TRAINED = T0 + 60 * 3 * MINUTE;

/** The usual deploy: read the deployment, then write a log object to one of six buckets. */
function deploy(at: number, bucket: number): Chain {
  return chain(CI, at, [
    { operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments', source: SOURCE },
    { operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', target: `logs-${bucket}`, account: '111111111111', source: SOURCE },
  ]);
}

let dir: string;
let backend: SqliteBackend;

async function trained(limits: Partial<CardinalityLimits>): Promise<Detection> {
  const d = await createDetection({
    state: backend.detection,
    learning: { minCalls: 100, period: 2 * HOUR, forgetAfter: 7 * 24 * HOUR },
    traceUrl: 'http://t/{traceId}',
    limits,
  });
  const r = await d.analyse(Array.from({ length: 60 }, (_, i) => deploy(T0 + i * 3 * MINUTE, i % 6)));
  expect(r.alerts).toEqual([]);
  expect(d.identity(CI)?.status).toBe('enforcing');
  return d;
}

/** `n` usual chains within one minute from `at`, all writing to the buckets `bucket(k)`. */
const burst = (at: number, n: number, bucket: (k: number) => number) =>
  Array.from({ length: n }, (_, k) => deploy(at + k * 1_000, bucket(k)));

const floodOf = async (d: Detection) => (await d.listAlerts({ identity: CI })).filter((a) => (a.evidence?.keys as string[]).includes(ALERT_FLOOD_KEY));
const loud = (alerts: Alert[]) => alerts.filter((a) => SEVERITY_RANK[a.severity] >= SEVERITY_RANK.medium);

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conduct-budget-'));
  backend = await openSqliteBackend({ path: join(dir, 'conduct.db') });
});
afterEach(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('per-identity alert budget', () => {
  it('does not spend the budget on repeats: a long legitimate burst stays one low alert per finding', async () => {
    const d = await trained({ maxAlertsPerIdentityPerHour: 2 });
    // Three minutes of 40 usual chains each (80 calls a minute, usually under 1) over six known buckets.
    const r = await d.analyse([
      ...burst(TRAINED + MINUTE, 40, (k) => k % 6),
      ...burst(TRAINED + 3 * MINUTE, 40, (k) => k % 6),
      ...burst(TRAINED + 5 * MINUTE, 40, (k) => k % 6),
    ]);
    expect(loud([...r.alerts, ...r.updated])).toEqual([]);
    expect(await floodOf(d)).toEqual([]);
    expect(d.stats().findingsFolded).toBe(0);
    const rate = await d.listAlerts({ identity: CI, detector: 'rate-burst' });
    expect(rate).toHaveLength(1);
    // Far more repeats than the budget of two, all counted on the one alert.
    expect(rate[0]!.count).toBeGreaterThan(20);
    expect(rate[0]!.severity).toBe('low');
  });

  it('folds low findings over budget into a low flood alert, keeps reach expansion out of that budget, and raises the flood only to what it folds', async () => {
    const d = await trained({ maxAlertsPerIdentityPerHour: 1 });

    // 1. Four usual chains in one minute writing to five known buckets: a low fan-out. It spends the budget.
    const fan = await d.analyse(burst(TRAINED + MINUTE, 4, (k) => k));
    expect(fan.alerts.map((a) => [a.detector, a.severity])).toEqual([['fan-out', 'low']]);

    // 2. A low rate burst in the same hour is a new finding over budget: it folds, and the flood alert stays low.
    const rate = await d.analyse(burst(TRAINED + 5 * MINUTE, 40, () => 0));
    expect(loud([...rate.alerts, ...rate.updated])).toEqual([]);
    let flood = await floodOf(d);
    expect(flood).toHaveLength(1);
    expect(flood[0]).toMatchObject({ detector: 'fan-out', severity: 'low' });
    expect(flood[0]!.score).toBeLessThan(40);
    expect(d.stats().findingsFolded).toBeGreaterThan(0);
    // Low folds do not keep the chains out of the baseline.
    expect(rate.learned).toBe(40);

    // 3. A new peer in the same hour is not swallowed: low findings never spend the reach budget.
    const moved = chain(CI, TRAINED + 20 * MINUTE, [
      { operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments', source: SOURCE },
      { operation: 'PutObject', peer: 'backup.internal', peerKind: 'http', target: 'logs-0', source: SOURCE },
    ]);
    const peer = await d.analyse([moved]);
    const newPeer = peer.alerts.find((a) => a.detectors.includes('new-peer'));
    expect(newPeer).toBeDefined();
    expect(newPeer!.traceId).toBe(moved.traceId);
    expect(newPeer!.severity).toBe('medium');
    expect(newPeer!.explanation).toContain('backup.internal');

    // 4. The next new medium finding is over the reach budget: it folds, and the flood alert rises to medium, no higher.
    const other = chain(CI, TRAINED + 25 * MINUTE, [
      { operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments', source: SOURCE },
      { operation: 'PutObject', peer: 'archive.internal', peerKind: 'http', target: 'logs-0', source: SOURCE },
    ]);
    const folded = await d.analyse([other]);
    expect(folded.alerts.filter((a) => a.detectors.includes('new-peer'))).toEqual([]);
    flood = await floodOf(d);
    expect(flood).toHaveLength(1);
    expect(flood[0]!.severity).toBe('medium');
    expect(folded.held).toBe(1);
    expect(d.baseline(CI)!.peers.map((p) => p.key)).not.toContain('archive.internal');
  });
});
