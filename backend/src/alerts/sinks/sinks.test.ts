import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeLogsRequest, decodeTracesRequestFull } from '@conduct/proto';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Alert } from '../model.js';
import { createSinks, SinkConfigError, type Sinks, type SinkSettings } from './index.js';
import { makeAlert, startGrpcReceiver, startHttpReceiver } from './testdata/receivers.js';
import { checkDetectionFinding } from './testdata/ocsf-required.js';

const hex = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('hex');

type KV = { key?: string | null; value?: Record<string, unknown> | null };
function attrs(list: KV[] | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) {
    const v = kv.value ?? {};
    out[kv.key!] =
      v.stringValue ?? v.doubleValue ?? v.intValue ?? v.boolValue ?? (v.arrayValue as { values: Array<{ stringValue: string }> } | undefined)?.values.map((x) => x.stringValue);
  }
  return out;
}

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

/** Polls until `check` passes (no wall-clock assertion: the test's own timeout bounds it). */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
}

/** A webhook attempt's deadline where a test waits it out once: far above a local answer under load. */
const ATTEMPT_TIMEOUT_MS = 1_000;

const closers: Array<() => Promise<unknown>> = [];
let registry: Registry;
let dir: string;

beforeEach(async () => {
  registry = new Registry();
  dir = await mkdtemp(join(tmpdir(), 'conduct-sinks-'));
});
afterEach(async () => {
  while (closers.length) await closers.pop()!();
  await rm(dir, { recursive: true, force: true });
});

/** Settings built in code that the config schema would refuse (a JavaScript caller's): createSinks checks them too. */
const unchecked = (settings: object) => settings as SinkSettings;

function sinks(configs: SinkSettings[], drainMs?: number): Sinks {
  const s = createSinks(configs, { registry, version: '9.9.9-test', drainMs });
  closers.push(() => s.stop());
  return s;
}

async function http(answer?: Parameters<typeof startHttpReceiver>[0]) {
  const r = await startHttpReceiver(answer);
  closers.push(() => r.close());
  return r;
}

