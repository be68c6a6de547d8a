import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChainBatch, TraceSummary } from '@conduct/processor';
import { createDetection, createDetectionAnalyser, type LearningConfig } from '../detect/index.js';
import { openSqliteBackend, type SqliteBackend } from '../store/index.js';
import { chain, tempDir, traceId } from '../store/testdata/fixtures.js';
import { createEngine, type Engine } from './index.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

const HOUR = 3_600_000;
const LEARNING: LearningConfig = { minCalls: 1_000, period: 24 * HOUR, forgetAfter: 30 * 24 * HOUR };
const T0 = 1_700_000_000_000;

async function setup(path?: string): Promise<{ s: SqliteBackend; engine: Engine; path: string }> {
  let file = path;
  if (!file) {
    const t = tempDir('conduct-once-');
    cleanups.push(t.cleanup);
    file = join(t.dir, 'db.sqlite');
  }
  const s = await openSqliteBackend({ path: file });
  cleanups.push(() => void s.close());
  const detection = await createDetection({ state: s.detection, learning: LEARNING, traceUrl: 'http://t/{traceId}' });
  const engine = createEngine({ store: s, registry: new Registry(), analysers: [createDetectionAnalyser(detection)] });
  return { s, engine, path: file };
}

const summaryOf = (id: string, spans: number): TraceSummary => ({ traceId: id, startMs: T0, endMs: T0 + 10, spans, services: ['a'] });

/** Calls learned in the stored baseline of `identity` (what a restart loads). */
function learnedCalls(s: SqliteBackend, identity: string): number | undefined {
  const row = s.store.db.prepare('SELECT calls FROM baseline_identities WHERE identity = ?').get(identity) as { calls: number } | undefined;
  return row?.calls;
}

describe('effectively-once processing of replayed traces', () => {
  it('stores, learns and counts a replayed trace once, and merges in only the calls the store lacks', async () => {
    const { s, engine, path } = await setup();
    const id = traceId(501);
    const first = chain(id, 'svc:once', [['b', 'GET /a'], ['c', 'GET /b']], T0);
    const batch = (chains = [first], replayed?: string[]): ChainBatch => ({
      chains,
      traceSummaries: [summaryOf(id, chains.reduce((n, c) => n + c.calls.length, 0) * 2)],
      traces: 1,
      spans: 4,
      ...(replayed ? { replayed } : {}),
    });
    await engine.consume(batch());
    expect(await s.identities.getIdentity('svc:once')).toMatchObject({ calls: 2, chains: 1 });
    expect(learnedCalls(s, 'svc:once')).toBe(2);

    // A restart: the same trace replayed from the journal (stored before the journal checkpoint).
    s.store.close();
    const again = await setup(path);
    await again.engine.consume(batch([structuredClone(first)], [id]));
    expect(await again.s.identities.getIdentity('svc:once')).toMatchObject({ calls: 2, chains: 1 });
    expect(await again.s.chainReader.traceChains(id)).toHaveLength(1);
    expect((await again.s.chainReader.traceSummary(id))?.spans).toBe(4);
    expect(learnedCalls(again.s, 'svc:once')).toBe(2);
    expect(again.engine.stats()).toMatchObject({ replayDuplicates: 1, chains: 0 });

    // Replayed with one call the store lacks (a part that had not completed before the crash): only it is added.
    const extended = { ...structuredClone(first), calls: [...structuredClone(first.calls), chain(id, 'svc:once', [['d', 'GET /c']], T0 + 5).calls[0]!] };
    await again.engine.consume(batch([extended], [id]));
    expect(await again.s.identities.getIdentity('svc:once')).toMatchObject({ calls: 3, chains: 1 });
    expect(learnedCalls(again.s, 'svc:once')).toBe(3);
    // Without the replay mark the same trace is a new one (what the engine did for every replay before).
    const other = traceId(502);
    await again.engine.consume({ chains: [chain(other, 'svc:once', [['b', 'GET /a']], T0 + 20)], traceSummaries: [summaryOf(other, 2)], traces: 1, spans: 2 });
    expect(await again.s.identities.getIdentity('svc:once')).toMatchObject({ calls: 4, chains: 2 });
  });

  it('stores a batch\'s chains only with what detection learned from them: a failed checkpoint stores neither', async () => {
    const { s, engine } = await setup();
    const id = traceId(503);
    const failing = { ...s.chainWriter };
    // The storage fails the unit (as a full disk would): nothing of it may be stored.
    const broken = createEngine({
      store: { chainReader: s.chainReader, chainWriter: { ...failing, commitBatch: async () => Promise.reject(new Error('disk full')) } },
      registry: new Registry(),
      analysers: [createDetectionAnalyser(await createDetection({ state: s.detection, learning: LEARNING, traceUrl: 'http://t/{traceId}' }))],
    });
    const batch: ChainBatch = { chains: [chain(id, 'svc:fail', [['b', 'GET /a']], T0)], traceSummaries: [summaryOf(id, 2)], traces: 1, spans: 2 };
    await expect(broken.consume(batch)).rejects.toThrow('disk full');
    expect(await s.chainReader.traceChains(id)).toEqual([]);
    expect(learnedCalls(s, 'svc:fail')).toBeUndefined();
    // The journal keeps the request; its replay goes through a working engine once.
    await engine.consume({ ...batch, replayed: [id] });
    expect(await s.identities.getIdentity('svc:fail')).toMatchObject({ calls: 1, chains: 1 });
    expect(learnedCalls(s, 'svc:fail')).toBe(1);
  });
});
