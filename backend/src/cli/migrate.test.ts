import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testAlert, testBaseline } from '../store/conformance.js';
import type { StorageBackend } from '../store/index.js';
import { openStorage } from '../store/index.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../store/postgres/embedded.js';
import { chain, tempDir, traceId } from '../store/testdata/fixtures.js';
import { runMigrate } from './migrate.js';

const T0 = 1_700_000_000_000;
const exit = { ok: 0, failure: 1, usage: 2 };

/** Everything a backend holds that the copy carries, in a comparable form. */
async function contents(s: StorageBackend) {
  const baselines: unknown[] = [];
  const entries: unknown[] = [];
  await s.detection.loadBaselines({ baseline: (b) => baselines.push(b), entry: (identity, e) => entries.push({ identity, ...e }) });
  const byKey = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
  const alerts = await s.detection.listAlerts({ limit: 100 });
  return {
    baselines: baselines.sort(byKey),
    entries: entries.sort(byKey),
    suppressions: (await s.detection.loadSuppressions()).sort(byKey),
    alerts,
    held: await Promise.all(alerts.map((a) => s.detection.heldByAlert(a.id))),
    trace1: await s.chainReader.traceChains(traceId(1)),
    summary1: await s.chainReader.traceSummary(traceId(1)),
    recent: await s.chainReader.recentChains('svc:shop', { limit: 100 }),
    identities: await s.identities.listIdentities(100),
    edges: await s.identities.identityEdges('svc:shop'),
    pathParameters: await s.templates.loadPathParameters(),
  };
}

describe('conduct migrate --from sqlite:PATH --to postgres:URL', () => {
  let server: EmbeddedPostgres;
  const cleanups: Array<() => void | Promise<void>> = [];
  beforeAll(async () => {
    server = await startEmbeddedPostgres();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  /** An SQLite installation with chains, baselines in two groups, alerts, held chains and suppressions. */
  async function sqliteInstallation(): Promise<string> {
    const t = tempDir('conduct-migrate-');
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'conduct.db');
    const s = await openStorage({ path });
    const held = chain(traceId(1), 'agent:x', [['vault', 'GET /secrets']], T0 + 50, { identityKind: 'agent', displayName: 'X' });
    await s.chainWriter.writeChains(
      [chain(traceId(1), 'svc:shop', [['orders', 'GET /orders'], ['db', 'SELECT']], T0), held, chain(traceId(2), 'svc:shop', [['orders', 'GET /orders']], T0 + 1000)],
      [{ traceId: traceId(1), startMs: T0, endMs: T0 + 60, spans: 5, services: ['shop', 'agent'] }],
    );
    const alert = testAlert({ id: 'al1', identity: 'agent:x', traceId: traceId(1), evidence: { keys: ['peer:vault', 'op:GET /secrets'] } });
    await s.detection.checkpoint({
      baselines: [
        { baseline: testBaseline('svc:shop', 0, { enforcingSinceMs: T0 + 5 }), entries: [{ kind: 'peer', key: 'orders', count: 2, firstMs: T0, lastMs: T0 + 1000 }], removed: [] },
        { baseline: testBaseline('agent:x', 9, { compromised: true, displayName: 'X' }), entries: [], removed: [] },
      ],
      alerts: [{ alert, dedupKey: ['agent:x', 'new-peer', 'op:GET /secrets', 'peer:vault'].join('\u0000') }, { alert: testAlert({ id: 'al2', identity: 'svc:shop', status: 'expected' }), dedupKey: 'k2' }],
      held: [{ identity: 'agent:x', traceId: traceId(1), alertId: 'al1', chain: held }],
      suppressions: [{ identity: 'svc:shop', detector: 'new-peer', key: 'peer:db', alertId: 'al2' }],
    });
    // Deliveries: al1's first event still pending for one sink (delivered to the other); al2's delivered.
    const al2 = (await s.detection.getAlert('al2'))!;
    await s.detection.checkpoint({
      outbox: [
        { alert, event: 'alert', sinks: ['hook', 'logs'], atMs: T0 },
        { alert: al2, event: 'alert', sinks: ['hook'], atMs: T0 },
      ],
    });
    for (const d of await s.outbox.claim('hook', T0, 10, 1000)) if (d.alertId === 'al2') await s.outbox.delivered(d, T0 + 1);
    const [logs] = await s.outbox.claim('logs', T0, 10, 1000);
    await s.outbox.delivered(logs!, T0 + 1);
    await s.templates.savePathParameters([{ peer: 'orders', method: 'GET', segments: 3, prefix: '/orders', learnedMs: T0 + 7 }]);
    await s.close();
    return path;
  }

  it('copies baselines, alerts, held chains, suppressions and chains, after which the repeat of an alert is found', async () => {
    const path = await sqliteInstallation();
    const url = await server.createDatabase();
    const out: string[] = [];
    const err: string[] = [];
    const code = await runMigrate({ from: `sqlite:${path}`, to: `postgres:${url}` }, { exit, out: (s) => out.push(s), err: (s) => err.push(s) });
    expect(err.join('')).not.toContain(new URL(url).password);
    expect(code).toBe(0);
    expect(out.join('')).toMatch(/copied 2 baselines \(1 entries\), 1 suppressions, 2 alerts \(1 held chains, 1 pending deliveries\), 3 chains, 1 trace summaries, 1 learned path parameters/);

    const source = await openStorage({ path });
    const target = await openStorage({ path: ':memory:', postgres: { url } });
    cleanups.push(() => source.close(), () => target.close());
    const [before, after] = await Promise.all([contents(source), contents(target)]);
    expect(after).toEqual(before);
    expect(after.baselines).toHaveLength(2);
    expect(after.recent).toHaveLength(2);
    // Delivery ids never repeat: sequences carry over, and what was pending is enqueued again under the next one.
    expect(await target.outbox.sequence('al2')).toBe(1);
    expect(await target.outbox.deliveries('al2', 10)).toEqual([]);
    expect(await target.outbox.sequence('al1')).toBe(2);
    expect((await target.outbox.deliveries('al1', 10)).map((d) => [d.sink, d.seq, d.event, d.state, d.attempts])).toEqual([['hook', 2, 'alert', 'pending', 0]]);
    expect(after.pathParameters).toHaveLength(1);
    // Detection finds the copied alert's repeats by the dedup key it gives findings.
    expect((await target.detection.findRepeat(['agent:x', 'new-peer', 'op:GET /secrets', 'peer:vault'].join('\u0000'), T0 - 1, T0 + 1))?.id).toBe('al1');
  });

  it('refuses a target that already holds data, and locations it cannot read', async () => {
    const path = await sqliteInstallation();
    const url = await server.createDatabase();
    const quiet = { exit, out: () => {}, err: () => {} };
    expect(await runMigrate({ from: `sqlite:${path}`, to: url }, quiet)).toBe(0);
    const err: string[] = [];
    expect(await runMigrate({ from: `sqlite:${path}`, to: url }, { ...quiet, err: (s) => err.push(s) })).toBe(1);
    expect(err.join('')).toMatch(/already holds data/);
    expect(await runMigrate({ from: 'mysql://x', to: url }, quiet)).toBe(2);
    expect(await runMigrate({ from: 'sqlite:/nonexistent/conduct.db', to: url }, quiet)).toBe(2);
  });
});
