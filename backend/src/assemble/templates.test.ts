/**
 * Learned path parameters with detection behind them (the backend as `serve` assembles it, on a
 * real SQLite file): the position a known identity's user names take becomes a parameter, and
 * what the identity learned of it before carries over to the template, so the names after the
 * threshold raise no alert.
 */
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_PARAM_THRESHOLD, PARAM_PLACEHOLDER, type Chain } from '@conduct/processor';
import type { Alert } from '../alerts/model.js';
import { parseConfig } from '../config/index.js';
import { call, tempDir, traceId } from '../store/testdata/fixtures.js';
import { assembleBackend, type Assembled } from './index.js';

const T0 = Date.UTC(2026, 10, 2, 8, 0, 0);
const MINUTE = 60_000;
const IDENTITY = 'svc:ops/profile-sync';
/** Names the identity reads during its learning period, again and again. */
const KNOWN = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];

let n = 0;
/** One trace of the sync job: a health check, then the user's profile (from the raw URL path). */
function syncChain(at: number, user: string): Chain {
  const t = traceId(++n);
  const calls = [
    call({ traceId: t, identity: IDENTITY, service: 'ops/profile-sync', peer: 'users-api', operation: 'GET /health', startMs: at }),
    call({ traceId: t, identity: IDENTITY, service: 'ops/profile-sync', peer: 'users-api', operation: `GET /users/${user}/profile`, pathOperation: true, startMs: at + 5 }),
  ];
  return { traceId: t, identity: IDENTITY, identityKind: 'workload', startMs: at, endMs: at + 10, calls };
}

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function assembled(): Promise<{ backend: Assembled; alerts: Alert[] }> {
  const t = tempDir('conduct-assemble-templates-');
  cleanups.push(t.cleanup);
  const config = parseConfig({ storage: { path: join(t.dir, 'conduct.db') }, learning: { minCalls: 20, period: '1h' } });
  const backend = await assembleBackend(config, { registry: new Registry(), sinks: false });
  cleanups.push(() => backend.stop());
  const alerts: Alert[] = [];
  backend.engine.onAlert((alert, event) => void (event === 'alert' && alerts.push(alert)));
  return { backend, alerts };
}

describe('learned path parameters and detection', () => {
  it('50 new user names under one prefix for a known identity: no alert once the position is a parameter', async () => {
    const { backend, alerts } = await assembled();
    let at = T0;
    for (let i = 0; i < 40; i++, at += 3 * MINUTE) await backend.engine.consume({ chains: [syncChain(at, KNOWN[i % KNOWN.length]!)], traces: 1, spans: 4 });
    expect(backend.detection.identity(IDENTITY)?.status).toBe('enforcing');
    expect(alerts).toEqual([]);

    const template = `GET /users/${PARAM_PLACEHOLDER}/profile`;
    const newNames = Array.from({ length: 50 }, (_, i) => `user${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}x`);
    const traces: string[] = [];
    for (const name of newNames) {
      const chain = syncChain((at += 3 * MINUTE), name);
      traces.push(chain.traceId);
      await backend.engine.consume({ chains: [chain], traces: 1, spans: 4 });
    }
    // The names before the threshold are new operations of a known identity: the first two are
    // medium; from the third on, the position already shows two rarely seen values, so each is a
    // low parameter candidate, all in one incident keyed by the candidate template. The one that
    // completes the threshold and every later one carry the template, which the identity knows:
    // the six names it learned were renamed to it.
    const beforeThreshold = DEFAULT_PARAM_THRESHOLD - KNOWN.length - 1;
    const byTrace = (from: number, to?: number) => alerts.filter((a) => traces.slice(from, to).includes(a.traceId));
    const early = byTrace(0, beforeThreshold);
    expect(early.map((a) => [a.detector, a.severity])).toEqual([
      ['new-operation', 'medium'],
      ['new-operation', 'medium'],
      ...Array(beforeThreshold - 2).fill(['new-operation', 'low']),
    ]);
    expect(new Set(early.slice(2).map((a) => a.id)).size).toBe(1);
    const after = byTrace(beforeThreshold);
    expect(after.filter((a) => a.severity !== 'low' && a.severity !== 'info'), JSON.stringify(after.map((a) => a.title))).toEqual([]);
    expect(after.length).toBeLessThanOrEqual(1);
    const stored = await backend.storage.chainReader.traceChains(traces.at(-1)!);
    expect(stored[0]!.calls.map((c) => c.operation)).toEqual(['GET /health', template]);
    const baseline = backend.detection.baseline(IDENTITY) as unknown as { operations?: Array<{ key: string }> };
    expect(JSON.stringify(baseline)).toContain(template);
    expect(JSON.stringify(baseline)).not.toContain('GET /users/alice/profile');
  });
});
