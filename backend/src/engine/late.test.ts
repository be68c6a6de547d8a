import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { BOUNDARY_IDENTITY, type Call, type Chain, type TraceSummary } from '@conduct/processor';
import { openSqliteBackend, type SqliteBackend } from '../store/index.js';
import { call, tempDir, traceId } from '../store/testdata/fixtures.js';
import { createEngine, mergeLatePart, splitLateParts, type LateMerge } from './index.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

/** A SQLite backend (the engine writes through its contracts; assertions read its synchronous store). */
async function store(): Promise<SqliteBackend> {
  const t = tempDir('conduct-late-');
  const s = await openSqliteBackend({ path: join(t.dir, 'db.sqlite') });
  cleanups.push(t.cleanup, () => void s.close());
  return s;
}

const T = 1_700_000_000_000;
const TRACE = traceId(22);
const USER = 'user:alice';

/** The caller's client span stored alone: a call to the address it named. */
const provisional = call({ traceId: TRACE, identity: USER, spanId: 'c1', parentSpanId: 's0', service: 'shop/web', peer: 'orders:8080', peerKind: 'http', operation: 'GET /orders/{id}', startMs: T + 5 });
const entry = call({ traceId: TRACE, identity: USER, spanId: 's0', serverSpanId: 's0', service: 'client', peer: 'shop/web', operation: 'GET /checkout', startMs: T });
/** The same client span stitched to the orders server span that arrived late. */
const stitched: Call = { ...provisional, serverSpanId: 's1', peer: 'shop/orders', peerKind: 'service' };
const select = call({ traceId: TRACE, identity: 'svc:shop/orders', spanId: 'd1', parentSpanId: 's1', service: 'shop/orders', peer: 'postgres:5432', peerKind: 'database', operation: 'SELECT orders', protocol: 'db', startMs: T + 9 });

const chainOf = (calls: Call[]): Chain => ({
  traceId: TRACE,
  identity: calls[0]!.identity,
  identityKind: calls[0]!.identityKind,
  startMs: calls[0]!.startMs,
  endMs: Math.max(...calls.map((c) => c.startMs + c.durationMs)),
  calls,
});
const summary = (spans: number, late?: TraceSummary['late']): TraceSummary => ({ traceId: TRACE, startMs: T, endMs: T + 60, spans, services: ['web'], ...(late ? { late } : {}) });

describe('merging a later part of a trace', () => {
  it('replaces the provisional client-only call with the stitched one and adds the new calls', () => {
    const merge = mergeLatePart(TRACE, [chainOf([entry, provisional])], [chainOf([stitched]), chainOf([select])]);
    expect(merge.chains.map((c) => [c.identity, c.calls.map((x) => x.peer)])).toEqual([
      [USER, ['shop/web', 'shop/orders']],
      ['svc:shop/orders', ['postgres:5432']],
    ]);
    expect(merge.removed).toEqual([provisional]);
    expect(merge.added).toEqual([stitched, select]);
    expect([...merge.identities].sort()).toEqual(['svc:shop/orders', USER]);
  });

  it('replaces a stored server-side-only call with the call its late caller span completes', () => {
    const serverOnly = call({ traceId: TRACE, identity: USER, spanId: 's1', serverSpanId: 's1', parentSpanId: 'c1', service: 'client', peer: 'shop/orders', operation: 'GET /orders/{id}', startMs: T + 7 });
    const merge = mergeLatePart(TRACE, [chainOf([serverOnly])], [chainOf([entry, stitched])]);
    expect(merge.chains.flatMap((c) => c.calls)).toEqual([entry, stitched]);
    expect(merge.removed).toEqual([serverOnly]);
  });

  it('completes a stored client-only call with a boundary call of its server span; an unmatched boundary call is dropped', () => {
    const server = call({ traceId: TRACE, identity: BOUNDARY_IDENTITY, spanId: 's1', serverSpanId: 's1', parentSpanId: 'c1', service: 'client', peer: 'shop/orders', operation: 'GET /orders/{id}', startMs: T + 7, source: { clientAddress: '10.9.1.21', network: '10.9.1.0/24', publicAddress: false } });
    const stray = { ...server, spanId: 's9', serverSpanId: 's9', parentSpanId: 'nope' };
    const merge = mergeLatePart(TRACE, [chainOf([entry, provisional])], [], [server, stray]);
    expect(merge.chains.map((c) => c.identity)).toEqual([USER]);
    expect(merge.chains[0]!.calls[1]).toEqual({ ...provisional, serverSpanId: 's1', peer: 'shop/orders', peerKind: 'service', source: { ...provisional.source, clientAddress: '10.9.1.21', network: '10.9.1.0/24', publicAddress: false } });
    expect(merge.removed).toEqual([provisional]);
  });

  it('keeps a stitched call when a retried copy of the client span alone arrives, and changes nothing for a repeat', () => {
    const merge = mergeLatePart(TRACE, [chainOf([entry, stitched])], [chainOf([{ ...entry }, { ...provisional }])]);
    expect(merge.chains.flatMap((c) => c.calls)).toEqual([entry, stitched]);
    expect(merge).toMatchObject({ added: [], removed: [] });
  });
});

