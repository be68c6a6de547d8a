import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Chain } from '@conduct/processor';
import { chain, traceId } from '../testdata/fixtures.js';
import { openPostgresBackend, type PostgresBackend } from './backend.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';

// Retention frees the numbered texts of deleted chains on PostgreSQL, while other instances on the
// same database hold those texts' ids in their memos (text-sweep.ts, numbered-texts.ts).
const HOUR = 3_600_000;
const T0 = 1_700_000_000_000;
const MIN_GROWTH = 50;

/** Chains of one period: identities, peers and operations new to it (id churn), and one shared identity. */
function periodChains(period: number, count = 120): Chain[] {
  return Array.from({ length: count }, (_, i) => {
    const at = T0 + period * HOUR + i * 1_000;
    const id = traceId(period * 10_000 + i + 1);
    if (i % 4 === 0) return chain(id, 'svc:stable', [['postgres', 'SELECT 1'], ['cache', 'GET /health']], at);
    return chain(id, `svc:churn-${period}-${i % 20}`, [[`peer-${period}-${i}`, `GET /p${period}/item/${i}`], ['cache', 'GET /health']], at);
  });
}

/** Retention steps until there is nothing more to do; `between` runs after the `at`-th step. */
async function pruneAll(b: PostgresBackend, beforeMs: number, between?: { at: number; run: () => Promise<void> }): Promise<number> {
  let texts = 0;
  let pending = between;
  for (let i = 0; ; i++) {
    const step = await b.retention.pruneStep(beforeMs, 40);
    texts += step.texts ?? 0;
    const done = step.chains === 0 && step.traces === 0 && !step.identities && !step.edges && !step.more;
    if (pending && (i === pending.at || done)) {
      await pending.run();
      pending = undefined;
      continue;
    }
    if (done) return texts;
  }
}

const operations = (chains: readonly Chain[]) => chains.map((c) => c.calls.map((x) => `${x.peer} ${x.operation}`));

