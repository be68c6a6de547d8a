/**
 * Sinks delivering from the store's outbox, with real parts: a real SQLite store in a temp
 * directory, real HTTP and gRPC receivers on real ports, real files.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeLogsRequest } from '@conduct/proto';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteBackend } from '../../store/sqlite/backend.js';
import type { StorageBackend } from '../../store/contracts.js';
import type { Alert } from '../model.js';
import { createSinks, type Sinks, type SinkSettings } from './index.js';
import { makeAlert, startHttpReceiver, type HttpAnswer, type HttpReceiver } from './testdata/receivers.js';

const closers: Array<() => Promise<unknown>> = [];
let registry: Registry;
let dir: string;

beforeEach(async () => {
  registry = new Registry();
  dir = await mkdtemp(join(tmpdir(), 'conduct-outbox-'));
});
afterEach(async () => {
  while (closers.length) await closers.pop()!();
  await rm(dir, { recursive: true, force: true });
});

async function store(): Promise<StorageBackend> {
  const s = await openSqliteBackend({ path: join(dir, 'conduct.db') });
  closers.push(() => s.close());
  return s;
}

function sinks(s: StorageBackend, configs: SinkSettings[], reg = registry): Sinks {
  const out = createSinks(configs, { registry: reg, version: '9.9.9-test', outbox: s.outbox, pollMs: 50, drainMs: 200 });
  closers.push(() => out.stop());
  return out;
}

async function http(answer?: (index: number) => HttpAnswer, port?: number): Promise<HttpReceiver> {
  const r = await startHttpReceiver(answer, port);
  closers.push(() => r.close());
  return r;
}

/** Stores the alert and enqueues its event for the sinks that want it, in one checkpoint (as detection does); wakes them. */
async function raise(s: StorageBackend, out: Sinks, alert: Alert, event: 'alert' | 'feedback' = 'alert'): Promise<void> {
  await s.detection.checkpoint({
    alerts: [{ alert, dedupKey: alert.id }],
    outbox: [{ alert, event, sinks: out.route(alert, event), atMs: Date.now() }],
  });
  out.deliver(alert, event);
}

/** Polls until `check` passes (no wall-clock assertion: the test's own timeout bounds it). */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
}

