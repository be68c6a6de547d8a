/**
 * Issue 4 item 7: `/metrics` covers the whole pipeline. One running conduct gets traffic from the
 * official exporters over both protocols, a bad request, a request with an invalid span, and a
 * policy breach whose alert goes to a working and a failing sink and through the forwarder; the
 * scrape must then show every family with values that match what was sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { recordingHttp, refusedPort, until, type RecordingHttp } from './support/receivers.js';
import { MINUTE, SpanKind, Traffic, type SentTrace } from './support/traffic.js';

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition: the samples of every family, and the families declared. */
function parseMetrics(text: string): { types: Map<string, string>; samples: Map<string, Sample[]> } {
  const types = new Map<string, string>();
  const samples = new Map<string, Sample[]>();
  for (const line of text.split('\n')) {
    const declared = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (declared) {
      types.set(declared[1]!, declared[2]!);
      continue;
    }
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const list = samples.get(m[1]!) ?? [];
    list.push({ labels, value: Number(m[3]) });
    samples.set(m[1]!, list);
  }
  return { types, samples };
}

const T0 = Date.UTC(2026, 4, 6, 10, 0, 0);
const DEPLOYER = { 'service.namespace': 'ci', 'service.name': 'deployer' };
const FRONTEND = { 'service.namespace': 'web', 'service.name': 'frontend' };
/** Calls the deployer makes within its policy. */
const QUIET_TRACES = 3;

let conduct: TestConduct;
let httpTraffic: Traffic;
let grpcTraffic: Traffic;
let downstream: RecordingHttp;
let offending: SentTrace;
let scrape: ReturnType<typeof parseMetrics>;
let alerts: Array<{ id: string; detector: string; detectors: string[]; severity: string; traceId: string }>;
let alertIds: string[];

/** Sum of a family's samples whose labels include `labels`. */
function sum(name: string, labels: Record<string, string> = {}): number {
  return (scrape.samples.get(name) ?? [])
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((acc, s) => acc + s.value, 0);
}

async function readMetrics(): Promise<ReturnType<typeof parseMetrics>> {
  const res = await fetch(`${conduct.api}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return parseMetrics(await res.text());
}

beforeAll(async () => {
  downstream = await recordingHttp();
  const failingPort = await refusedPort();
  conduct = await startTestConduct({
    // Identities enforce after 3 calls. One pending span at most, and neither idleness nor the
    // watermark completes a trace: every new trace completes the one before it early (counted as
    // evicted); only the flush completes the last.
    learning: { minCalls: QUIET_TRACES, period: 0 },
    stitching: { idle: '1h', lateness: '1h', maxPendingSpans: 1 },
    policies: [{ match: 'svc:ci/*', expectedPeers: ['kube-api'] }],
    alerts: {
      sinks: [
        { type: 'webhook', name: 'ok-hook', endpoint: `${downstream.url}/hook` },
        { type: 'webhook', name: 'broken-hook', endpoint: `http://127.0.0.1:${failingPort}/hook`, retries: 0 },
      ],
    },
    forward: [{ endpoint: downstream.url, protocol: 'http' }],
  });
  httpTraffic = new Traffic(conduct, 'http-proto');
  grpcTraffic = new Traffic(conduct, 'grpc');

  for (let i = 0; i < QUIET_TRACES; i++) {
    await httpTraffic.trace(T0 + i * MINUTE, DEPLOYER, {
      name: 'apply',
      kind: SpanKind.CLIENT,
      at: 0,
      attributes: { 'http.request.method': 'POST', 'url.full': 'https://kube-api/apis/apps/v1/deployments', 'peer.service': 'kube-api' },
    });
  }
  await grpcTraffic.trace(T0, FRONTEND, {
    name: 'GET',
    kind: SpanKind.CLIENT,
    at: 0,
    attributes: { 'http.request.method': 'GET', 'url.full': 'http://cart/items', 'peer.service': 'cart' },
  });
  offending = await httpTraffic.trace(T0 + 10 * MINUTE, DEPLOYER, {
    name: 'upload',
    kind: SpanKind.CLIENT,
    at: 0,
    attributes: { 'http.request.method': 'PUT', 'url.full': 'https://drop.example.com/x', 'server.address': 'drop.example.com' },
  });

  // A body that is not OTLP, and a request holding one span with an all-zero trace id.
  const post = (body: string, type: string) => fetch(`${conduct.http}/v1/traces`, { method: 'POST', headers: { 'content-type': type }, body });
  expect((await post('not protobuf at all', 'application/x-protobuf')).status).toBe(400);
  const invalidSpan = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'broken' } }] },
        scopeSpans: [{ spans: [{ traceId: '0'.repeat(32), spanId: '1'.repeat(16), name: 'x', startTimeUnixNano: '1', endTimeUnixNano: '2' }] }],
      },
    ],
  };
  expect((await post(JSON.stringify(invalidSpan), 'application/json')).status).toBe(200);

  await conduct.running.flush({ sinksTimeoutMs: 15_000 });
  alerts = (await conduct.get<{ alerts: typeof alerts }>('/api/v1/alerts?limit=100')).body.alerts;
  alertIds = alerts.map((a) => a.id);
  // The forwarder sends in the background; wait until the downstream has every accepted request.
  await until(() => downstream.received.filter((r) => r.path === '/v1/traces').length === QUIET_TRACES + 3);
  scrape = await readMetrics();
});

