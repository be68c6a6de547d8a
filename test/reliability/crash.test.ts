/**
 * Issue 21, effectively-once processing under crashes: the real `conduct serve` (built dist) is
 * killed with SIGKILL at many points of the ingest, store, analyse and announce path, by the
 * failpoints compiled into it (backend/src/failpoint.ts, armed through CONDUCT_FAILPOINTS, test
 * only) on a seeded schedule, and restarted on the same storage each time. The sender resends
 * every request it got no answer for, as an OTLP exporter does. At the end the outcome must be the
 * outcome of a run without crashes: every trace's chain stored once per identity with the same
 * calls, the same identity call counts (stored and learned), every alert raised once (one alert
 * per identity, its repeats counted once each) and delivered to a local webhook at least once.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAILPOINT_MARK } from '@conduct/backend';
import { encodeTracesRequest } from '@conduct/proto';
import { ensureBuilt, sendOtlp, serve, type ServeProcess } from './support/child.js';
import { seededRandom, randomHex } from './support/wire.js';
import { STORAGE_KINDS, stopTestPostgres, testPostgres, type StorageKind } from '../support/postgres.js';

/** The schedule's seed (CRASH_SEED overrides it, to explore other schedules by hand). */
const SEED = Number(process.env.CRASH_SEED ?? 21);
/** Where the process kills itself: every failpoint of backend/src/failpoint.ts. */
const POINTS = ['journal.appended', 'engine.analysed', 'engine.committed', 'journal.settled', 'alerts.emitted', 'outbox.sent'] as const;
const CRASHES = 8;
const REQUESTS = 40;
const TRACES_PER_REQUEST = 3;
const T0_MS = Date.UTC(2026, 0, 12, 8, 0, 0);

interface TraceSpec {
  traceId: string;
  identity: string;
  ops: string[];
  spanIds: string[];
  atMs: number;
  /** Its second span goes in the next request (a trace spread over two requests). */
  split: boolean;
}

/** The workload, the same for every run: benign workers, intruders that break a policy (one repeatedly). */
function workload(): { traces: TraceSpec[]; requests: Buffer[] } {
  const rand = seededRandom(2_100);
  const traces: TraceSpec[] = [];
  for (let i = 0; i < REQUESTS * TRACES_PER_REQUEST; i++) {
    const intruder = i % 7 === 3;
    const identity = intruder ? (i % 2 === 0 ? 'intruder-repeat' : `intruder-${i}`) : `worker-${i % 5}`;
    const ops = intruder ? ['GET /admin/users', 'DELETE /admin/users/{id}'] : ['GET /items/{id}', i % 3 === 0 ? 'PATCH /items/{id}' : 'GET /stock/{id}'];
    traces.push({ traceId: randomHex(rand, 16), identity, ops, spanIds: ops.map(() => randomHex(rand, 8)), atMs: T0_MS + i * 1_000, split: i % 5 === 1 });
  }
  const parts: Array<Array<{ t: TraceSpec; span: number }>> = Array.from({ length: REQUESTS }, () => []);
  traces.forEach((t, i) => {
    const g = Math.floor(i / TRACES_PER_REQUEST);
    const next = t.split && g + 1 < REQUESTS ? g + 1 : g;
    parts[g]!.push({ t, span: 0 });
    parts[next]!.push({ t, span: 1 });
  });
  return { traces, requests: parts.map(encode) };
}

function encode(spans: Array<{ t: TraceSpec; span: number }>): Buffer {
  const ns = (ms: number) => String(BigInt(Math.round(ms)) * 1_000_000n);
  const body = encodeTracesRequest({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'portal' } }] },
        scopeSpans: [
          {
            spans: spans.map(({ t, span: i }) => {
              const [method, route] = t.ops[i]!.split(' ');
              return {
                traceId: Buffer.from(t.traceId, 'hex'),
                spanId: Buffer.from(t.spanIds[i]!, 'hex'),
                name: t.ops[i],
                kind: 3,
                startTimeUnixNano: ns(t.atMs + i * 10),
                endTimeUnixNano: ns(t.atMs + i * 10 + 5),
                attributes: [
                  { key: 'enduser.id', value: { stringValue: t.identity } },
                  { key: 'http.request.method', value: { stringValue: method } },
                  { key: 'url.path', value: { stringValue: route } },
                  { key: 'server.address', value: { stringValue: 'backoffice.internal' } },
                ],
              };
            }),
          },
        ],
      },
    ],
  } as never);
  return Buffer.from(body);
}

const agent = new http.Agent({ keepAlive: false });

/** POSTs one OTLP/HTTP protobuf request; 0 when the connection died without an answer. */
const send = (endpoint: string, body: Buffer) => sendOtlp(endpoint, body, agent);