describe('otlp-logs sink', () => {
  it('sends one log record per alert over gRPC with the trace and span id of the offending span', async () => {
    const receiver = await startGrpcReceiver('opentelemetry.proto.collector.logs.v1.LogsService');
    closers.push(() => receiver.close());
    const s = sinks([{ type: 'otlp-logs', endpoint: receiver.address, headers: { 'x-tenant': 'blue' } }]);
    const a1 = makeAlert({ severity: 'high', receivedAt: '2026-12-06T10:00:00.000Z' });
    const a2 = makeAlert({ severity: 'medium', detector: 'rate-burst', spanIds: ['1111111111111111'] });
    s.deliver(a1);
    s.deliver(a2);
    await s.flush();

    expect(receiver.requests).toHaveLength(2);
    expect(receiver.requests[0]!.metadata.get('x-tenant')).toEqual(['blue']);
    const records = receiver.requests.map((r) => {
      const req = decodeLogsRequest(r.body);
      expect(req.resourceLogs).toHaveLength(1);
      expect(attrs(req.resourceLogs[0]!.resource?.attributes as KV[])['service.name']).toBe('conduct');
      const logs = req.resourceLogs[0]!.scopeLogs![0]!.logRecords!;
      expect(logs).toHaveLength(1);
      return logs[0]!;
    });
    expect(hex(records[0]!.traceId)).toBe(a1.traceId);
    expect(hex(records[0]!.spanId)).toBe('00f067aa0ba902b7');
    expect(hex(records[1]!.traceId)).toBe(a2.traceId);
    expect(hex(records[1]!.spanId)).toBe('1111111111111111');
    expect(records[0]!.severityNumber).toBe(17);
    expect(records[0]!.severityText).toBe('ERROR');
    expect(records[1]!.severityNumber).toBe(13);
    expect(records[0]!.body?.stringValue).toBe(a1.title);
    expect(Number(records[0]!.timeUnixNano) / 1e6).toBeCloseTo(Date.parse(a1.eventTime), 0);
    const at = attrs(records[0]!.attributes as KV[]);
    expect(at).toMatchObject({
      'conduct.alert.id': a1.id,
      'conduct.identity': a1.identity,
      'conduct.detector': 'new-peer',
      'conduct.severity': 'high',
      'conduct.score': 82.5,
      'conduct.techniques': ['T1078.004', 'T1580'],
      'conduct.explanation': a1.explanation,
      'conduct.trace.link': a1.links.trace,
      // The incident's findings travel with it.
      'conduct.detectors': ['new-peer', 'new-operation'],
      'conduct.finding.count': 2,
      'conduct.findings': a1.findings.map((f) => `${f.detector} ${f.severity} ${f.score}: ${f.title}`),
      'conduct.alert.received_at': '2026-12-06T10:00:00.000Z',
    });
    expect(attrs(records[1]!.attributes as KV[])).not.toHaveProperty('conduct.alert.received_at');
    expect(await metric(registry, 'conduct_sink_deliveries_total', { sink: 'otlp-logs', outcome: 'delivered' })).toBe(2);
  });

  it('posts protobuf to {endpoint}/v1/logs over HTTP with the configured headers', async () => {
    const receiver = await http();
    const s = sinks([{ type: 'otlp-logs', endpoint: `${receiver.url}/otlp/`, protocol: 'http', headers: { authorization: 'Bearer t0k' } }]);
    const a = makeAlert({ severity: 'critical' });
    s.deliver(a);
    s.deliver({ ...a, status: 'malicious' }, 'feedback');
    await s.flush();

    expect(receiver.accepted.map((r) => r.path)).toEqual(['/otlp/v1/logs', '/otlp/v1/logs']);
    expect(receiver.accepted[0]!.headers['content-type']).toBe('application/x-protobuf');
    expect(receiver.accepted[0]!.headers.authorization).toBe('Bearer t0k');
    const [alertLog, feedbackLog] = receiver.accepted.map((r) => decodeLogsRequest(r.body).resourceLogs[0]!.scopeLogs![0]!.logRecords![0]!);
    expect(hex(alertLog!.traceId)).toBe(a.traceId);
    expect(hex(alertLog!.spanId)).toBe(a.spanIds[0]);
    expect(alertLog!.severityNumber).toBe(21);
    expect(attrs(feedbackLog!.attributes as KV[])).toMatchObject({ 'conduct.alert.event': 'feedback', 'conduct.alert.status': 'malicious' });
    expect(hex(feedbackLog!.traceId)).toBe(a.traceId);
  });
});

