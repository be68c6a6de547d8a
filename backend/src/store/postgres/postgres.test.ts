import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Chain } from '@conduct/processor';
import { testAlert, testBaseline } from '../conformance.js';
import { chain, traceId } from '../testdata/fixtures.js';
import { openPostgresBackend, type PostgresBackend } from './backend.js';
import { isRetryable } from './connection.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';

// What the conformance suite cannot say: several instances on one database, the texts' numbering,
// the batch that is sent again, and a server that goes away and comes back.
const T0 = 1_700_000_000_000;

describe('PostgreSQL store', () => {
  let server: EmbeddedPostgres;
  const open: PostgresBackend[] = [];
  const backend = async (url: string) => {
    const b = await openPostgresBackend({ url });
    open.push(b);
    return b;
  };
  beforeAll(async () => {
    server = await startEmbeddedPostgres();
  });
  afterEach(async () => {
    if (!server.running) await server.start();
    for (const b of open.splice(0)) await b.close();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('lets two instances on one database number the same new texts once and read each other\'s chains', async () => {
    const url = await server.createDatabase();
    const [a, b] = await Promise.all([backend(url), backend(url)]);
    const batch = (n: number, who: string): Chain[] =>
      Array.from({ length: 50 }, (_, i) => chain(traceId(n * 100 + i), `svc:${who}`, [[`peer-${i % 7}`, `GET /shared/${i % 5}`], ['db', 'SELECT']], T0 + i));
    const fromA = batch(1, 'a');
    const fromB = batch(2, 'b');
    await Promise.all([a.chainWriter.writeChains(fromA), b.chainWriter.writeChains(fromB)]);
    expect(await a.chainReader.traceChains(fromB[7]!.traceId)).toEqual([fromB[7]]);
    expect(await b.chainReader.traceChains(fromA[3]!.traceId)).toEqual([fromA[3]]);
    expect((await b.chainReader.recentChains('svc:a', { limit: 100 })).length).toBe(50);
    // The shared edge counts of both writers, added up.
    expect((await a.identities.identityEdges('svc:a')).reduce((n, e) => n + e.count, 0)).toBe(100);
  });

  it('keeps long, NUL-bearing and one-of-a-kind texts exactly, inline or numbered', async () => {
    const s = await backend(await server.createDatabase());
    const odd = chain(traceId(3), 'svc:\u0000nul', [['x'.repeat(300), 'op \u0000 \u0001'], ['\u0001lead', '\ud800 lone']], T0, { displayName: 'Name\u0000' });
    await s.chainWriter.writeChains([odd]);
    expect(await s.chainReader.traceChains(traceId(3))).toEqual([odd]);
    expect(await s.chainReader.recentChains('svc:\u0000nul', { limit: 5 })).toEqual([odd]);
    expect(await s.identities.getIdentity('svc:\u0000nul')).toMatchObject({ displayName: 'Name\u0000', chains: 1 });
    expect((await s.identities.identityEdges('svc:\u0000nul')).map((e) => e.peer).sort()).toEqual(['\u0001lead', 'x'.repeat(300)]);
  });

  it('stores a batch once when the same batch is written again (a retry after a lost answer)', async () => {
    const s = await backend(await server.createDatabase());
    const batch = [chain(traceId(4), 'svc:r', [['b', 'op']], T0)];
    expect(await s.chainWriter.writeChains(batch)).toEqual({ chains: 1, calls: 1, rejected: 0 });
    expect(await s.chainWriter.writeChains(batch)).toEqual({ chains: 1, calls: 1, rejected: 0 });
    expect(await s.chainReader.traceChains(traceId(4))).toEqual(batch);
    expect((await s.identities.getIdentity('svc:r'))?.chains).toBe(1);
    // Another batch with equal chains is another batch.
    await s.chainWriter.writeChains([...batch]);
    expect((await s.identities.getIdentity('svc:r'))?.chains).toBe(2);
  });

  it('holds writes while the server is down, says it is unavailable, and stores them once when it is back', async () => {
    const url = await server.createDatabase();
    const s = await backend(url);
    await s.chainWriter.writeChains([chain(traceId(5), 'svc:d', [['b', 'op']], T0)]);
    expect(s.availability?.available()).toBe(true);
    await server.stop();
    expect(await s.ready()).toBe(false);
    // A read fails at once, and retryably; a write waits for the server.
    expect(isRetryable(await s.chainReader.traceChains(traceId(5)).then(() => undefined, (e: unknown) => e))).toBe(true);
    const down = [chain(traceId(6), 'svc:d', [['b', 'new op while down']], T0 + 10)];
    const writing = s.chainWriter.writeChains(down);
    const checkpointing = s.detection.checkpoint({ suppressions: [{ identity: 'svc:d', detector: 'new-peer', key: 'k', alertId: 'a1' }] });
    await vi.waitFor(() => expect(s.availability?.available()).toBe(false), { timeout: 10_000, interval: 50 });
    await server.start();
    expect(await writing).toEqual({ chains: 1, calls: 1, rejected: 0 });
    await checkpointing;
    expect(s.availability?.available()).toBe(true);
    expect((await s.chainReader.recentChains('svc:d', { limit: 10 })).map((c) => c.traceId)).toEqual([traceId(6), traceId(5)]);
    expect((await s.identities.getIdentity('svc:d'))?.chains).toBe(2);
    expect(await s.detection.loadSuppressions()).toHaveLength(1);
  });

  it('rejects the writes that wait for the server once retrying stops (shutdown)', async () => {
    const s = await backend(await server.createDatabase());
    await server.stop();
    const writing = s.chainWriter.writeChains([chain(traceId(8), 'svc:e', [['b', 'op']], T0)]);
    await vi.waitFor(() => expect(s.availability?.available()).toBe(false), { timeout: 10_000, interval: 50 });
    s.availability!.stopRetrying();
    await expect(writing).rejects.toThrow();
  });

  it('keeps detection\'s times and counts that are not whole (event times in ticks of 2^-12 ms)', async () => {
    const s = await backend(await server.createDatabase());
    const baseline = testBaseline('svc:f', 0, { firstMs: T0 + 0.000244140625, lastMs: T0 + 30.5, calls: 12.75, lastSweepMs: T0 + 1.25 });
    const entry = { kind: 'operation', key: 'GET /x', count: 2.5, firstMs: T0 + 0.5, lastMs: T0 + 7.125 };
    const held = chain(traceId(9), 'svc:f', [['b', 'op']], T0 + 0.75);
    await s.detection.checkpoint({
      baselines: [{ baseline, entries: [entry], removed: [] }],
      alerts: [{ alert: testAlert({ id: 'f1', identity: 'svc:f' }), dedupKey: 'f1' }],
      held: [{ identity: 'svc:f', traceId: held.traceId, alertId: 'f1', chain: held }],
    });
    const seen: unknown[] = [];
    await s.detection.loadBaselines({ baseline: (b) => seen.push(b), entry: (_, e) => seen.push(e) });
    expect(seen).toEqual([baseline, entry]);
    expect(await s.detection.heldChainsOf('svc:f', 5)).toEqual([held]);
    expect((await s.chainReader.recentChains('svc:f', { limit: 5, sinceMs: T0 + 0.5 }))).toEqual([]);
  });

  it('refuses to open when the server cannot be reached, and says where', async () => {
    const url = new URL(await server.createDatabase());
    url.port = '1';
    await expect(openPostgresBackend({ url: url.toString() })).rejects.toThrow(/ECONNREFUSED|connect/);
  });
});