async function metric(name: string, labels: Record<string, string>, reg = registry): Promise<number> {
  const m = (await reg.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

const json = (b: Buffer) => JSON.parse(b.toString('utf8')) as { event: string; alert: Alert; delivery: { id: string; seq: number } };

describe('sinks delivering from the outbox', () => {
  it('retries a webhook that fails the first deliveries, with the same delivery id on every attempt, then the next sequence', async () => {
    const s = await store();
    const hook = await http((i) => (i < 2 ? 503 : 200));
    const out = sinks(s, [{ type: 'webhook', endpoint: `${hook.url}/hook`, retries: 5, backoff: 10 }]);
    expect(out.durable).toBe(true);
    const alert = makeAlert();
    await raise(s, out, alert);
    await hook.waitAccepted(1);
    expect(hook.requests).toHaveLength(3);
    for (const r of hook.requests) {
      expect(r.headers['x-conduct-delivery']).toBe(`${alert.id}/1`);
      expect(json(r.body).delivery).toEqual({ id: `${alert.id}/1`, seq: 1 });
      expect(json(r.body).alert).toEqual(alert);
    }
    // Byte-identical retries (a receiver may hash them).
    expect(new Set(hook.requests.map((r) => r.body.toString('utf8'))).size).toBe(1);
    await until(async () => (await s.outbox.deliveries(alert.id, 10))[0]?.state === 'delivered');
    const [record] = await s.outbox.deliveries(alert.id, 10);
    expect(record).toMatchObject({ sink: 'webhook', seq: 1, event: 'alert', state: 'delivered', attempts: 3, lastError: expect.stringContaining('503') });
    expect(await metric('conduct_sink_retries_total', { sink: 'webhook' })).toBe(2);
    expect(await metric('conduct_sink_deliveries_total', { sink: 'webhook', outcome: 'delivered' })).toBe(1);

    // A repeat and a verdict: the next sequence numbers of the same alert.
    const repeated = { ...alert, count: 2 };
    await raise(s, out, repeated);
    await raise(s, out, { ...repeated, status: 'acknowledged' }, 'feedback');
    await hook.waitAccepted(3);
    expect(hook.accepted.slice(1).map((r) => [r.headers['x-conduct-delivery'], r.headers['x-conduct-event'], json(r.body).alert.count])).toEqual([
      [`${alert.id}/2`, 'alert', 2],
      [`${alert.id}/3`, 'feedback', 2],
    ]);
    await until(async () => (await metric('conduct_sink_outbox_entries', { sink: 'webhook', state: 'delivered' })) === 3);
    expect(await metric('conduct_sink_outbox_entries', { sink: 'webhook', state: 'pending' })).toBe(0);
  });

  it('holds an alert while the receiver is down and delivers it once the receiver comes up', async () => {
    const s = await store();
    // A free port with nothing listening on it.
    const probe = await startHttpReceiver();
    const port = Number(new URL(probe.url).port);
    await probe.close();
    const out = sinks(s, [{ type: 'webhook', endpoint: `http://127.0.0.1:${port}/hook`, retries: 50, backoff: 20 }]);
    const alert = makeAlert();
    await raise(s, out, alert);
    // Failed attempts, recorded with their error, and the delivery still pending.
    await until(async () => ((await s.outbox.deliveries(alert.id, 10))[0]?.attempts ?? 0) >= 2);
    const [down] = await s.outbox.deliveries(alert.id, 10);
    expect(down).toMatchObject({ state: 'pending', lastError: expect.stringContaining('failed') });
    expect(await metric('conduct_sink_outbox_entries', { sink: 'webhook', state: 'pending' })).toBe(1);

    const hook = await http(() => 200, port);
    await hook.waitAccepted(1);
    expect(hook.accepted[0]!.headers['x-conduct-delivery']).toBe(`${alert.id}/1`);
    await until(async () => (await s.outbox.deliveries(alert.id, 10))[0]?.state === 'delivered');
  });

  it('gives a delivery up as a dead letter after `retries`, at once on a permanent refusal, and keeps it', async () => {
    const s = await store();
    const failing = await http(() => 503);
    const refusing = await http(() => 400);
    const out = sinks(s, [
      { type: 'webhook', name: 'failing', endpoint: failing.url, retries: 2, backoff: 10 },
      { type: 'webhook', name: 'refusing', endpoint: refusing.url, retries: 2, backoff: 10 },
    ]);
    const alert = makeAlert();
    await raise(s, out, alert);
    await out.flush();
    const records = await s.outbox.deliveries(alert.id, 10);
    expect(records.map((r) => [r.sink, r.state, r.attempts])).toEqual([
      ['failing', 'dead', 3],
      ['refusing', 'dead', 1],
    ]);
    expect(records[0]!.lastError).toContain('503');
    expect(records[1]!.lastError).toContain('400');
    expect(failing.requests).toHaveLength(3);
    expect(refusing.requests).toHaveLength(1);
    expect(await metric('conduct_sink_deliveries_total', { sink: 'failing', outcome: 'dead' })).toBe(1);
    expect(await metric('conduct_sink_deliveries_total', { sink: 'refusing', outcome: 'dead' })).toBe(1);
    expect(await metric('conduct_sink_retries_total', { sink: 'failing' })).toBe(2);
    expect(await metric('conduct_sink_outbox_entries', { sink: 'failing', state: 'dead' })).toBe(1);
    // Dead letters are not pruned with the delivered ones.
    expect(await s.outbox.pruneDelivered(Date.now() + 1, 100)).toBe(0);
    expect(await s.outbox.deliveries(alert.id, 10)).toHaveLength(2);
  });

  it('prunes delivered entries past their retention and keeps the dead ones', async () => {
    const s = await store();
    const ok = await http(() => 200);
    const refusing = await http(() => 400);
    const out = createSinks(
      [
        { type: 'webhook', name: 'ok', endpoint: ok.url },
        { type: 'webhook', name: 'refusing', endpoint: refusing.url },
      ],
      { registry, outbox: s.outbox, pollMs: 50, drainMs: 200, deliveryRetentionMs: 0, pruneEveryMs: 20 },
    );
    closers.push(() => out.stop());
    const alert = makeAlert();
    await raise(s, out, alert);
    await ok.waitAccepted(1);
    await until(async () => (await s.outbox.deliveries(alert.id, 10)).every((d) => d.state === 'dead'));
    expect((await s.outbox.deliveries(alert.id, 10)).map((d) => [d.sink, d.state])).toEqual([['refusing', 'dead']]);
    expect(await s.outbox.counts()).toEqual([{ sink: 'refusing', state: 'dead', count: 1 }]);
  });

  it('delivers after a restart what was pending when the sinks stopped, with the same delivery id', async () => {
    const path = join(dir, 'restart.db');
    const first = await openSqliteBackend({ path });
    const probe = await startHttpReceiver();
    const port = Number(new URL(probe.url).port);
    await probe.close();
    const config: SinkSettings[] = [{ type: 'webhook', endpoint: `http://127.0.0.1:${port}/hook`, retries: 50, backoff: 5_000 }];
    const before = createSinks(config, { registry, outbox: first.outbox, pollMs: 50, drainMs: 50 });
    const alert = makeAlert();
    await raise(first, before, alert);
    await until(async () => ((await first.outbox.deliveries(alert.id, 1))[0]?.attempts ?? 0) >= 1);
    await before.stop();
    await first.close();

    const hook = await http(() => 200, port);
    const second = await openSqliteBackend({ path });
    closers.push(() => second.close());
    // The backoff of the first process (5 s) does not hold the delivery back after the restart.
    sinks(second, config, new Registry());
    await hook.waitAccepted(1);
    expect(hook.accepted.map((r) => r.headers['x-conduct-delivery'])).toEqual([`${alert.id}/1`]);
    await until(async () => (await second.outbox.deliveries(alert.id, 1))[0]?.state === 'delivered');
    expect((await second.outbox.deliveries(alert.id, 1))[0]!.attempts).toBe(2);
  });

  it('carries the delivery id in OTLP log attributes, OCSF metadata.uid and JSON lines', async () => {
    const s = await store();
    const logs = await http();
    const ocsfPath = join(dir, 'findings.ocsf.jsonl');
    const jsonlPath = join(dir, 'alerts.jsonl');
    const out = sinks(s, [
      { type: 'otlp-logs', endpoint: logs.url, protocol: 'http' },
      { type: 'ocsf', path: ocsfPath },
      { type: 'jsonl', path: jsonlPath },
    ]);
    const alert = makeAlert();
    await raise(s, out, alert);
    await out.flush();
    await logs.waitAccepted(1);
    expect(logs.accepted[0]!.path).toBe('/v1/logs');
    const record = decodeLogsRequest(logs.accepted[0]!.body).resourceLogs![0]!.scopeLogs![0]!.logRecords![0]!;
    const attributes = Object.fromEntries((record.attributes ?? []).map((kv) => [kv.key, kv.value?.stringValue ?? kv.value?.intValue]));
    expect(attributes['conduct.delivery.id']).toBe(`${alert.id}/1`);
    expect(Number(attributes['conduct.delivery.seq'])).toBe(1);
    expect(attributes['conduct.alert.id']).toBe(alert.id);
    const finding = JSON.parse((await readFile(ocsfPath, 'utf8')).trim()) as { metadata: { uid: string }; finding_info: { uid: string } };
    expect(finding.metadata.uid).toBe(`${alert.id}/1`);
    expect(finding.finding_info.uid).toBe(alert.id);
    const line = JSON.parse((await readFile(jsonlPath, 'utf8')).trim()) as Alert & { delivery: unknown; event: string };
    expect(line).toMatchObject({ id: alert.id, event: 'alert', delivery: { id: `${alert.id}/1`, seq: 1 } });
  });
});