async function getJson<T>(p: ServeProcess, path: string): Promise<T> {
  const res = await fetch(p.api + path);
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
  return (await res.json()) as T;
}

/** POST /api/v1/flush; false when the process died under it. */
async function flush(p: ServeProcess): Promise<boolean> {
  try {
    return (await fetch(p.api + '/api/v1/flush', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status === 200;
  } catch {
    return false;
  }
}

interface Outcome {
  /** Per trace: identity -> calls of its stored chains, and how many chains it has. */
  traces: Record<string, Record<string, { chains: number; calls: number }>>;
  identities: Record<string, { calls: number; chains: number; learnedCalls: number }>;
  alerts: Array<{ id: string; identity: string; detector: string; count: number }>;
}

async function outcome(p: ServeProcess, traces: TraceSpec[]): Promise<Outcome> {
  const out: Outcome = { traces: {}, identities: {}, alerts: [] };
  for (const t of traces) {
    const body = await getJson<{ chains: Array<{ identity: string; calls: unknown[] }> }>(p, `/api/v1/traces/${t.traceId}`);
    const per: Record<string, { chains: number; calls: number }> = {};
    for (const c of body.chains) {
      const e = (per[c.identity] ??= { chains: 0, calls: 0 });
      e.chains++;
      e.calls += c.calls.length;
    }
    out.traces[t.traceId] = per;
  }
  const { identities } = await getJson<{ identities: Array<{ id: string; calls: number; chains: number; learnedCalls: number }> }>(p, '/api/v1/identities');
  for (const i of identities) out.identities[i.id] = { calls: i.calls, chains: i.chains, learnedCalls: i.learnedCalls };
  const { alerts } = await getJson<{ alerts: Array<{ id: string; identity: string; detector: string; count: number }> }>(p, '/api/v1/alerts?limit=1000');
  out.alerts = alerts.map((a) => ({ id: a.id, identity: a.identity, detector: a.detector, count: a.count })).sort((a, b) => a.identity.localeCompare(b.identity));
  return out;
}

/** Waits (polling, bounded) until `done`; fails with `why` when it never is. */
async function waitFor(done: () => boolean, why: () => string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > until) throw new Error(why());
    await new Promise((r) => setTimeout(r, 50));
  }
}

let dir: string;
const running: ServeProcess[] = [];
const hooks: http.Server[] = [];

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'conduct-crash-'));
}, 240_000);

afterAll(async () => {
  for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  for (const h of hooks) h.close();
  agent.destroy();
  await stopTestPostgres();
  rmSync(dir, { recursive: true, force: true });
});

/** A local webhook receiver: alert ids and delivery ids (`<alertId>/<seq>`, header) in the order their deliveries arrived. */
async function webhook(): Promise<{ url: string; delivered: string[]; deliveries: string[] }> {
  const delivered: string[] = [];
  const deliveries: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        delivered.push((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { alert: { id: string } }).alert.id);
        deliveries.push(String(req.headers['x-conduct-delivery']));
      } catch {
        /* not an alert */
      }
      res.writeHead(200).end();
    });
  });
  hooks.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, delivered, deliveries };
}

async function configFor(kind: StorageKind, work: string, hookUrl: string): Promise<string> {
  const storage = kind === 'postgres' ? `{ path: "${join(work, 'conduct.db')}", postgres: { url: "${await (await testPostgres()).createDatabase()}" } }` : `{ path: "${join(work, 'conduct.db')}" }`;
  const path = join(work, 'conduct.yaml');
  writeFileSync(
    path,
    `receivers:
  grpc: { endpoint: "127.0.0.1:0" }
  http: { endpoint: "127.0.0.1:0" }
api: { endpoint: "127.0.0.1:0" }
storage: ${storage}
log: { level: info }
stitching: { idle: 1s }
learning: { minCalls: 1000000, period: 8760h }
policies: [{ match: "intruder-*", deniedOperations: ["DELETE /admin/*"] }]
alerts: { sinks: [{ type: webhook, endpoint: "${hookUrl}" }] }
`,
  );
  return path;
}

async function start(config: string, env: Record<string, string> = {}): Promise<ServeProcess> {
  const p = await serve(config, 60_000, env);
  running.push(p);
  return p;
}

/** Sends requests `from`.. in order until one gets no answer (the process died) or `to` is reached; returns the next to send. */
async function sendFrom(p: ServeProcess, requests: Buffer[], from: number, to: number): Promise<number> {
  let next = from;
  while (next < to) {
    const status = await send(p.http, requests[next]!);
    if (status !== 200) return next;
    next++;
  }
  return next;
}

