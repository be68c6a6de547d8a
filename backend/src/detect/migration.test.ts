import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import migration from '../store/sqlite/migrations/010-detection.js';
import { openSqliteBackend } from '../store/index.js';
import { createSqliteDetectionState } from '../store/sqlite/detection-state.js';
import { createDetection } from './detection.js';

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
