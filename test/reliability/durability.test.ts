/**
 * Issue 8, durability and graceful shutdown, with `conduct serve` as a child process:
 *
 * - kill -9 in the middle of ingest, restart, flush: every span conduct acknowledged is in the
 *   store (counted trace by trace), the learned baseline and the alerts raised before are intact;
 * - SIGTERM while traces are still pending: the process exits cleanly, the alerts those traces
 *   raise reach the alert sinks before it exits, and after a restart (no flush) everything sent
 *   before the signal is there.
 *
 * Also measures the ingest-rate cost of journaling, in process, both ways in the same run.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { Registry } from 'prom-client';
import { decodeTracesRequest, type TracesRequestData } from '@conduct/proto';
import { createCollectingConsumer, createPipeline, type TraceIngest } from '@conduct/processor';
import { createJournal } from '@conduct/backend';
import { listSegments, readSegment, segmentPath } from '../../backend/src/journal/log.js';
import { recordingHttp } from '../support/receivers.js';
import { api, ensureBuilt, sendOtlp, ServeProcesses, writeConfig, type ServeProcess } from './support/child.js';
import { counterSum } from './support/harness.js';
import { deployerTrace } from './support/otlp.js';
import { seededRandom } from './support/wire.js';

const T0_MS = Date.UTC(2026, 0, 10, 9, 0, 0);
const rand = seededRandom(8);
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** One trace of `ops.length` client spans by `identity`, starting at `atMs` (event time). */
const traceRequest = (identity: string, atMs: number, ops = ['GET /deployments/{id}', 'PATCH /deployments/{id}']) => deployerTrace(rand, identity, atMs, ops);

const send = (endpoint: string, body: Buffer) => sendOtlp(endpoint, body, agent);

/**
 * How many of `traceIds` the API knows (GET /api/v1/traces/{id} answers 200 with a chain), and
 * the `receivedMs` of each known trace's chains.
 */
async function countStored(p: ServeProcess, traceIds: string[]): Promise<{ stored: number; missing: string[]; receivedMs: Map<string, unknown[]> }> {
  const missing: string[] = [];
  const receivedMs = new Map<string, unknown[]>();
  for (let i = 0; i < traceIds.length; i += 16) {
    await Promise.all(
      traceIds.slice(i, i + 16).map(async (id) => {
        const res = await api<{ chains?: Array<{ receivedMs?: number }> }>(p, 'GET', `/api/v1/traces/${id}`);
        if (res.status !== 200 || !res.body.chains?.length) missing.push(id);
        else receivedMs.set(id, res.body.chains.map((c) => c.receivedMs));
      }),
    );
  }
  return { stored: traceIds.length - missing.length, missing, receivedMs };
}

/** When the journal of the conduct whose config is in `work` received each trace it holds (its records, read as the next start does). */
function journaledArrivals(work: string): Map<string, number> {
  const journalDir = join(work, 'conduct.db.journal');
  const arrivals = new Map<string, number>();
  for (const id of listSegments(journalDir)) {
    readSegment(segmentPath(journalDir, id), (r) => {
      if (r.type === 'request') for (const t of r.traces) arrivals.set(t, Math.max(arrivals.get(t) ?? 0, r.receivedMs));
    });
  }
  return arrivals;
}

let dir: string;
const conducts = new ServeProcesses();

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'conduct-durability-'));
}, 240_000);

