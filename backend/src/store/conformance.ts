/**
 * The storage contract as tests (contracts.ts): every backend runs this suite unchanged, from its
 * own `<backend>.conformance.test.ts`:
 *
 *   runStoreConformance('sqlite', () => openSqliteBackend({ path: ... }));
 *
 * `openBackend` returns a fresh, empty backend per test; the suite closes it. Only vitest and the
 * contracts are used here: nothing backend-specific.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BaselineEntryRecord, BaselineRecord, DetectionCheckpoint, StorageBackend } from './contracts.js';
import { alertRetentionConformance } from './conformance-alert-retention.js';
import { outboxConformance } from './conformance-outbox.js';
import { chain, testAlert, traceId } from './testdata/fixtures.js';

export { testAlert };

export type OpenBackend = () => Promise<StorageBackend>;

const T0 = 1_700_000_000_000;

/** A baseline record of `identity` in `group`. */
export function testBaseline(identity: string, group = 0, fields: Partial<BaselineRecord> = {}): BaselineRecord {
  return {
    identity,
    kind: 'workload',
    group,
    firstMs: T0,
    lastMs: T0 + 60_000,
    calls: 10,
    compromised: false,
    dropped: 0,
    lastSweepMs: T0,
    rate: { buckets: [1, 2, 3], seen: { 'GET /x': 4 } },
    recentSources: [{ network: '10.0.0.0/8', family: 'curl', ms: T0, traceId: traceId(1), spanId: '00000000000000a1' }],
    ...fields,
  };
}

const entry = (kind: string, key: string, count = 1): BaselineEntryRecord => ({ kind, key, count, firstMs: T0, lastMs: T0 + count });

/** Everything `loadBaselines` streams, by identity. */
async function loaded(backend: StorageBackend, groups?: number[]) {
  const out = new Map<string, { record: BaselineRecord; entries: BaselineEntryRecord[] }>();
  await backend.detection.loadBaselines(
    {
      baseline: (record) => out.set(record.identity, { record, entries: [] }),
      entry(identity, e) {
        const b = out.get(identity);
        if (!b) throw new Error(`entry of ${identity} before its baseline`);
        b.entries.push(e);
      },
    },
    groups ? { groups } : undefined,
  );
  for (const b of out.values()) b.entries.sort((x, y) => x.kind.localeCompare(y.kind) || x.key.localeCompare(y.key));
  return out;
}

