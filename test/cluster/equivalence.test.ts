/**
 * Issue 15: one logical conduct over several processes. The same traffic goes through one
 * conduct on SQLite and through three `conduct serve` processes on one embedded PostgreSQL, split
 * by trace id as the Collector's load-balancing exporter splits it; the cluster must raise the same
 * alerts (identity, detector, trace), count the same calls per identity, and raise nothing twice:
 * - with every instance up;
 * - with the owner of an attacked identity killed (SIGKILL) in the middle of the attack traffic
 *   and started again on its directory (its journal replays what it had acknowledged);
 * - with PostgreSQL stopped in the middle of the traffic and started again;
 * - with the owner of an attacked identity hung (SIGSTOP) past `cluster.leaseTimeout` while its
 *   checkpoint is in flight, then continued (SIGCONT): its partitions move, the stale checkpoint is
 *   refused by the epoch fence, and a flush meanwhile answers within its bound, naming the hung
 *   instance, or succeeds once its partitions moved.
 * The alerts announced to each instance's JSON-lines sink are counted too: each alert is announced
 * once for each count it reaches, by one instance.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Client as PgClient } from 'pg';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf, startEmbeddedPostgres, type EmbeddedPostgres } from '@conduct/backend';
import { ensureBuilt } from '../reliability/support/child.js';
import {
  getJson,
  metric,
  outcome,
  postJson,
  restartMember,
  settled,
  startMember,
  startSingle,
  stopMember,
  waitFor,
  type ClusterView,
  type Member,
  type Outcome,
} from './support.js';
import { attackPhase, learningPhase, LEARNING_YAML, principal, routeOf, sendSplit, type TrafficRequest } from './traffic.js';

const CLUSTER_YAML = `${LEARNING_YAML}cluster: { leaseTimeout: 3s }
alerts: { sinks: [{ type: jsonl, path: ALERTS_PATH }] }
`;

const httpOf = (m: Member) => `http://${m.proc.http}`;

/** Every announced alert event of the members' sinks: alert id and count, by event. */
function announced(members: readonly Member[]): string[] {
  const lines: string[] = [];
  for (const m of members) {
    const path = join(m.dir, 'alerts.jsonl');
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line) continue;
      const a = JSON.parse(line) as { event: string; id: string; count: number; status: string };
      lines.push(`${a.event} ${a.id} ${a.count} ${a.status}`);
    }
  }
  return lines;
}