afterAll(async () => {
  conducts.killAll();
  agent.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** Bytes in the segment files of the journal of the conduct whose config is in `work`. */
function journalBytes(work: string): number {
  const journalDir = join(work, 'conduct.db.journal');
  return readdirSync(journalDir).reduce((n, name) => n + statSync(join(journalDir, name)).size, 0);
}

const start = (configPath: string) => conducts.start(configPath);

describe('durability', () => {
  it('after kill -9 mid-ingest and a restart, every acknowledged span is stored; baselines and alerts survive', async () => {
    const work = mkdtempSync(join(dir, 'kill-'));
    // A long idle time keeps the traces of phase 2 pending (only in the journal) when the process dies.
    const config = writeConfig(work, `stitching: { idle: 60s }\nlearning: { minCalls: 20, period: 1m }\n`);
    let conduct = await start(config);

    // Phase 1: a baseline (30 deploys over 5 minutes of event time), then an alert (a new operation).
    for (let i = 0; i < 30; i++) expect(await send(conduct.http, traceRequest('deployer', T0_MS + i * 10_000).body)).toBe(200);
    expect((await api(conduct, 'POST', '/api/v1/flush')).status).toBe(200);
    expect(await send(conduct.http, traceRequest('deployer', T0_MS + 400_000, ['DELETE /clusters/{id}']).body)).toBe(200);
    expect((await api(conduct, 'POST', '/api/v1/flush')).status).toBe(200);
    const alertsBefore = (await api<{ alerts: Array<{ id: string; detector: string }> }>(conduct, 'GET', '/api/v1/alerts')).body.alerts;
    expect(alertsBefore.some((a) => a.detector === 'new-operation')).toBe(true);
    const identityBefore = await api<{ status?: string }>(conduct, 'GET', `/api/v1/identities/${encodeURIComponent('deployer')}`);
    expect(identityBefore.status).toBe(200);

    // Phase 2: 8 concurrent senders; kill -9 once 300 requests were acknowledged, mid-flight.
    const acked: string[] = [];
    let attempted = 0;
    let killed = false;
    let n = 0;
    const sender = async () => {
      while (!killed) {
        const t = traceRequest('deployer', T0_MS + 500_000 + n++);
        attempted++;
        const status = await send(conduct.http, t.body);
        if (status === 200) acked.push(t.traceId);
        if (acked.length >= 300 && !killed) {
          killed = true;
          conduct.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, sender));
    expect(await conduct.exited).toBe('SIGKILL');
    expect(acked.length).toBeGreaterThanOrEqual(300);

    // The journal holds what was acknowledged but not yet stored (at least the bodies of the
    // requests acknowledged since the last flush).
    expect(journalBytes(work)).toBeGreaterThan(300 * 100);
    // Each acknowledged trace is journaled with the time conduct received it, before the restart.
    const arrivals = journaledArrivals(work);
    expect(acked.filter((id) => !arrivals.has(id))).toEqual([]);
    const restartedAt = Date.now();

    // Restart on the same database, flush, count.
    conduct = await start(config);
    expect((await api(conduct, 'POST', '/api/v1/flush')).status).toBe(200);
    const { stored, missing, receivedMs } = await countStored(conduct, acked);
    expect(missing).toEqual([]);
    expect(stored).toBe(acked.length);
    // The replayed chains keep when conduct first received them, not the time of the replay.
    const wrong = acked.filter((id) => receivedMs.get(id)!.some((ms) => ms !== arrivals.get(id)));
    expect(wrong.map((id) => [id, receivedMs.get(id), arrivals.get(id)])).toEqual([]);
    expect(Math.max(...arrivals.values())).toBeLessThan(restartedAt);

    // The baseline and the alerts raised before the crash are intact.
    const alertsAfter = (await api<{ alerts: Array<{ id: string }> }>(conduct, 'GET', '/api/v1/alerts?limit=1000')).body.alerts;
    for (const a of alertsBefore) expect(alertsAfter.map((x) => x.id)).toContain(a.id);
    const identityAfter = await api<{ status?: string }>(conduct, 'GET', `/api/v1/identities/${encodeURIComponent('deployer')}`);
    expect(identityAfter.status).toBe(200);
    expect(identityAfter.body.status).toBe('enforcing');

    // Everything replayed was stored, so the journal is empty again.
    const metrics = String((await api(conduct, 'GET', '/metrics')).body);
    expect(counterSum(metrics, 'conduct_journal_replayed_total')).toBeGreaterThan(0);
    expect(counterSum(metrics, 'conduct_journal_entries')).toBe(0);

    conduct.child.kill('SIGTERM');
    expect(await conduct.exited).toBe(0);
  }, 180_000);

  it('on SIGTERM, pending traces are stored and analysed and their alerts delivered before exit; after a restart (no flush) all are there', async () => {
    const work = mkdtempSync(join(dir, 'term-'));
    // A webhook that answers slowly: its alerts are answered only if shutdown drains the sinks.
    const hook = await recordingHttp({ answerAfterMs: 200 });
    const delivered = () =>
      hook.answered.map((r) => JSON.parse(r.body.toString('utf8')) as { event: string; alert: { identity: string; detector: string; traceId: string } });
    // The policy fires from the first call, so the pending traces of worker-0 raise an alert
    // only when shutdown completes and analyses them.
    const config = writeConfig(
      work,
      `stitching: { idle: 60s }
policies: [{ match: "worker-0", deniedOperations: ["PATCH *"] }]
alerts: { sinks: [{ type: webhook, endpoint: "${hook.url}/hook" }] }
`,
    );
    let conduct = await start(config);
    const sent: string[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async (_, s) => {
        for (let i = 0; i < 50; i++) {
          const t = traceRequest(`worker-${s}`, T0_MS + s * 1000 + i);
          expect(await send(conduct.http, t.body)).toBe(200);
          sent.push(t.traceId);
        }
      }),
    );
    // Nothing is stored yet: the traces wait for their idle time.
    expect((await countStored(conduct, sent.slice(0, 5))).stored).toBe(0);

    expect(delivered()).toEqual([]);

    conduct.child.kill('SIGTERM');
    expect(await conduct.exited).toBe(0);
    // Everything stored: the journal's segments are deleted.
    expect(journalBytes(work)).toBe(0);
    const db = new Database(join(work, 'conduct.db'), { readonly: true });
    expect((db.prepare('SELECT count(DISTINCT trace_id) AS n FROM chains').get() as { n: number }).n).toBe(sent.length);
    db.close();
    // The sinks were drained before the process exited: the policy alert reached the webhook.
    const policy = delivered().filter((d) => d.event === 'alert' && d.alert.identity === 'worker-0' && d.alert.detector === 'policy');
    expect(policy.length, JSON.stringify(delivered().map((d) => [d.event, d.alert.identity, d.alert.detector]))).toBeGreaterThan(0);
    expect(sent).toContain(policy[0]!.alert.traceId);
    expect(delivered().some((d) => d.alert.identity !== 'worker-0')).toBe(false);
    await hook.close();

    conduct = await start(config);
    const { missing } = await countStored(conduct, sent);
    expect(missing).toEqual([]);
    conduct.child.kill('SIGTERM');
    expect(await conduct.exited).toBe(0);
  }, 120_000);
});

describe('cost of journaling', () => {
  /** Accepts `requests` through `ingest` with 32 in flight; returns spans per second. */
  async function rate(ingest: TraceIngest, requests: TracesRequestData[]): Promise<number> {
    const started = process.hrtime.bigint();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < requests.length) {
          const outcome = await ingest.accept(requests[next++]!);
          if (!outcome.ok) throw new Error(`refused: ${outcome.reason}`);
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return requests.reduce((n, r) => n + r.spanCount, 0) / seconds;
  }

  it('measures ingest with and without the journal in the same run', async () => {
    const make = () =>
      Array.from({ length: 1500 }, (_, i) => {
        const spans = Array.from({ length: 5 }, (_, k) => `GET /items/${k}`);
        return decodeTracesRequest(traceRequest(`bench-${i % 20}`, T0_MS + i, spans).body);
      });
    const stitching = { idleMs: 60_000, latenessMs: 3_600_000, maxPendingSpans: 1_000_000 };

    const runPlain = async () => {
      const plain = createPipeline({ stitching, consumer: createCollectingConsumer(), registry: new Registry(), idleTimer: false });
      const r = await rate(plain, make());
      await plain.stop();
      return r;
    };
    let round = 0;
    const runJournaled = async () => {
      const journalDir = join(dir, `bench-${round++}.journal`);
      const journal = createJournal({ dir: journalDir, registry: new Registry() });
      const journaled = createPipeline({ stitching, consumer: journal.consumer(createCollectingConsumer()), onBatch: journal.onBatch, registry: new Registry(), idleTimer: false });
      const r = await rate(journal.ingest(journaled), make());
      expect(journal.stats().entries).toBe(1500);
      await journaled.flush();
      // Every request settled and checkpointed once its traces were consumed.
      expect(journal.stats().entries).toBe(0);
      await journaled.stop();
      await journal.stop();
      expect(readdirSync(journalDir)).toEqual([]);
      return r;
    };
    // Alternate, after a warm-up round of each, and keep the best of each (the machine is shared).
    await runPlain();
    await runJournaled();
    let plainRate = 0;
    let journaledRate = 0;
    for (let i = 0; i < 3; i++) {
      plainRate = Math.max(plainRate, await runPlain());
      journaledRate = Math.max(journaledRate, await runJournaled());
    }

    process.stdout.write(
      `journal cost: ${Math.round(plainRate)} spans/s without, ${Math.round(journaledRate)} spans/s with (${Math.round((1 - journaledRate / plainRate) * 100)}% slower)\n`,
    );
    expect(journaledRate).toBeGreaterThan(0);
  });
});