describe('PostgreSQL: retention frees unreferenced texts', () => {
  let server: EmbeddedPostgres;
  const open: PostgresBackend[] = [];
  const clients: pg.Client[] = [];
  const backend = async (url: string, sweeps = true) => {
    const b = await openPostgresBackend({ url, ...(sweeps ? { textSweepMinGrowth: MIN_GROWTH } : {}) });
    open.push(b);
    return b;
  };
  const sql = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    clients.push(c);
    return async (text: string, values: unknown[] = []) => (await c.query(text, values)).rows as Array<Record<string, unknown>>;
  };
  beforeAll(async () => {
    server = await startEmbeddedPostgres();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.end();
    for (const b of open.splice(0)) await b.close();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('frees the texts of deleted chains in steps, keeps every text a stored chain refers to, and stays bounded under churn', async () => {
    const url = await server.createDatabase();
    const [a, b] = [await backend(url), await backend(url, false)];
    const q = await sql(url);
    const textRows: number[] = [];
    let freed = 0;
    for (let p = 0; p < 6; p++) {
      const chains = periodChains(p);
      const half = chains.length / 2;
      // Two instances write; one of them runs retention (keep one period), the other writes on meanwhile.
      await a.chainWriter.writeChains(chains.slice(0, half));
      freed += await pruneAll(a, T0 + p * HOUR, { at: 1, run: async () => void (await b.chainWriter.writeChains(chains.slice(half))) });
      textRows.push(Number((await q('SELECT count(*) AS n FROM strings'))[0]!.n));
      // What is kept reads back whole, on both instances and on one that memoed nothing.
      const fresh = await backend(url, false);
      for (const reader of [a, b, fresh]) {
        for (const c of [chains[1]!, chains.at(-1)!]) expect(operations(await reader.chainReader.traceChains(c.traceId))).toEqual(operations([c]));
        expect((await reader.chainReader.recentChains('svc:stable', { limit: 2 })).length).toBe(2);
      }
      if (p >= 2) {
        // Texts only chains of deleted periods used are gone.
        expect(await q("SELECT text FROM strings WHERE text LIKE $1 OR text LIKE $2", [`GET /p${p - 2}/%`, `svc:churn-${p - 2}-%`])).toEqual([]);
      }
    }
    expect(freed).toBeGreaterThan(3 * 100);
    // About one period or two of texts (a period has about 190), not six.
    expect(Math.max(...textRows.slice(2))).toBeLessThan(2 * 190 + MIN_GROWTH + 60);
    // Every text id a stored chain names exists.
    const dangling = await q(`SELECT count(*) AS n FROM chains c WHERE NOT EXISTS (SELECT 1 FROM strings s WHERE s.id = c.identity)
      OR NOT EXISTS (SELECT 1 FROM strings s WHERE s.id = c.kind)`);
    expect(Number(dangling[0]!.n)).toBe(0);
  });

  it('lets an instance write with text ids it memoed before another instance freed those texts, at any point of the sweep', async () => {
    const url = await server.createDatabase();
    const [sweeper, other] = [await backend(url), await backend(url, false)];
    const q = await sql(url);
    const memoed = (n: number, at: number) => chain(traceId(900_000 + n), 'svc:memo', [['peer-memo', 'GET /memo/{id}'], ['peer-memo-2', 'POST /memo']], at);
    // `other` writes the texts and keeps their ids; the chain that used them goes with retention.
    await other.chainWriter.writeChains([memoed(1, T0)]);
    const before = await q("SELECT id FROM strings WHERE text = 'GET /memo/{id}'");
    expect(before).toHaveLength(1);
    await sweeper.chainWriter.writeChains(periodChains(1));

    // 1. Written after the sweep deleted them: the ids are stale; the write looks them up again.
    await pruneAll(sweeper, T0 + HOUR);
    expect(await q("SELECT id FROM strings WHERE text = 'GET /memo/{id}'")).toEqual([]);
    const second = memoed(2, T0 + 2 * HOUR);
    await other.chainWriter.writeChains([second]);
    const fresh = await backend(url, false);
    for (const reader of [sweeper, other, fresh]) expect(operations(await reader.chainReader.traceChains(second.traceId))).toEqual(operations([second]));
    const again = await q("SELECT id FROM strings WHERE text = 'GET /memo/{id}'");
    expect(again).toHaveLength(1);
    expect(Number(again[0]!.id)).toBeGreaterThan(Number(before[0]!.id));

    // 2. Written while a sweep marks: the write of ids memoed before it started is refused once,
    // its texts looked up (marked) in the new generation, and the sweep keeps them.
    await sweeper.chainWriter.writeChains(periodChains(3));
    const third = memoed(3, T0 + 5 * HOUR);
    await pruneAll(sweeper, T0 + 4 * HOUR, { at: 1, run: async () => void (await other.chainWriter.writeChains([third])) });
    for (const reader of [sweeper, other, await backend(url, false)]) expect(operations(await reader.chainReader.traceChains(third.traceId))).toEqual(operations([third]));
    expect(await q("SELECT id FROM strings WHERE text = 'GET /memo/{id}'")).toEqual(again);

    // 3. A unit (chains with a checkpoint) of stale ids commits whole after the sweep.
    await other.chainWriter.writeChains([memoed(4, T0 + 5 * HOUR)]);
    await sweeper.chainWriter.writeChains(periodChains(7));
    await pruneAll(sweeper, T0 + 7 * HOUR);
    const fifth = memoed(5, T0 + 8 * HOUR);
    await other.chainWriter.commitBatch({ chains: [fifth], checkpoint: { released: [{ identity: 'svc:memo', traceId: fifth.traceId }] } });
    expect(operations(await (await backend(url, false)).chainReader.traceChains(fifth.traceId))).toEqual(operations([fifth]));
    const dangling = await q(`SELECT count(*) AS n FROM chains c WHERE NOT EXISTS (SELECT 1 FROM strings s WHERE s.id = c.identity)`);
    expect(Number(dangling[0]!.n)).toBe(0);
  });
});
