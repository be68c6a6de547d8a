import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BaselineEntryRecord, StorageBackend } from '../contracts.js';
import { testBaseline } from '../conformance.js';
import { tempDir } from '../testdata/fixtures.js';
import { openSqliteBackend, type SqliteBackend } from './backend.js';
import { createSqliteDetectionState } from './detection-state.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

async function open(): Promise<StorageBackend> {
  const t = tempDir('conduct-detection-state-');
  const backend = await openSqliteBackend({ path: join(t.dir, 'conduct.db') });
  cleanups.push(t.cleanup);
  cleanups.push(() => void backend.close());
  return backend;
}

const entry = (kind: string, key: string, count: number): BaselineEntryRecord => ({ kind, key, count, firstMs: 1_000 + count, lastMs: 2_000 + count });

async function entriesOf(backend: StorageBackend): Promise<Map<string, BaselineEntryRecord[]>> {
  const out = new Map<string, BaselineEntryRecord[]>();
  await backend.detection.loadBaselines({
    baseline: (r) => out.set(r.identity, []),
    entry: (identity, e) => out.get(identity)!.push(e),
  });
  for (const list of out.values()) list.sort((x, y) => x.kind.localeCompare(y.kind) || x.key.localeCompare(y.key));
  return out;
}

const sorted = (list: BaselineEntryRecord[]) => [...list].sort((x, y) => x.kind.localeCompare(y.kind) || x.key.localeCompare(y.key));

describe('SQLite detection state: baseline entries written several rows to a statement', () => {
  it('stores every row of deltas of any size, the last values of a key written twice, and removals in order', async () => {
    const backend = await open();
    // 64 + 16 + 4 + 1 + 2 rows in one identity, 3 in another: every statement size and a rest.
    const a = Array.from({ length: 87 }, (_, i) => entry(i % 2 ? 'operation' : 'peer', `key-${i}`, i + 1));
    const b = [entry('peer', 'x', 1), entry('peer', 'y', 2), entry('shape', '["op"]', 3)];
    await backend.detection.checkpoint({
      baselines: [
        { baseline: testBaseline('svc:a'), entries: a, removed: [] },
        { baseline: testBaseline('svc:b'), entries: b, removed: [] },
      ],
    });
    let stored = await entriesOf(backend);
    expect(stored.get('svc:a')).toEqual(sorted(a));
    expect(stored.get('svc:b')).toEqual(sorted(b));

    // A later checkpoint: svc:b's row `x` is written and then removed by a second delta of it; a row
    // written twice keeps its last values; the rest of svc:a is untouched.
    await backend.detection.checkpoint({
      baselines: [
        { baseline: testBaseline('svc:b'), entries: [entry('peer', 'x', 10), entry('peer', 'y', 20), entry('peer', 'y', 21)], removed: [] },
        { baseline: testBaseline('svc:b'), entries: [entry('peer', 'z', 5)], removed: [{ kind: 'peer', key: 'x' }] },
        { baseline: testBaseline('svc:a'), entries: [entry('peer', 'key-0', 99)], removed: [{ kind: 'operation', key: 'key-1' }] },
      ],
    });
    stored = await entriesOf(backend);
    expect(stored.get('svc:b')).toEqual([entry('peer', 'y', 21), entry('peer', 'z', 5), entry('shape', '["op"]', 3)]);
    const expectedA = sorted([entry('peer', 'key-0', 99), ...a.filter((e) => e.key !== 'key-0' && e.key !== 'key-1')]);
    expect(stored.get('svc:a')).toEqual(expectedA);
  });

  it('carries nothing of a failed checkpoint into the next one', async () => {
    const backend = await open();
    const rows = Array.from({ length: 5 }, (_, i) => entry('peer', `p${i}`, i + 1));
    // The second delta's record cannot be bound (a symbol): the checkpoint fails and rolls back.
    const bad = { ...testBaseline('svc:bad'), kind: Symbol('not text') as unknown as string };
    await expect(
      backend.detection.checkpoint({
        baselines: [
          { baseline: testBaseline('svc:a'), entries: rows, removed: [] },
          { baseline: bad, entries: [], removed: [] },
        ],
      }),
    ).rejects.toThrow();
    await backend.detection.checkpoint({ baselines: [{ baseline: testBaseline('svc:c'), entries: [entry('peer', 'q', 1)], removed: [] }] });
    const stored = await entriesOf(backend);
    expect([...stored.keys()]).toEqual(['svc:c']);
    expect(stored.get('svc:c')).toEqual([entry('peer', 'q', 1)]);
  });
});

