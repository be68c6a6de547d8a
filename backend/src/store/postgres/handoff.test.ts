import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterStore, HandOffItem } from '../contracts.js';
import { openPostgresBackend, type PostgresBackend } from './backend.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';

// The hand-off queues of a cluster (handoff.ts): items written in one statement for every
// partition of a batch, numbered per partition in commit order.
const PARTITIONS = 16;

describe('PostgreSQL: cluster hand-off', () => {
  let server: EmbeddedPostgres;
  let backends: PostgresBackend[];
  let cluster: ClusterStore;

  beforeAll(async () => {
    server = await startEmbeddedPostgres();
    const url = await server.createDatabase();
    backends = [await openPostgresBackend({ url }), await openPostgresBackend({ url })];
    cluster = backends[0]!.cluster!;
    await cluster.preparePartitions(PARTITIONS, () => 0);
  }, 120_000);

  afterAll(async () => {
    for (const b of backends ?? []) await b.close();
    await server?.destroy();
  });

  const items = (writer: string, batch: number, partitions: readonly number[]): HandOffItem[] =>
    partitions.map((partition, i) => ({ partition, kind: 'chains', body: { writer, batch, i } }));

  it('numbers each partition\'s items 1, 2, 3... in the order they were given, across batches and writers', async () => {
    // Batches from two instances at once, each over many partitions in a scrambled order, some
    // partitions several times in one batch: every writer locks the heads in one order, so none
    // waits for another in a cycle (a deadlock would fail a write here).
    const writes: Array<Promise<void>> = [];
    const sent = new Map<number, number>();
    for (let batch = 0; batch < 12; batch++) {
      for (const [w, b] of backends.entries()) {
        const parts = Array.from({ length: 24 }, (_, i) => (i * 7 + batch * 3 + w * 5) % PARTITIONS);
        for (const p of parts) sent.set(p, (sent.get(p) ?? 0) + 1);
        writes.push(b.cluster!.handOff(items(`w${w}`, batch, parts), `instance-${w}`));
      }
    }
    await Promise.all(writes);

    for (let p = 0; p < PARTITIONS; p++) {
      const got = await cluster.readHandOff(p, 0, 10_000);
      // Numbered without gaps or repeats, as many as were sent.
      expect(got.map((g) => g.seq)).toEqual(Array.from({ length: sent.get(p) ?? 0 }, (_, i) => i + 1));
      // Within one batch of one writer, the items keep the order they were given in.
      const byBatch = new Map<string, number[]>();
      for (const g of got) {
        const body = g.body as { writer: string; batch: number; i: number };
        const key = `${body.writer}/${body.batch}`;
        byBatch.set(key, [...(byBatch.get(key) ?? []), body.i]);
      }
      for (const order of byBatch.values()) expect(order).toEqual([...order].sort((a, b) => a - b));
    }
    const records = await cluster.partitions();
    for (const r of records) expect(r.head).toBe(sent.get(r.partition) ?? 0);
  });

  it('refuses a batch with a partition that has no head row, and writes none of it', async () => {
    const before = await cluster.partitions();
    await expect(cluster.handOff(items('w0', 99, [1, 2, PARTITIONS + 3]), 'instance-0')).rejects.toThrow(/unknown partition/);
    expect(await cluster.partitions()).toEqual(before);
    const tail = await cluster.readHandOff(1, before.find((r) => r.partition === 1)!.head, 10);
    expect(tail).toEqual([]);
  });
});
