/**
 * An alert, as the API returns it and as every sink receives it (DESIGN.md, "Alerts").
 * All times are ISO 8601 strings in UTC.
 */

export const DETECTORS = [
  'new-peer',
  'new-operation',
  'unusual-chain',
  'rate-burst',
  'fan-out',
  'new-source',
  'credential-reuse',
  'policy',
] as const;
export type Detector = (typeof DETECTORS)[number];

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * `superseded` is no verdict: a later part of the alert's trace completed the calls it was raised
 * on and they no longer show what it found (the reason in `evidence.superseded`).
 */
export const ALERT_STATUSES = ['open', 'acknowledged', 'expected', 'malicious', 'superseded'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

/** Feedback verdicts accepted by `POST /api/v1/alerts/{id}/feedback`. */
export type Verdict = Exclude<AlertStatus, 'open' | 'superseded'>;

export interface Alert {
  /** Stable id (string; unique across the store). */
  id: string;
  identity: string;
  identityKind: string;
  detector: Detector;
  severity: Severity;
  /** 0-100. */
  score: number;
  /** One line, e.g. "ci-deployer contacted a new peer: iam.googleapis.com". */
  title: string;
  /** Plain sentences: what is normal for this identity and what this chain did instead. */
  explanation: string;
  traceId: string;
  /** The offending spans; the first is the one to point at (finding span parent, log span id). */
  spanIds: string[];
  /** Event time of the offending call. */
  eventTime: string;
  firstSeen: string;
  lastSeen: string;
  /** Deduplicated repeats (1 for a fresh alert). */
  count: number;
  status: AlertStatus;
  /** MITRE ATT&CK technique ids, e.g. T1580. */
  techniques: string[];
  links: { trace: string };
  /** Structured evidence for the UI and sinks: the baseline facts and the offending values. */
  evidence?: Record<string, unknown>;
}

export const SEVERITY_RANK: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** Builds `links.trace` from the `alerts.traceUrl` template. */
export function traceLink(template: string, traceId: string, spanId = ''): string {
  return template.replaceAll('{traceId}', traceId).replaceAll('{spanId}', spanId);
}
