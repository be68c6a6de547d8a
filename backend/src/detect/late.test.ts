import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Call, Chain } from '@conduct/processor';
import { openSqliteBackend, type SqliteBackend } from '../store/index.js';
import { createDetection, type Detection, type LateChange } from './detection.js';
import { HOUR, T0, chain } from './testdata/chains.js';

const USER = 'user:alice';
let dir: string;
let backend: SqliteBackend;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conduct-detect-late-'));
  backend = await openSqliteBackend({ path: join(dir, 'conduct.db') });
});
afterEach(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

function open(expectedPeers: string[]): Promise<Detection> {
  return createDetection({
    state: backend.detection,
    learning: { minCalls: 100, period: 2 * HOUR, forgetAfter: 24 * HOUR },
    policies: [{ match: USER, expectedPeers }],
    traceUrl: 'http://jaeger.test/trace/{traceId}',
  });
}

/** The caller half stored alone (a call to the address its client span named), and the trace once the callee half arrived. */
function halves(): { before: Chain; after: Chain; stitched: Call; provisional: Call } {
  const before = chain(USER, T0, [{ operation: 'GET /checkout', peer: 'shop/web', service: 'client' }, { operation: 'GET /orders/{id}', peer: 'orders:8080', peerKind: 'http' }]);
  const provisional = before.calls[1]!;
  const stitched: Call = { ...provisional, serverSpanId: 'f'.repeat(16), peer: 'shop/orders', peerKind: 'service' };
  return { before, after: { ...before, calls: [before.calls[0]!, stitched] }, stitched, provisional };
}

const change = (before: Chain, after: Chain | undefined, changed: Call[], replaced: Call[]): LateChange => ({
  before,
  after,
  changed: new Set(changed.map((c) => c.spanId)),
  replaced: new Set(replaced.map((c) => c.spanId)),
});

describe('detection on later parts of a trace', () => {
  it('supersedes a finding on the provisional call the late half resolves, and learns the merged chain instead', async () => {
    const d = await open(['shop/web', 'shop/orders']);
    const { before, after, stitched, provisional } = halves();
    const first = await d.analyse([before]);
    expect(first.alerts.map((a) => [a.detector, a.evidence?.keys])).toEqual([['policy', ['peer:orders:8080']]]);
    // Held out of the baseline (medium): nothing of it was learned.
    expect(d.identity(USER)?.calls).toBe(0);

    const late = await d.analyseLate([change(before, after, [stitched], [provisional])]);
    expect(late.alerts).toEqual([]);
    expect(late.superseded.map((a) => [a.id, a.status])).toEqual([[first.alerts[0]!.id, 'superseded']]);
    expect(await d.getAlert(first.alerts[0]!.id)).toMatchObject({ status: 'superseded', evidence: { superseded: { spanIds: [provisional.spanId] } } });
    expect(await d.listAlerts({ status: 'open' })).toEqual([]);
    // The merged chain is learned once, whole.
    expect(d.identity(USER)?.calls).toBe(2);
    expect(d.baseline(USER)?.peers.map((p) => p.key).sort()).toEqual(['shop/orders', 'shop/web']);
    expect(d.stats().alertsSuperseded).toBe(1);
  });

  it('raises new findings only from what the late half adds, revising the alert it supersedes', async () => {
    const d = await open(['shop/web']);
    const { before, after, stitched, provisional } = halves();
    const first = (await d.analyse([before])).alerts[0]!;
    const late = await d.analyseLate([change(before, after, [stitched], [provisional])]);
    // The stitched call goes to shop/orders, which the policy does not expect either: the alert
    // of this chain and detector now holds that finding, and names the one it replaces.
    expect(late.superseded.map((a) => a.id)).toEqual([first.id]);
    expect(late.alerts.map((a) => [a.id, a.status, a.evidence?.keys, a.evidence?.revises])).toEqual([
      [first.id, 'open', ['peer:shop/orders'], { keys: ['peer:orders:8080'], title: first.title }],
    ]);
    // Held, not learned.
    expect(d.identity(USER)?.calls).toBe(0);
  });

  it('keeps a finding the merged chain still shows, without counting it again, and keeps the chain held', async () => {
    const d = await open(['orders:8080', 'shop/orders']);
    const { before, after, stitched, provisional } = halves();
    // Its entry call to shop/web breaks the policy, before and after the callee half arrived.
    const first = (await d.analyse([before])).alerts[0]!;
    expect(first.evidence?.keys).toEqual(['peer:shop/web']);
    const late = await d.analyseLate([change(before, after, [stitched], [provisional])]);
    expect(late).toMatchObject({ alerts: [], updated: [], superseded: [], held: 1, learned: 0 });
    expect(await d.getAlert(first.id)).toMatchObject({ status: 'open', count: 1 });
    expect(d.identity(USER)?.calls).toBe(0);
  });
});
