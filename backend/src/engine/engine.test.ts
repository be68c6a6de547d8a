import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Chain } from '@conduct/processor';
import type { Alert } from '../alerts/model.js';
import { openSqliteBackend, type SqliteBackend } from '../store/index.js';
import { chain, tempDir, traceId } from '../store/testdata/fixtures.js';
import { createEngine, type AlertEvent } from './index.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

async function store(): Promise<SqliteBackend> {
  const t = tempDir('conduct-engine-');
  const s = await openSqliteBackend({ path: join(t.dir, 'db.sqlite') });
  cleanups.push(t.cleanup, () => void s.close());
  return s;
}

const fakeAlert = (c: Chain): Alert => ({
  id: `alert-${c.traceId}`, identity: c.identity, identityKind: String(c.identityKind), detector: 'new-peer', severity: 'medium',
  detectors: ['new-peer'], findings: [],
  score: 50, title: 't', explanation: 'e', traceId: c.traceId, spanIds: [c.calls[0]!.spanId], eventTime: '', firstSeen: '',
  lastSeen: '', count: 1, status: 'open', techniques: [], links: { trace: '' },
});

describe('engine', () => {
  it('stores chains, then runs analysers that see them stored, and announces their alerts', async () => {
    const s = await store();
    const registry = new Registry();
    const heard: Array<[string, AlertEvent]> = [];
    const engine = createEngine({ store: s, registry, onAlert: [(a, e) => heard.push([a.id, e])] });
    const seen: string[] = [];
    engine.addAnalyser({
      name: 'spy',
      async analyse(chains, ctx) {
        for (const c of chains) {
          seen.push(`${c.identity}:${(await ctx.store.traceChains(c.traceId)).length}`);
          ctx.emit(fakeAlert(c));
        }
      },
    });
    await engine.consume({ chains: [chain(traceId(1), 'svc:a', [['b', 'GET /x']])], traces: 1, spans: 2 });
    expect(seen).toEqual(['svc:a:1']);
    expect(heard).toEqual([[`alert-${traceId(1)}`, 'alert']]);
    expect((await s.identities.getIdentity('svc:a'))?.calls).toBe(1);
    expect(engine.stats()).toMatchObject({ batches: 1, spans: 2, chains: 1, calls: 1, alerts: 1 });
    // A batch whose traces made no chain still counts its spans as processed.
    await engine.consume({ chains: [], traces: 1, spans: 3 });
    expect(engine.stats()).toMatchObject({ batches: 2, spans: 5, chains: 1 });
    const text = await registry.metrics();
    expect(text).toMatch(/^conduct_chains_stored_total 1$/m);
    expect(text).toMatch(/^conduct_spans_processed_total 5$/m);
    expect(text).toMatch(/^conduct_alerts_total\{detector="new-peer",severity="medium",event="alert"\} 1$/m);
  });

  it('lets work that came in during the analysis (answers to requests) run before the store write', async () => {
    const s = await store();
    const events: string[] = [];
    const commitBatch = s.chainWriter.commitBatch;
    s.chainWriter.commitBatch = (unit) => {
      events.push('write');
      return commitBatch(unit);
    };
    const engine = createEngine({ store: s, registry: new Registry() });
    engine.addAnalyser({
      name: 'detection',
      transactional: true,
      async analyse(_chains, ctx) {
        // An answer that the poll phase would queue after the engine's first turn: a turn later.
        setImmediate(() => setImmediate(() => events.push('answer')));
        await ctx.commit();
      },
    });
    await engine.consume({ chains: [chain(traceId(1), 'svc:a', [['b', 'GET /x']])], traces: 1, spans: 2 });
    expect(events).toEqual(['answer', 'write']);
    expect((await s.identities.getIdentity('svc:a'))?.calls).toBe(1);
  });

  it('keeps going when an analyser or listener throws, and skips chains the store refused', async () => {
    const s = await store();
    const registry = new Registry();
    const engine = createEngine({ store: s, registry });
    const analysed: string[] = [];
    engine.addAnalyser({ name: 'broken', analyse: async () => { throw new Error('boom'); } });
    engine.addAnalyser({ name: 'ok', analyse: (chains, ctx) => { analysed.push(...chains.map((c) => c.traceId)); ctx.emit(fakeAlert(chains[0]!)); } });
    const off = engine.onAlert(() => { throw new Error('listener down'); });
    let second = 0;
    engine.onAlert(() => second++);
    await engine.consume({ chains: [chain('bad', 'svc:a', [['b', 'op']]), chain(traceId(2), 'svc:a', [['b', 'op']])], traces: 2, spans: 2 });
    expect(analysed).toEqual([traceId(2)]);
    expect(second).toBe(1);
    expect(engine.stats()).toMatchObject({ analyserErrors: 1, rejectedChains: 1, chains: 1 });
    expect(await registry.metrics()).toMatch(/^conduct_analyser_errors_total\{analyser="broken"\} 1$/m);
    off();
    engine.emit(fakeAlert(chain(traceId(3), 'svc:a', [['b', 'op']])), 'feedback');
    expect(second).toBe(2);
  });

  it('rejects consume when the store cannot write (so the pipeline counts it)', async () => {
    const s = await store();
    const engine = createEngine({ store: s, registry: new Registry() });
    await s.close();
    await expect(engine.consume({ chains: [chain(traceId(4), 'svc:a', [['b', 'op']])], traces: 1, spans: 1 })).rejects.toThrow();
  });
});
