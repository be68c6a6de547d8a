/**
 * Issue 8, retention: chains older than `storage.retention` (event time, relative to the newest
 * stored chain) are deleted in small batches that yield the event loop, so writes go on during a
 * sweep; learned baseline entries follow `learning.forgetAfter`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Call, Chain } from '@conduct/processor';
import { createDetection, openSqliteBackend, startRetention, type SqliteBackend, type Store } from '@conduct/backend';
import { counterSum } from './support/harness.js';

const T0 = Date.UTC(2026, 3, 1, 0, 0, 0);
const DAY = 24 * 3_600_000;
let seq = 0;
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

function chain(identity: string, startMs: number, operation = 'GET /x'): Chain {
  const traceId = hex(++seq, 32);
  const call: Call = {
    traceId,
    spanId: hex(++seq, 16),
    parentSpanId: '',
    identity,
    identityKind: 'workload',
    service: 'svc',
    peer: 'api.internal',
    peerKind: 'service',
    external: false,
    operation,
    protocol: 'http',
    startMs,
    durationMs: 5,
    status: 'ok',
    name: operation,
    source: {},
  };
  return { traceId, identity, identityKind: 'workload', startMs, endMs: startMs + 5, calls: [call] };
}

let dir: string;
let backend: SqliteBackend;
/** The backend's synchronous SQLite store, for writes that interleave with a sweep and for counting rows. */
let store: Store;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conduct-retention-'));
  backend = await openSqliteBackend({ path: join(dir, 'conduct.db') });
  store = backend.store;
});
afterEach(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

const chainCount = () => (store.db.prepare('SELECT count(*) AS n FROM chains').get() as { n: number }).n;

describe('retention', () => {
  it('deletes chains past storage.retention in small batches while writes go on', async () => {
    // 5000 chains from 10 days ago, 500 from today.
    for (let i = 0; i < 5000; i += 500) store.writeChains(Array.from({ length: 500 }, (_, k) => chain('old', T0 + (i + k) * 1000)));
    const recent = Array.from({ length: 500 }, (_, k) => chain('new', T0 + 10 * DAY + k * 1000));
    store.writeChains(recent);
    // Trace summaries (every completed trace, with or without calls) age out with the chains.
    const summary = (traceId: string, at: number) => ({ traceId, startMs: at, endMs: at + 5, spans: 1, services: ['s'] });
    const oldTrace = 'a1'.repeat(16);
    const newTrace = 'b2'.repeat(16);
    store.writeChains([], [summary(oldTrace, T0), summary(newTrace, T0 + 10 * DAY)]);
    expect(chainCount()).toBe(5500);

    const registry = new Registry();
    const retention = startRetention({ store: backend, retentionMs: 7 * DAY, intervalMs: 3_600_000, batchRows: 100, maxBatchesPerSweep: 1000, registry });
    // Writes interleave with the sweep: the sweep yields between its batches.
    let interleaved = 0;
    const sweeping = retention.sweep();
    const writer = (async () => {
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setImmediate(r));
        store.writeChains([chain('new', T0 + 10 * DAY + 600_000 + i)]);
        interleaved++;
      }
    })();
    const deleted = await sweeping;
    const writtenDuringSweep = interleaved;
    await writer;
    await retention.stop();

    expect(deleted).toBe(5000);
    // 50 batches of 100, each followed by a yield: writes got in between them.
    expect(writtenDuringSweep).toBeGreaterThan(5);
    expect(interleaved).toBe(20);
    expect(chainCount()).toBe(520);
    expect(store.recentChains('old', 10)).toEqual([]);
    expect(store.traceChains(recent[0]!.traceId)).toHaveLength(1);
    expect(store.traceSummary(oldTrace)).toBeUndefined();
    expect(store.traceSummary(newTrace)?.spans).toBe(1);
    expect(counterSum(await registry.metrics(), 'conduct_retention_deleted_total')).toBe(5000);
  });

  it('a sweep does at most maxBatchesPerSweep batches; the next sweep continues', async () => {
    store.writeChains(Array.from({ length: 1000 }, (_, k) => chain('old', T0 + k)));
    store.writeChains([chain('new', T0 + 30 * DAY)]);
    // No catching up within the test: each sweep is one call.
    const retention = startRetention({ store: backend, retentionMs: DAY, intervalMs: 3_600_000, batchRows: 100, maxBatchesPerSweep: 3, catchUpMs: 3_600_000 });
    expect(await retention.sweep()).toBe(300);
    expect(await retention.sweep()).toBe(300);
    expect(chainCount()).toBe(401);
    await retention.stop();
  });

  it('a sweep that stopped with rows left is followed by the next soon, not after intervalMs, until none are left', async () => {
    store.writeChains(Array.from({ length: 1000 }, (_, k) => chain('old', T0 + k)));
    store.writeChains([chain('new', T0 + 30 * DAY)]);
    const registry = new Registry();
    const retention = startRetention({ store: backend, retentionMs: DAY, intervalMs: 3_600_000, batchRows: 100, maxBatchesPerSweep: 3, catchUpMs: 10, registry });
    expect(await retention.sweep()).toBe(300);
    // The rest goes in sweeps of its own, within the hour the interval would have waited.
    await vi.waitFor(() => expect(chainCount()).toBe(1), { timeout: 10_000, interval: 20 });
    expect(counterSum(await registry.metrics(), 'conduct_retention_deleted_total')).toBe(1000);
    await retention.stop();
  });

  it('learned baseline entries unseen for learning.forgetAfter age out', async () => {
    const detection = await createDetection({
      state: backend.detection,
      learning: { minCalls: 5, period: 3_600_000, forgetAfter: 7 * DAY },
      traceUrl: 'http://t/{traceId}',
    });
    await detection.analyse(Array.from({ length: 20 }, (_, i) => chain('svc:batch', T0 + i * 600_000, 'GET /old')));
    expect(detection.baseline('svc:batch')!.operations.map((o) => o.key)).toContain('GET /old');
    // Eight days later only the new operation is in use: the old one is forgotten.
    await detection.analyse(Array.from({ length: 3 }, (_, i) => chain('svc:batch', T0 + 8 * DAY + i * 600_000, 'GET /new')));
    const ops = detection.baseline('svc:batch')!.operations.map((o) => o.key);
    expect(ops).not.toContain('GET /old');
    const rows = store.db.prepare("SELECT key FROM baseline_entries WHERE identity = 'svc:batch' AND kind = 'operation'").all() as { key: string }[];
    expect(rows.map((r) => r.key)).not.toContain('GET /old');
  });
});