describe('finding-span sink', () => {
  it('writes the finding as a child span of the offending span, in the same trace (HTTP)', async () => {
    const receiver = await http();
    const s = sinks([{ type: 'finding-span', endpoint: receiver.url }]);
    const a = makeAlert({ detector: 'unusual-chain' });
    s.deliver(a);
    s.deliver(a, 'feedback'); // verdicts do not add spans
    await s.flush();

    expect(receiver.accepted).toHaveLength(1);
    expect(receiver.accepted[0]!.path).toBe('/v1/traces');
    const req = decodeTracesRequestFull(receiver.accepted[0]!.body);
    expect(attrs(req.resourceSpans[0]!.resource?.attributes as KV[])['service.name']).toBe('conduct');
    const spans = req.resourceSpans[0]!.scopeSpans![0]!.spans!;
    expect(spans).toHaveLength(1);
    const span = spans[0]!;
    expect(hex(span.traceId)).toBe(a.traceId);
    expect(hex(span.parentSpanId)).toBe(a.spanIds[0]);
    expect(hex(span.spanId)).toMatch(/^[0-9a-f]{16}$/);
    expect(hex(span.spanId)).not.toBe(a.spanIds[0]);
    expect(span.name).toBe('conduct.finding unusual-chain');
    expect(span.kind).toBe(1);
    expect(Number(span.startTimeUnixNano) / 1e6).toBeCloseTo(Date.parse(a.eventTime), 0);
    expect(span.endTimeUnixNano).toBe(span.startTimeUnixNano);
    expect(attrs(span.attributes as KV[])).toMatchObject({
      'conduct.identity': a.identity,
      'conduct.detector': 'unusual-chain',
      'conduct.severity': 'high',
      'conduct.score': 82.5,
      'conduct.techniques': a.techniques,
      'conduct.explanation': a.explanation,
    });
    // One span event per finding of the incident.
    expect(span.events!.map((e) => e.name)).toEqual(['conduct.finding new-peer', 'conduct.finding new-operation']);
    expect(attrs(span.events![1]!.attributes as KV[])).toMatchObject({
      'conduct.severity': 'medium',
      'conduct.finding.title': a.findings[1]!.title,
      'conduct.techniques': ['T1580'],
    });
  });

  it('exports over gRPC TraceService/Export', async () => {
    const receiver = await startGrpcReceiver('opentelemetry.proto.collector.trace.v1.TraceService');
    closers.push(() => receiver.close());
    const s = sinks([{ type: 'finding-span', endpoint: `http://${receiver.address}`, protocol: 'grpc' }]);
    const a = makeAlert();
    s.deliver(a);
    await s.flush();
    const span = decodeTracesRequestFull(receiver.requests[0]!.body).resourceSpans[0]!.scopeSpans![0]!.spans![0]!;
    expect(hex(span.traceId)).toBe(a.traceId);
    expect(hex(span.parentSpanId)).toBe(a.spanIds[0]);
  });

  it('via forward: hands the encoded finding span to the forwarder, retrying while it is full', async () => {
    const submitted: Buffer[] = [];
    let answers: Array<'full' | 'accepted'> = ['full', 'full', 'accepted'];
    const forwarder = {
      enabled: true,
      submitSpans(body: Buffer) {
        const answer = answers.shift() ?? 'accepted';
        if (answer === 'accepted') submitted.push(body);
        return answer;
      },
    };
    const s = createSinks([{ type: 'finding-span', via: 'forward', backoff: 1 }], { registry, forwarder });
    closers.push(() => s.stop());
    const a = makeAlert({ detector: 'fan-out' });
    s.deliver(a);
    s.deliver(a, 'feedback'); // verdicts do not add spans
    await s.flush();
    expect(answers).toHaveLength(0);
    expect(submitted).toHaveLength(1);
    const span = decodeTracesRequestFull(submitted[0]!).resourceSpans[0]!.scopeSpans![0]!.spans![0]!;
    expect(span.name).toBe('conduct.finding fan-out');
    expect(hex(span.traceId)).toBe(a.traceId);
    expect(hex(span.parentSpanId)).toBe(a.spanIds[0]);
    expect(await metric(registry, 'conduct_sink_retries_total', { sink: 'finding-span' })).toBe(2);
    expect(await metric(registry, 'conduct_sink_deliveries_total', { sink: 'finding-span', outcome: 'delivered' })).toBe(1);
  });

  it('via forward needs a forwarder with downstreams, and only finding-span takes it', () => {
    const off = { enabled: false, submitSpans: () => 'accepted' as const };
    expect(() => createSinks([{ type: 'finding-span', via: 'forward' }])).toThrow(/alerts\.sinks\[0\]\.via: forward needs/);
    expect(() => createSinks([{ type: 'finding-span', via: 'forward' }], { forwarder: off })).toThrow(SinkConfigError);
    expect(() => createSinks([unchecked({ type: 'webhook', endpoint: 'http://x', via: 'forward' })], { forwarder: { ...off, enabled: true } })).toThrow(
      /alerts\.sinks\[0\]\.via: only a finding-span sink/,
    );
  });

  it('counts an alert without a valid trace id as failed, without retrying', async () => {
    const receiver = await http();
    const s = sinks([{ type: 'finding-span', endpoint: receiver.url }]);
    s.deliver(makeAlert({ traceId: 'not-a-trace' }));
    await s.flush();
    expect(receiver.requests).toHaveLength(0);
    expect(await metric(registry, 'conduct_sink_deliveries_total', { sink: 'finding-span', outcome: 'failed' })).toBe(1);
  });
});