describe('SQLite detection state: entries keyed by number (migration 091)', () => {
  it('numbers an identity again after a rolled-back checkpoint gave it its number', async () => {
    const backend = (await open()) as SqliteBackend;
    const { db } = backend.store;
    const state = createSqliteDetectionState(db);
    // The first write of svc:new (and of a kind no migration coded) is rolled back with the caller's transaction.
    expect(() =>
      db.transaction(() => {
        state.applyCheckpoint({ baselines: [{ baseline: testBaseline('svc:new'), entries: [entry('brandNew', 'k', 1)], removed: [] }] });
        throw new Error('the batch failed after the checkpoint');
      })(),
    ).toThrow(/batch failed/);
    expect(await entriesOf(backend)).toEqual(new Map());
    await state.checkpoint({
      baselines: [
        { baseline: testBaseline('svc:other'), entries: [entry('peer', 'p', 2)], removed: [] },
        { baseline: testBaseline('svc:new'), entries: [entry('brandNew', 'k', 3), entry('peer', 'q', 4)], removed: [] },
      ],
    });
    const stored = await entriesOf(backend);
    expect(stored.get('svc:new')).toEqual([entry('brandNew', 'k', 3), entry('peer', 'q', 4)]);
    expect(stored.get('svc:other')).toEqual([entry('peer', 'p', 2)]);
  });
});

describe('SQLite detection state: held chains', () => {
  it('stores a held chain deflated, and still reads one a version before this stored as JSON text', async () => {
    const backend = (await open()) as SqliteBackend;
    const t = '0af7651916cd43dd8448eb211c80319c';
    const calls = Array.from({ length: 20 }, (_, i) => ({
      traceId: t, spanId: (0x200 + i).toString(16).padStart(16, '0'), parentSpanId: '', identity: 'ci:bot', identityKind: 'cicd', service: 'bot',
      peer: 'iam.amazonaws.com', peerKind: 'service', external: true, operation: `GET /roles/${i}`, protocol: 'http', startMs: 5_000 + i, durationMs: 1, status: 'ok', name: 'GET', source: {},
    }));
    const chain = { traceId: t, identity: 'ci:bot', identityKind: 'cicd', startMs: 5_000, endMs: 5_030, calls } as const;
    await backend.detection.checkpoint({ held: [{ identity: 'ci:bot', traceId: t, alertId: 'a1', chain: chain as never }] });
    const row = backend.store.db.prepare("SELECT typeof(chain) AS type, length(chain) AS bytes FROM held_chains WHERE alert_id = 'a1'").get() as { type: string; bytes: number };
    expect(row.type).toBe('blob');
    expect(row.bytes).toBeLessThan(Buffer.byteLength(JSON.stringify(chain)) / 4);
    expect((await backend.detection.heldByAlert('a1')).map((h) => h.chain)).toEqual([chain]);
    // A row as an earlier version wrote it: the chain's JSON as text.
    const old = { ...chain, traceId: '1af7651916cd43dd8448eb211c80319c' };
    backend.store.db.prepare('INSERT INTO held_chains (identity, trace_id, alert_id, start_ms, chain) VALUES (?, ?, ?, ?, ?)').run('ci:bot', old.traceId, 'a0', 4_000, JSON.stringify(old));
    expect((await backend.detection.heldByAlert('a0')).map((h) => h.chain)).toEqual([old]);
    expect(await backend.detection.isHeld('ci:bot', old.traceId)).toBe(true);
  });
});
