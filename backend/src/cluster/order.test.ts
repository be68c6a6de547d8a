/**
 * What an owner's hand-off order does to detection. Two instances stitch chains of one identity
 * and hand them off interleaved: each instance's chains arrive in their own event-time order, one
 * instance's later than the other's by its lag. Detection keeps rate windows open for
 * OPEN_WINDOWS minutes behind the newest call, so a lag within that changes nothing it learns or
 * raises; past it, the lagging instance's calls are late for the rate windows (docs/scaling.md,
 * "Event-time order on the owner").
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Chain } from '@conduct/processor';
import { createDetection, type Detection } from '../detect/detection.js';
import { deployChain, HOUR, MINUTE, T0, training } from '../detect/testdata/chains.js';
import { OPEN_WINDOWS, RATE_WINDOW_MS } from '../learn/rate.js';
import { openSqliteBackend, type SqliteBackend } from '../store/index.js';

const CI = 'svc:ci/deployer';
const TRAINED = T0 + 60 * 3 * MINUTE;
/** Chains an owner analyses together (a run of hand-off items). */
const RUN = 4;

let dir: string;
let backend: SqliteBackend;

async function openFresh(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'conduct-order-'));
  backend = await openSqliteBackend({ path: join(dir, 'conduct.db') });
}
async function closeStore(): Promise<void> {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
}
beforeEach(openFresh);
afterEach(closeStore);

/** After training: normal work for 20 minutes with a burst (40 chains in one minute) at minute 10. */
function traffic(): Chain[] {
  const out: Chain[] = [];
  for (let m = 0; m < 20; m++) out.push(deployChain(CI, TRAINED + m * MINUTE + 7_000, m));
  for (let k = 0; k < 40; k++) out.push(deployChain(CI, TRAINED + 10 * MINUTE + 10_000 + k * 1_000, k));
  return out.sort((a, b) => a.startMs - b.startMs);
}

/**
 * The order an owner sees: chains alternately stitched by instance A and B (as trace-id routing
 * splits them), each instance's in event order, B's handed off `lagMs` after A's of the same time.
 */
function handOffOrder(chains: readonly Chain[], lagMs: number): Chain[] {
  return chains
    .map((c, i) => ({ c, at: c.startMs + (i % 2 === 1 ? lagMs : 0), i }))
    .sort((x, y) => x.at - y.at || x.i - y.i)
    .map((x) => x.c);
}

interface Outcome {
  /** Detectors of every alert raised (an alert's detectors, sorted), sorted. */
  alerts: string[];
  /** Traces the alerts were raised on. */
  traces: string[];
  calls: number;
  /** Learned calls-per-window samples (mean and count). */
  rate: { windows: number; mean: number };
}

async function run(order: readonly Chain[]): Promise<Outcome> {
  const d: Detection = await createDetection({
    state: backend.detection,
    learning: { minCalls: 100, period: 2 * HOUR, forgetAfter: 7 * 24 * HOUR },
    policies: [],
    traceUrl: 'http://jaeger.test/trace/{traceId}',
  });
  await d.analyse(training(CI, T0, 60, 3 * MINUTE));
  const alerts: Array<{ detectors: string[]; traceId: string }> = [];
  for (let i = 0; i < order.length; i += RUN) {
    const r = await d.analyse(order.slice(i, i + RUN));
    for (const a of r.alerts) alerts.push({ detectors: [...a.detectors].sort(), traceId: a.traceId });
  }
  // A minute of ordinary work far later closes every open window into the learned samples.
  await d.analyse([deployChain(CI, TRAINED + 40 * MINUTE, 99)]);
  const b = d.baseline(CI)!;
  return {
    alerts: alerts.map((a) => a.detectors.join('+')).sort(),
    traces: alerts.map((a) => a.traceId).sort(),
    calls: b.calls,
    rate: { windows: b.rate.calls.windows, mean: Number(b.rate.calls.mean.toFixed(3)) },
  };
}

describe('hand-off order across instances (event-time order on the owner)', () => {
  it('a lag within the open rate windows learns and raises what event-time order does', async () => {
    const chains = traffic();
    const burstMinute = new Set(chains.filter((c) => Math.floor(c.startMs / RATE_WINDOW_MS) === Math.floor((TRAINED + 10 * MINUTE + 10_000) / RATE_WINDOW_MS)).map((c) => c.traceId));
    const inEventTime = await run(chains);
    // The burst is seen in event-time order.
    expect(inEventTime.alerts.some((a) => a.includes('rate-burst'))).toBe(true);
    for (const lagMs of [2_000, 15_000, 60_000, (OPEN_WINDOWS - 1) * RATE_WINDOW_MS + 50_000]) {
      await closeStore();
      await openFresh();
      const got = await run(handOffOrder(chains, lagMs));
      // The same alerts, counts and learned rates; the burst's alert is on a chain of the burst
      // minute, but which one (the chain whose arrival crossed the threshold) follows arrival order.
      expect({ lagMs, ...got, traces: got.traces.length }).toEqual({ lagMs, ...inEventTime, traces: inEventTime.traces.length });
      for (const t of got.traces) expect(burstMinute.has(t)).toBe(true);
    }
  });

  it('past the open windows, the lagging instance\'s calls are late for the rates: fewer, smaller learned samples', async () => {
    const chains = traffic();
    const inEventTime = await run(chains);
    await closeStore();
    await openFresh();
    const late = await run(handOffOrder(chains, (OPEN_WINDOWS + 2) * RATE_WINDOW_MS));
    // Every call is still learned (peers, operations, counts)...
    expect(late.calls).toBe(inEventTime.calls);
    // ...but the rate windows miss the lagging half: different samples, and the burst is not raised.
    expect(late.rate.windows).toBeLessThan(inEventTime.rate.windows);
    expect(late.rate.mean).toBeLessThan(inEventTime.rate.mean);
    // (Here the burst minute holds enough calls from one instance alone to be raised anyway.)
    expect(late.alerts).toEqual(inEventTime.alerts);
  });
});
