import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeTracesRequestJson } from '@conduct/proto';
import { createPipeline, type ChainBatch, type TraceIngest, type TraceSummary } from '@conduct/processor';
import { createDetection, createDetectionAnalyser, type Detection, type LearningConfig } from '../detect/index.js';
import { createJournal } from '../journal/index.js';
import { openSqliteBackend, type BatchUnit, type SqliteBackend } from '../store/index.js';
import { chain, tempDir, traceId } from '../store/testdata/fixtures.js';
import { createEngine, type Engine } from './index.js';

// Batches that wait together are stored in one write (Engine.consumeMany): what is stored, learned
// and alerted must be what consuming them one by one gives, and a journaled request must not be
// settled before the write that stores its traces has returned.

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

const HOUR = 3_600_000;
const LEARNING: LearningConfig = { minCalls: 1_000, period: 24 * HOUR, forgetAfter: 30 * 24 * HOUR };
const T0 = 1_700_000_000_000;
/** Any chain of `svc:intruder` calling this operation raises a policy alert, learning or not. */
const POLICIES = [{ match: 'svc:intruder', deniedOperations: ['DELETE /admin/*'] }];

interface Side {
  s: SqliteBackend;
  engine: Engine;
  detection: Detection;
  /** Each store write's unit, in order. */
  writes: BatchUnit[];
  dir: string;
}

/** A real SQLite file, detection and engine; `fail` makes every write fail after it recorded it. */
async function side(options: { dir?: string; fail?: () => boolean } = {}): Promise<Side> {
  let dir = options.dir;
  if (!dir) {
    const t = tempDir('conduct-together-');
    cleanups.push(t.cleanup);
    dir = t.dir;
  }
  const s = await openSqliteBackend({ path: join(dir, 'db.sqlite') });
  cleanups.push(() => void s.close());
  const detection = await createDetection({ state: s.detection, learning: LEARNING, policies: POLICIES, traceUrl: 'http://t/{traceId}' });
  const writes: BatchUnit[] = [];
  const chainWriter = {
    ...s.chainWriter,
    accepts: s.chainWriter.accepts.bind(s.chainWriter),
    commitBatch: async (unit: BatchUnit) => {
      writes.push(unit);
      const written = await s.chainWriter.commitBatch(unit);
      if (options.fail?.()) throw new Error('died after the commit');
      return written;
    },
  };
  const engine = createEngine({ store: { chainReader: s.chainReader, chainWriter }, registry: new Registry(), analysers: [createDetectionAnalyser(detection)] });
  return { s, engine, detection, writes, dir };
}

const summaryOf = (id: string, startMs: number, spans: number, late?: TraceSummary['late']): TraceSummary => ({
  traceId: id,
  startMs,
  endMs: startMs + 10,
  spans,
  services: ['a'],
  ...(late ? { late } : {}),
});

/**
 * Three batches; the second's chains started before the first's (batches come in completion
 * order, not start order), and both hold a denied call of `svc:intruder`: the alert is raised on
 * the chain analysed first, and repeated by the other.
 */
function batches(): ChainBatch[] {
  const batch = (n: number, startMs: number): ChainBatch => {
    const chains = [
      chain(traceId(n), 'svc:worker', [['api', 'GET /items'], ['db', 'SELECT items']], startMs),
      chain(traceId(n + 1), 'svc:intruder', [['api', 'DELETE /admin/users']], startMs + 2),
      chain(traceId(n + 2), `svc:new-${n}`, [['api', 'GET /stock']], startMs + 1),
    ];
    return { chains, traceSummaries: chains.map((c) => summaryOf(c.traceId, c.startMs, 2)), traces: 3, spans: 6 };
  };
  return [batch(10, T0 + 60_000), batch(20, T0), batch(30, T0 + 120_000)];
}

