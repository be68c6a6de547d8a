import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import migration from '../store/sqlite/migrations/010-detection.js';
import { openSqliteBackend, type BaselineDelta, type StorageBackend } from '../store/index.js';
import { createSqliteDetectionState } from '../store/sqlite/detection-state.js';
import { applyMigrations, loadMigrations } from '../store/sqlite/migrate.js';
import { tempDir } from '../store/testdata/fixtures.js';
import { createDetection } from './detection.js';
import { HOUR, MINUTE, T0, storefrontChains, training } from './testdata/chains.js';

describe('detection migration', () => {
  it('creates the tables', () => {
    const db = new Database(':memory:');
    db.exec(migration.up);
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(['alerts', 'baseline_entries', 'baseline_identities', 'finding_suppressions', 'held_chains']));
    db.close();
  });
});

describe('with the store', () => {
  it('runs on the detection state of the SQLite backend, whose migrations include 010', async () => {
    const backend = await openSqliteBackend({ path: ':memory:' });
    try {
      expect(await backend.schemaVersion()).toBeGreaterThanOrEqual(10);
      const d = await createDetection({ state: backend.detection, learning: { minCalls: 1, period: 0, forgetAfter: 0 }, traceUrl: '{traceId}' });
      expect(d.stats().identities).toBe(0);
      expect(await d.listAlerts()).toEqual([]);
    } finally {
      await backend.close();
    }
  });
});

describe('analyser adapter', () => {
  it('emits the alerts a batch raises', async () => {
    const { createDetectionAnalyser } = await import('./analyser.js');
    const backend = await openSqliteBackend({ path: ':memory:' });
    const d = await createDetection({
      state: backend.detection,
      learning: { minCalls: 1, period: 0, forgetAfter: 0 },
      policies: [{ match: 'svc:*', deniedOperations: ['DeleteBucket'] }],
      traceUrl: 'http://t/{traceId}',
    });
    const emitted: string[] = [];
    const a = createDetectionAnalyser(d);
    const call = {
      traceId: 'b'.repeat(32), spanId: '1'.repeat(16), parentSpanId: '', identity: 'svc:x', identityKind: 'workload',
      service: 'x', peer: 's3', peerKind: 'http' as const, external: false, operation: 'DeleteBucket', protocol: 'http',
      startMs: 1_000, durationMs: 1, status: 'ok' as const, name: 'DeleteBucket', source: {},
    };
    await a.analyse([{ traceId: call.traceId, identity: 'svc:x', identityKind: 'workload', startMs: 1_000, endMs: 1_001, calls: [call] }], {
      emit: (alert) => emitted.push(`${alert.detector}:${alert.links.trace}`),
    });
    expect(emitted).toEqual([`policy:http://t/${call.traceId}`]);
    await backend.close();
  });
});

describe('incidents migration (041)', () => {
  it('rewrites alerts stored before incidents as one-finding incidents the API reads back', async () => {
    const { default: incidents } = await import('../store/sqlite/migrations/041-incidents.js');
    const db = new Database(':memory:');
    db.exec(migration.up);
    const old = {
      id: 'a1', identity: 'svc:ci', identityKind: 'workload', detector: 'new-peer', severity: 'high', score: 83,
      title: 'svc:ci contacted a new peer: vault', explanation: 'Normally svc:ci contacts 2 peers.', traceId: 'c'.repeat(32),
      spanIds: ['1'.repeat(16)], eventTime: '2026-01-01T00:00:00.000Z', firstSeen: '2026-01-01T00:00:00.000Z',
      lastSeen: '2026-01-01T00:00:00.000Z', count: 3, status: 'open', techniques: ['T1021.007'], links: { trace: 'x' },
      evidence: { keys: ['peer:vault'], newPeers: ['vault'] },
    };
    db.prepare(`INSERT INTO alerts (id, identity, detector, severity, status, trace_id, event_ms, last_seen_ms, dedup_key, body)
      VALUES ('a1', 'svc:ci', 'new-peer', 'high', 'open', ?, 0, 0, 'k', ?)`).run(old.traceId, JSON.stringify(old));
    db.exec(incidents.up as string);
    const body = JSON.parse((db.prepare('SELECT body FROM alerts').get() as { body: string }).body);
    expect(body.detectors).toEqual(['new-peer']);
    expect(body.findings).toEqual([
      {
        detector: 'new-peer', severity: 'high', score: 83, title: old.title, explanation: old.explanation, spanIds: old.spanIds,
        techniques: ['T1021.007'], keys: ['peer:vault'], evidence: old.evidence,
      },
    ]);
    // Run twice: rows in the new form are left alone.
    db.exec(incidents.up as string);
    expect(JSON.parse((db.prepare('SELECT body FROM alerts').get() as { body: string }).body)).toEqual(body);
    const { default: groups } = await import('../store/sqlite/migrations/040-baseline-groups.js');
    (groups.up as (db: Database.Database) => void)(db);
    const d = await createDetection({ state: createSqliteDetectionState(db), learning: { minCalls: 1, period: 0, forgetAfter: 0 }, traceUrl: '{traceId}' });
    expect((await d.listAlerts({ detector: 'new-peer' })).map((a) => [a.id, a.count, a.findings.length])).toEqual([['a1', 3, 1]]);
    expect((await d.getAlert('a1'))!.attack).toEqual([{ id: 'T1021.007', name: 'Cloud Services', tactic: 'Lateral Movement' }]);
    db.close();
  });
});

