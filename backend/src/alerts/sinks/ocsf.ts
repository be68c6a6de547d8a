import type { Alert, AlertStatus, Detector, Severity } from '../model.js';
import { ocsfAttack } from './attack.js';
import { createLineWriter } from './line-writer.js';
import { clip, findingsOf, isoToMs } from './otlp.js';
import { postHttp } from './transport.js';
import { deliveryId, type Sink, type SinkEvent } from './types.js';
import { preparePost, type PreparedPost } from './webhook.js';
import { z } from 'zod';
import { httpUrl, sinkDeliveryFields, sinkHeaders } from './settings.js';

/** `alerts.sinks[]` entry of an `ocsf` sink: a file (`path`, `-` for stdout) or an HTTP `endpoint`. */
export const ocsfSinkSchema = z
  .object({
    type: z.literal('ocsf'),
    ...sinkDeliveryFields,
    /** File to append OCSF JSON lines to (`-` for stdout); wins over `endpoint`. */
    path: z.string().min(1).optional(),
    /** URL to POST each OCSF finding to. */
    endpoint: httpUrl.optional(),
    headers: sinkHeaders,
    /** HMAC-SHA256 secret for the X-Conduct-Signature header of the POSTs. */
    secret: z.string().optional(),
  })
  .strict();

/** The OCSF schema version the findings follow. */
export const OCSF_SCHEMA_VERSION = '1.8.0';

/** Detection Finding: category Findings (2), class 2004; type_uid = class_uid * 100 + activity_id. */
export const OCSF = {
  categoryUid: 2,
  categoryName: 'Findings',
  classUid: 2004,
  className: 'Detection Finding',
} as const;

const ACTIVITY = { create: { id: 1, name: 'Create' }, update: { id: 2, name: 'Update' } } as const;

/** OCSF severity_id: 1 Informational .. 5 Critical. */
export const OCSF_SEVERITY: Record<Severity, { id: number; name: string }> = {
  info: { id: 1, name: 'Informational' },
  low: { id: 2, name: 'Low' },
  medium: { id: 3, name: 'Medium' },
  high: { id: 4, name: 'High' },
  critical: { id: 5, name: 'Critical' },
};

/**
 * Finding status from the operator's verdict: open is New, acknowledged is In Progress, expected
 * (benign) is Suppressed, malicious (triage done, a confirmed incident) is Resolved; superseded (a
 * later part of the trace showed the finding did not hold) is Suppressed, as a benign one.
 */
export const OCSF_STATUS: Record<AlertStatus, { id: number; name: string }> = {
  open: { id: 1, name: 'New' },
  acknowledged: { id: 2, name: 'In Progress' },
  expected: { id: 3, name: 'Suppressed' },
  malicious: { id: 4, name: 'Resolved' },
  superseded: { id: 3, name: 'Suppressed' },
};

/** OCSF analytic type per detector: policy rules, statistical rate detectors, behavioural baselines. */
function analyticType(detector: Detector): { type_id: number; type: string } {
  if (detector === 'policy') return { type_id: 1, type: 'Rule' };
  if (detector === 'rate-burst' || detector === 'fan-out') return { type_id: 3, type: 'Statistical' };
  return { type_id: 2, type: 'Behavioral' };
}

/** Reads a string (or the first string of a list) from the alert's free-form evidence. */
function evidenceText(alert: Alert, ...keys: string[]): string | undefined {
  const ev = alert.evidence;
  if (!ev || typeof ev !== 'object') return undefined;
  for (const key of keys) {
    const v = ev[key];
    if (typeof v === 'string' && v) return clip(v, 1024);
    if (Array.isArray(v) && typeof v[0] === 'string') return clip(v[0], 1024);
  }
  return undefined;
}