describe('a cluster of three gives the alerts of one conduct', () => {
  let pg: EmbeddedPostgres;
  let reference: Outcome;
  const learning = learningPhase();
  const attack = attackPhase();
  const running: Member[] = [];

  const startCluster = async (url: string, n = 3): Promise<Member[]> => {
    const members = await Promise.all(
      Array.from({ length: n }, async () => {
        const m = await startMember(url, CLUSTER_YAML.replace('ALERTS_PATH', '"SELF/alerts.jsonl"'), undefined);
        return m;
      }),
    );
    running.push(...members);
    await waitFor('leases settled', () => getJson<ClusterView>(members[0]!.proc.api, '/api/v1/cluster').then((r) => r.body), (v) => settled(v, n));
    return members;
  };

  beforeAll(async () => {
    ensureBuilt();
    pg = await startEmbeddedPostgres();
    const single = await startSingle(LEARNING_YAML);
    running.push(single);
    await sendSplit(learning, [httpOf(single)]);
    expect((await postJson(single.proc.api, '/api/v1/flush')).status).toBe(200);
    await sendSplit(attack, [httpOf(single)]);
    reference = await outcome(single.proc.api);
    await stopMember(single);
  }, 240_000);

  afterAll(async () => {
    for (const m of running) m.proc.child.kill('SIGKILL');
    await Promise.all(running.map((m) => m.proc.exited));
    await pg?.destroy();
  });

  it('the reference raises the attack alerts and nothing on the others', () => {
    const identities = new Set(reference.alerts.map((a) => a.split(' ')[0]));
    for (const i of [0, 1, 2, 3]) expect(identities.has(principal(i))).toBe(true);
    for (let i = 4; i < 12; i++) expect(identities.has(principal(i))).toBe(false);
    expect(reference.alertRows).toBe(reference.alerts.length);
  });

  it('three instances, traffic split by trace id: same alerts, same calls, nothing twice', async () => {
    const members = await startCluster(await pg.createDatabase());
    const https = members.map(httpOf);
    await sendSplit(learning, https);
    expect((await postJson(members[1]!.proc.api, '/api/v1/flush')).status).toBe(200);
    await sendSplit(attack, https);
    const got = await outcome(members[2]!.proc.api);
    expect(got).toEqual(reference);
    // Every instance answers for the whole cluster.
    expect(await outcome(members[0]!.proc.api)).toEqual(reference);
    const events = announced(members);
    expect(events.length).toBe(new Set(events).size);
    expect(new Set(events.filter((e) => e.startsWith('alert ')).map((e) => e.split(' ')[1])).size).toBe(reference.alerts.length);
    await Promise.all(members.map(stopMember));
  }, 300_000);

  it('the owner of an attacked identity killed with SIGKILL mid-stream and started again: same alerts, nothing twice', async () => {
    const members = await startCluster(await pg.createDatabase());
    const https = members.map(httpOf);
    await sendSplit(learning, https);
    expect((await postJson(members[0]!.proc.api, '/api/v1/flush')).status).toBe(200);
    // The owner of the new-peer identity's partition.
    const view = (await getJson<ClusterView>(members[0]!.proc.api, '/api/v1/cluster')).body;
    const p = partitionOf(principal(0), view.partitions);
    const ownerId = view.instances.find((i) => i.partitions.includes(p))!;
    const victim = members.find((m) => m.proc.api.endsWith(ownerId.endpoint))!;
    const others = members.filter((m) => m !== victim);
    // Half the attack traffic, then the owner dies with traces acknowledged and not yet stitched.
    const half = Math.floor(attack.length / 2);
    await sendSplit(attack.slice(0, half), https);
    victim.proc.child.kill('SIGKILL');
    await victim.proc.exited;
    // The others take its partitions; the rest of the traffic goes to them meanwhile, except its own share.
    await waitFor('the survivors owning every partition', () => getJson<ClusterView>(others[0]!.proc.api, '/api/v1/cluster').then((r) => r.body), (v) => settled(v, 2));
    const rest = attack.slice(half);
    const forVictim = rest.filter((r: TrafficRequest) => routeOf(r.traceId, 3) === members.indexOf(victim));
    await sendSplit(rest.filter((r) => !forVictim.includes(r)), https.map((h, i) => (members[i] === victim ? https[(i + 1) % 3]! : h)));
    const back = await restartMember(victim);
    running.push(back);
    const again = members.map((m) => (m === victim ? back : m));
    await waitFor('three instances again', () => getJson<ClusterView>(back.proc.api, '/api/v1/cluster').then((r) => r.body), (v) => settled(v, 3));
    await sendSplit(forVictim, [httpOf(back)]);
    const got = await outcome(back.proc.api);
    expect(got).toEqual(reference);
    const events = announced(again);
    expect(events.length).toBe(new Set(events).size);
    await Promise.all(again.map(stopMember));
  }, 300_000);

  it('the owner of an attacked identity hung with SIGSTOP, its checkpoint in flight, past cluster.leaseTimeout: fenced, its partitions move, same alerts, nothing twice', async () => {
    const url = await pg.createDatabase();
    const members = await startCluster(url);
    const https = members.map(httpOf);
    await sendSplit(learning, https);
    expect((await postJson(members[0]!.proc.api, '/api/v1/flush')).status).toBe(200);
    const view = (await getJson<ClusterView>(members[0]!.proc.api, '/api/v1/cluster')).body;
    const p = partitionOf(principal(0), view.partitions);
    const victimId = view.instances.find((i) => i.partitions.includes(p))!.id;
    const victim = members.find((m) => m.proc.api.endsWith(view.instances.find((i) => i.id === victimId)!.endpoint))!;
    const others = members.filter((m) => m !== victim);
    const db = new PgClient({ connectionString: url });
    const watch = new PgClient({ connectionString: url });
    await Promise.all([db.connect(), watch.connect()]);
    try {
      // The test holds the partition's row: the owner's next checkpoint on it waits, in flight.
      await db.query('BEGIN');
      const [held] = (await db.query<{ epoch: number }>('SELECT epoch::int AS epoch FROM cluster_partitions WHERE partition = $1 FOR UPDATE', [p])).rows;
      await sendSplit(attack, https);
      await waitFor(
        'the owner\'s checkpoint waiting on the partition row',
        async () => (await watch.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'SELECT partition, epoch FROM cluster_partitions%'`)).rows[0].n as number,
        (n) => n > 0,
      );
      // The owner hangs; the row is let go, so its commit goes through the epoch check and holds the row.
      victim.proc.child.kill('SIGSTOP');
      await waitFor('the owner stopped', async () => readFileSync(`/proc/${victim.proc.child.pid}/stat`, 'utf8').split(') ')[1]![0], (state) => state === 'T');
      await db.query('COMMIT');

      // A flush meanwhile answers within its bound and names what is not caught up: the hung instance.
      const early = await postJson<{ error?: string }>(others[0]!.proc.api, '/api/v1/flush?timeout=1s');
      expect(early.status).toBe(503);
      expect(early.body.error).toContain(victimId);

      // The others fence it out after cluster.leaseTimeout, end its stuck transaction and take its partitions.
      const moved = await waitFor(
        'the hung owner\'s partitions taken by the others',
        () => getJson<ClusterView>(others[0]!.proc.api, '/api/v1/cluster').then((r) => r.body),
        (v) => settled(v, 2) && !v.instances.some((i) => i.id === victimId),
      );
      const [now] = (await watch.query<{ epoch: number; owner: string }>('SELECT epoch::int AS epoch, owner FROM cluster_partitions WHERE partition = $1', [p])).rows;
      expect(now!.epoch).toBeGreaterThan(held!.epoch);
      expect(moved.instances.map((i) => i.id)).toContain(now!.owner);
      // With the partitions moved, a flush on a survivor succeeds without the hung instance.
      expect((await postJson(others[1]!.proc.api, '/api/v1/flush')).status).toBe(200);

      // It goes on: its in-flight checkpoint is refused by the fence, it gives the partition up and joins again.
      victim.proc.child.kill('SIGCONT');
      await waitFor('the stale checkpoint fenced', () => metric(victim.proc.api, 'conduct_cluster_fenced_commits_total'), (n) => n >= 1);
      expect(await metric(victim.proc.api, 'conduct_cluster_lease_moves_total', { kind: 'lost' })).toBeGreaterThanOrEqual(1);
      await waitFor('three instances again', () => getJson<ClusterView>(victim.proc.api, '/api/v1/cluster').then((r) => r.body), (v) => settled(v, 3));
      const got = await outcome(victim.proc.api);
      expect(got).toEqual(reference);
      const events = announced(members);
      expect(events.length).toBe(new Set(events).size);
      expect(new Set(events.filter((e) => e.startsWith('alert ')).map((e) => e.split(' ')[1])).size).toBe(reference.alerts.length);
    } finally {
      await Promise.all([db.end(), watch.end()]);
    }
    await Promise.all(members.map(stopMember));
  }, 300_000);

  it('PostgreSQL stopped mid-stream and started again: every instance recovers, same alerts', async () => {
    const members = await startCluster(await pg.createDatabase());
    const https = members.map(httpOf);
    await sendSplit(learning, https);
    expect((await postJson(members[2]!.proc.api, '/api/v1/flush')).status).toBe(200);
    const half = Math.floor(attack.length / 2);
    await sendSplit(attack.slice(0, half), https);
    await pg.stop();
    // While it is down the instances refuse new traffic (retryable) and the sender retries.
    const sending = sendSplit(attack.slice(half), https);
    await waitFor('an instance not ready while PostgreSQL is down', () => getJson(members[0]!.proc.api, '/readyz'), (r) => r.status === 503);
    await pg.start();
    await sending;
    for (const m of members) await waitFor('ready again', () => getJson(m.proc.api, '/readyz'), (r) => r.status === 200);
    const got = await outcome(members[1]!.proc.api);
    expect(got).toEqual(reference);
    const events = announced(members);
    expect(events.length).toBe(new Set(events).size);
    await Promise.all(members.map(stopMember));
  }, 300_000);
});