describe('baseline entries keyed by number (091)', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  /** Every record and entry `loadBaselines` streams, in its order. */
  async function stream(backend: StorageBackend): Promise<unknown[]> {
    const out: unknown[] = [];
    await backend.detection.loadBaselines({ baseline: (r) => out.push(r), entry: (identity, e) => out.push([identity, e]) });
    return out;
  }

  /** Writes baseline deltas as the detection state did before 091: entries keyed by identity and kind text. */
  function writeOldShape(db: Database.Database, deltas: readonly BaselineDelta[]): void {
    const identity = db.prepare(`INSERT OR REPLACE INTO baseline_identities
      (identity, kind, display_name, grp, first_ms, last_ms, calls, enforcing_since_ms, compromised, dropped, last_sweep_ms, rate, recent_sources)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const entry = db.prepare('INSERT OR REPLACE INTO baseline_entries (identity, kind, key, count, first_ms, last_ms) VALUES (?, ?, ?, ?, ?, ?)');
    const remove = db.prepare('DELETE FROM baseline_entries WHERE identity = ? AND kind = ? AND key = ?');
    db.transaction(() => {
      for (const { baseline: b, entries, removed } of deltas) {
        identity.run(
          b.identity, b.kind, b.displayName ?? null, b.group, b.firstMs, b.lastMs, b.calls, b.enforcingSinceMs ?? null,
          b.compromised ? 1 : 0, b.dropped, b.lastSweepMs, JSON.stringify(b.rate), JSON.stringify(b.recentSources),
        );
        for (const e of entries) entry.run(b.identity, e.kind, e.key, e.count, e.firstMs, e.lastMs);
        for (const r of removed) remove.run(b.identity, r.kind, r.key);
      }
    })();
  }

  /** A detection over `backend` whose checkpoints' baseline deltas are also kept in `seen`. */
  const detectionOver = (backend: StorageBackend, seen: BaselineDelta[]) =>
    createDetection({
      state: { ...backend.detection, checkpoint: async (cp) => (seen.push(...structuredClone(cp.baselines ?? [])), backend.detection.checkpoint(cp)) },
      learning: { minCalls: 20, period: HOUR, forgetAfter: 7 * 24 * HOUR },
      traceUrl: '{traceId}',
    });

  it('reads a database written before it the same, in the same order, and learns on from it the same', async () => {
    const t = tempDir('conduct-migration-091-');
    cleanups.push(t.cleanup);
    const first = [...training('svc:ci/deployer', T0, 30, 3 * MINUTE), ...storefrontChains(T0, 30)];
    const later = [...training('svc:ci/deployer', T0 + 2 * HOUR, 10, 3 * MINUTE), ...storefrontChains(T0 + 2 * HOUR, 10)];

    // What a detection learns from `first`, as baseline deltas.
    const learned: BaselineDelta[] = [];
    const scratch = await openSqliteBackend({ path: join(t.dir, 'scratch.db') });
    await (await detectionOver(scratch, learned)).analyse(first);
    await scratch.close();
    expect(learned.reduce((n, d) => n + d.entries.length, 0)).toBeGreaterThan(100);

    // The same learned state in a database of schema 090 (the old entry table) and in a new one.
    const oldPath = join(t.dir, 'old.db');
    const old = new Database(oldPath);
    applyMigrations(old, (await loadMigrations()).filter((m) => m.version < 91));
    writeOldShape(old, learned);
    const oldOrder = old.prepare('SELECT * FROM baseline_entries').all() as Array<Record<string, unknown>>;
    old.close();
    const migrated = await openSqliteBackend({ path: oldPath });
    cleanups.push(() => migrated.close());
    const fresh = await openSqliteBackend({ path: join(t.dir, 'fresh.db') });
    cleanups.push(() => fresh.close());
    await fresh.detection.checkpoint({ baselines: learned });

    expect(await migrated.schemaVersion()).toBeGreaterThanOrEqual(91);
    const before = await stream(migrated);
    expect(before).toEqual(await stream(fresh));
    // Entries come in the old table's key order (identity, kind, key), as a restart read them before.
    expect(before.filter(Array.isArray).map(([identity, e]) => [identity, e.kind, e.key])).toEqual(
      oldOrder.map((r) => [r.identity, r.kind, r.key]),
    );
    // The old table's name still answers, as a view.
    expect(migrated.store.db.prepare('SELECT count(*) FROM baseline_entries').pluck().get()).toBe(oldOrder.length);

    // Both learn the same from the same later chains, and keep the same.
    const fromOld: BaselineDelta[] = [];
    const fromFresh: BaselineDelta[] = [];
    const a = await (await detectionOver(migrated, fromOld)).analyse(later);
    const b = await (await detectionOver(fresh, fromFresh)).analyse(later);
    expect(fromOld.length).toBeGreaterThan(0);
    expect(fromOld).toEqual(fromFresh);
    expect(a.alerts.map((x) => [x.identity, x.detector])).toEqual(b.alerts.map((x) => [x.identity, x.detector]));
    expect(await stream(migrated)).toEqual(await stream(fresh));
  });
});
