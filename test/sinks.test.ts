/**
 * Issue 4 (and issue 9 item 5) end to end: real OTLP from the official SDK into a running conduct
 * whose `alerts.sinks` point at real receivers on real ports. A `policy` breach raises an alert
 * on the first call, so no training period is needed.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '@conduct/backend';
import { decodeLogsRequest, decodeTracesRequestFull } from '@conduct/proto';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { LOGS_EXPORT, recordingGrpc, recordingHttp, refusedPort, until, type RecordingHttp } from './support/receivers.js';
import { MINUTE, SpanKind, Traffic, alertsOf, type ApiAlert, type SentTrace } from './support/traffic.js';

const IDENTITY = 'svc:ci/deployer';
const RESOURCE = { 'service.namespace': 'ci', 'service.name': 'deployer' };
const TRACE_URL = 'https://jaeger.example/trace/{traceId}';
/** The deployer may only talk to the Kubernetes API: any other peer is a `policy` alert. */
const POLICY: ConfigInput = {
  policies: [{ match: 'svc:ci/*', expectedPeers: ['kube-api'] }],
  alerts: { traceUrl: TRACE_URL },
};
const T0 = Date.UTC(2026, 2, 3, 9, 0, 0);
const SECRET = 'hook-secret';
/** Long enough for any healthy sink in a test; the hanging sink is the only one that uses it up. */
const SINKS_SETTLE_MS = 15_000;

const hex = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('hex');

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function start(sinks: NonNullable<ConfigInput['alerts']>['sinks'], extra: ConfigInput = {}): Promise<{ conduct: TestConduct; traffic: Traffic }> {
  const conduct = await startTestConduct({ ...POLICY, ...extra, alerts: { ...POLICY.alerts, sinks } });
  const traffic = new Traffic(conduct);
  // Registered first, so they run last: the traffic's exporters close before conduct stops.
  cleanups.push(() => conduct.dispose());
  cleanups.push(() => traffic.close());
  return { conduct, traffic };
}

/** One trace in which the deployer calls a peer outside its policy (`exfil-<n>.example.com`). */
function offend(traffic: Traffic, n: number): Promise<SentTrace> {
  const host = `exfil-${n}.example.com`;
  return traffic.trace(T0 + n * MINUTE, RESOURCE, {
    name: 'upload',
    kind: SpanKind.CLIENT,
    at: 0,
    attributes: { 'http.request.method': 'PUT', 'url.full': `https://${host}/drop/${n}`, 'server.address': host },
  });
}

async function alertFor(conduct: TestConduct, trace: SentTrace): Promise<ApiAlert> {
  const alerts = (await alertsOf(conduct, IDENTITY)).filter((a) => a.traceId === trace.traceId);
  expect(alerts.map((a) => a.detector)).toEqual(['policy']);
  return alerts[0]!;
}

async function sinkMetric(conduct: TestConduct, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await conduct.running.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want));
  return value?.value ?? 0;
}

/** A temporary directory for files the sinks write, removed after the test. */
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-sinks-e2e-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function server(options?: { hang?: boolean }): Promise<RecordingHttp> {
  const s = await recordingHttp(options);
  cleanups.push(() => s.close());
  return s;
}

