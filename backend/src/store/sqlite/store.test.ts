import { mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, applyMigrations, loadMigrations, openStore, traceIdToBytes, type Store } from '../index.js';
import { encodeCalls } from '../call-codec.js';
import { WAL_AUTOCHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES } from './store.js';
import type { Chain } from '@conduct/processor';
import { chain, tempDir, traceId } from '../testdata/fixtures.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

async function fresh(): Promise<{ store: Store; path: string; dir: string }> {
  const t = tempDir();
  const path = join(t.dir, 'nested', 'conduct.db');
  const store = await openStore({ path });
  cleanups.push(t.cleanup, () => store.close());
  return { store, path, dir: t.dir };
}

describe('store', () => {
  it('creates the directory, uses WAL and records the schema version', async () => {
    const { store } = await fresh();
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(WAL_AUTOCHECKPOINT_PAGES);
    expect(store.db.pragma('journal_size_limit', { simple: true })).toBe(WAL_SIZE_LIMIT_BYTES);
    expect(store.schemaVersion()).toBeGreaterThanOrEqual(1);
  });

  it('round-trips chains by trace (either hex case) and by identity, newest first', async () => {
    const { store } = await fresh();
    const t1 = traceId(1);
    const a = chain(t1, 'svc:shop/frontend', [['checkout', 'POST /checkout'], ['payments', 'Charge']], 1000);
    const b = chain(t1, 'agent:triage', [['search', 'execute_tool search']], 1005, { identityKind: 'agent', displayName: 'Triage' });
    const later = chain(traceId(2), 'svc:shop/frontend', [['checkout', 'GET /cart']], 5000);
    const result = store.writeChains([a, b, later]);
    expect(result).toEqual({ chains: 3, calls: 4, rejected: 0 });

    const inTrace = store.traceChains(t1.toUpperCase());
    expect(inTrace.map((c) => c.identity)).toEqual(['svc:shop/frontend', 'agent:triage']);
    expect(inTrace[0]).toEqual(a);
    expect(inTrace[1]).toEqual(b);

    const recent = store.recentChains('svc:shop/frontend', 10);
    expect(recent.map((c) => c.traceId)).toEqual([traceId(2), t1]);
    expect(store.recentChains('svc:shop/frontend', 1)).toHaveLength(1);
    expect(store.traceChains(traceId(99))).toEqual([]);
    expect(store.traceChains('not-hex')).toEqual([]);
  });

  it('folds chains into identities and edges across batches', async () => {
    const { store } = await fresh();
    store.writeChains([chain(traceId(1), 'svc:a', [['b', 'GET /x'], ['c', 'GET /y']], 2000)]);
    store.writeChains([
      chain(traceId(2), 'svc:a', [['b', 'GET /x']], 1000),
      chain(traceId(3), 'agent:z', [['b', 'GET /x']], 3000, { identityKind: 'agent', displayName: 'Zed' }),
    ]);
    const a = store.getIdentity('svc:a')!;
    expect(a).toMatchObject({ id: 'svc:a', kind: 'workload', firstSeenMs: 1000, lastSeenMs: 2002, calls: 3, chains: 2, peers: 2 });
    expect(store.getIdentity('agent:z')).toMatchObject({ displayName: 'Zed', kind: 'agent', calls: 1 });
    expect(store.getIdentity('nobody')).toBeUndefined();
    expect(store.listIdentities(10).map((i) => i.id)).toEqual(['agent:z', 'svc:a']);
    expect(store.listIdentities(1)).toHaveLength(1);

    const edges = store.identityEdges('svc:a');
    expect(edges[0]).toMatchObject({ peer: 'b', operation: 'GET /x', count: 2, firstSeenMs: 1000, lastSeenMs: 2000 });
    expect(edges[1]).toMatchObject({ peer: 'c', operation: 'GET /y', count: 1 });
  });

  it('refuses chains with malformed trace ids and stores hostile text as data', async () => {
    const { store } = await fresh();
    const hostile = "x'); DROP TABLE chains; --";
    const r = store.writeChains([
      chain('zz', 'svc:a', [['b', 'op']]),
      chain('00000000000000000000000000000000', 'svc:a', [['b', 'op']]),
      chain(traceId(7), hostile, [[hostile, hostile]]),
    ]);
    expect(r).toEqual({ chains: 1, calls: 1, rejected: 2 });
    expect(store.getIdentity(hostile)?.calls).toBe(1);
    expect(store.identityEdges(hostile)[0]?.peer).toBe(hostile);
  });

  it('reads rows of the JSON form beside binary ones, and numbers each text once across reopen', async () => {
    const { store, path } = await fresh();
    const t1 = traceId(3);
    const old = chain(t1, 'svc:a', [['b', 'GET /old'], ['c', 'GET /older']], 1000);
    store.db
      .prepare('INSERT INTO chains_text (trace_id, identity, identity_kind, display_name, start_ms, end_ms, call_count, calls) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(traceIdToBytes(t1), old.identity, old.identityKind, null, old.startMs, old.endMs, old.calls.length, encodeCalls(old.calls, old.startMs));
    const now = chain(t1, 'svc:a', [['b', 'GET /old'], ['d', 'GET /new']], 2000);
    store.writeChains([now]);
    expect(store.db.prepare('SELECT typeof(calls) AS t FROM chains').all()).toEqual([{ t: 'blob' }]);
    expect(store.traceChains(t1)).toEqual([old, now]);
    const texts = () => (store.db.prepare('SELECT count(*) AS n FROM strings').get() as { n: number }).n;
    const numbered = texts();
    expect(numbered).toBeGreaterThan(0);
    store.writeChains([chain(traceId(4), 'svc:a', [['d', 'GET /new']], 3000)]);
    expect(texts()).toBe(numbered);
    store.close();

    const again = await openStore({ path });
    cleanups.push(() => again.close());
    const later = chain(traceId(5), 'svc:a', [['b', 'GET /old']], 4000);
    again.writeChains([later]);
    expect((again.db.prepare('SELECT count(*) AS n FROM strings').get() as { n: number }).n).toBe(numbered);
    expect(again.recentChains('svc:a', 10)).toEqual([later, expect.objectContaining({ traceId: traceId(4) }), now, old]);
  });

  it('forgets the texts a failed or rolled-back write numbered', async () => {
    const { store } = await fresh();
    store.db.exec(
      "CREATE TEMP TRIGGER refuse BEFORE INSERT ON chains WHEN new.identity = (SELECT id FROM strings WHERE text = 'svc:boom') BEGIN SELECT RAISE(ABORT, 'refused'); END",
    );
    const fresh1 = chain(traceId(1), 'svc:boom', [['new-peer', 'GET /new-op']]);
    expect(() => store.writeChains([fresh1])).toThrow(/refused/);
    store.db.exec('DROP TRIGGER refuse');
    const fresh2 = chain(traceId(2), 'svc:b', [['new-peer-2', 'GET /new-op-2']]);
    expect(() => store.db.transaction(() => {
      store.writeChains([fresh2]);
      expect(store.traceChains(traceId(2))).toEqual([fresh2]);
      throw new Error('caller gave up');
    })()).toThrow(/gave up/);
    expect(store.db.prepare("SELECT count(*) AS n FROM strings WHERE text LIKE 'new-peer%'").get()).toEqual({ n: 0 });

    // Other texts now take the ids those writes had handed out.
    const other = chain(traceId(3), 'svc:c', [['other-peer', 'GET /other'], ['x', 'y']]);
    store.writeChains([other]);
    const c1 = chain(traceId(1), 'svc:a', [['new-peer', 'GET /new-op']]);
    const c2 = chain(traceId(2), 'svc:b', [['new-peer-2', 'GET /new-op-2']]);
    store.writeChains([c1, c2]);
    expect(store.traceChains(traceId(1))).toEqual([c1]);
    expect(store.traceChains(traceId(2))).toEqual([c2]);
    expect(store.traceChains(traceId(3))).toEqual([other]);
  });

  it('stores a write of many chains and traces across its multi-row statements, in order, and none of a write that fails midway', async () => {
    const { store } = await fresh();
    // 157 traces of one to three chains (a trace's chains straddle the 64-row statements), and
    // summaries for every other trace and for three traces without chains.
    const chains = [];
    const summaries = [];
    for (let t = 1; t <= 157; t++) {
      for (let k = 0; k < 1 + (t % 3); k++) chains.push(chain(traceId(t), `svc:s${t % 7}`, [[`p${k}`, `GET /t${t}/${k}`]], 1_000_000 + t * 10 + k));
      if (t % 2 === 0) summaries.push({ traceId: traceId(t), startMs: 1_000_000 + t * 10, endMs: 1_000_000 + t * 10 + 9, spans: 2 + (t % 3), services: [`s${t % 7}`] });
    }
    for (let t = 900; t < 903; t++) summaries.push({ traceId: traceId(t), startMs: 5, endMs: 6, spans: 1, services: ['lone'] });
    expect(chains.length).toBeGreaterThan(64 * 4);
    expect(store.writeChains(chains, summaries)).toEqual({ chains: chains.length, calls: chains.length, rejected: 0 });
    for (let t = 1; t <= 157; t++) {
      expect(store.traceChains(traceId(t))).toEqual(chains.filter((c) => c.traceId === traceId(t)));
      const summary = store.traceSummary(traceId(t));
      if (t % 2 === 0) expect(summary).toEqual(summaries.find((s) => s.traceId === traceId(t)));
      else expect(summary).toBeUndefined();
    }
    expect(store.traceSummary(traceId(901))).toEqual({ traceId: traceId(901), startMs: 5, endMs: 6, spans: 1, services: ['lone'] });
    // Rows in the order given, their parts' chain ranges exact.
    const rows = store.db.prepare('SELECT seq FROM chains ORDER BY seq').pluck().all() as number[];
    expect(rows).toEqual(rows.map((_, i) => rows[0]! + i));
    const parts = store.db.prepare('SELECT count(*) FROM trace_parts').pluck().get();
    expect(parts).toBe(157 + 3);

    // A row refused in the middle of a 64-row statement: nothing of that write is kept.
    store.db.exec("CREATE TEMP TRIGGER refuse BEFORE INSERT ON chains WHEN new.start_ms = 7000070 BEGIN SELECT RAISE(FAIL, 'refused'); END");
    const failing = Array.from({ length: 100 }, (_, i) => chain(traceId(2000 + i), 'svc:late', [['x', 'GET /x']], 7_000_000 + i));
    expect(() => store.writeChains(failing, [{ traceId: traceId(2000), startMs: 1, endMs: 2, spans: 1, services: [] }])).toThrow(/refused/);
    store.db.exec('DROP TRIGGER refuse');
    expect(store.recentChains('svc:late', 10)).toEqual([]);
    expect(store.traceSummary(traceId(2000))).toBeUndefined();
    expect(store.db.prepare('SELECT count(*) FROM chains').pluck().get()).toBe(chains.length);
    // The next write starts clean.
    expect(store.writeChains(failing.slice(0, 3))).toEqual({ chains: 3, calls: 3, rejected: 0 });
    expect(store.traceChains(traceId(2001))).toEqual([failing[1]]);
  });

  it('stores each chain\'s own kind and display name and each trace\'s range when a write interleaves traces and names change', async () => {
    const { store } = await fresh();
    // One identity whose kind and display name change from chain to chain, traces whose chains
    // are not together (1, 2, 1, 3, 2), summaries in another order than the chains and one twice.
    const at = 1_000_000;
    const chains = [
      chain(traceId(1), 'agent:a', [['p', 'GET /1a']], at, { identityKind: 'agent', displayName: 'First' }),
      chain(traceId(2), 'agent:a', [['p', 'GET /2a']], at + 10, { identityKind: 'agent' }),
      chain(traceId(1), 'agent:a', [['p', 'GET /1b']], at + 20, { identityKind: 'workload', displayName: 'Second' }),
      chain(traceId(3), 'svc:b', [['q', 'GET /3a']], at + 30),
      chain(traceId(2), 'agent:a', [['p', 'GET /2b']], at + 40, { identityKind: 'agent', displayName: 'First' }),
    ];
    const summary = (n: number, spans: number) => ({ traceId: traceId(n), startMs: at + n, endMs: at + 50 + n, spans, services: [`s${n}`, 'shared'] });
    const summaries = [summary(3, 1), summary(2, 2), summary(1, 2), summary(4, 1), summary(1, 3)];
    expect(store.writeChains(chains, summaries)).toEqual({ chains: 5, calls: 5, rejected: 0 });
    const byTrace = (n: number) => chains.filter((c) => c.traceId === traceId(n));
    for (const n of [1, 2, 3]) expect(store.traceChains(traceId(n))).toEqual(byTrace(n));
    expect(store.traceChains(traceId(4))).toEqual([]);
    expect(store.recentChains('agent:a', 10)).toEqual([chains[4], chains[2], chains[1], chains[0]]);
    // The identity keeps its last kind and last display name given.
    expect(store.getIdentity('agent:a')).toMatchObject({ kind: 'agent', displayName: 'First', chains: 4, calls: 4, firstSeenMs: at, lastSeenMs: at + 41 });
    // Trace 1's two summaries merge; trace 4 has a summary and no chains.
    expect(store.traceSummary(traceId(1))).toEqual({ traceId: traceId(1), startMs: at + 1, endMs: at + 51, spans: 5, services: ['s1', 'shared'] });
    expect(store.traceSummary(traceId(4))).toEqual(summary(4, 1));
    // One part per summary, and one for each trace's chains (taken by its first summary): ranges
    // and ends as the chains gave them.
    const parts = store.db.prepare('SELECT hex(trace_id) AS id, end_ms, first_chain, last_chain, spans FROM trace_parts ORDER BY seq').all() as
      { id: string; end_ms: number; first_chain: number | null; last_chain: number | null; spans: number | null }[];
    const seqs = store.db.prepare('SELECT seq FROM chains ORDER BY seq').pluck().all() as number[];
    const id = (n: number) => traceId(n).toUpperCase();
    expect(parts).toEqual([
      { id: id(3), end_ms: at + 53, first_chain: seqs[3], last_chain: seqs[3], spans: 1 },
      { id: id(2), end_ms: at + 52, first_chain: seqs[1], last_chain: seqs[4], spans: 2 },
      { id: id(1), end_ms: at + 51, first_chain: seqs[0], last_chain: seqs[2], spans: 2 },
      { id: id(4), end_ms: at + 54, first_chain: null, last_chain: null, spans: 1 },
      { id: id(1), end_ms: at + 51, first_chain: null, last_chain: null, spans: 3 },
    ]);
  });

  it('writes and replaces within a caller\'s open transaction only, rolled back with it', async () => {
    const { store } = await fresh();
    const { writeInTransaction } = store;
    const a = chain(traceId(1), 'svc:a', [['b', 'GET /x']], 1000);
    expect(() => writeInTransaction.writeChains([a])).toThrow(/open transaction/);
    expect(store.traceChains(traceId(1))).toEqual([]);

    const unit = store.db.transaction(() => {
      expect(writeInTransaction.writeChains([a], [{ traceId: traceId(1), startMs: 1000, endMs: 1010, spans: 2, services: ['a'] }])).toEqual({ chains: 1, calls: 1, rejected: 0 });
      const merged = chain(traceId(1), 'svc:a', [['b', 'GET /x'], ['c', 'GET /y']], 1000);
      expect(writeInTransaction.replaceTraceChains(traceId(1), [merged])).toEqual({ chains: 1, calls: 2, rejected: 0 });
      return merged;
    });
    const merged = store.inTransaction(unit);
    expect(store.traceChains(traceId(1))).toEqual([merged]);
    expect(store.getIdentity('svc:a')).toMatchObject({ calls: 2, chains: 1 });
    expect(store.traceSummary(traceId(1))).toMatchObject({ spans: 2, services: ['a'] });

    // A caller's transaction that throws takes the write with it, texts numbered included.
    const b = chain(traceId(2), 'svc:rolled-back', [['never-peer', 'GET /never']], 2000);
    expect(() => store.inTransaction(() => store.db.transaction(() => {
      writeInTransaction.writeChains([b]);
      throw new Error('caller gave up');
    })())).toThrow(/gave up/);
    expect(store.traceChains(traceId(2))).toEqual([]);
    expect(store.getIdentity('svc:rolled-back')).toBeUndefined();
    expect(store.db.prepare("SELECT count(*) AS n FROM strings WHERE text LIKE 'never-peer%'").get()).toEqual({ n: 0 });
  });

  it('reads, merges and prunes the chains of a database written before numbered chains', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'old.db');
    const before = (await loadMigrations()).filter((m) => m.version < 31);
    const db = new Database(path);
    applyMigrations(db, before);
    const insertOld = db.prepare(
      'INSERT INTO chains (trace_id, identity, identity_kind, display_name, start_ms, end_ms, call_count, calls) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const old1 = chain(traceId(1), 'agent:z', [['b', 'GET /x']], 1000, { identityKind: 'agent', displayName: 'Zed' });
    const old2 = chain(traceId(2), 'agent:z', [['c', 'GET /y']], 5000, { identityKind: 'agent' });
    for (const c of [old1, old2]) {
      insertOld.run(traceIdToBytes(c.traceId), c.identity, c.identityKind, c.displayName ?? null, c.startMs, c.endMs, c.calls.length, encodeCalls(c.calls, c.startMs));
    }
    db.close();

    const store = await openStore({ path });
    cleanups.push(() => store.close());
    const new1 = chain(traceId(1), 'agent:z', [['d', 'GET /z']], 3000, { identityKind: 'agent', displayName: 'Zed' });
    const new2 = chain(traceId(3), 'agent:z', [['b', 'GET /x']], 5000, { identityKind: 'agent' });
    store.writeChains([new1, new2]);
    expect(store.traceChains(traceId(1))).toEqual([old1, new1]);
    // Newest end first; of equal ends the later written.
    expect(store.recentChains('agent:z', 10)).toEqual([new2, old2, new1, old1]);
    expect(store.recentChains('agent:z', 2)).toEqual([new2, old2]);
    expect(store.recentChains('agent:unknown', 2)).toEqual([]);

    // The older table's rows go first, within the step's window (and the edge last seen before the cutoff).
    expect(store.pruneStep(4000, 1)).toEqual({ chains: 1, traces: 0, edges: 1 });
    expect(store.traceChains(traceId(1))).toEqual([new1]);
    expect(store.pruneStep(4000, 2)).toEqual({ chains: 1, traces: 0 });
    expect(store.recentChains('agent:z', 10)).toEqual([new2, old2]);
  });

  it('reads, merges and prunes the chains and summaries of a database written before trace parts (090)', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'before-090.db');
    const a = chain(traceId(1), 'svc:a', [['b', 'GET /x'], ['c', 'GET /y']], 1000);
    const b = chain(traceId(1), 'agent:z', [['b', 'GET /x']], 1002, { identityKind: 'agent', displayName: 'Zed' });
    const c = chain(traceId(2), 'svc:a', [['b', 'GET /z']], 6000);
    const summaries = [
      { traceId: traceId(1), startMs: 1000, endMs: 1010, spans: 4, services: ['a', 'b'] },
      { traceId: traceId(2), startMs: 6000, endMs: 6005, spans: 2, services: ['a'] },
    ];
    // The rows as the store wrote them before 090 (calls in their JSON form, which it still writes for odd calls).
    const db = new Database(path);
    applyMigrations(db, (await loadMigrations()).filter((m) => m.version < 90));
    const textId = (text: string): number => {
      db.prepare('INSERT OR IGNORE INTO strings (text) VALUES (?)').run(text);
      return db.prepare('SELECT id FROM strings WHERE text = ?').pluck().get(text) as number;
    };
    const insertChain = db.prepare('INSERT INTO chains (trace_id, identity, kind, display_name, start_ms, end_ms, calls, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)');
    for (const x of [a, b, c]) {
      insertChain.run(traceIdToBytes(x.traceId), textId(x.identity), textId(x.identityKind), x.displayName ? textId(x.displayName) : null, x.startMs, x.endMs, encodeCalls(x.calls, x.startMs));
    }
    const insertTrace = db.prepare('INSERT INTO traces (trace_id, start_ms, end_ms, spans, services) VALUES (?, ?, ?, ?, ?)');
    for (const x of summaries) insertTrace.run(traceIdToBytes(x.traceId), x.startMs, x.endMs, x.spans, JSON.stringify(x.services));
    const insertIdentity = db.prepare('INSERT INTO identities (id, kind, display_name, first_seen_ms, last_seen_ms, calls, chains) VALUES (?, ?, ?, ?, ?, ?, ?)');
    insertIdentity.run('svc:a', 'workload', null, 1000, 6001, 3, 2);
    insertIdentity.run('agent:z', 'agent', 'Zed', 1002, 1003, 1, 1);
    db.close();

    const store = await openStore({ path });
    cleanups.push(() => store.close());
    expect(store.traceChains(traceId(1))).toEqual([a, b]);
    expect(store.traceSummary(traceId(1))).toEqual(summaries[0]);
    expect(store.recentChains('svc:a', 10)).toEqual([c, a]);

    // Later writes of the same traces are read after the old rows (chains in time order, summaries merged).
    const d = chain(traceId(1), 'svc:a', [['d', 'GET /w']], 1001);
    const e = chain(traceId(3), 'svc:a', [['b', 'GET /x']], 6000);
    store.writeChains([d, e], [{ traceId: traceId(1), startMs: 990, endMs: 1020, spans: 1, services: ['c', 'a'] }]);
    expect(store.traceChains(traceId(1))).toEqual([a, d, b]);
    expect(store.traceSummary(traceId(1))).toEqual({ traceId: traceId(1), startMs: 990, endMs: 1020, spans: 5, services: ['a', 'b', 'c'] });
    // Of equal ends the later written first.
    expect(store.recentChains('svc:a', 10)).toEqual([e, c, d, a]);

    // A late part replaces old and new rows of its trace alike.
    const merged = chain(traceId(1), 'svc:a', [['b', 'GET /x'], ['c', 'GET /y'], ['d', 'GET /w']], 1000);
    expect(store.replaceTraceChains(traceId(1), [merged, b])).toEqual({ chains: 2, calls: 4, rejected: 0 });
    expect(store.traceChains(traceId(1))).toEqual([merged, b]);
    expect(store.traceSummary(traceId(1))?.spans).toBe(5);
    expect(store.getIdentity('svc:a')).toMatchObject({ calls: 5, chains: 3 });
    expect(store.recentChains('svc:a', 10)).toEqual([e, c, merged]);

    // Retention takes both generations.
    let pruned = { chains: 0, traces: 0 };
    for (let i = 0; i < 3; i++) {
      const step = store.pruneStep(5000, 10);
      pruned = { chains: pruned.chains + step.chains, traces: pruned.traces + step.traces };
    }
    expect(pruned).toEqual({ chains: 2, traces: 2 });
    expect(store.traceChains(traceId(1))).toEqual([]);
    expect(store.traceSummary(traceId(1))).toBeUndefined();
    expect(store.traceChains(traceId(2))).toEqual([c]);
    expect(store.traceSummary(traceId(2))).toEqual(summaries[1]);
    expect(store.traceChains(traceId(3))).toEqual([e]);
  });

  it('finds the chains written once retention emptied a table migrated to trace parts (their seq again within the rows before 090)', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'emptied.db');
    const db = new Database(path);
    applyMigrations(db, (await loadMigrations()).filter((m) => m.version < 90));
    const kind = db.prepare("INSERT INTO strings (text) VALUES ('workload')").run().lastInsertRowid;
    const identity = db.prepare("INSERT INTO strings (text) VALUES ('svc:a')").run().lastInsertRowid;
    const insertChain = db.prepare('INSERT INTO chains (trace_id, identity, kind, display_name, start_ms, end_ms, calls, received_ms) VALUES (?, ?, ?, NULL, ?, ?, ?, NULL)');
    for (let i = 1; i <= 3; i++) {
      const old = chain(traceId(i), 'svc:a', [['b', 'GET /x']], 1000 * i);
      insertChain.run(traceIdToBytes(old.traceId), identity, kind, old.startMs, old.endMs, encodeCalls(old.calls, old.startMs));
    }
    db.prepare('INSERT INTO traces (trace_id, start_ms, end_ms, spans, services) VALUES (?, 1000, 1001, 1, ?)').run(traceIdToBytes(traceId(1)), '["a"]');
    db.close();

    const store = await openStore({ path });
    cleanups.push(() => store.close());
    expect(store.pruneStep(10_000, 100)).toMatchObject({ chains: 3, traces: 1 });
    expect(store.db.prepare('SELECT count(*) AS n FROM chains').get()).toEqual({ n: 0 });
    // The emptied table hands out seq 1 and 2 again: rows the partial index of 090 covers.
    const x1 = chain(traceId(9), 'svc:a', [['b', 'GET /x']], 20_000);
    const x2 = chain(traceId(9), 'svc:a', [['c', 'GET /y']], 20_001);
    store.writeChains([x1, x2], [{ traceId: traceId(9), startMs: 20_000, endMs: 20_005, spans: 2, services: ['a'] }]);
    expect(store.db.prepare('SELECT max(seq) AS n FROM chains').get()).toEqual({ n: 2 });
    expect(store.traceChains(traceId(9))).toEqual([x1, x2]);
    expect(store.traceSummary(traceId(9))).toEqual({ traceId: traceId(9), startMs: 20_000, endMs: 20_005, spans: 2, services: ['a'] });
    const merged = chain(traceId(9), 'svc:a', [['b', 'GET /x'], ['c', 'GET /y']], 20_000);
    store.replaceTraceChains(traceId(9), [merged]);
    expect(store.traceChains(traceId(9))).toEqual([merged]);
    expect(store.recentChains('svc:a', 10)).toEqual([merged]);
  });

  it('keeps data across reopen and migrations are idempotent', async () => {
    const { store, path } = await fresh();
    store.writeChains([chain(traceId(1), 'svc:a', [['b', 'op']])]);
    const version = store.schemaVersion();
    store.close();
    store.close(); // twice is safe

    const again = await openStore({ path });
    cleanups.push(() => again.close());
    expect(again.schemaVersion()).toBe(version);
    expect(again.getIdentity('svc:a')?.calls).toBe(1);
    expect(again.traceChains(traceId(1))).toHaveLength(1);
    const rows = again.db.prepare('SELECT count(*) AS n FROM schema_version').get() as { n: number };
    expect(rows.n).toBe((await loadMigrations()).length);
  });

  it('applies a migration dropped into the folder, once', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const dir = join(t.dir, 'migrations');
    mkdirSync(dir);
    // The store's own migrations (they import '../migration.js' only as a type, so they load
    // from anywhere), then a new one dropped in as its own file.
    copyFileSync(join(MIGRATIONS_DIR, '001-chains.ts'), join(dir, '001-chains.ts'));
    copyFileSync(join(MIGRATIONS_DIR, '005-traces.ts'), join(dir, '005-traces.ts'));
    copyFileSync(join(MIGRATIONS_DIR, '030-strings.ts'), join(dir, '030-strings.ts'));
    copyFileSync(join(MIGRATIONS_DIR, '031-numbered-chains.ts'), join(dir, '031-numbered-chains.ts'));
    copyFileSync(join(MIGRATIONS_DIR, '045-chain-received.ts'), join(dir, '045-chain-received.ts'));
    copyFileSync(join(MIGRATIONS_DIR, '090-trace-parts.ts'), join(dir, '090-trace-parts.ts'));
    copyFileSync(join(MIGRATIONS_DIR, '095-staged-trace-keys.ts'), join(dir, '095-staged-trace-keys.ts'));
    copyFileSync(join(MIGRATIONS_DIR, '096-chain-keys.ts'), join(dir, '096-chain-keys.ts'));
    copyFileSync(join(MIGRATIONS_DIR, '097-recent-trace-keys-in-memory.ts'), join(dir, '097-recent-trace-keys-in-memory.ts'));
    writeFileSync(join(dir, '900-notes.ts'), "export default { description: 'notes', up: 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)' };\n");
    const path = join(t.dir, 'db.sqlite');
    const s1 = await openStore({ path, migrationsDir: dir });
    expect(s1.schemaVersion()).toBe(900);
    s1.db.prepare('INSERT INTO notes (body) VALUES (?)').run('kept');
    s1.close();
    const s2 = await openStore({ path, migrationsDir: dir });
    cleanups.push(() => s2.close());
    expect(s2.db.prepare('SELECT body FROM notes').all()).toEqual([{ body: 'kept' }]);

    writeFileSync(join(dir, '900-clash.ts'), "export default { description: 'clash', up: '' };\n");
    await expect(loadMigrations(dir)).rejects.toThrow(/share version 900/);
  });

  it('rolls back a failing migration and leaves the database usable', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const db = new Database(join(t.dir, 'x.db'));
    cleanups.push(() => db.close());
    const bad = [{ version: 1, file: '001-bad.ts', description: 'bad', up: 'CREATE TABLE a (x); SELECT * FROM missing_table;' }];
    expect(() => applyMigrations(db, bad)).toThrow(/missing_table/);
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'a'").get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM schema_version').get()).toEqual({ n: 0 });
  });

  it('records trace summaries, merges late parts, and prunes them with the chains', async () => {
    const { store } = await fresh();
    const t1 = traceId(7);
    const t2 = traceId(8);
    store.writeChains([], [
      { traceId: t1, startMs: 1000, endMs: 1200, spans: 1, services: ['web'] },
      { traceId: 'not-a-trace-id', startMs: 0, endMs: 0, spans: 3, services: [] },
    ]);
    store.writeChains([chain(t2, 'svc:a', [['b', 'GET /x']], 9000)], [
      { traceId: t1, startMs: 900, endMs: 1500, spans: 2, services: ['web', 'db'] },
      { traceId: t2, startMs: 9000, endMs: 9100, spans: 4, services: ['a', 'b'] },
    ]);
    expect(store.traceSummary(t1.toUpperCase())).toEqual({ traceId: t1, startMs: 900, endMs: 1500, spans: 3, services: ['web', 'db'] });
    expect(store.traceSummary(traceId(9))).toBeUndefined();
    expect(store.traceSummary('zz')).toBeUndefined();
    expect(store.pruneStep(5000, 100)).toEqual({ chains: 0, traces: 2 });
    expect(store.traceSummary(t1)).toBeUndefined();
    expect(store.traceSummary(t2)?.spans).toBe(4);
  });

  it('finds a trace\'s parts by id before and after its keys are merged, drops a replaced part\'s key and sweeps those retention left', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    // A merge every 5 keys, so that the traces below sit in both key tables and move between them.
    // A sweep of the keys retention leaves behind once there is one.
    const store = await openStore({ path: join(t.dir, 'keys.db'), traceKeysMergeAt: 5, keySweepMin: 1 });
    cleanups.push(() => store.close());
    const keyCounts = () => store.db.prepare('SELECT (SELECT count(*) FROM trace_keys) AS merged, (SELECT count(*) FROM trace_keys_recent) AS recent').get();
    const summary = (n: number, endMs: number) => ({ traceId: traceId(n), startMs: endMs - 10, endMs, spans: 1, services: ['web'] });
    for (let n = 1; n <= 12; n++) store.writeChains([chain(traceId(n), 'svc:a', [['b', `GET /${n}`]], 1000 * n)], [summary(n, 1000 * n + 1)]);
    // Twelve parts: ten keys merged (two merges of five), two recent.
    expect(keyCounts()).toEqual({ merged: 10, recent: 2 });
    for (let n = 1; n <= 12; n++) {
      expect(store.traceChains(traceId(n)).map((c) => c.calls[0]!.operation)).toEqual([`GET /${n}`]);
      expect(store.traceSummary(traceId(n))?.endMs).toBe(1000 * n + 1);
    }
    // A later part of a merged trace and of a recent one: both parts of each are found.
    store.writeChains([chain(traceId(3), 'svc:c', [['d', 'GET /late']], 3500)], [summary(3, 3600)]);
    store.writeChains([chain(traceId(12), 'svc:c', [['d', 'GET /late']], 12500)], [summary(12, 12600)]);
    for (const n of [3, 12]) expect(store.traceChains(traceId(n)).map((c) => c.calls[0]!.operation)).toEqual([`GET /${n}`, 'GET /late']);
    // A replaced trace drops its chain parts' keys with them (its seqs may be handed out again).
    store.replaceTraceChains(traceId(12), [chain(traceId(12), 'svc:a', [['b', 'GET /12'], ['d', 'GET /late']], 12000)]);
    const parts = () => Number(store.db.prepare('SELECT count(*) FROM trace_parts').pluck().get());
    const keys = () => Number(store.db.prepare('SELECT (SELECT count(*) FROM trace_keys) + (SELECT count(*) FROM trace_keys_recent)').pluck().get());
    expect(keys()).toBe(parts());
    store.writeChains([chain(traceId(13), 'svc:a', [['b', 'GET /13']], 13000)], [summary(13, 13001)]);
    expect(store.traceChains(traceId(13)).map((c) => c.calls[0]!.operation)).toEqual(['GET /13']);
    expect(store.traceChains(traceId(12)).flatMap((c) => c.calls.map((x) => x.operation))).toEqual(['GET /12', 'GET /late']);
    // Retention leaves the keys of the parts it deletes for a sweep, which starts once they are at
    // least half the parts' seq span.
    let step = store.pruneStep(7000, 100);
    expect(step.traces).toBeGreaterThan(0);
    for (const n of [1, 2, 4, 5, 6]) expect(store.traceSummary(traceId(n))).toBeUndefined();
    expect(store.traceSummary(traceId(9))?.endMs).toBe(9001);
    while (step.more) step = store.pruneStep(7000, 1);
    expect(keys()).toBe(parts());
    // Emptied by retention, the table hands its seqs out again: no key left names them.
    store.pruneStep(100_000, 1_000);
    expect(parts()).toBe(0);
    expect(keys()).toBe(0);
    store.writeChains([chain(traceId(20), 'svc:a', [['b', 'GET /20']], 20000)], [summary(20, 20001)]);
    for (let n = 1; n <= 13; n++) {
      expect(store.traceChains(traceId(n))).toEqual([]);
      expect(store.traceSummary(traceId(n))).toBeUndefined();
    }
    expect(store.traceChains(traceId(20))).toHaveLength(1);
  });

  it('keeps the recent trace keys out of the file and reads them back from the parts when it opens again', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'recent.db');
    const summary = (n: number, endMs: number) => ({ traceId: traceId(n), startMs: endMs - 10, endMs, spans: 1, services: ['web'] });
    const first = await openStore({ path, traceKeysMergeAt: 4 });
    for (let n = 1; n <= 6; n++) first.writeChains([chain(traceId(n), 'svc:a', [['b', `GET /${n}`]], 1000 * n)], [summary(n, 1000 * n + 1)]);
    // Four parts merged into the file, two keyed in memory only.
    expect(first.db.prepare("SELECT count(*) FROM main.sqlite_master WHERE name LIKE 'trace_keys_recent%'").pluck().get()).toBe(0);
    expect(first.db.prepare('SELECT (SELECT count(*) FROM trace_keys) AS merged, (SELECT seq FROM trace_keys_upto) AS upto').get()).toEqual({ merged: 4, upto: 4 });
    // Right after that merge the newest trace is replaced by one without chains: its chain part
    // goes, the newest seq falls back within the merged range, and the part written next takes
    // that seq. Its key must still be read back after a restart.
    first.writeChains([chain(traceId(7), 'svc:a', [['b', 'GET /7']], 7000)], [summary(7, 7001)]);
    first.writeChains([chain(traceId(8), 'svc:a', [['b', 'GET /8']], 8000)]);
    expect(first.db.prepare('SELECT seq FROM trace_keys_upto').pluck().get()).toBe(8);
    first.replaceTraceChains(traceId(8), []);
    first.writeChains([chain(traceId(9), 'svc:a', [['b', 'GET /9']], 9000)], [summary(9, 9001)]);
    first.close();
    const again = await openStore({ path, traceKeysMergeAt: 4 });
    cleanups.push(() => again.close());
    for (const n of [1, 4, 5, 6, 7, 9]) {
      expect(again.traceChains(traceId(n)).map((c) => c.calls[0]!.operation)).toEqual([`GET /${n}`]);
      expect(again.traceSummary(traceId(n))?.endMs).toBe(1000 * n + 1);
    }
    expect(again.traceChains(traceId(8))).toEqual([]);
    // A late part of a trace keyed in memory before the restart joins it.
    again.writeChains([chain(traceId(6), 'svc:c', [['d', 'GET /late']], 6500)], [summary(6, 6600)]);
    expect(again.traceChains(traceId(6)).map((c) => c.calls[0]!.operation)).toEqual(['GET /6', 'GET /late']);
  });

  it('merges the file\'s recent trace keys of a database written before they moved to memory (097)', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'old.db');
    const old = await openStore({ path });
    for (let n = 1; n <= 10; n++) old.writeChains([chain(traceId(n), 'svc:a', [['b', `GET /${n}`]], 1000 * n)], [{ traceId: traceId(n), startMs: 1000 * n, endMs: 1000 * n + 1, spans: 1, services: ['a'] }]);
    // The file as 096 left it: keys of parts 1-6 merged, 7-10 in the file's recent table.
    old.db.exec(`DELETE FROM trace_keys; INSERT INTO trace_keys SELECT trace_id, seq FROM trace_parts WHERE seq <= 6; DROP TABLE trace_keys_upto;
      CREATE TABLE main.trace_keys_recent (trace_id BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (trace_id, seq)) WITHOUT ROWID;
      INSERT INTO main.trace_keys_recent SELECT trace_id, seq FROM trace_parts WHERE seq > 6;
      CREATE INDEX main.trace_keys_recent_by_seq ON trace_keys_recent (seq); CREATE INDEX trace_keys_by_seq ON trace_keys (seq);
      DROP TABLE key_sweeps; DELETE FROM schema_version WHERE version = 97`);
    old.close();
    const store = await openStore({ path });
    cleanups.push(() => store.close());
    expect(store.db.prepare("SELECT name FROM main.sqlite_master WHERE name LIKE 'trace_keys%' ORDER BY name").pluck().all()).toEqual(['trace_keys', 'trace_keys_upto']);
    expect(store.db.prepare('SELECT (SELECT count(*) FROM trace_keys) AS merged, (SELECT seq FROM trace_keys_upto) AS upto').get()).toEqual({ merged: 10, upto: 10 });
    for (let n = 1; n <= 10; n++) expect(store.traceChains(traceId(n)).map((c) => c.calls[0]!.operation)).toEqual([`GET /${n}`]);
  });

  it('moves the keys of a database written before the staged trace keys (095) into them', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'old.db');
    const old = await openStore({ path });
    for (let n = 1; n <= 30; n++) old.writeChains([chain(traceId(n), 'svc:a', [['b', `GET /${n}`]], 1000 * n)], [{ traceId: traceId(n), startMs: 1000 * n, endMs: 1000 * n + 1, spans: 1, services: ['a'] }]);
    // The file as 091 left it: the parts' index on trace_parts, no key tables.
    old.db.exec(`DROP TABLE trace_keys; DROP TABLE trace_keys_recent; CREATE INDEX trace_parts_by_trace ON trace_parts (trace_id);
      DELETE FROM schema_version WHERE version = 95`);
    old.close();
    const store = await openStore({ path });
    cleanups.push(() => store.close());
    expect(store.schemaVersion()).toBeGreaterThanOrEqual(95);
    expect(store.db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'trace_parts_by_trace'").pluck().get()).toBe(0);
    expect(store.db.prepare('SELECT count(*) FROM trace_keys').pluck().get()).toBe(30);
    for (const n of [1, 17, 30]) {
      expect(store.traceChains(traceId(n)).map((c) => c.calls[0]!.operation)).toEqual([`GET /${n}`]);
      expect(store.traceSummary(traceId(n))?.endMs).toBe(1000 * n + 1);
    }
  });

  it('finds an identity\'s chains before and after their keys are merged, past the keys retention left, and sweeps those', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    // A merge once 5 chains wait past the keyed ones: the chains below sit on both sides and move.
    const store = await openStore({ path: join(t.dir, 'chain-keys.db'), chainKeysMergeAt: 5, keySweepMin: 1 });
    cleanups.push(() => store.close());
    const keyed = () => store.db.prepare('SELECT (SELECT count(*) FROM chain_keys) AS keys, (SELECT seq FROM chain_keys_upto) AS upto').get() as { keys: number; upto: number };
    // 23 chains of three identities, ends out of write order (a late chain may end before keyed ones).
    const written: Chain[] = [];
    for (let n = 1; n <= 23; n++) {
      const c = chain(traceId(n), `svc:${'abc'[n % 3]}`, [['db', `GET /${n}`]], 1000 * ((n * 7) % 23) + 10 * n);
      store.writeChains([c]);
      written.push(c);
    }
    // Merges after the 5th, 10th, 15th and 20th chain: 20 keyed, 3 past them.
    expect(keyed()).toEqual({ keys: 20, upto: 20 });
    // The expectation: newest end first, the later written first among equal ends (seq order).
    const expected = (identity: string, limit: number, since = -Infinity, until = Infinity) =>
      written
        .map((c, i) => ({ c, i }))
        .filter(({ c }) => c.identity === identity && c.endMs >= since && c.endMs < until)
        .sort((x, y) => y.c.endMs - x.c.endMs || y.i - x.i)
        .slice(0, limit)
        .map(({ c }) => c.calls[0]!.operation);
    const ops = (chains: Chain[]) => chains.map((c) => c.calls[0]!.operation);
    const check = () => {
      for (const identity of ['svc:a', 'svc:b', 'svc:c']) {
        for (const limit of [1, 2, 3, 100]) expect(ops(store.recentChains(identity, limit))).toEqual(expected(identity, limit));
        expect(ops(store.recentChains(identity, 100, 5000, 15000))).toEqual(expected(identity, 100, 5000, 15000));
        expect(ops(store.recentChains(identity, 2, 5000, 15000))).toEqual(expected(identity, 2, 5000, 15000));
      }
    };
    check();
    // A trace replaced on each side: its keyed chain's key goes, its new chain is past the keys.
    for (const n of [4, 22]) {
      const again = chain(traceId(n), 'svc:c', [['db', `GET /${n} again`]], 30_000 + n);
      store.replaceTraceChains(traceId(n), [again]);
      written[n - 1] = again;
    }
    // 19 keys left after the first; the second's new chain is the 5th past the keys (21, 23, 24,
    // 25; 22 was replaced): a merge.
    expect(keyed()).toEqual({ keys: 23, upto: 25 });
    check();
    // Retention leaves the keys of the chains it deletes; reads skip them. Ends are out of order, so
    // it deletes chains behind younger ones at the front, and their keys wait for those to go too.
    let step = store.pruneStep(20_000, 1_000);
    expect(step.chains).toBeGreaterThan(0);
    written.splice(0, written.length, ...written.filter((c) => c.endMs >= 20_000));
    check();
    while (step.more) step = store.pruneStep(20_000, 1);
    const count = (sql: string) => Number(store.db.prepare(sql).pluck().get());
    // The sweep took the keys below the oldest chain, and each keyed chain still has its key.
    expect(count('SELECT count(*) FROM chain_keys WHERE seq < (SELECT min(seq) FROM chains)')).toBe(0);
    expect(count('SELECT count(*) FROM chains c JOIN chain_keys k ON k.seq = c.seq AND k.identity = c.identity AND k.end_ms = c.end_ms')).toBe(
      count('SELECT count(*) FROM chains WHERE seq <= (SELECT seq FROM chain_keys_upto)'),
    );
    check();
  });

  it('reads a chain once when it takes the seq of one whose key retention left behind, and not under another identity\'s old key', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const store = await openStore({ path: join(t.dir, 'left.db'), chainKeysMergeAt: 3 });
    cleanups.push(() => store.close());
    // A young chain at the front, two old ones behind it: all three keyed.
    store.writeChains([chain(traceId(1), 'svc:a', [['db', 'GET /young']], 50_000)]);
    store.writeChains([chain(traceId(2), 'svc:a', [['db', 'GET /old']], 2000)]);
    store.writeChains([chain(traceId(3), 'svc:a', [['db', 'GET /older']], 1000)]);
    expect(store.db.prepare('SELECT count(*) FROM chain_keys').pluck().get()).toBe(3);
    // Retention deletes the two old ones, the newest seqs, and leaves their keys.
    expect(store.pruneStep(10_000, 100).chains).toBe(2);
    expect(store.db.prepare('SELECT count(*) FROM chain_keys').pluck().get()).toBe(3);
    expect(store.recentChains('svc:a', 10).map((c) => c.calls[0]!.operation)).toEqual(['GET /young']);
    // The next chain takes seq 2 again, with the identity and end its old key names.
    store.writeChains([chain(traceId(4), 'svc:a', [['db', 'GET /again']], 2000)]);
    expect(store.recentChains('svc:a', 10).map((c) => c.calls[0]!.operation)).toEqual(['GET /young', 'GET /again']);
    // Another identity's chains take seq 3 (whose old key names svc:a) and 4, and a merge keys them:
    // svc:a's old key now names a chain that is not its own.
    store.writeChains([chain(traceId(5), 'svc:b', [['db', 'GET /b']], 3000), chain(traceId(6), 'svc:b', [['db', 'GET /b2']], 4000)]);
    expect(store.db.prepare('SELECT seq FROM chain_keys_upto').pluck().get()).toBe(4);
    expect(store.recentChains('svc:a', 10).map((c) => c.calls[0]!.operation)).toEqual(['GET /young', 'GET /again']);
    expect(store.recentChains('svc:b', 10).map((c) => c.calls[0]!.operation)).toEqual(['GET /b2', 'GET /b']);
  });

  it('keeps a new chain that takes the seq of a deleted keyed one', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const store = await openStore({ path: join(t.dir, 'reuse.db'), chainKeysMergeAt: 3 });
    cleanups.push(() => store.close());
    for (let n = 1; n <= 3; n++) store.writeChains([chain(traceId(n), 'svc:a', [['db', `GET /${n}`]], 1000 * n)]);
    // All three are keyed and none is past them; replacing the newest deletes the largest seq, so
    // its new chain takes that seq again: it must be found though no key names it.
    const upto = () => Number(store.db.prepare('SELECT seq FROM chain_keys_upto').pluck().get());
    expect(upto()).toBe(3);
    store.replaceTraceChains(traceId(3), [chain(traceId(3), 'svc:a', [['db', 'GET /3 again']], 3000)]);
    expect(store.recentChains('svc:a', 10).map((c) => c.calls[0]!.operation)).toEqual(['GET /3 again', 'GET /2', 'GET /1']);
    // Emptied by retention, the table hands out seqs from 1 again: they are past the keys.
    store.pruneStep(100_000, 1_000);
    expect(upto()).toBe(0);
    store.writeChains([chain(traceId(9), 'svc:a', [['db', 'GET /9']], 200_000)]);
    expect(store.recentChains('svc:a', 10).map((c) => c.calls[0]!.operation)).toEqual(['GET /9']);
  });

  it('moves the identity keys of a database written before the chain keys (096) into them', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'old.db');
    const old = await openStore({ path });
    for (let n = 1; n <= 30; n++) old.writeChains([chain(traceId(n), `svc:${n % 2 ? 'odd' : 'even'}`, [['b', `GET /${n}`]], 1000 * n)]);
    // The file as 095 left it: the identity index on chains, no key tables.
    old.db.exec(`DROP TABLE chain_keys; DROP TABLE chain_keys_upto; CREATE INDEX chains_by_identity_id_end ON chains (identity, end_ms);
      DELETE FROM schema_version WHERE version = 96`);
    old.close();
    const store = await openStore({ path, chainKeysMergeAt: 4 });
    cleanups.push(() => store.close());
    expect(store.db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'chains_by_identity_id_end'").pluck().get()).toBe(0);
    expect(store.db.prepare('SELECT count(*) AS keys, max(seq) AS newest FROM chain_keys').get()).toEqual({ keys: 30, newest: 30 });
    store.writeChains([chain(traceId(31), 'svc:odd', [['b', 'GET /31']], 31_000)]);
    expect(store.recentChains('svc:odd', 3).map((c) => c.calls[0]!.operation)).toEqual(['GET /31', 'GET /29', 'GET /27']);
    expect(store.recentChains('svc:even', 100)).toHaveLength(15);
  });

  it('prunes chains by event time and reports size', async () => {
    const { store } = await fresh();
    store.writeChains([chain(traceId(1), 'svc:a', [['b', 'op']], 1000), chain(traceId(2), 'svc:a', [['b', 'op']], 9000)]);
    expect(store.newestEventMs()).toBe(9001);
    expect(store.pruneStep(5000, 100)).toEqual({ chains: 1, traces: 0 });
    expect(store.traceChains(traceId(1))).toEqual([]);
    expect(store.traceChains(traceId(2))).toHaveLength(1);
    expect(store.sizeBytes()).toBeGreaterThan(0);
  });
});