describe('the engine with later parts of traces', () => {
  it('stores the merged trace once, counts each call once, and hands analysers the merge (or the added calls)', async () => {
    const s = await store();
    const registry = new Registry();
    const engine = createEngine({ store: s, registry });
    const plain: Chain[][] = [];
    const merges: LateMerge[][] = [];
    engine.addAnalyser({ name: 'plain', analyse: (chains) => void plain.push([...chains]) });
    engine.addAnalyser({ name: 'late', analyse: () => {}, analyseLate: (m) => void merges.push([...m]) });

    await engine.consume({ chains: [chainOf([entry, provisional])], traceSummaries: [summary(2)], traces: 1, spans: 2 });
    await engine.consume({ chains: [chainOf([stitched]), chainOf([select])], traceSummaries: [summary(3, 'joins')], traces: 1, spans: 3 });

    expect(s.store.traceChains(TRACE).map((c) => [c.identity, c.calls.map((x) => x.peer)])).toEqual([
      [USER, ['shop/web', 'shop/orders']],
      ['svc:shop/orders', ['postgres:5432']],
    ]);
    expect(s.store.getIdentity(USER)).toMatchObject({ calls: 2, chains: 1, peers: 2 });
    expect(s.store.getIdentity('svc:shop/orders')).toMatchObject({ calls: 1, chains: 1 });
    expect(s.store.identityEdges(USER).map((e) => [e.peer, e.count]).sort()).toEqual([
      ['shop/orders', 1],
      ['shop/web', 1],
    ]);
    expect(s.store.traceSummary(TRACE)).toMatchObject({ spans: 5 });
    // Without analyseLate: the calls the part added, as chains; with it, the merge.
    expect(plain[1]!.flatMap((c) => c.calls)).toEqual([stitched, select]);
    expect(merges).toHaveLength(1);
    expect(merges[0]![0]).toMatchObject({ traceId: TRACE, removed: [provisional] });
    expect(await registry.metrics()).toMatch(/^conduct_late_spans_total\{outcome="joined"\} 3$/m);
    expect(engine.stats().lateMerges).toBe(1);
  });

  it('stamps stored chains with the wall clock they were received at; a merged chain a late part did not change keeps its own', async () => {
    const s = await store();
    let clock = T + 86_400_000;
    const engine = createEngine({ store: s, registry: new Registry(), now: () => clock });
    const other = call({ traceId: TRACE, identity: 'svc:shop/cache', spanId: 'e1', parentSpanId: 's0', service: 'shop/cache', peer: 'redis:6379', operation: 'GET', startMs: T + 2 });
    await engine.consume({ chains: [chainOf([entry, provisional]), chainOf([other])], traceSummaries: [summary(3)], traces: 1, spans: 3 });
    const firstReceived = clock;
    clock += 60_000;
    // The late part changes the user's chain and adds the orders service's; the cache's stays.
    await engine.consume({ chains: [chainOf([stitched]), chainOf([select])], traceSummaries: [summary(2, 'joins')], traces: 1, spans: 2 });
    expect(s.store.traceChains(TRACE).map((c) => [c.identity, c.receivedMs])).toEqual([
      [USER, clock],
      ['svc:shop/cache', firstReceived],
      ['svc:shop/orders', clock],
    ]);
  });

  it('stores a fragment, and a part whose earlier part is gone, on their own; a maybe joins only a stored trace', async () => {
    const s = await store();
    const registry = new Registry();
    const engine = createEngine({ store: s, registry });
    await engine.consume({ chains: [chainOf([entry, provisional])], traceSummaries: [summary(2)], traces: 1, spans: 2 });
    await engine.consume({ chains: [chainOf([stitched])], traceSummaries: [summary(1, 'fragment')], traces: 1, spans: 1 });
    expect(s.store.traceChains(TRACE).map((c) => c.calls.length)).toEqual([2, 1]);
    const other = traceId(23);
    await engine.consume({ chains: [{ ...chainOf([{ ...select, traceId: other }]), traceId: other }], traceSummaries: [{ ...summary(1, 'joins'), traceId: other }], traces: 1, spans: 1 });
    const fresh = traceId(24);
    await engine.consume({ chains: [{ ...chainOf([{ ...select, traceId: fresh }]), traceId: fresh }], traceSummaries: [{ ...summary(1, 'maybe'), traceId: fresh }], traces: 1, spans: 1 });
    expect(s.store.traceChains(other)).toHaveLength(1);
    expect(s.store.traceChains(fresh)).toHaveLength(1);
    const text = await registry.metrics();
    expect(text).toMatch(/^conduct_late_spans_total\{outcome="fragment"\} 1$/m);
    expect(text).toMatch(/^conduct_late_spans_total\{outcome="missing"\} 1$/m);
    expect(text).toMatch(/^conduct_late_spans_total\{outcome="joined"\} 0$/m);
  });
});