describe.each(STORAGE_KINDS)('crash injection (%s)', (kind) => {
  it('after SIGKILL at seeded failpoints and restarts, stores, learns and alerts as a run without crashes', async () => {
    const { traces, requests } = workload();

    // The run without crashes.
    const refWork = mkdtempSync(join(dir, `${kind}-ref-`));
    const refHook = await webhook();
    let conduct = await start(await configFor(kind, refWork, refHook.url));
    expect(await sendFrom(conduct, requests, 0, REQUESTS)).toBe(REQUESTS);
    expect(await flush(conduct)).toBe(true);
    const reference = await outcome(conduct, traces);
    conduct.child.kill('SIGTERM');
    expect(await conduct.exited).toBe(0);
    // The workload does what the comparison needs: stored traces, one alert per intruder, repeats counted.
    expect(Object.values(reference.traces).every((t) => Object.keys(t).length === 1)).toBe(true);
    expect(reference.alerts.find((a) => a.identity === 'intruder-repeat')?.count).toBeGreaterThan(3);
    expect(reference.alerts.length).toBeGreaterThan(5);

    // The same requests with crashes: a seeded schedule of failpoints, the sender resending what got no answer.
    const work = mkdtempSync(join(dir, `${kind}-crash-`));
    const hook = await webhook();
    const config = await configFor(kind, work, hook.url);
    const rand = seededRandom(SEED);
    const order = [...POINTS, ...POINTS].sort(() => rand() - 0.5);
    const fired: string[] = [];
    let next = 0;
    for (let i = 0; i < CRASHES; i++) {
      const point = order[i % order.length]!;
      const hits = 1 + Math.floor(rand() * 2);
      try {
        conduct = await start(config, { CONDUCT_FAILPOINTS: `${point}:${hits}` });
      } catch (err) {
        // Killed while starting: replaying the journal or sending what the outbox held.
        if (!/exited \(SIGKILL\) before listening/.test(String(err))) throw err;
        fired.push(`${point} (start)`);
        continue;
      }
      next = await sendFrom(conduct, requests, next, Math.min(REQUESTS, next + Math.ceil(REQUESTS / CRASHES)));
      // Traces still pending go through the store now (the points after ingest are passed).
      if (conduct.child.exitCode === null && conduct.child.signalCode === null) await flush(conduct);
      // The failpoint was not reached (or is being reached right now): a kill -9 at rest instead.
      if (conduct.child.exitCode === null && conduct.child.signalCode === null) conduct.child.kill('SIGKILL');
      expect(await conduct.exited).toBe('SIGKILL');
      // Whose kill it was, from what the process wrote: a failpoint says so before it fires.
      await conduct.closed;
      if (conduct.log().includes(`${FAILPOINT_MARK} ${point}`)) fired.push(point);
    }
    conduct = await start(config);
    expect(await sendFrom(conduct, requests, next, REQUESTS)).toBe(REQUESTS);
    expect(await flush(conduct)).toBe(true);
    const after = await outcome(conduct, traces);

    // The schedule killed the process at its failpoints, most points more than once.
    expect(fired.length, `fired: ${fired.join(', ')}`).toBeGreaterThanOrEqual(CRASHES / 2);
    expect(new Set(fired).size, `fired: ${fired.join(', ')}`).toBeGreaterThanOrEqual(3);
    // Every trace stored once per identity, with the calls of the run without crashes.
    expect(after.traces).toEqual(reference.traces);
    // Identity counts, stored and learned, as without crashes: nothing counted twice or lost.
    expect(after.identities).toEqual(reference.identities);
    // Every alert raised once (one per identity and detector), repeats counted once each.
    const shape = (o: Outcome) => o.alerts.map(({ identity, detector, count }) => ({ identity, detector, count }));
    expect(shape(after)).toEqual(shape(reference));
    expect(new Set(after.alerts.map((a) => a.id)).size).toBe(after.alerts.length);
    const metrics = await (await fetch(conduct.api + '/metrics')).text();
    expect(metrics).toMatch(/^conduct_journal_entries 0$/m);
    // Every alert delivered to the webhook at least once (the outbox sends after the restart what
    // a crash left undelivered); a delivery seen twice carries the same delivery id.
    await waitFor(() => after.alerts.every((a) => hook.delivered.includes(a.id)), () => `undelivered: ${after.alerts.filter((a) => !hook.delivered.includes(a.id)).map((a) => a.identity).join(', ')}`);
    for (const d of hook.deliveries) expect(d).toMatch(/^[^/]+\/\d+$/);
    expect(new Set(hook.delivered).size).toBe(after.alerts.length);

    conduct.child.kill('SIGTERM');
    expect(await conduct.exited).toBe(0);
  }, 300_000);
});