/** Builds the OCSF Detection Finding (class 2004) for one alert event. */
export function ocsfFinding(event: SinkEvent, version: string, nowMs = Date.now()): Record<string, unknown> {
  const a = event.alert;
  const activity = event.kind === 'alert' ? ACTIVITY.create : ACTIVITY.update;
  const severity = OCSF_SEVERITY[a.severity] ?? OCSF_SEVERITY.info;
  const status = OCSF_STATUS[a.status] ?? OCSF_STATUS.open;
  const firstSeen = isoToMs(a.firstSeen, nowMs);
  const lastSeen = isoToMs(a.lastSeen, firstSeen);
  const eventTime = isoToMs(a.eventTime, firstSeen);
  const spanId = a.spanIds?.[0];
  const techniques = Array.isArray(a.techniques) ? a.techniques.map(String).slice(0, 32) : [];
  const attacks = techniques.map(ocsfAttack);
  const user = {
    name: clip(String(a.identity), 1024),
    uid: clip(String(a.identity), 1024),
    type: String(a.identityKind ?? 'unknown'),
    type_id: 4, // Service: conduct watches non-human identities.
  };
  const actor = { user, app_name: user.name };
  const peer = evidenceText(a, 'peer', 'newPeers', 'peers');
  const operation = evidenceText(a, 'operation', 'newOperations', 'operations') ?? String(a.detector);
  const evidence: Record<string, unknown> = {
    actor,
    api: { operation, ...(peer ? { service: { name: peer } } : {}) },
    data: { trace_id: a.traceId, span_id: spanId ?? '', peer: peer ?? '', operation },
  };
  if (peer) evidence.dst_endpoint = { svc_name: peer };
  // One evidence per further finding of the incident: its detector, title and offending span.
  const more = findingsOf(a)
    .slice(1, 16)
    .map((f) => ({
      actor,
      api: { operation: String(f.detector) },
      data: { trace_id: a.traceId, span_id: f.spanIds?.[0] ?? '', detector: String(f.detector), title: clip(String(f.title), 1024) },
    }));
  const detectors = Array.isArray(a.detectors) && a.detectors.length > 0 ? a.detectors.map(String) : [String(a.detector)];

  const finding: Record<string, unknown> = {
    activity_id: activity.id,
    activity_name: activity.name,
    category_uid: OCSF.categoryUid,
    category_name: OCSF.categoryName,
    class_uid: OCSF.classUid,
    class_name: OCSF.className,
    type_uid: OCSF.classUid * 100 + activity.id,
    type_name: `${OCSF.className}: ${activity.name}`,
    severity_id: severity.id,
    severity: severity.name,
    time: event.kind === 'alert' ? firstSeen : nowMs,
    start_time: firstSeen,
    end_time: lastSeen,
    count: Number(a.count) || 1,
    message: clip(String(a.title), 1024),
    status_id: status.id,
    status: status.name,
    status_detail: `conduct alert status: ${String(a.status)}`,
    confidence_score: Math.max(0, Math.min(100, Math.round(Number(a.score) || 0))),
    is_alert: event.kind === 'alert',
    metadata: {
      version: OCSF_SCHEMA_VERSION,
      product: { name: 'conduct', vendor_name: 'conduct', version },
      correlation_uid: a.traceId,
      uid: event.delivery ? deliveryId(event.delivery) : `${String(a.id)}:${event.kind}:${a.status}`,
      profiles: ['host', 'security_control', 'trace'],
      log_name: 'alerts',
      // When conduct received the spans of the latest occurrence (wall clock).
      ...(typeof a.receivedAt === 'string' && Number.isFinite(Date.parse(a.receivedAt)) ? { logged_time: Date.parse(a.receivedAt) } : {}),
    },
    finding_info: {
      uid: String(a.id),
      title: clip(String(a.title), 1024),
      desc: clip(String(a.explanation ?? '')),
      types: detectors,
      src_url: a.links?.trace ?? '',
      created_time: firstSeen,
      first_seen_time: firstSeen,
      last_seen_time: lastSeen,
      analytic: { name: String(a.detector), uid: String(a.detector), ...analyticType(a.detector) },
      attacks,
      related_events: [{ uid: a.traceId, type: 'trace', title: 'OpenTelemetry trace holding the evidence' }],
    },
    actor,
    evidences: [evidence, ...more],
    trace: {
      uid: a.traceId,
      ...(spanId ? { span: { uid: spanId, start_time: eventTime, end_time: eventTime } } : {}),
    },
    unmapped: {
      conduct: {
        detector: a.detector,
        detectors,
        score: a.score,
        techniques,
        identity_kind: a.identityKind,
        findings: findingsOf(a).slice(0, 16).map((f) => ({
          detector: f.detector,
          severity: f.severity,
          score: f.score,
          title: clip(String(f.title), 1024),
          techniques: f.techniques,
          keys: Array.isArray(f.keys) ? f.keys.slice(0, 32).map((k) => clip(String(k), 256)) : [],
          span_ids: Array.isArray(f.spanIds) ? f.spanIds.slice(0, 32) : [],
        })),
      },
    },
  };
  if (attacks.length > 0) finding.attacks = attacks;
  return finding;
}

export interface OcsfOptions {
  /** JSON-lines file (`-` for stdout); or */
  path?: string;
  /** a URL each finding is POSTed to as JSON. */
  url?: string;
  headers: Record<string, string>;
  secret?: string;
  timeoutMs: number;
  version: string;
}

/** `ocsf`: OCSF Detection Findings as JSON lines in a file, or POSTed one per request. */
export function createOcsfSink(opts: OcsfOptions): Sink<string | PreparedPost> {
  const writer = opts.path !== undefined ? createLineWriter(opts.path) : undefined;
  const url = opts.url;
  return {
    accepts: ['alert', 'feedback'],
    prepare(event) {
      const json = JSON.stringify(ocsfFinding(event, opts.version));
      return writer ? `${json}\n` : preparePost(json, event, opts);
    },
    send(payload, signal) {
      if (typeof payload === 'string') return writer!.write(payload);
      return postHttp({ url: url!, body: payload.body, headers: payload.headers, timeoutMs: opts.timeoutMs }, signal);
    },
  };
}