export function runStoreConformance(name: string, openBackend: OpenBackend): void {
  const open: StorageBackend[] = [];
  const fresh = async (): Promise<StorageBackend> => {
    const backend = await openBackend();
    open.push(backend);
    return backend;
  };
  afterEach(async () => {
    for (const b of open.splice(0)) await b.close();
  });

  describe(`storage conformance: ${name}`, () => {
    describe('chains and trace summaries', () => {
      it('stores a batch and reads it back by trace (either hex case) and by identity, newest first', async () => {
        const s = await fresh();
        const t1 = traceId(1);
        const a = chain(t1, 'svc:shop/frontend', [['checkout', 'POST /checkout'], ['payments', 'Charge']], T0);
        const b = chain(t1, 'agent:triage', [['search', 'execute_tool search']], T0 + 5, { identityKind: 'agent', displayName: 'Triage' });
        const later = chain(traceId(2), 'svc:shop/frontend', [['checkout', 'GET /cart']], T0 + 5000);
        expect(await s.chainWriter.writeChains([a, b, later])).toEqual({ chains: 3, calls: 4, rejected: 0 });

        const inTrace = await s.chainReader.traceChains(t1.toUpperCase());
        expect(inTrace).toEqual([a, b]);
        const recent = await s.chainReader.recentChains('svc:shop/frontend', { limit: 10 });
        expect(recent.map((c) => c.traceId)).toEqual([traceId(2), t1]);
        expect(await s.chainReader.recentChains('svc:shop/frontend', { limit: 1 })).toEqual([later]);
        expect(await s.chainReader.traceChains(traceId(99))).toEqual([]);
        expect(await s.chainReader.traceChains('not-hex')).toEqual([]);
        expect(await s.chainReader.newestEventMs()).toBe(later.endMs);
      });

      it('keeps the wall-clock time a chain was received, through reads and a late part\'s replacement; none when it had none', async () => {
        const s = await fresh();
        // Replayed data: received two days after its event time.
        const receivedMs = T0 + 2 * 86_400_000;
        const replayed = { ...chain(traceId(5), 'svc:r', [['b', 'op']], T0), receivedMs };
        const unknown = chain(traceId(6), 'svc:r', [['b', 'op 2']], T0 + 1000);
        await s.chainWriter.writeChains([replayed, unknown]);
        expect(await s.chainReader.traceChains(traceId(5))).toEqual([replayed]);
        const recent = await s.chainReader.recentChains('svc:r', { limit: 10 });
        expect(recent.map((c) => c.receivedMs)).toEqual([undefined, receivedMs]);
        expect('receivedMs' in recent[0]!).toBe(false);
        // A later part merged in: the trace's chains as received now.
        const merged = { ...replayed, calls: [...replayed.calls, ...chain(traceId(5), 'svc:r', [['c', 'op 3']], T0 + 2).calls], receivedMs: receivedMs + 60_000 };
        await s.chainWriter.replaceTraceChains(traceId(5), [merged]);
        expect((await s.chainReader.traceChains(traceId(5))).map((c) => c.receivedMs)).toEqual([receivedMs + 60_000]);
      });

      it('lists the traces received since a time, newest first (a late part\'s memory after a restart), or says it cannot tell', async () => {
        const s = await fresh();
        const nowMs = T0 + 86_400_000;
        const sinceMs = nowMs - 300_000;
        // 300 traces received before the time, one write each (each its own part), then new ones:
        // a trace with chains, one with only a summary, and an old trace merged again lately, whose
        // unchanged chain keeps its old received time.
        for (let i = 0; i < 300; i++) await s.chainWriter.writeChains([{ ...chain(traceId(1000 + i), 'svc:old', [['b', 'op']], T0 + i), receivedMs: sinceMs - 60_000 + i }]);
        await s.chainWriter.writeChains([{ ...chain(traceId(2000), 'svc:new', [['b', 'op']], nowMs - 1000), receivedMs: nowMs - 1000 }]);
        await s.chainWriter.writeChains([], [{ traceId: traceId(2001), startMs: nowMs - 900, endMs: nowMs - 800, spans: 2, services: ['lone'] }]);
        await s.chainWriter.replaceTraceChains(traceId(1000), [{ ...chain(traceId(1000), 'svc:old', [['b', 'op']], T0), receivedMs: sinceMs - 60_000 }]);
        await s.chainWriter.writeChains([{ ...chain(traceId(2002).toUpperCase(), 'svc:new', [['c', 'op']], nowMs - 500), receivedMs: nowMs - 500 }]);

        const seen: string[] = [];
        const complete = await s.chainReader.recentTraceIds(sinceMs, 1000, (id) => seen.push(id));
        if (!complete) {
          // A backend that cannot tell says so (PostgreSQL: summaries do not keep a received time).
          expect(s.kind).not.toBe('sqlite');
          return;
        }
        expect(seen.slice(0, 4)).toEqual([traceId(2002), traceId(1000), traceId(2001), traceId(2000)]);
        // Old parts are read only until enough of them in a row say the rest is older.
        expect(seen.length).toBeGreaterThan(4);
        expect(seen.length).toBeLessThan(300);
        // More than the caller takes: it cannot tell.
        expect(await s.chainReader.recentTraceIds(sinceMs, 2, () => {})).toBe(false);
        // Nothing was received since: none, and it can tell.
        const none: string[] = [];
        expect(await s.chainReader.recentTraceIds(nowMs + 1, 1000, (id) => none.push(id))).toBe(true);
        expect(none.length).toBeLessThan(300);
      });

      it('refuses chains with a malformed trace id, counts them, and stores the rest of the batch', async () => {
        const s = await fresh();
        const bad = chain('xyz', 'svc:a', [['b', 'op']], T0);
        const zero = chain('0'.repeat(32), 'svc:a', [['b', 'op']], T0);
        const good = chain(traceId(3), 'svc:a', [['b', 'op']], T0);
        expect(s.chainWriter.accepts(bad)).toBe(false);
        expect(s.chainWriter.accepts(zero)).toBe(false);
        expect(s.chainWriter.accepts(good)).toBe(true);
        expect(await s.chainWriter.writeChains([bad, good, zero])).toEqual({ chains: 1, calls: 1, rejected: 2 });
        expect(await s.chainReader.recentChains('svc:a', { limit: 10 })).toEqual([good]);
      });

      it('reads an identity\'s chains within a window of end times', async () => {
        const s = await fresh();
        const chains = [0, 1, 2, 3].map((i) => chain(traceId(10 + i), 'svc:w', [['b', `op ${i}`]], T0 + i * 1000));
        await s.chainWriter.writeChains(chains);
        const window = await s.chainReader.recentChains('svc:w', { limit: 10, sinceMs: chains[1]!.endMs, untilMs: chains[3]!.endMs });
        expect(window.map((c) => c.traceId)).toEqual([traceId(12), traceId(11)]);
        expect(await s.chainReader.recentChains('svc:w', { limit: 10, sinceMs: T0 + 10_000 })).toEqual([]);
      });

      it('keeps odd span data exactly (control characters, quotes, unicode, long texts)', async () => {
        const s = await fresh();
        const odd = chain(traceId(20), "svc:o'; DROP TABLE chains; --", [["peer\u0000\n\"x\"", `GET /${'é'.repeat(400)}`]], T0);
        odd.calls[0]!.source = { region: '\u2028', userAgent: 'x'.repeat(2000) };
        await s.chainWriter.writeChains([odd]);
        expect(await s.chainReader.traceChains(traceId(20))).toEqual([odd]);
        expect((await s.identities.getIdentity(odd.identity))?.chains).toBe(1);
      });

      it('merges a trace\'s summaries over late parts', async () => {
        const s = await fresh();
        const t = traceId(30);
        await s.chainWriter.writeChains([], [{ traceId: t, startMs: T0 + 10, endMs: T0 + 20, spans: 3, services: ['a', 'b'] }]);
        await s.chainWriter.writeChains([], [{ traceId: t.toUpperCase(), startMs: T0, endMs: T0 + 15, spans: 2, services: ['b', 'c'] }]);
        const summary = await s.chainReader.traceSummary(t);
        expect(summary).toMatchObject({ traceId: t, startMs: T0, endMs: T0 + 20, spans: 5 });
        expect([...summary!.services].sort()).toEqual(['a', 'b', 'c']);
        expect(await s.chainReader.traceSummary(traceId(31))).toBeUndefined();
      });

      it("reads several traces' summaries and chains at once, as one at a time would, in the order asked", async () => {
        const s = await fresh();
        const [a, b, none] = [traceId(32), traceId(33), traceId(34)];
        const chainsA = [chain(a, 'svc:r', [['p', 'op1']], T0), chain(a, 'svc:q', [['p', 'op2'], ['p', 'op3']], T0 + 5)];
        await s.chainWriter.writeChains(chainsA, [{ traceId: a, startMs: T0, endMs: T0 + 9, spans: 3, services: ['r'] }]);
        await s.chainWriter.writeChains([chain(b, 'svc:r', [['p', 'op4']], T0 + 20)], [{ traceId: b, startMs: T0 + 20, endMs: T0 + 30, spans: 1, services: ['r'] }]);
        // A later part of a: a second summary, merged.
        await s.chainWriter.writeChains([], [{ traceId: a, startMs: T0 + 1, endMs: T0 + 40, spans: 2, services: ['q'] }]);
        const asked = [b, none, a.toUpperCase(), 'zz', a];
        const one = async (id: string) => [await s.chainReader.traceSummary(id), await s.chainReader.traceChains(id)] as const;
        const each = await Promise.all(asked.map(one));
        expect(await s.chainReader.traceSummaries(asked)).toEqual(each.map(([summary]) => summary));
        expect(await s.chainReader.chainsOfTraces(asked)).toEqual(each.map(([, chains]) => chains));
        expect((await s.chainReader.traceSummaries([a]))[0]).toMatchObject({ spans: 5, endMs: T0 + 40 });
        expect((await s.chainReader.chainsOfTraces([a]))[0]).toEqual(chainsA);
        expect(await s.chainReader.traceSummaries([])).toEqual([]);
        expect(await s.chainReader.chainsOfTraces(['zz'])).toEqual([[]]);
      });

      it('replaces the chains of a trace (a late part merged in), correcting identity and edge counts', async () => {
        const s = await fresh();
        const t = traceId(35);
        const first = chain(t, 'svc:m', [['orders:8080', 'GET /orders/{id}'], ['cache', 'GET /k']], T0);
        const other = chain(traceId(36), 'svc:m', [['cache', 'GET /k']], T0 + 5000);
        await s.chainWriter.writeChains([first, other]);
        // The first call is now stitched to its server span; a second identity's chain is new.
        const [provisional, cached] = first.calls;
        const stitched = { ...provisional!, serverSpanId: '00000000000000f1', peer: 'shop/orders' };
        const callee = chain(t, 'svc:orders', [['postgres', 'SELECT orders']], T0 + 3);
        const merged = { ...first, calls: [stitched, cached!] };
        expect(await s.chainWriter.replaceTraceChains(t.toUpperCase(), [merged, callee, chain(traceId(37), 'svc:x', [['b', 'op']])])).toEqual({ chains: 2, calls: 3, rejected: 1 });
        const stored = await s.chainReader.traceChains(t);
        expect(stored.map((c) => [c.identity, c.calls.map((x) => [x.spanId, x.serverSpanId, x.peer])])).toEqual([
          ['svc:m', [[provisional!.spanId, '00000000000000f1', 'shop/orders'], [cached!.spanId, undefined, 'cache']]],
          ['svc:orders', [[callee.calls[0]!.spanId, undefined, 'postgres']]],
        ]);
        expect(await s.identities.getIdentity('svc:m')).toMatchObject({ calls: 3, chains: 2, peers: 2, firstSeenMs: T0 });
        expect(await s.identities.getIdentity('svc:orders')).toMatchObject({ calls: 1, chains: 1 });
        expect(await s.identities.getIdentity('svc:x')).toBeUndefined();
        expect((await s.identities.identityEdges('svc:m')).map((e) => [e.peer, e.count])).toEqual([['cache', 2], ['shop/orders', 1]]);
        // An identity whose only chain the merge took away is gone; the other trace is untouched.
        await s.chainWriter.replaceTraceChains(t, [callee]);
        expect(await s.identities.getIdentity('svc:m')).toMatchObject({ calls: 1, chains: 1, peers: 1 });
        expect((await s.chainReader.traceChains(traceId(36))).length).toBe(1);
        await s.chainWriter.replaceTraceChains(traceId(36), []);
        expect(await s.identities.getIdentity('svc:m')).toBeUndefined();
        expect(await s.identities.counts()).toEqual({ identities: 1, edges: 1 });
      });

      it('prunes chains and summaries that ended before a time, in bounded steps, oldest first', async () => {
        const s = await fresh();
        const chains = [0, 1, 2, 3, 4].map((i) => chain(traceId(40 + i), 'svc:p', [['b', 'op']], T0 + i * 1000));
        await s.chainWriter.writeChains(chains, chains.map((c) => ({ traceId: c.traceId, startMs: c.startMs, endMs: c.endMs, spans: 1, services: ['svc'] })));
        const cutoff = T0 + 3000;
        expect(await s.retention.pruneStep(cutoff, 2)).toEqual({ chains: 2, traces: 2 });
        expect(await s.retention.pruneStep(cutoff, 2)).toEqual({ chains: 1, traces: 1 });
        expect(await s.retention.pruneStep(cutoff, 2)).toEqual({ chains: 0, traces: 0 });
        expect((await s.chainReader.recentChains('svc:p', { limit: 10 })).map((c) => c.traceId)).toEqual([traceId(44), traceId(43)]);
        expect(await s.chainReader.traceSummary(traceId(40))).toBeUndefined();
        expect(await s.chainReader.traceSummary(traceId(43))).toBeDefined();
        // Identities are aggregates: they keep what they counted.
        expect((await s.identities.getIdentity('svc:p'))?.chains).toBe(5);
      });

      it('prunes identities and edges last seen before the time (id churn), keeping those seen since whole', async () => {
        const s = await fresh();
        const old = [0, 1, 2].map((i) => chain(traceId(90 + i), `svc:gone-${i}`, [['b', `op-${i}`]], T0 + i));
        const kept = chain(traceId(95), 'svc:kept', [['b', 'old-op']], T0);
        const recent = chain(traceId(96), 'svc:kept', [['c', 'new-op']], T0 + 10_000);
        await s.chainWriter.writeChains([...old, kept, recent]);
        const cutoff = T0 + 5_000;
        expect(await s.retention.pruneStep(cutoff, 2)).toMatchObject({ chains: 2, identities: 2, edges: 2 });
        expect(await s.retention.pruneStep(cutoff, 2)).toMatchObject({ chains: 2, identities: 1, edges: 2 });
        expect(await s.retention.pruneStep(cutoff, 2)).toEqual({ chains: 0, traces: 0 });
        expect(await s.identities.getIdentity('svc:gone-0')).toBeUndefined();
        expect(await s.identities.counts()).toEqual({ identities: 1, edges: 1 });
        expect(await s.identities.getIdentity('svc:kept')).toMatchObject({ calls: 2, chains: 2, peers: 1 });
        expect((await s.identities.identityEdges('svc:kept')).map((e) => e.operation)).toEqual(['new-op']);
      });

      it('prunes held chains that started before the time, whatever their alert, in bounded steps, oldest first', async () => {
        const s = await fresh();
        // An open incident counted on again and again holds every repeat's chain.
        const held = [0, 1, 2, 3].map((i) => chain(traceId(110 + i), 'svc:r', [['evil', 'GET /secrets']], T0 + i * 1000));
        await s.detection.checkpoint({
          alerts: [
            { alert: testAlert({ id: 'r1', identity: 'svc:r' }), dedupKey: 'r1' },
            { alert: testAlert({ id: 'r2', identity: 'svc:r', status: 'acknowledged' }), dedupKey: 'r2' },
          ],
          held: [
            ...held.map((c) => ({ identity: 'svc:r', traceId: c.traceId, alertId: 'r1', chain: c })),
            { identity: 'svc:r', traceId: held[0]!.traceId, alertId: 'r2', chain: held[0]! },
          ],
        });
        const cutoff = T0 + 2500;
        expect(await s.retention.pruneStep(cutoff, 2)).toEqual({ chains: 0, traces: 0, held: 2 });
        expect(await s.retention.pruneStep(cutoff, 2)).toEqual({ chains: 0, traces: 0, held: 2 });
        expect(await s.retention.pruneStep(cutoff, 2)).toEqual({ chains: 0, traces: 0 });
        expect((await s.detection.heldByAlert('r1')).map((h) => h.chain)).toEqual([held[3]]);
        expect(await s.detection.heldByAlert('r2')).toEqual([]);
        expect(await s.detection.isHeld('svc:r', held[0]!.traceId)).toBe(false);
        expect(await s.detection.isHeld('svc:r', held[3]!.traceId)).toBe(true);
        // The alerts themselves are kept.
        expect((await s.detection.getAlert('r1'))?.id).toBe('r1');
        expect((await s.detection.getAlert('r2'))?.id).toBe('r2');
      });
    });

    describe('identities and observed edges', () => {
      it('folds chains into identities and edges across batches', async () => {
        const s = await fresh();
        await s.chainWriter.writeChains([chain(traceId(1), 'svc:a', [['b', 'GET /x'], ['c', 'GET /y']], T0 + 2000)]);
        await s.chainWriter.writeChains([
          chain(traceId(2), 'svc:a', [['b', 'GET /x']], T0 + 1000),
          chain(traceId(3), 'agent:z', [['b', 'GET /x']], T0 + 3000, { identityKind: 'agent', displayName: 'Zed' }),
        ]);
        expect(await s.identities.getIdentity('svc:a')).toMatchObject({
          id: 'svc:a', kind: 'workload', firstSeenMs: T0 + 1000, lastSeenMs: T0 + 2002, calls: 3, chains: 2, peers: 2,
        });
        expect(await s.identities.getIdentity('agent:z')).toMatchObject({ displayName: 'Zed', kind: 'agent', calls: 1 });
        expect(await s.identities.getIdentity('nobody')).toBeUndefined();
        expect((await s.identities.listIdentities(10)).map((i) => i.id)).toEqual(['agent:z', 'svc:a']);
        expect((await s.identities.listIdentities(1)).map((i) => i.id)).toEqual(['agent:z']);
        const edges = await s.identities.identityEdges('svc:a');
        expect(edges.map((e) => [e.peer, e.operation, e.count])).toEqual([['b', 'GET /x', 2], ['c', 'GET /y', 1]]);
        expect(edges[0]).toMatchObject({ identity: 'svc:a', service: 'shop/frontend', peerKind: 'service', external: false, firstSeenMs: T0 + 1000, lastSeenMs: T0 + 2000 });
        expect(await s.identities.counts()).toEqual({ identities: 2, edges: 3 });
      });
    });

    describe('detection state', () => {
      it('checkpoints baselines with their entries and loads them back, all or by group', async () => {
        const s = await fresh();
        await s.detection.checkpoint({
          baselines: [
            { baseline: testBaseline('svc:a', 0, { displayName: 'A', enforcingSinceMs: T0 + 5 }), entries: [entry('operation', 'GET /x', 3), entry('peer', 'b')], removed: [] },
            { baseline: testBaseline('svc:b', 7, { compromised: true }), entries: [entry('operation', 'POST /y')], removed: [] },
          ],
        });
        const all = await loaded(s);
        expect([...all.keys()].sort()).toEqual(['svc:a', 'svc:b']);
        expect(all.get('svc:a')!.record).toEqual(testBaseline('svc:a', 0, { displayName: 'A', enforcingSinceMs: T0 + 5 }));
        expect(all.get('svc:a')!.entries).toEqual([entry('operation', 'GET /x', 3), entry('peer', 'b')]);
        expect(all.get('svc:b')!.record.compromised).toBe(true);
        const group7 = await loaded(s, [7]);
        expect([...group7.keys()]).toEqual(['svc:b']);
        expect(group7.get('svc:b')!.entries).toEqual([entry('operation', 'POST /y')]);
        expect((await loaded(s, [1, 2])).size).toBe(0);

        // A later delta replaces the record, upserts entries by key and removes forgotten ones.
        await s.detection.checkpoint({
          baselines: [{ baseline: testBaseline('svc:a', 0, { calls: 99 }), entries: [entry('operation', 'GET /x', 4)], removed: [{ kind: 'peer', key: 'b' }] }],
        });
        const again = (await loaded(s)).get('svc:a')!;
        expect(again.record).toEqual(testBaseline('svc:a', 0, { calls: 99 }));
        expect(again.entries).toEqual([entry('operation', 'GET /x', 4)]);
        expect(await s.detection.baselineCounts({ minCalls: 50, periodMs: 0 })).toEqual({ total: 2, enforcing: 1 });
        expect(await s.detection.baselineCounts({ minCalls: 5, periodMs: 60_000 })).toEqual({ total: 2, enforcing: 2 });
        expect(await s.detection.baselineCounts({ minCalls: 5, periodMs: 60_001 })).toEqual({ total: 2, enforcing: 0 });
      });

      it('filters alerts by any finding of an incident, not only its leading detector', async () => {
        const s = await fresh();
        const at = (ms: number) => new Date(T0 + ms).toISOString();
        const c1 = testAlert({ id: 'c1', identity: 'svc:c', detector: 'new-peer', detectors: ['new-peer', 'fan-out'], firstSeen: at(5), lastSeen: at(5) });
        const c2 = testAlert({ id: 'c2', identity: 'svc:c', detector: 'rate-burst', detectors: ['rate-burst'], firstSeen: at(6), lastSeen: at(6) });
        await s.detection.checkpoint({ alerts: [{ alert: c1, dedupKey: 'k3' }, { alert: c2, dedupKey: 'k4' }] });
        const ids = async (detector: string) => (await s.detection.listAlerts({ limit: 100, detector })).map((a) => a.id);
        expect(await ids('fan-out')).toEqual(['c1']);
        expect(await ids('new-peer')).toEqual(['c1']);
        expect(await ids('rate-burst')).toEqual(['c2']);
        expect(await ids("fan-out' OR 1=1 --")).toEqual([]);
      });

      it('inserts, repeats and lists alerts with filters, newest first', async () => {
        const s = await fresh();
        const at = (ms: number) => new Date(T0 + ms).toISOString();
        const a1 = testAlert({ id: 'a1', identity: 'svc:a', firstSeen: at(0), lastSeen: at(0) });
        const a2 = testAlert({ id: 'a2', identity: 'svc:a', detector: 'rate-burst', severity: 'high', firstSeen: at(10), lastSeen: at(10) });
        const b1 = testAlert({ id: 'b1', identity: 'svc:b', firstSeen: at(20), lastSeen: at(20), status: 'expected' });
        await s.detection.checkpoint({ alerts: [{ alert: a1, dedupKey: 'k1' }, { alert: a2, dedupKey: 'k2' }, { alert: b1, dedupKey: 'k1' }] });
        expect(await s.detection.getAlert('a2')).toEqual(a2);
        expect(await s.detection.getAlert('nope')).toBeUndefined();
        const ids = async (f: Partial<Parameters<StorageBackend['detection']['listAlerts']>[0]>) =>
          (await s.detection.listAlerts({ limit: 100, ...f })).map((a) => a.id);
        expect(await ids({})).toEqual(['b1', 'a2', 'a1']);
        expect(await ids({ limit: 2 })).toEqual(['b1', 'a2']);
        expect(await ids({ identity: 'svc:a' })).toEqual(['a2', 'a1']);
        expect(await ids({ detector: 'rate-burst' })).toEqual(['a2']);
        expect(await ids({ status: 'expected' })).toEqual(['b1']);
        expect(await ids({ sinceMs: T0 + 10 })).toEqual(['b1', 'a2']);
        expect(await ids({ identity: 'svc:a', detector: 'new-peer', status: 'open', sinceMs: T0 })).toEqual(['a1']);
        expect(await ids({ identity: "' OR 1=1 --" })).toEqual([]);
        // Time range, trace, severities, free text and the orders.
        expect(await ids({ untilMs: T0 + 10 })).toEqual(['a1']);
        expect(await ids({ sinceMs: T0 + 5, untilMs: T0 + 15 })).toEqual(['a2']);
        expect(await ids({ traceId: traceId(1).toUpperCase() })).toEqual(['b1', 'a2', 'a1']);
        expect(await ids({ traceId: traceId(2) })).toEqual([]);
        expect(await ids({ severities: ['high', 'critical'] })).toEqual(['a2']);
        expect(await ids({ severities: ['medium'] })).toEqual(['b1', 'a1']);
        expect(await ids({ text: 'RATE-burst' })).toEqual(['a2']);
        expect(await ids({ text: 'svc:B' })).toEqual(['b1']);
        expect(await ids({ text: 'called a PEER' })).toEqual(['b1', 'a2', 'a1']);
        expect(await ids({ text: "%' OR 1=1 --" })).toEqual([]);
        expect(await ids({ sort: 'severity' })).toEqual(['a2', 'b1', 'a1']);

        // The repeat of a finding: same key, in the window, not marked expected.
        expect((await s.detection.findRepeat('k1', T0 - 1000, T0 + 1000))?.id).toBe('a1');
        expect(await s.detection.findRepeat('k1', T0 + 1, T0 + 1000)).toBeUndefined();
        expect(await s.detection.findRepeat('k2', T0, T0 + 5)).toBeUndefined();
        // A repeat replaces the alert whole.
        const repeated = { ...a1, count: 2, lastSeen: at(30), severity: 'high' as const };
        await s.detection.checkpoint({ alerts: [{ alert: repeated, dedupKey: 'k1' }] });
        expect(await s.detection.getAlert('a1')).toEqual(repeated);
        expect(await ids({})).toEqual(['a1', 'b1', 'a2']);
        expect((await s.detection.findRepeat('k1', T0 + 25, T0 + 1000))?.id).toBe('a1');
        expect(
          (await s.detection.openAlertCounts()).sort((x, y) => x.detector.localeCompare(y.detector)),
        ).toEqual([{ detector: 'new-peer', severity: 'high', count: 1 }, { detector: 'rate-burst', severity: 'high', count: 1 }]);
        // A verdict is a replacement too.
        await s.detection.checkpoint({ alerts: [{ alert: { ...repeated, status: 'expected' }, dedupKey: 'k1' }] });
        expect(await s.detection.findRepeat('k1', T0 - 1000, T0 + 1000)).toBeUndefined();
        // A superseded alert is no repeat target either.
        await s.detection.checkpoint({ alerts: [{ alert: { ...a2, status: 'superseded' }, dedupKey: 'k2' }] });
        expect(await s.detection.findRepeat('k2', T0, T0 + 1000)).toBeUndefined();
        // The alerts of one identity's chain of a trace.
        expect((await s.detection.alertsOfChain(traceId(1).toUpperCase(), 'svc:a')).map((a) => a.id).sort()).toEqual(['a1', 'a2']);
        expect(await s.detection.alertsOfChain(traceId(2), 'svc:a')).toEqual([]);
      });

      it('holds chains per alert, lists them per identity while their alert is not expected, and releases them', async () => {
        const s = await fresh();
        const c1 = chain(traceId(50), 'svc:h', [['evil', 'GET /secrets']], T0);
        const c2 = chain(traceId(51), 'svc:h', [['evil', 'GET /more']], T0 + 1000);
        await s.detection.checkpoint({
          alerts: [
            { alert: testAlert({ id: 'h1', identity: 'svc:h' }), dedupKey: 'h1' },
            { alert: testAlert({ id: 'h2', identity: 'svc:h', detector: 'rate-burst' }), dedupKey: 'h2' },
            { alert: testAlert({ id: 'h3', identity: 'svc:h', status: 'expected' }), dedupKey: 'h3' },
          ],
          held: [
            { identity: 'svc:h', traceId: c1.traceId, alertId: 'h1', chain: c1 },
            { identity: 'svc:h', traceId: c1.traceId, alertId: 'h2', chain: c1 },
            { identity: 'svc:h', traceId: c2.traceId, alertId: 'h3', chain: c2 },
          ],
        });
        expect(await s.detection.heldByAlert('h1')).toEqual([{ identity: 'svc:h', traceId: c1.traceId, alertId: 'h1', chain: c1 }]);
        // Held for two alerts, shown once; the one whose alert is expected is not shown.
        expect(await s.detection.heldChainsOf('svc:h', 10)).toEqual([c1]);
        expect(await s.detection.isHeld('svc:h', c1.traceId)).toBe(true);
        expect(await s.detection.isHeld('svc:other', c1.traceId)).toBe(false);
        await s.detection.checkpoint({ released: [{ identity: 'svc:h', traceId: c1.traceId }] });
        expect(await s.detection.heldByAlert('h1')).toEqual([]);
        expect(await s.detection.heldByAlert('h2')).toEqual([]);
        expect(await s.detection.heldChainsOf('svc:h', 10)).toEqual([]);
        expect((await s.detection.heldByAlert('h3')).map((h) => h.chain)).toEqual([c2]);
        expect(await s.detection.isHeld('svc:h', c1.traceId)).toBe(false);
      });

      it('keeps the first suppression of a key and loads them all or by baseline group', async () => {
        const s = await fresh();
        await s.detection.checkpoint({
          baselines: [{ baseline: testBaseline('svc:a', 3), entries: [], removed: [] }],
          suppressions: [
            { identity: 'svc:a', detector: 'new-peer', key: 'peer:b', alertId: 'x1' },
            { identity: 'svc:z', detector: 'new-peer', key: 'peer:b', alertId: 'x2' },
          ],
        });
        await s.detection.checkpoint({ suppressions: [{ identity: 'svc:a', detector: 'new-peer', key: 'peer:b', alertId: 'x3' }] });
        const all = await s.detection.loadSuppressions();
        expect(all.sort((x, y) => x.identity.localeCompare(y.identity))).toEqual([
          { identity: 'svc:a', detector: 'new-peer', key: 'peer:b', alertId: 'x1' },
          { identity: 'svc:z', detector: 'new-peer', key: 'peer:b', alertId: 'x2' },
        ]);
        expect(await s.detection.loadSuppressions({ groups: [3] })).toEqual([{ identity: 'svc:a', detector: 'new-peer', key: 'peer:b', alertId: 'x1' }]);
        expect(await s.detection.loadSuppressions({ groups: [4] })).toEqual([]);
      });

      it('commits a checkpoint whole or not at all', async () => {
        const s = await fresh();
        const c = chain(traceId(60), 'svc:t', [['b', 'op']], T0);
        const broken: DetectionCheckpoint = {
          baselines: [{ baseline: testBaseline('svc:t'), entries: [entry('operation', 'op')], removed: [] }],
          alerts: [
            { alert: testAlert({ id: 't1', identity: 'svc:t' }), dedupKey: 't1' },
            // No dedup key: the backend refuses the row.
            { alert: testAlert({ id: 't2', identity: 'svc:t' }), dedupKey: null as unknown as string },
          ],
          held: [{ identity: 'svc:t', traceId: c.traceId, alertId: 't1', chain: c }],
        };
        await expect(s.detection.checkpoint(broken)).rejects.toThrow();
        expect((await loaded(s)).size).toBe(0);
        expect(await s.detection.getAlert('t1')).toBeUndefined();
        expect(await s.detection.heldByAlert('t1')).toEqual([]);
        // The backend still works after the failed checkpoint.
        await s.detection.checkpoint({ ...broken, alerts: broken.alerts!.slice(0, 1) });
        expect((await s.detection.getAlert('t1'))?.id).toBe('t1');
        expect((await s.detection.heldByAlert('t1')).map((h) => h.chain)).toEqual([c]);
      });
    });

    describe('alert outbox', () => outboxConformance(fresh));
    describe('alert retention', () => alertRetentionConformance(fresh));
    describe('learned operation templates', () => {
      it('adds path parameters, keeps the first of a position added twice, and loads them all back exactly', async () => {
        const s = await fresh();
        expect(await s.templates.loadPathParameters()).toEqual([]);
        await s.templates.savePathParameters([]);
        const users = { peer: 'users-api:8080', method: 'GET', segments: 4, prefix: '/users', learnedMs: T0 + 0.25 };
        const odd = { peer: "p\u0000'; DROP TABLE path_parameters; --", method: '_OTHER', segments: 3, prefix: `/\u0001x/${'é'.repeat(300)}`, learnedMs: T0 + 5 };
        await s.templates.savePathParameters([users, odd]);
        // The same position again (another time), and one that differs only in its segment count.
        await s.templates.savePathParameters([{ ...users, learnedMs: T0 + 99 }, { ...users, segments: 3, learnedMs: T0 + 7 }]);
        expect(await s.templates.loadPathParameters()).toEqual([users, odd, { ...users, segments: 3, learnedMs: T0 + 7 }]);
      });
    });

    describe('batch units (effectively-once processing)', () => {
      it('stores a unit\'s chains, summaries, replaced traces and checkpoint together', async () => {
        const s = await fresh();
        const t = traceId(80);
        const first = chain(t, 'svc:u', [['b', 'op']], T0);
        await s.chainWriter.writeChains([first]);
        const late = chain(t, 'svc:u', [['b', 'op'], ['c', 'op2']], T0);
        const fresh1 = chain(traceId(81), 'svc:v', [['d', 'op3']], T0 + 10);
        const written = await s.chainWriter.commitBatch({
          chains: [fresh1, chain('zz', 'svc:bad', [['x', 'y']])],
          traces: [{ traceId: traceId(81), startMs: T0 + 10, endMs: T0 + 20, spans: 2, services: ['v'] }],
          replaced: [{ traceId: t, chains: [late] }],
          checkpoint: {
            baselines: [{ baseline: testBaseline('svc:v'), entries: [entry('operation', 'op3')], removed: [] }],
            alerts: [{ alert: testAlert({ id: 'u1', identity: 'svc:v', traceId: traceId(81) }), dedupKey: 'u1' }],
          },
        });
        expect(written).toEqual({ chains: 2, calls: 3, rejected: 1 });
        expect((await s.chainReader.traceChains(t)).map((c) => c.calls.length)).toEqual([2]);
        expect((await s.chainReader.traceChains(traceId(81))).length).toBe(1);
        expect((await s.chainReader.traceSummary(traceId(81)))?.spans).toBe(2);
        expect(await s.identities.getIdentity('svc:u')).toMatchObject({ calls: 2, chains: 1 });
        expect((await loaded(s)).get('svc:v')?.entries).toEqual([entry('operation', 'op3')]);
        expect((await s.detection.getAlert('u1'))?.identity).toBe('svc:v');
        // A checkpoint alone, and an empty unit, are fine too.
        await s.chainWriter.commitBatch({ checkpoint: { alerts: [{ alert: testAlert({ id: 'u2', identity: 'svc:v' }), dedupKey: 'u2' }] } });
        expect((await s.detection.getAlert('u2'))?.id).toBe('u2');
        expect(await s.chainWriter.commitBatch({})).toEqual({ chains: 0, calls: 0, rejected: 0 });
      });

      it("replaces several traces in one unit: counts as one trace after another would leave them, a trace named twice keeps its last chains", async () => {
        const s = await fresh();
        const [t1, t2, t3] = [traceId(84), traceId(85), traceId(86)];
        await s.chainWriter.writeChains([
          chain(t1, 'svc:a', [['b', 'op1']], T0),
          chain(t2, 'svc:a', [['b', 'op1']], T0 + 10),
          chain(t2, 'svc:gone', [['c', 'op9']], T0 + 11),
          chain(t3, 'svc:b', [['d', 'op2']], T0 + 20),
        ]);
        const written = await s.chainWriter.commitBatch({
          replaced: [
            // A first version of t1's chains, replaced again below within the same unit.
            { traceId: t1, chains: [chain(t1, 'svc:gone', [['x', 'first']], T0)] },
            { traceId: t2, chains: [chain(t2, 'svc:b', [['d', 'op2']], T0 + 10)] },
            { traceId: t3, chains: [] },
            { traceId: t1.toUpperCase(), chains: [chain(t1, 'svc:a', [['b', 'op1'], ['b', 'op1']], T0), chain(traceId(87), 'svc:x', [['y', 'op']])] },
          ],
          checkpoint: { alerts: [{ alert: testAlert({ id: 'r1', identity: 'svc:a' }), dedupKey: 'r1' }] },
        });
        // Written: t1's first version too (then replaced), t2's chain and t1's last; t87's chain is refused.
        expect(written).toEqual({ chains: 3, calls: 4, rejected: 1 });
        expect((await s.chainReader.traceChains(t1)).map((c) => [c.identity, c.calls.length])).toEqual([['svc:a', 2]]);
        expect((await s.chainReader.traceChains(t2)).map((c) => [c.identity, c.calls.length])).toEqual([['svc:b', 1]]);
        expect(await s.chainReader.traceChains(t3)).toEqual([]);
        expect(await s.identities.getIdentity('svc:a')).toMatchObject({ calls: 2, chains: 1 });
        expect(await s.identities.getIdentity('svc:b')).toMatchObject({ calls: 1, chains: 1 });
        expect(await s.identities.getIdentity('svc:gone')).toBeUndefined();
        expect(await s.identities.getIdentity('svc:x')).toBeUndefined();
        expect((await s.identities.identityEdges('svc:a')).map((e) => [e.peer, e.operation, e.count])).toEqual([['b', 'op1', 2]]);
        expect((await s.identities.identityEdges('svc:b')).map((e) => [e.peer, e.operation, e.count])).toEqual([['d', 'op2', 1]]);
        expect(await s.identities.counts()).toEqual({ identities: 2, edges: 2 });
      });

      it('stores nothing of a unit whose checkpoint fails: the chains do not advance without what was learned from them', async () => {
        const s = await fresh();
        const t = traceId(82);
        const before = chain(t, 'svc:w', [['b', 'op']], T0);
        await s.chainWriter.writeChains([before]);
        const failing = {
          chains: [chain(traceId(83), 'svc:w', [['c', 'op']], T0 + 5)],
          traces: [{ traceId: traceId(83), startMs: T0 + 5, endMs: T0 + 6, spans: 1, services: ['w'] }],
          replaced: [{ traceId: t, chains: [chain(t, 'svc:w', [['b', 'op'], ['e', 'op']], T0)] }],
          checkpoint: {
            baselines: [{ baseline: testBaseline('svc:w'), entries: [entry('operation', 'op')], removed: [] }],
            // No dedup key: the backend refuses the row, and with it the unit.
            alerts: [{ alert: testAlert({ id: 'w1', identity: 'svc:w' }), dedupKey: null as unknown as string }],
          },
        };
        await expect(s.chainWriter.commitBatch(failing)).rejects.toThrow();
        expect(await s.chainReader.traceChains(traceId(83))).toEqual([]);
        expect(await s.chainReader.traceSummary(traceId(83))).toBeUndefined();
        expect((await s.chainReader.traceChains(t)).map((c) => c.calls.length)).toEqual([1]);
        expect(await s.identities.getIdentity('svc:w')).toMatchObject({ calls: 1, chains: 1 });
        expect((await loaded(s)).size).toBe(0);
        // The same unit, fixed, then goes in whole.
        await s.chainWriter.commitBatch({ ...failing, checkpoint: { ...failing.checkpoint, alerts: [{ alert: testAlert({ id: 'w1', identity: 'svc:w' }), dedupKey: 'w1' }] } });
        expect(await s.identities.getIdentity('svc:w')).toMatchObject({ calls: 3, chains: 2 });
        expect((await loaded(s)).size).toBe(1);
      });
    });

    describe('backend', () => {
      it('is ready while open, reports its schema and size, and closes twice safely', async () => {
        const s = await openBackend();
        expect(await s.ready()).toBe(true);
        expect(await s.schemaVersion()).toBeGreaterThan(0);
        await s.chainWriter.writeChains([chain(traceId(70), 'svc:c', [['b', 'op']], T0)]);
        expect(await s.sizeBytes()).toBeGreaterThan(0);
        await s.close();
        await s.close();
        expect(await s.ready()).toBe(false);
        await expect(s.chainReader.traceChains(traceId(70))).rejects.toThrow();
      });
    });
  });
}
