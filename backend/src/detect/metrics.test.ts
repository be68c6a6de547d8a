import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { chain, traceId } from '../store/testdata/fixtures.js';
import { tempSqliteBackend } from '../store/testdata/sqlite.js';
import { createDetection } from './detection.js';
import { registerDetectionMetrics } from './metrics.js';

const T0 = 1_700_000_000_000;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const backend = () => tempSqliteBackend('conduct-detection-metrics-', cleanups);

/** The value of one series in Prometheus text. */
async function value(registry: Registry, series: string): Promise<number> {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no series ${series}`);
  return Number(line.slice(series.length + 1));
}

describe('detection metrics', () => {
  it('sum the counts of every detection built, going on when one replaces another (a cluster owner\'s rebuild)', async () => {
    const b = await backend();
    const registry = new Registry();
    const metrics = registerDetectionMetrics({ registry, gauges: true });
    const options = { state: b.detection, learning: { minCalls: 1000, period: 86_400_000, forgetAfter: 30 * 86_400_000 }, traceUrl: 'http://t/{traceId}' };
    const learned = 'conduct_detection_chains_total{outcome="learned"}';
    expect(await value(registry, learned)).toBe(0);

    const first = metrics.track(await createDetection(options));
    await first.analyse([1, 2, 3].map((n) => chain(traceId(n), 'svc:a', [['api', 'GET /x']], T0 + n * 1000)));
    expect(await value(registry, learned)).toBe(3);
    // Counted once, however often it is scraped.
    expect(await value(registry, learned)).toBe(3);

    // A new detection over the same state takes over: what the first counted stays counted.
    await first.analyse([chain(traceId(4), 'svc:a', [['api', 'GET /x']], T0 + 4000)]);
    const second = metrics.track(await createDetection(options));
    await second.analyse([5, 6].map((n) => chain(traceId(n), 'svc:b', [['api', 'GET /y']], T0 + n * 1000)));
    expect(await value(registry, learned)).toBe(6);
    expect(await value(registry, 'conduct_detection_alerts_total{outcome="raised"}')).toBe(0);
    expect(await value(registry, 'conduct_detection_releases_held')).toBe(0);
  });
});
