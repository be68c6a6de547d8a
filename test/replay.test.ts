/**
 * `conduct replay`: request files written by the official OpenTelemetry serializers (JSON lines
 * for the normal traffic, protobuf for the attack) give the same alerts when replayed as the same
 * requests sent live to a running conduct.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanKind } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main, parseConfig, replayFiles, type Alert } from '@conduct/backend';
import { startTestConduct } from './support/conduct.js';
import { STORAGE_KINDS, stopTestPostgres, storageOverrides } from './support/postgres.js';
import { TestService } from './support/otel.js';
import { HOUR, MINUTE, seeded } from './support/traffic.js';

const T0 = Date.UTC(2026, 8, 14, 6, 0, 0);
const CONFIG_YAML = `learning:
  minCalls: 20
  period: 1h
alerts:
  traceUrl: "https://tempo.example/explore?traceId={traceId}"
log:
  level: silent
`;

interface Recorded {
  protobuf: Uint8Array;
  json: string;
}

/** One trace of the `svc:orders/worker` workload, recorded as one export request. */
function record(svc: TestService, memory: InMemorySpanExporter, startMs: number, peers: string[]): Recorded {
  const root = svc.start('process order', { kind: SpanKind.CONSUMER, startMs, attributes: { 'messaging.system': 'kafka', 'messaging.destination.name': 'orders', 'messaging.operation.type': 'process' } });
  peers.forEach((peer, k) => {
    const span = svc.start('GET', {
      kind: SpanKind.CLIENT,
      parent: root,
      startMs: startMs + 1 + k * 10,
      attributes: { 'http.request.method': 'GET', 'url.full': `http://${peer}/items/${Math.floor(startMs / 1000) % 100000}` },
    });
    span.end(startMs + 5 + k * 10);
  });
  root.end(startMs + 10 + peers.length * 10);
  const spans = memory.getFinishedSpans();
  memory.reset();
  return {
    protobuf: ProtobufTraceSerializer.serializeRequest([...spans])!,
    json: new TextDecoder().decode(JsonTraceSerializer.serializeRequest([...spans])!),
  };
}

const key = (a: Pick<Alert, 'detector' | 'identity' | 'severity' | 'traceId'>) => `${a.severity} ${a.detector} ${a.identity} ${a.traceId}`;

describe('conduct replay', () => {
  let dir: string;
  let normal: Recorded[];
  let attack: Recorded;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'conduct-replay-'));
    const rnd = seeded(7);
    normal = [];
    for (let at = T0; at < T0 + 2 * HOUR; at += 3 * MINUTE) {
      // Shutting a provider down stops its exporter: one of each per trace.
      const memory = new InMemorySpanExporter();
      const svc = new TestService({ 'service.namespace': 'orders', 'service.name': 'worker', 'host.name': `worker-${Math.floor(rnd() * 1e6)}` }, memory);
      const peers = ['inventory.shop.svc', ...(rnd() < 0.5 ? ['pricing.shop.svc'] : [])];
      normal.push(record(svc, memory, at + Math.floor(rnd() * 20_000), peers));
      await svc.shutdown();
    }
    const memory = new InMemorySpanExporter();
    const svc = new TestService({ 'service.namespace': 'orders', 'service.name': 'worker', 'host.name': 'worker-x' }, memory);
    attack = record(svc, memory, T0 + 2 * HOUR + 5 * MINUTE, ['inventory.shop.svc', 'billing-admin.finance.svc', 'secrets.vault.svc']);
    await svc.shutdown();
    writeFileSync(join(dir, 'normal.jsonl'), normal.map((r) => r.json.replace(/\n/g, '')).join('\n') + '\n');
    writeFileSync(join(dir, 'attack.pb'), attack.protobuf);
    writeFileSync(join(dir, 'conduct.yaml'), CONFIG_YAML);
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await stopTestPostgres();
  });

  it.each(STORAGE_KINDS)('gives the same alerts as sending the same requests live (stored in %s)', async (kind) => {
    // Live: each request over OTLP/HTTP protobuf, in order.
    const live = await startTestConduct({ ...parseConfigInput(), ...(await storageOverrides(kind)) });
    let liveAlerts: Alert[];
    try {
      for (const r of [...normal, attack]) {
        const res = await fetch(`${live.http}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: r.protobuf as Uint8Array<ArrayBuffer> });
        expect(res.status).toBe(200);
      }
      await live.flush();
      liveAlerts = (await live.get<{ alerts: Alert[] }>('/api/v1/alerts?limit=1000')).body.alerts;
    } finally {
      await live.dispose();
    }
    expect(liveAlerts.length, 'the attack must raise alerts live').toBeGreaterThan(0);
    expect(liveAlerts.some((a) => a.detector === 'new-peer' && a.identity === 'svc:orders/worker')).toBe(true);

    // Replay: JSON lines then protobuf, into a fresh database with the same config.
    const replayStorage = (await storageOverrides(kind)).storage as { postgres?: { url: string } } | undefined;
    const config = parseConfig({ ...parseConfigInput(), storage: { path: join(dir, `replay-${kind}.db`), ...replayStorage } });
    const progress: number[] = [];
    const summary = await replayFiles({ config, files: [join(dir, 'normal.jsonl'), join(dir, 'attack.pb')], onProgress: (p) => progress.push(p.requests) });
    expect(summary.requests).toBe(normal.length + 1);
    expect(summary.badRequests).toBe(0);
    expect(summary.alerts.map(key).sort()).toEqual(liveAlerts.map(key).sort());
    for (const a of summary.alerts) expect(a.links.trace).toBe(`https://tempo.example/explore?traceId=${a.traceId}`);
  });

  it('runs as `conduct replay FILE... --config --db` and prints the alert summary', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
    let code: number;
    try {
      code = await main(['node', 'conduct', 'replay', join(dir, 'normal.jsonl'), join(dir, 'attack.pb'), '--config', join(dir, 'conduct.yaml'), '--db', join(dir, 'cli.db')]);
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
    expect(code, err.join('')).toBe(0);
    const text = out.join('');
    expect(text).toMatch(new RegExp(`Replayed ${normal.length + 1} requests`));
    expect(text).toMatch(/new-peer\s+svc:orders\/worker/);
    expect(text).toMatch(/billing-admin\.finance\.svc|secrets\.vault\.svc/);
    expect(text).toMatch(/https:\/\/tempo\.example\/explore\?traceId=[0-9a-f]{32}/);
    // The database named by --db was written.
    expect(readFileSync(join(dir, 'cli.db')).length).toBeGreaterThan(0);
  });

  it('counts unreadable entries and keeps going', async () => {
    const bad = join(dir, 'mixed.jsonl');
    writeFileSync(bad, `${normal[0]!.json.replace(/\n/g, '')}\nnot json\n{"resourceSpans": 5}\n\n${normal[1]!.json.replace(/\n/g, '')}\n`);
    const config = parseConfig({ ...parseConfigInput(), storage: { path: join(dir, 'mixed.db') } });
    const summary = await replayFiles({ config, files: [bad] });
    expect(summary.requests).toBe(2);
    expect(summary.badRequests).toBe(2);
    expect(summary.errors[0]).toMatch(/mixed\.jsonl:2/);
    expect(summary.spans).toBeGreaterThan(0);
  });
});

function parseConfigInput() {
  return { learning: { minCalls: 20, period: '1h' }, alerts: { traceUrl: 'https://tempo.example/explore?traceId={traceId}' }, log: { level: 'silent' as const } };
}