describe('webhook sink', () => {
  it('POSTs the alert as JSON, signed with HMAC-SHA256 over the exact body', async () => {
    const receiver = await http();
    const secret = 's3cr3t-with-ünïcode';
    const s = sinks([{ type: 'webhook', endpoint: `${receiver.url}/hooks/conduct`, secret }]);
    const a = makeAlert({ explanation: 'quotes " and unicode ✓ and <b>tags</b>' });
    s.deliver(a);
    s.deliver({ ...a, status: 'expected' }, 'feedback');
    await s.flush();

    expect(receiver.accepted).toHaveLength(2);
    for (const r of receiver.accepted) {
      expect(r.path).toBe('/hooks/conduct');
      const expected = `sha256=${createHmac('sha256', secret).update(r.body).digest('hex')}`;
      expect(r.headers['x-conduct-signature']).toBe(expected);
    }
    const first = JSON.parse(receiver.accepted[0]!.body.toString('utf8'));
    expect(first.event).toBe('alert');
    expect(first.alert).toEqual(a);
    expect(receiver.accepted[0]!.headers['x-conduct-event']).toBe('alert');
    const second = JSON.parse(receiver.accepted[1]!.body.toString('utf8'));
    expect(second.event).toBe('feedback');
    expect(second.alert.status).toBe('expected');
  });

  it('sends no signature header without a secret', async () => {
    const receiver = await http();
    const s = sinks([{ type: 'webhook', endpoint: receiver.url }]);
    s.deliver(makeAlert());
    await s.flush();
    expect(receiver.accepted[0]!.headers['x-conduct-signature']).toBeUndefined();
  });

  it('delivers exactly once to a receiver that fails twice, then succeeds', async () => {
    const receiver = await http((i) => (i < 2 ? 503 : 200));
    const s = sinks([{ type: 'webhook', endpoint: receiver.url, retries: 3, backoff: 10 }]);
    const a = makeAlert();
    s.deliver(a);
    await s.flush();

    expect(receiver.requests).toHaveLength(3);
    expect(receiver.accepted).toHaveLength(1);
    expect(JSON.parse(receiver.accepted[0]!.body.toString()).alert.id).toBe(a.id);
    // Every attempt carried the same body and the same delivery id.
    expect(new Set(receiver.requests.map((r) => r.body.toString())).size).toBe(1);
    expect(new Set(receiver.requests.map((r) => r.headers['x-conduct-delivery'])).size).toBe(1);
    expect(await metric(registry, 'conduct_sink_deliveries_total', { sink: 'webhook', outcome: 'delivered' })).toBe(1);
    expect(await metric(registry, 'conduct_sink_retries_total', { sink: 'webhook' })).toBe(2);
    expect(await metric(registry, 'conduct_sink_deliveries_total', { sink: 'webhook', outcome: 'failed' })).toBe(0);
  });

  it('abandons an attempt at the configured timeout and retries it; the next answer delivers', async () => {
    // The first request is never answered: only the sink's own deadline can end that attempt. The
    // deadline also bounds the answered attempt (connect, post, read the answer), which took over
    // 100 ms on a loaded machine and was abandoned too: ATTEMPT_TIMEOUT_MS leaves it room.
    const receiver = await http((i) => (i === 0 ? 'hang' : 200));
    const s = sinks([{ type: 'webhook', endpoint: receiver.url, timeout: ATTEMPT_TIMEOUT_MS, retries: 2, backoff: 5 }]);
    const a = makeAlert();
    s.deliver(a);
    await s.flush();
    expect(receiver.requests).toHaveLength(2);
    expect(receiver.accepted).toHaveLength(1);
    expect(receiver.accepted[0]!.headers['x-conduct-delivery']).toBe(receiver.requests[0]!.headers['x-conduct-delivery']);
    expect(await metric(registry, 'conduct_sink_retries_total', { sink: 'webhook' })).toBe(1);
    expect(await metric(registry, 'conduct_sink_deliveries_total', { sink: 'webhook', outcome: 'delivered' })).toBe(1);
  });

  it('gives up after the configured retries, and does not retry a permanent 400', async () => {
    const down = await http(() => 503);
    const bad = await http(() => 400);
    const s = sinks([
      { type: 'webhook', name: 'down', endpoint: down.url, retries: 2, backoff: 5 },
      { type: 'webhook', name: 'bad', endpoint: bad.url, retries: 5, backoff: 5 },
    ]);
    s.deliver(makeAlert());
    await s.flush();
    expect(down.requests).toHaveLength(3);
    expect(bad.requests).toHaveLength(1);
    expect(await metric(registry, 'conduct_sink_deliveries_total', { sink: 'down', outcome: 'failed' })).toBe(1);
    expect(await metric(registry, 'conduct_sink_deliveries_total', { sink: 'bad', outcome: 'failed' })).toBe(1);
  });

  it('a hanging receiver neither blocks deliver() nor delays the other sinks; its queue is bounded', async () => {
    const hanging = await http(() => 'hang');
    const healthy = await http();
    const file = join(dir, 'alerts.jsonl');
    const s = sinks(
      [
        { type: 'webhook', name: 'hanging', endpoint: hanging.url, queueSize: 5, timeout: 60_000 },
        { type: 'webhook', name: 'healthy', endpoint: healthy.url },
        { type: 'jsonl', path: file },
      ],
      50,
    );
    const alerts: Alert[] = Array.from({ length: 40 }, () => makeAlert());
    for (const a of alerts) s.deliver(a);

    // The healthy sinks get every alert while the hanging one still holds its first request.
    await healthy.waitAccepted(40);
    await until(async () => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).length === 40);
    await until(() => hanging.requests.length === 1);
    expect(hanging.accepted).toHaveLength(0);
    expect(await metric(registry, 'conduct_sink_queue_depth', { sink: 'hanging' })).toBe(5);
    expect(await metric(registry, 'conduct_sink_deliveries_total', { sink: 'hanging', outcome: 'dropped' })).toBe(35);
    // A request is recorded by the receiver before the sink has its answer and counts it.
    await until(async () => (await metric(registry, 'conduct_sink_deliveries_total', { sink: 'healthy', outcome: 'delivered' })) === 40);

    // stop() gives up on the hanging destination after the drain deadline and counts what it abandoned.
    await s.stop();
    expect(await metric(registry, 'conduct_sink_deliveries_total', { sink: 'hanging', outcome: 'dropped' })).toBe(40);
    expect(await metric(registry, 'conduct_sink_queue_depth', { sink: 'hanging' })).toBe(0);
    s.deliver(makeAlert()); // after stop: dropped, never thrown
    await s.stop(); // safe twice
  });

  it('a receiver that is down (connection refused) fails fast and leaves other sinks alone', async () => {
    const gone = await startHttpReceiver();
    const url = gone.url;
    await gone.close();
    const healthy = await http();
    const s = sinks([
      { type: 'webhook', name: 'gone', endpoint: url, retries: 1, backoff: 5 },
      { type: 'webhook', name: 'healthy', endpoint: healthy.url },
    ]);
    s.deliver(makeAlert());
    await s.flush();
    expect(healthy.accepted).toHaveLength(1);
    expect(await metric(registry, 'conduct_sink_deliveries_total', { sink: 'gone', outcome: 'failed' })).toBe(1);
  });

  it('formats a Slack message with severity, identity, explanation and the trace link, escaping alert text', async () => {
    const receiver = await http();
    const s = sinks([{ type: 'webhook', endpoint: receiver.url, format: 'slack' }]);
    const a = makeAlert({ identity: 'agent:<https://evil.example|click me>', explanation: 'Normal: 3 peers & 2 ops.' });
    s.deliver(a);
    await s.flush();
    const msg = JSON.parse(receiver.accepted[0]!.body.toString());
    expect(msg.text).toContain('[HIGH]');
    const all = JSON.stringify(msg.blocks);
    expect(all).toContain('agent:&lt;https://evil.example|click me&gt;');
    expect(all).not.toContain('<https://evil.example');
    expect(all).toContain('Normal: 3 peers &amp; 2 ops.');
    expect(all).toContain(`<${a.links.trace}|Open trace ${a.traceId}>`);
    expect(msg.blocks[0].type).toBe('header');
    // The incident's findings, one line each.
    expect(all).toContain('*Findings (2)*');
    expect(all).toContain(`new-operation medium 62: ${a.findings[1]!.title}`);
  });

  it('formats an Alertmanager /api/v2/alerts body, resolving the alert on an expected verdict', async () => {
    const receiver = await http();
    const s = sinks([{ type: 'webhook', endpoint: `${receiver.url}/api/v2/alerts`, format: 'alertmanager' }]);
    const a = makeAlert();
    s.deliver(a);
    s.deliver({ ...a, status: 'expected' }, 'feedback');
    await s.flush();
    expect(receiver.accepted[0]!.path).toBe('/api/v2/alerts');
    const [firing] = JSON.parse(receiver.accepted[0]!.body.toString());
    expect(firing.labels).toMatchObject({ alertname: 'conduct-new-peer', identity: a.identity, detector: 'new-peer', severity: 'high' });
    expect(firing.annotations).toMatchObject({ summary: a.title, description: a.explanation, trace: a.links.trace, detectors: 'new-peer,new-operation' });
    expect(firing.annotations.findings.split('\n')).toHaveLength(2);
    expect(firing.startsAt).toBe(a.firstSeen);
    expect(firing.generatorURL).toBe(a.links.trace);
    expect(firing.endsAt).toBeUndefined();
    const [resolved] = JSON.parse(receiver.accepted[1]!.body.toString());
    expect(Date.parse(resolved.endsAt)).toBeGreaterThan(0);
  });

  it('skips alerts below minSeverity', async () => {
    const receiver = await http();
    const s = sinks([{ type: 'webhook', endpoint: receiver.url, minSeverity: 'high' }]);
    s.deliver(makeAlert({ severity: 'low', id: 'low-one' }));
    s.deliver(makeAlert({ severity: 'critical', id: 'critical-one' }));
    await s.flush();
    expect(receiver.accepted.map((r) => JSON.parse(r.body.toString()).alert.id)).toEqual(['critical-one']);
  });
});