describe('parts the pipeline marks maybe, with the engine remembering what it stored', () => {
  /**
   * Counts the store's trace lookups (the real SQLite reader underneath); `seeded` resolves with
   * the answer of the engine's read of the traces stored before it started (`tell: false`: a store
   * that cannot tell which they are).
   */
  const counted = (s: SqliteBackend, { tell = true } = {}) => {
    const lookups: string[] = [];
    const chainReader = Object.create(s.chainReader) as SqliteBackend['chainReader'];
    chainReader.traceSummaries = (ids: readonly string[]) => {
      lookups.push(...ids);
      return s.chainReader.traceSummaries(ids);
    };
    let answered: (complete: boolean) => void = () => {};
    const seeded = new Promise<boolean>((resolve) => (answered = resolve));
    chainReader.recentTraceIds = async (sinceMs, maxIds, visit) => {
      const complete = tell ? await s.chainReader.recentTraceIds(sinceMs, maxIds, visit) : false;
      answered(complete);
      return complete;
    };
    // The engine's own continuation after the read: a turn later.
    const afterSeed = async () => {
      const complete = await seeded;
      await new Promise((resolve) => setImmediate(resolve));
      return complete;
    };
    return { lookups, afterSeed, store: { chainWriter: s.chainWriter, chainReader } };
  };
  const single = (trace: string, c: Call = select): Chain => ({ ...chainOf([{ ...c, traceId: trace }]), traceId: trace });
  const summaryOf = (trace: string, late?: TraceSummary['late']): TraceSummary => ({ ...summary(1, late), traceId: trace });

  it('looks up only a trace it may have stored, and still joins it', async () => {
    const s = await store();
    const { lookups, store: counting } = counted(s);
    const registry = new Registry();
    let clock = T;
    const engine = createEngine({ store: counting, registry, recentTraces: { earlierPartsStored: false }, now: () => clock });
    await engine.consume({ chains: [chainOf([entry, provisional])], traceSummaries: [summary(2)], traces: 1, spans: 2 });
    clock += 60_000;
    const fresh = traceId(31);
    await engine.consume({
      chains: [chainOf([stitched]), single(fresh)],
      traceSummaries: [summary(1, 'maybe'), summaryOf(fresh, 'maybe')],
      traces: 2,
      spans: 2,
    });
    // The stored trace was looked up and the part merged; the new trace was not looked up.
    expect(lookups).toEqual([TRACE]);
    expect(s.store.traceChains(TRACE).flatMap((c) => c.calls.map((x) => x.peer))).toEqual(['shop/web', 'shop/orders']);
    expect(s.store.traceChains(fresh)).toHaveLength(1);
    expect(await registry.metrics()).toMatch(/^conduct_late_spans_total\{outcome="joined"\} 1$/m);
    // A trace it stored longer than the window ago is not looked up: stored on its own, as the
    // pipeline stores a part that comes later than the window after its trace.
    clock += 300_001;
    const again = single(fresh, { ...select, spanId: 'd2' });
    await engine.consume({ chains: [again], traceSummaries: [summaryOf(fresh, 'maybe')], traces: 1, spans: 1 });
    expect(lookups).toEqual([TRACE]);
    expect(s.store.traceChains(fresh).map((c) => c.calls.length)).toEqual([1, 1]);
  });

  it('looks every maybe up during the window after its first batch when the store held traces before and cannot tell which', async () => {
    const s = await store();
    await createEngine({ store: s, registry: new Registry() }).consume({ chains: [chainOf([entry, provisional])], traceSummaries: [summary(2)], traces: 1, spans: 2 });
    const { lookups, afterSeed, store: counting } = counted(s, { tell: false });
    let clock = T;
    const handed: Uint8Array[][] = [];
    const engine = createEngine({ store: counting, registry: new Registry(), recentTraces: { earlierPartsStored: true, onEarlierTraces: (chunks) => handed.push(chunks) }, now: () => clock });
    expect(await afterSeed()).toBe(false);
    // Nothing to hand on: the pipeline goes on marking every trace maybe for the window.
    expect(handed).toEqual([]);
    const fresh = traceId(32);
    await engine.consume({ chains: [single(fresh)], traceSummaries: [summaryOf(fresh, 'maybe')], traces: 1, spans: 1 });
    clock += 300_000;
    await engine.consume({ chains: [chainOf([stitched])], traceSummaries: [summary(1, 'maybe')], traces: 1, spans: 1 });
    expect(lookups).toEqual([fresh, TRACE]);
    expect(s.store.traceChains(TRACE).flatMap((c) => c.calls.map((x) => x.peer))).toEqual(['shop/web', 'shop/orders']);
    clock += 1;
    const later = traceId(33);
    await engine.consume({ chains: [single(later)], traceSummaries: [summaryOf(later, 'maybe')], traces: 1, spans: 1 });
    expect(lookups).toEqual([fresh, TRACE]);
  });

  it('reads the traces stored within the window before it started: looks up only those, and writes new traces\' batches together', async () => {
    const s = await store();
    // A server before a restart stored the trace a minute ago.
    let clock = T;
    const before = createEngine({ store: s, registry: new Registry(), now: () => clock });
    await before.consume({ chains: [chainOf([entry, provisional])], traceSummaries: [summary(2)], traces: 1, spans: 2 });
    clock += 60_000;

    const { lookups, afterSeed, store: counting } = counted(s);
    const registry = new Registry();
    const handed: Uint8Array[][] = [];
    const engine = createEngine({ store: counting, registry, recentTraces: { earlierPartsStored: true, onEarlierTraces: (chunks) => handed.push(chunks) }, now: () => clock });
    expect(await afterSeed()).toBe(true);
    // The ids read are handed on for the pipeline's stitcher, as bytes.
    expect(handed.map((chunks) => chunks.map((ids) => Buffer.from(ids).toString('hex')))).toEqual([[TRACE]]);
    // The pipeline marks every trace maybe after a restart: only the one stored within the window
    // is looked up, and its part joins it.
    const fresh = traceId(35);
    await engine.consume({ chains: [chainOf([stitched]), single(fresh)], traceSummaries: [summary(1, 'maybe'), summaryOf(fresh, 'maybe')], traces: 2, spans: 2 });
    expect(lookups).toEqual([TRACE]);
    expect(s.store.traceChains(TRACE).flatMap((c) => c.calls.map((x) => x.peer))).toEqual(['shop/web', 'shop/orders']);
    expect(await registry.metrics()).toMatch(/^conduct_late_spans_total\{outcome="joined"\} 1$/m);

    // Batches of new traces marked maybe share one write; their boundary calls (which only a part
    // that joins uses) are not stored. A batch with a part of a trace an earlier batch of the same
    // write holds starts a write of its own, and is looked up.
    const [a, b, c] = [traceId(36), traceId(37), traceId(38)];
    const boundary: Chain = { ...single(b, { ...select, spanId: 'e1', parentSpanId: 'x1' }), identity: BOUNDARY_IDENTITY };
    const writes = engine.stats().writes;
    const failures = await engine.consumeMany([
      { chains: [single(a)], traceSummaries: [summaryOf(a, 'maybe')], traces: 1, spans: 1 },
      { chains: [single(b), boundary], traceSummaries: [summaryOf(b, 'maybe')], traces: 1, spans: 2 },
      { chains: [single(c)], traceSummaries: [summaryOf(c, 'maybe')], traces: 1, spans: 1 },
      { chains: [single(a, { ...select, spanId: 'd3' })], traceSummaries: [summaryOf(a, 'maybe')], traces: 1, spans: 1 },
    ]);
    expect(failures).toEqual([undefined, undefined, undefined, undefined]);
    expect(engine.stats().writes - writes).toBe(2);
    // Only the trace a batch before it stored is looked up (b and c are not).
    expect([...new Set(lookups)]).toEqual([TRACE, a]);
    expect(s.store.traceChains(b).map((x) => x.identity)).toEqual(['svc:shop/orders']);
    expect(s.store.traceChains(a).map((x) => x.calls.length)).toEqual([2]);
    expect(s.store.traceChains(c)).toHaveLength(1);
  });

  it('sends a batch alone when the store cannot say whether its maybe part joins a stored trace, and the others on', async () => {
    const s = await store();
    // The store fails to read a trace's summary.
    const broken = Object.create(s.chainReader) as SqliteBackend['chainReader'];
    broken.traceSummaries = async () => {
      throw new Error('disk I/O error');
    };
    const engine = createEngine({ store: { chainWriter: s.chainWriter, chainReader: broken }, registry: new Registry(), recentTraces: { earlierPartsStored: false }, now: () => T });
    // A trace the engine stored, so a maybe part of it is asked of the store.
    const stored = traceId(40);
    await engine.consume({ chains: [single(stored)], traceSummaries: [summaryOf(stored)], traces: 1, spans: 1 });
    const [fresh, other] = [traceId(41), traceId(42)];
    const failures = await engine.consumeMany([
      { chains: [single(fresh)], traceSummaries: [summaryOf(fresh, 'maybe')], traces: 1, spans: 1 },
      { chains: [single(stored, { ...select, spanId: 'd4' })], traceSummaries: [summaryOf(stored, 'maybe')], traces: 1, spans: 1 },
      { chains: [single(other)], traceSummaries: [summaryOf(other)], traces: 1, spans: 1 },
    ]);
    expect(failures.map((f) => (f ? String(f.err) : undefined))).toEqual([undefined, 'Error: disk I/O error', undefined]);
    expect(s.store.traceChains(fresh)).toHaveLength(1);
    expect(s.store.traceChains(other)).toHaveLength(1);
  });
});