/** What an operator sees of a side: stored chains, identity counts, learned baselines, alerts. */
async function outcome(x: Side) {
  const ids = ['svc:worker', 'svc:intruder', 'svc:new-10', 'svc:new-20', 'svc:new-30'];
  const chains = [];
  for (let n = 10; n <= 32; n++) for (const c of await x.s.chainReader.traceChains(traceId(n))) chains.push({ ...c, receivedMs: 0 });
  const alerts = (await x.detection.listAlerts({})).map((a) => ({ identity: a.identity, traceId: a.traceId, count: a.count, spanIds: a.spanIds, findings: a.findings.length }));
  return {
    chains,
    identities: await Promise.all(ids.map(async (id) => ({ ...(await x.s.identities.getIdentity(id)), lastSeen: undefined, firstSeen: undefined }))),
    baselines: ids.map((id) => x.detection.baseline(id)),
    alerts,
  };
}

describe('batches stored together', () => {
  it('stores batches that wait together in one write, with what consuming them one by one stores, learns and alerts', async () => {
    const made = batches();
    const one = await side();
    for (const b of structuredClone(made)) await one.engine.consume(b);
    const together = await side();
    expect(await together.engine.consumeMany(structuredClone(made))).toEqual([undefined, undefined, undefined]);

    expect(one.writes).toHaveLength(3);
    expect(together.writes).toHaveLength(1);
    expect(together.writes[0]!.chains).toHaveLength(9);
    expect(together.writes[0]!.checkpoint?.baselines?.length).toBeGreaterThan(0);
    expect(together.engine.stats()).toMatchObject({ batches: 3, spans: 18, chains: 9, writes: 1 });
    // The alert is raised on the intruder's chain of the first batch (analysed first one by one),
    // though the second batch's started earlier: each batch is ordered by itself.
    const raised = await outcome(together);
    expect(raised.alerts).toEqual([expect.objectContaining({ identity: 'svc:intruder', traceId: traceId(11), count: 3 })]);
    expect(raised).toEqual(await outcome(one));
  });

  it('stores a batch with a later part of a stored trace, and one taught nothing new, in writes of their own, in order', async () => {
    const [b1, b2, b3] = batches();
    // A later part of b1's worker trace: it must find the first part stored (written before it is read).
    const first = b1!.chains[0]!;
    const part = chain(first.traceId, 'svc:worker', [['cache', 'GET /warm']], first.startMs + 5);
    const late: ChainBatch = { chains: [part], traceSummaries: [summaryOf(first.traceId, part.startMs, 2, 'joins')], traces: 1, spans: 2 };
    const feed = () => [structuredClone(b1!), structuredClone(late), structuredClone(b3!), structuredClone(b2!)];
    const one = await side();
    for (const b of feed()) await one.engine.consume(b);
    const together = await side();
    expect(await together.engine.consumeMany(feed())).toEqual([undefined, undefined, undefined, undefined]);
    // b1 alone (the late part after it may not share its write), the late part alone, then b3 with the last.
    expect(together.writes.map((w) => w.chains?.length ?? w.replaced?.length)).toEqual([3, 0, 1, 6]);
    expect(together.engine.stats()).toMatchObject({ batches: 4, lateMerges: 1, writes: 3 });
    const merged = await together.s.chainReader.traceChains(first.traceId);
    expect(merged[0]!.calls.map((c) => c.operation)).toEqual(['GET /items', 'SELECT items', 'GET /warm']);
    expect(await outcome(together)).toEqual(await outcome(one));
  });

  it('fails every batch of a write that fails, and stores none of them', async () => {
    const failing = await side({ fail: () => true });
    const out = await failing.engine.consumeMany(batches());
    expect(out.map((f) => (f?.err as Error | undefined)?.message)).toEqual(['died after the commit', 'died after the commit', 'died after the commit']);
    expect(failing.engine.stats()).toMatchObject({ batches: 0, writes: 0 });
  });
});

