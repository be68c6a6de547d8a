/**
 * Several `conduct serve` processes (the built command) on one PostgreSQL, for the cluster tests:
 * each with its own directory (journal, storage lock), all with the same `storage.postgres.url`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type ServeProcess } from '../reliability/support/child.js';

export interface ClusterView {
  instances: Array<{ id: string; endpoint: string; partitions: number[]; lastHeartbeat: string }>;
  partitions: number;
}

export interface Member {
  dir: string;
  config: string;
  proc: ServeProcess;
}

/** Writes a member's config (`SELF` in `extraYaml` becomes its directory) and starts it. */
export async function startMember(url: string, extraYaml = '', dir = mkdtempSync(join(tmpdir(), 'conduct-cluster-'))): Promise<Member> {
  const config = join(dir, 'conduct.yaml');
  extraYaml = extraYaml.replaceAll('SELF', dir);
  writeFileSync(
    config,
    `receivers:
  grpc: { endpoint: "127.0.0.1:0" }
  http: { endpoint: "127.0.0.1:0" }
api: { endpoint: "127.0.0.1:0" }
storage:
  path: "${join(dir, 'conduct.db')}"
  postgres: { url: "${url}" }
log: { level: info }
${extraYaml}`,
  );
  return { dir, config, proc: await serve(config, 60_000) };
}

/** Starts the member again on its directory (after it was killed). */
export async function restartMember(m: Member): Promise<Member> {
  return { ...m, proc: await serve(m.config, 60_000) };
}

export async function getJson<T = any>(api: string, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(api + path);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

export async function postJson<T = any>(api: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(api + path, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/**
 * Polls `probe` until it answers a value `ok` accepts (the event the test waits for), or fails
 * with the last value after `limitMs` (a bound against hanging, not a timing assertion).
 */
export async function waitFor<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await probe();
      if (ok(last)) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not reached; last ${JSON.stringify(last) ?? String(lastErr)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether the view has exactly these many instances and every partition owned exactly once by one of them. */
export function settled(view: ClusterView, instances: number): boolean {
  if (view.instances.length !== instances) return false;
  const owned = view.instances.flatMap((i) => i.partitions).sort((a, b) => a - b);
  if (owned.length !== view.partitions || owned.some((p, i) => p !== i)) return false;
  const cap = Math.ceil(view.partitions / instances);
  return view.instances.every((i) => i.partitions.length <= cap && i.partitions.length >= Math.floor(view.partitions / instances));
}

/** Stops a member with SIGTERM and waits for its exit. */
export async function stopMember(m: Member): Promise<void> {
  if (m.proc.child.exitCode !== null || m.proc.child.signalCode !== null) return;
  m.proc.child.kill('SIGTERM');
  await m.proc.exited;
}

/** A Prometheus counter or gauge value from `/metrics` text (summing label sets that match). */
export async function metric(api: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${api}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labelText = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** One conduct on its own SQLite file (the reference the cluster is compared with). */
export async function startSingle(extraYaml = ''): Promise<Member> {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-single-'));
  const config = join(dir, 'conduct.yaml');
  writeFileSync(
    config,
    `receivers:
  grpc: { endpoint: "127.0.0.1:0" }
  http: { endpoint: "127.0.0.1:0" }
api: { endpoint: "127.0.0.1:0" }
storage: { path: "${join(dir, 'conduct.db')}" }
log: { level: info }
${extraYaml}`,
  );
  return { dir, config, proc: await serve(config, 60_000) };
}

/** What the equivalence is judged on: alerts by identity, detector and trace; calls per identity. */
export interface Outcome {
  alerts: string[];
  /** Alerts as listed (duplicates would show as a longer list than `alerts`). */
  alertRows: number;
  calls: Record<string, number>;
}

export async function outcome(api: string): Promise<Outcome> {
  const flushed = await postJson(api, '/api/v1/flush');
  if (flushed.status !== 200) throw new Error(`flush answered ${flushed.status}: ${JSON.stringify(flushed.body)}`);
  const alerts = (await getJson<{ alerts: Array<{ identity: string; detector: string; traceId: string }> }>(api, '/api/v1/alerts?limit=1000')).body.alerts;
  const identities = (await getJson<{ identities: Array<{ id: string; calls: number }> }>(api, '/api/v1/identities')).body.identities;
  return {
    alerts: [...new Set(alerts.map((a) => `${a.identity} ${a.detector} ${a.traceId}`))].sort(),
    alertRows: alerts.length,
    calls: Object.fromEntries(identities.map((i) => [i.id, i.calls]).sort()),
  };
}