describe('alert sinks, end to end', () => {
  it('webhook (signed), OTLP logs, finding span and OCSF file each get the alert, linked to the offending span', async () => {
    const webhook = await server();
    const traces = await server();
    const logs = await recordingGrpc(LOGS_EXPORT);
    cleanups.push(() => logs.close());
    const ocsfPath = join(scratch(), 'findings', 'ocsf.jsonl');
    const { conduct, traffic } = await start([
      { type: 'webhook', endpoint: `${webhook.url}/hooks/conduct`, secret: SECRET },
      { type: 'otlp-logs', endpoint: logs.address, headers: { 'x-tenant': 'sec' } },
      { type: 'finding-span', endpoint: traces.url, protocol: 'http' },
      { type: 'ocsf', path: ocsfPath },
    ]);
    const sent = await offend(traffic, 1);
    await conduct.running.flush({ sinksTimeoutMs: SINKS_SETTLE_MS });
    const alert = await alertFor(conduct, sent);
    const offendingSpan = sent.spans.get('upload')!;
    expect(alert.spanIds).toEqual([offendingSpan]);
    expect(alert.links.trace).toBe(`https://jaeger.example/trace/${sent.traceId}`);

    // Webhook: one POST, HMAC-SHA256 over the exact body bytes.
    expect(webhook.received).toHaveLength(1);
    const hook = webhook.received[0]!;
    expect(hook.path).toBe('/hooks/conduct');
    expect(hook.headers['x-conduct-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(hook.body).digest('hex')}`);
    expect(hook.headers['x-conduct-signature']).not.toBe(`sha256=${createHmac('sha256', 'wrong').update(hook.body).digest('hex')}`);
    const payload = JSON.parse(hook.body.toString('utf8'));
    expect(payload.event).toBe('alert');
    expect(payload.alert).toMatchObject({ id: alert.id, identity: IDENTITY, detector: 'policy', traceId: sent.traceId });

    // OTLP logs over gRPC: one record carrying the trace and the offending span.
    expect(logs.received).toHaveLength(1);
    expect(logs.received[0]!.metadata.get('x-tenant')).toEqual(['sec']);
    const records = decodeLogsRequest(logs.received[0]!.body).resourceLogs.flatMap((r) => (r.scopeLogs ?? []).flatMap((s) => s.logRecords ?? []));
    expect(records).toHaveLength(1);
    expect(hex(records[0]!.traceId)).toBe(sent.traceId);
    expect(hex(records[0]!.spanId)).toBe(offendingSpan);
    expect(records[0]!.body?.stringValue).toBe(alert.title);
    expect(records[0]!.severityText).toBe('ERROR');

    // Finding span over OTLP/HTTP: in the alert's trace, a child of the offending span.
    expect(traces.received.map((r) => r.path)).toEqual(['/v1/traces']);
    const spans = decodeTracesRequestFull(traces.received[0]!.body).resourceSpans.flatMap((r) => (r.scopeSpans ?? []).flatMap((s) => s.spans ?? []));
    expect(spans).toHaveLength(1);
    expect(hex(spans[0]!.traceId)).toBe(sent.traceId);
    expect(hex(spans[0]!.parentSpanId)).toBe(offendingSpan);
    expect(sent.allSpanIds).not.toContain(hex(spans[0]!.spanId));
    expect(spans[0]!.name).toBe('conduct.finding policy');
    expect(spans[0]!.kind).toBe(1);

    // OCSF Detection Finding in a JSON-lines file, carrying the trace link.
    const lines = readFileSync(ocsfPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      class_uid: 2004,
      category_uid: 2,
      finding_info: { uid: alert.id, src_url: alert.links.trace },
      metadata: { correlation_uid: sent.traceId },
    });

    expect(await sinkMetric(conduct, 'conduct_sink_deliveries_total', { sink: 'webhook', outcome: 'delivered' })).toBe(1);
    expect(await sinkMetric(conduct, 'conduct_sink_deliveries_total', { sink: 'otlp-logs', outcome: 'delivered' })).toBe(1);
  });

  it('a sink that is down and one that hangs do not hold up ingest, flush or the other sinks', async () => {
    const hung = await server({ hang: true });
    const downPort = await refusedPort();
    const jsonlPath = join(scratch(), 'alerts.jsonl');
    const { conduct, traffic } = await start([
      { type: 'webhook', name: 'hung', endpoint: `${hung.url}/hook`, timeout: '1h', retries: 0 },
      { type: 'webhook', name: 'down', endpoint: `http://127.0.0.1:${downPort}/hook`, retries: 1000, backoff: '20ms' },
      { type: 'jsonl', path: jsonlPath },
    ]);
    const sent: SentTrace[] = [];
    for (let n = 1; n <= 3; n++) sent.push(await offend(traffic, n));
    // The API's flush answers once the traces are stored and analysed, whatever the sinks do.
    await conduct.flush();
    const alerts = await alertsOf(conduct, IDENTITY);
    expect(alerts.map((a) => a.traceId).sort()).toEqual(sent.map((t) => t.traceId).sort());

    // The healthy sink gets every alert while the hung one still holds its first delivery.
    const lines = () => (readFileSync(jsonlPath, { encoding: 'utf8', flag: 'a+' }).match(/\n/g) ?? []).length;
    await until(() => lines() === 3);
    // The line is in the file before the sink counts it as delivered: wait for the counter too.
    await until(async () => (await sinkMetric(conduct, 'conduct_sink_deliveries_total', { sink: 'jsonl', outcome: 'delivered' })) === 3);
    const written = readFileSync(jsonlPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(written.map((a) => a.id).sort()).toEqual(alerts.map((a) => a.id).sort());
    await until(() => hung.received.length === 1);
    expect(await sinkMetric(conduct, 'conduct_sink_queue_depth', { sink: 'hung' })).toBe(3);
    expect(await sinkMetric(conduct, 'conduct_sink_deliveries_total', { sink: 'hung', outcome: 'delivered' })).toBe(0);
    // The refused sink keeps retrying in the background.
    await until(async () => (await sinkMetric(conduct, 'conduct_sink_retries_total', { sink: 'down' })) >= 2);
    expect(await sinkMetric(conduct, 'conduct_sink_queue_depth', { sink: 'down' })).toBe(3);

    // Ingest goes on: another trace is accepted, stored and alerted on; its alert reaches the jsonl
    // sink too. Bounded waits on the sinks give up on the hung one instead of blocking.
    const later = await offend(traffic, 4);
    await conduct.running.flush({ sinksTimeoutMs: 200 });
    expect((await alertsOf(conduct, IDENTITY)).some((a) => a.traceId === later.traceId)).toBe(true);
    await until(() => lines() === 4);
    expect(hung.received).toHaveLength(1);
    expect(await sinkMetric(conduct, 'conduct_sink_queue_depth', { sink: 'hung' })).toBe(4);
  });

  it('finding-span via forward: the finding reaches the downstream through the forwarder, after the trace it belongs to', async () => {
    const downstream = await server();
    const { conduct, traffic } = await start([{ type: 'finding-span', via: 'forward' }], {
      forward: [{ endpoint: downstream.url, protocol: 'http' }],
    });
    const quiet = await traffic.trace(T0, RESOURCE, {
      name: 'apply',
      kind: SpanKind.CLIENT,
      at: 0,
      attributes: { 'http.request.method': 'POST', 'url.full': 'https://kube-api/apis/apps/v1/deployments', 'peer.service': 'kube-api' },
    });
    const sent = await offend(traffic, 2);
    await conduct.running.flush({ sinksTimeoutMs: SINKS_SETTLE_MS });
    const alert = await alertFor(conduct, sent);

    const decoded = () =>
      downstream.received.map((r) =>
        decodeTracesRequestFull(r.body).resourceSpans.flatMap((rs) =>
          (rs.scopeSpans ?? []).flatMap((ss) => (ss.spans ?? []).map((sp) => ({ name: sp.name ?? '', traceId: hex(sp.traceId), spanId: hex(sp.spanId), parent: hex(sp.parentSpanId) }))),
        ),
      );
    await until(() => decoded().some((spans) => spans.some((sp) => sp.name.startsWith('conduct.finding'))));
    const requests = decoded();
    const findingAt = requests.findIndex((spans) => spans.some((sp) => sp.name === 'conduct.finding policy'));
    const traceAt = requests.findIndex((spans) => spans.some((sp) => sp.spanId === alert.spanIds[0]));
    const quietAt = requests.findIndex((spans) => spans.some((sp) => sp.traceId === quiet.traceId));
    // Every request conduct received went on, and the finding came after its trace's spans.
    expect(quietAt).toBeGreaterThanOrEqual(0);
    expect(traceAt).toBeGreaterThan(quietAt);
    expect(findingAt).toBeGreaterThan(traceAt);
    const finding = requests[findingAt]!.find((sp) => sp.name === 'conduct.finding policy')!;
    expect(finding.traceId).toBe(sent.traceId);
    expect(finding.parent).toBe(sent.spans.get('upload'));
    expect(requests.flat().filter((sp) => sp.name.startsWith('conduct.finding'))).toHaveLength(1);
    expect(await sinkMetric(conduct, 'conduct_sink_deliveries_total', { sink: 'finding-span', outcome: 'delivered' })).toBe(1);
  });

  it('finding-span via forward without any forward[] downstream stops start-up, naming the key', async () => {
    await expect(startTestConduct({ alerts: { sinks: [{ type: 'finding-span', via: 'forward' }] } }, scratch())).rejects.toThrow(
      /alerts\.sinks\[0\]\.via: forward needs at least one forward\[\] downstream/,
    );
  });
});