afterAll(async () => {
  await httpTraffic?.close();
  await grpcTraffic?.close();
  await conduct?.dispose();
  await downstream?.close();
});

describe('/metrics covers the pipeline', () => {
  it('receivers: spans received by protocol, rejected by reason, requests by protocol and status', () => {
    expect(scrape.types.get('conduct_receiver_spans_received_total')).toBe('counter');
    expect(sum('conduct_receiver_spans_received_total', { protocol: 'http' })).toBe(QUIET_TRACES + 1);
    expect(sum('conduct_receiver_spans_received_total', { protocol: 'grpc' })).toBe(1);
    expect(sum('conduct_receiver_spans_rejected_total', { protocol: 'http', reason: 'invalid-span' })).toBe(1);
    expect(sum('conduct_receiver_requests_rejected_total', { protocol: 'http', reason: 'decode-error' })).toBe(1);
    expect(sum('conduct_receiver_requests_total', { protocol: 'http', code: '200' })).toBe(QUIET_TRACES + 2);
    expect(sum('conduct_receiver_requests_total', { protocol: 'http', code: '400' })).toBe(1);
    expect(sum('conduct_receiver_requests_total', { protocol: 'grpc' })).toBe(1);
  });

  it('stitching: traces completed by reason, including those expired early', () => {
    const traces = QUIET_TRACES + 2;
    expect(sum('conduct_stitch_traces_completed_total')).toBe(traces);
    expect(sum('conduct_stitch_traces_completed_total', { reason: 'evicted' })).toBe(traces - 1);
    expect(sum('conduct_stitch_traces_completed_total', { reason: 'flush' })).toBe(1);
    expect(scrape.types.get('conduct_stitch_pending_traces')).toBe('gauge');
    expect(sum('conduct_stitch_pending_traces')).toBe(0);
  });

  it('calls and chains derived and stored', () => {
    const calls = QUIET_TRACES + 2;
    expect(sum('conduct_pipeline_calls_total')).toBe(calls);
    expect(sum('conduct_pipeline_chains_total')).toBe(calls);
    expect(sum('conduct_calls_stored_total')).toBe(calls);
    expect(sum('conduct_chains_stored_total')).toBe(calls);
  });

  it('identities by state: the deployer enforces, the frontend still learns', () => {
    expect(scrape.types.get('conduct_identities')).toBe('gauge');
    expect(sum('conduct_identities', { state: 'enforcing' })).toBe(1);
    expect(sum('conduct_identities', { state: 'learning' })).toBe(1);
  });

  it('alerts by detector and severity, as raised and as still open', () => {
    // The policy breach (and the detectors that agree with it, the deployer being enforcing): one
    // incident on the trace, counted under its leading detector.
    const breach = alerts.filter((a) => a.detectors.includes('policy'));
    expect(breach.map((a) => a.traceId)).toEqual([offending.traceId]);
    expect(sum('conduct_alerts_total', { detector: breach[0]!.detector, event: 'alert' })).toBe(alerts.filter((a) => a.detector === breach[0]!.detector).length);
    expect(scrape.types.get('conduct_alerts_open')).toBe('gauge');
    for (const a of alerts) {
      const same = alerts.filter((b) => b.detector === a.detector && b.severity === a.severity).length;
      expect(sum('conduct_alerts_total', { detector: a.detector, severity: a.severity, event: 'alert' })).toBe(same);
      expect(sum('conduct_alerts_open', { detector: a.detector, severity: a.severity })).toBe(same);
    }
    expect(sum('conduct_alerts_total', { event: 'alert' })).toBe(alerts.length);
    expect(sum('conduct_alerts_open')).toBe(alerts.length);
  });

  it('sinks: deliveries and failures per sink, queue depths', () => {
    expect(sum('conduct_sink_deliveries_total', { sink: 'ok-hook', outcome: 'delivered' })).toBe(alertIds.length);
    // Given up after its retries: dead letters, kept in the outbox.
    expect(sum('conduct_sink_deliveries_total', { sink: 'broken-hook', outcome: 'dead' })).toBe(alertIds.length);
    expect(sum('conduct_sink_outbox_entries', { sink: 'broken-hook', state: 'dead' })).toBe(alertIds.length);
    expect(sum('conduct_sink_outbox_entries', { sink: 'ok-hook', state: 'delivered' })).toBe(alertIds.length);
    expect(sum('conduct_sink_deliveries_total', { sink: 'broken-hook', outcome: 'delivered' })).toBe(0);
    expect(scrape.samples.get('conduct_sink_queue_depth')?.map((s) => s.labels.sink).sort()).toEqual(['broken-hook', 'ok-hook']);
    expect(sum('conduct_sink_queue_depth')).toBe(0);
    expect(downstream.received.filter((r) => r.path === '/hook')).toHaveLength(alertIds.length);
  });

  it('queues and forwarding: pipeline and forward queue depths, forwarded requests and spans', () => {
    expect(scrape.types.get('conduct_pipeline_queue_depth')).toBe('gauge');
    expect(sum('conduct_pipeline_queue_depth')).toBe(0);
    expect(scrape.samples.get('conduct_forward_queue_requests')).toHaveLength(1);
    expect(sum('conduct_forward_queue_requests')).toBe(0);
    // Every request that decoded went on, the one with the invalid span included.
    expect(sum('conduct_forward_requests_total')).toBe(QUIET_TRACES + 3);
    expect(sum('conduct_forward_spans_total')).toBe(QUIET_TRACES + 3);
  });

  it('detection: chains learned and held, alerts raised, refusals, folds, errors and releases', () => {
    // The deployer's quiet chains and the frontend's are learned; the breach is held out of the
    // deployer's baseline (an alert of medium or above) until a verdict.
    expect(scrape.types.get('conduct_detection_chains_total')).toBe('counter');
    expect(sum('conduct_detection_chains_total', { outcome: 'learned' })).toBe(QUIET_TRACES + 1);
    expect(sum('conduct_detection_chains_total', { outcome: 'held' })).toBe(1);
    expect(sum('conduct_detection_alerts_total', { outcome: 'raised' })).toBe(alerts.length);
    expect(sum('conduct_detection_alerts_total', { outcome: 'repeated' })).toBe(0);
    expect(sum('conduct_detection_alerts_total', { outcome: 'superseded' })).toBe(0);
    // Families that counted nothing in this run are there, at 0.
    for (const family of [
      'conduct_detection_identities_refused_total',
      'conduct_detection_findings_folded_total',
      'conduct_detection_detector_errors_total',
      'conduct_detection_releases_withheld_total',
      'conduct_detection_release_holds_refused_total',
    ]) {
      expect(scrape.types.get(family), family).toBe('counter');
      expect(sum(family), family).toBe(0);
    }
    expect(scrape.samples.get('conduct_detection_release_chains_total')?.map((s) => s.labels.outcome).sort()).toEqual(['dropped', 'held', 'learned']);
    expect(scrape.types.get('conduct_detection_releases_held')).toBe('gauge');
    expect(sum('conduct_detection_releases_held')).toBe(0);
  });

  it('store size in bytes', () => {
    expect(scrape.types.get('conduct_store_bytes')).toBe('gauge');
    expect(sum('conduct_store_bytes')).toBeGreaterThanOrEqual(4096);
  });

  it('the open-alerts gauge follows verdicts', async () => {
    const before = sum('conduct_alerts_open');
    const res = await conduct.post(`/api/v1/alerts/${alertIds[0]}/feedback`, { verdict: 'acknowledged' });
    expect(res.status).toBe(200);
    const after = await readMetrics();
    const open = (after.samples.get('conduct_alerts_open') ?? []).reduce((a, s) => a + s.value, 0);
    expect(open).toBe(before - 1);
  });
});