describe('reading the stored traces of a batch of later parts', () => {
  it('asks the store once for the summaries it needs and once for the chains of the traces that join, and keeps the batch order', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => traceId(100 + i));
    const stored = new Map(ids.map((id, i) => [id, [{ ...chainOf([{ ...entry, traceId: id, spanId: `e${i}` }]), traceId: id }]]));
    const asked: string[][] = [];
    const lateStore = {
      traceSummaries: async (list: readonly string[]) => {
        asked.push(['summaries', ...list]);
        return list.map((id) => (stored.has(id) ? { traceId: id, startMs: T, endMs: T + 60, spans: 1, services: ['web'] } : undefined));
      },
      chainsOfTraces: async (list: readonly string[]) => {
        asked.push(['chains', ...list]);
        return list.map((id) => stored.get(id) ?? []);
      },
    };
    // Every other trace is stored: those join, the others are later parts whose earlier part is gone;
    // one fragment, which is not asked about.
    const summaries = ids.map((id, i): TraceSummary => ({ traceId: i % 2 === 0 ? id : traceId(200 + i), startMs: T, endMs: T + 60, spans: 2, services: ['web'], late: 'joins' }));
    summaries.push({ traceId: traceId(300), startMs: T, endMs: T + 60, spans: 3, services: ['web'], late: 'fragment' });
    const chains = summaries.map((s) => ({ ...chainOf([{ ...stitched, traceId: s.traceId }]), traceId: s.traceId }));
    const split = await splitLateParts(lateStore, chains, summaries, 60_000);
    const joining = ids.filter((_, i) => i % 2 === 0);
    expect(asked).toEqual([
      ['summaries', ...summaries.slice(0, 30).map((s) => s.traceId)],
      ['chains', ...joining],
    ]);
    expect(split.merges.map((m) => m.traceId)).toEqual(joining);
    expect(split.merges.map((m) => m.chains.flatMap((c) => c.calls).some((c) => c.spanId === `e${ids.indexOf(m.traceId)}`))).toEqual(joining.map(() => true));
    expect(split.spans).toEqual({ joined: 30, fragment: 3, missing: 30 });
    expect(split.onTime.map((c) => c.traceId)).toEqual(summaries.filter((_, i) => i % 2 === 1 || i === 30).map((s) => s.traceId));
  });
});