/** A request of `count` traces from `first` on: a client span of `deployer` and the server span of `api` it called. */
function request(first: number, count: number): Buffer {
  const hex = (n: number, bytes: number) => n.toString(16).padStart(bytes * 2, '0');
  const ns = (ms: number) => String(BigInt(T0 + ms) * 1_000_000n);
  const ids = Array.from({ length: count }, (_, i) => first + i);
  const spans = (server: boolean) =>
    ids.map((t) => ({
      traceId: hex(t, 16),
      spanId: hex(t * 2 + (server ? 1 : 0), 8),
      ...(server ? { parentSpanId: hex(t * 2, 8) } : {}),
      name: server ? 'GET /items/{id}' : 'GET',
      kind: server ? 2 : 3,
      startTimeUnixNano: ns(t),
      endTimeUnixNano: ns(t + 1),
      attributes: [
        { key: 'enduser.id', value: { stringValue: `spiffe://prod/sa/u${t % 3}` } },
        { key: 'http.request.method', value: { stringValue: 'GET' } },
        { key: server ? 'http.route' : 'url.full', value: { stringValue: server ? '/items/{id}' : `http://api/items/${t}` } },
      ],
    }));
  const resource = (name: string) => ({ attributes: [{ key: 'service.name', value: { stringValue: name } }] });
  return Buffer.from(
    JSON.stringify({
      resourceSpans: [
        { resource: resource('deployer'), scopeSpans: [{ spans: spans(false) }] },
        { resource: resource('api'), scopeSpans: [{ spans: spans(true) }] },
      ],
    }),
  );
}

/** One process: SQLite, detection, engine, journal and an in-process pipeline holding traces until flushed. */
async function startProcess(dir: string, fail?: () => boolean) {
  const x = await side({ dir, ...(fail ? { fail } : {}) });
  const registry = new Registry();
  const journal = createJournal({ dir: join(dir, 'db.sqlite.journal'), registry });
  const pipeline = createPipeline({
    stitching: { idleMs: HOUR, latenessMs: HOUR, maxPendingSpans: 100_000 },
    consumer: journal.consumer(x.engine),
    onBatch: journal.onBatch,
    registry,
    idleTimer: false,
  });
  const ingest: TraceIngest = journal.ingest(pipeline);
  return { ...x, journal, pipeline, ingest };
}

/** 2,500 traces in five requests: a flush completes them into three batches, which wait together. */
async function send(p: Awaited<ReturnType<typeof startProcess>>) {
  for (let r = 0; r < 5; r++) {
    const body = request(1 + r * 500, 500);
    expect(await p.ingest.accept(decodeTracesRequestJson(body, { keep: p.pipeline.keep }), { format: 'json', body })).toEqual({ ok: true });
  }
}

describe('batches stored together, with the journal', () => {
  it('settles no request before the write that stores its traces returns', async () => {
    const t = tempDir('conduct-together-');
    cleanups.push(t.cleanup);
    const entriesAtWrite: number[] = [];
    let p: Awaited<ReturnType<typeof startProcess>> | undefined;
    p = await startProcess(t.dir, () => {
      // Asked once the write has committed, before it returns: every request is still open.
      entriesAtWrite.push(p!.journal.stats().entries);
      return false;
    });
    await send(p);
    expect(p.journal.stats().entries).toBe(5);
    await p.pipeline.flush();
    expect(p.pipeline.stats().batches).toBe(3);
    expect(p.writes).toHaveLength(1);
    expect(entriesAtWrite).toEqual([5]);
    expect(p.journal.stats().entries).toBe(0);
    expect((await p.s.identities.getIdentity('spiffe://prod/sa/u0'))?.chains).toBe(833);
    await p.pipeline.stop();
    await p.journal.stop();
  });

  it('replays the requests of a write that committed when the process died before settling them, and stores their traces once', async () => {
    const t = tempDir('conduct-together-');
    cleanups.push(t.cleanup);
    const first = await startProcess(t.dir, () => true);
    await send(first);
    await first.pipeline.flush();
    // The write committed (all three batches in it) and the process "died" before settling.
    expect(first.writes).toHaveLength(1);
    expect((await first.s.identities.getIdentity('spiffe://prod/sa/u0'))?.chains).toBe(833);
    expect(first.journal.stats().entries).toBe(5);
    first.s.store.close();

    const second = await startProcess(t.dir);
    expect(await second.journal.replay(second.pipeline)).toEqual({ requests: 5, spans: 5_000 });
    await second.pipeline.flush();
    // Every replayed trace was found stored whole: none is stored, learned or counted twice.
    expect(second.engine.stats()).toMatchObject({ replayDuplicates: 2_500, chains: 0 });
    expect((await second.s.identities.getIdentity('spiffe://prod/sa/u0'))?.chains).toBe(833);
    expect(second.journal.stats().entries).toBe(0);
    await second.pipeline.stop();
    await second.journal.stop();
  });
});