describe('ocsf sink', () => {
  it('writes Detection Findings (class 2004) as JSON lines that carry every required field and the trace link', async () => {
    const path = join(dir, 'nested', 'siem', 'findings.jsonl');
    const s = sinks([{ type: 'ocsf', path }]);
    const a = makeAlert({ techniques: ['T1078.004', 'T1580', 'T9999'], severity: 'critical', score: 91.4, receivedAt: '2026-12-06T10:00:00.000Z' });
    s.deliver(a);
    s.deliver({ ...a, status: 'expected' }, 'feedback');
    await s.flush();

    const lines = (await readFile(path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    for (const f of lines) expect(checkDetectionFinding(f)).toEqual([]);
    const [created, updated] = lines;
    expect(created).toMatchObject({
      class_uid: 2004,
      category_uid: 2,
      type_uid: 200401,
      activity_id: 1,
      severity_id: 5,
      status_id: 1,
      confidence_score: 91,
      time: Date.parse(a.firstSeen),
    });
    expect(created.finding_info).toMatchObject({ uid: a.id, title: a.title, desc: a.explanation, types: ['new-peer', 'new-operation'], src_url: a.links.trace });
    // Every finding of the incident: its own evidence and, unmapped, its severity, score and keys.
    expect(created.evidences).toHaveLength(2);
    expect(created.evidences[1].data).toMatchObject({ detector: 'new-operation', span_id: '00f067aa0ba902b8' });
    expect(created.unmapped.conduct.findings.map((f: { detector: string; severity: string }) => [f.detector, f.severity])).toEqual([
      ['new-peer', 'high'],
      ['new-operation', 'medium'],
    ]);
    expect(created.finding_info.related_events[0].uid).toBe(a.traceId);
    expect(created.metadata).toMatchObject({ correlation_uid: a.traceId, product: { name: 'conduct', version: '9.9.9-test' }, logged_time: Date.parse('2026-12-06T10:00:00.000Z') });
    expect(created.actor.user).toMatchObject({ name: a.identity, uid: a.identity, type: 'certificate' });
    expect(created.evidences[0].data).toMatchObject({ trace_id: a.traceId, span_id: a.spanIds[0], peer: 'iam.googleapis.com' });
    expect(created.evidences[0].api.operation).toBe('POST /v1/projects/{id}/serviceAccounts');
    expect(created.finding_info.attacks).toEqual([
      {
        technique: { uid: 'T1078', name: 'Valid Accounts' },
        sub_technique: { uid: 'T1078.004', name: 'Cloud Accounts' },
        tactic: { uid: 'TA0005', name: 'Defense Evasion' },
      },
      { technique: { uid: 'T1580', name: 'Cloud Infrastructure Discovery' }, tactic: { uid: 'TA0007', name: 'Discovery' } },
      { technique: { uid: 'T9999' } },
    ]);
    expect(updated).toMatchObject({ activity_id: 2, type_uid: 200402, status_id: 3, status: 'Suppressed' });
  });

  it('the required-field check catches a finding without them', () => {
    expect(checkDetectionFinding({ class_uid: 2004, finding_info: { title: 'x' } })).toEqual(
      expect.arrayContaining(['activity_id is required', 'metadata is required', 'finding_info.uid is required']),
    );
  });

  it('POSTs findings to an endpoint, signed when a secret is set', async () => {
    const receiver = await http();
    const s = sinks([{ type: 'ocsf', endpoint: `${receiver.url}/services/collector/raw`, secret: 'k', headers: { authorization: 'Splunk abc' } }]);
    const a = makeAlert();
    s.deliver(a);
    await s.flush();
    const r = receiver.accepted[0]!;
    expect(r.headers.authorization).toBe('Splunk abc');
    expect(r.headers['x-conduct-signature']).toBe(`sha256=${createHmac('sha256', 'k').update(r.body).digest('hex')}`);
    const f = JSON.parse(r.body.toString());
    expect(checkDetectionFinding(f)).toEqual([]);
    expect(f.finding_info.src_url).toBe(a.links.trace);
  });
});

describe('jsonl sink', () => {
  it('appends one parseable alert per line, creating the directory', async () => {
    const path = join(dir, 'a', 'b', 'alerts.jsonl');
    const s = sinks([{ type: 'jsonl', path }]);
    const alerts = [makeAlert(), makeAlert({ title: 'line\nbreak and "quotes"' }), makeAlert()];
    for (const a of alerts) s.deliver(a);
    s.deliver({ ...alerts[0]!, status: 'acknowledged' }, 'feedback');
    await s.flush();
    const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(lines.map((l) => l.id)).toEqual([...alerts.map((a) => a.id), alerts[0]!.id]);
    expect(lines[1].title).toBe('line\nbreak and "quotes"');
    expect(lines.map((l) => l.event)).toEqual(['alert', 'alert', 'alert', 'feedback']);
    expect(lines[3].status).toBe('acknowledged');
    expect(lines[0].findings).toEqual(alerts[0]!.findings);
    expect(lines[0].detectors).toEqual(['new-peer', 'new-operation']);
  });

  it('delivers the alert as it was when handed over, even if the caller changes it afterwards', async () => {
    const path = join(dir, 'alerts.jsonl');
    const s = sinks([{ type: 'jsonl', path }]);
    const a = makeAlert();
    s.deliver(a);
    a.count = 99;
    await s.flush();
    expect(JSON.parse(await readFile(path, 'utf8')).count).toBe(1);
  });
});

describe('createSinks configuration', () => {
  it('names the key of a missing setting', () => {
    expect(() => createSinks([{ type: 'jsonl' }, unchecked({ type: 'webhook' })])).toThrow(SinkConfigError);
    expect(() => createSinks([{ type: 'jsonl' }, unchecked({ type: 'webhook' })])).toThrow(/alerts\.sinks\[1\]\.endpoint/);
    expect(() => createSinks([unchecked({ type: 'webhook', endpoint: 'http://x', format: 'teams' })])).toThrow(/alerts\.sinks\[0\]\.format/);
    expect(() => createSinks([{ type: 'ocsf' }])).toThrow(/alerts\.sinks\[0\]\.path/);
  });

  it('labels several sinks of one type apart', () => {
    const s = sinks([{ type: 'jsonl', path: join(dir, 'x') }, { type: 'jsonl', path: join(dir, 'y') }, { type: 'webhook', name: 'slack', endpoint: 'http://127.0.0.1:9', format: 'slack' }]);
    expect(s.names).toEqual(['jsonl', 'jsonl-2', 'slack']);
  });
});
