/**
 * An alert, as the API returns it and as every sink receives it (README.md, "HTTP API"; the sinks: backend/src/alerts/README.md).
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
  'release',
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

/**
 * Statuses of a closed alert: an operator gave a verdict, or a later part of its trace superseded
 * it. Only closed alerts age out (`storage.alertRetention`); an open one is kept however old.
 */
export const CLOSED_ALERT_STATUSES: readonly AlertStatus[] = ['acknowledged', 'expected', 'malicious', 'superseded'];

/** Feedback verdicts accepted by `POST /api/v1/alerts/{id}/feedback`. */
export type Verdict = Exclude<AlertStatus, 'open' | 'superseded'>;

/** An ATT&CK technique as a finding cites it: the id, its name and its primary tactic. */
export interface AttackTechnique {
  id: string;
  name: string;
  tactic?: string;
}

/** One detector's finding inside an incident, with its own evidence. */
export interface AlertFinding {
  detector: Detector;
  severity: Severity;
  /** 0-100. */
  score: number;
  title: string;
  explanation: string;
  spanIds: string[];
  /** MITRE ATT&CK technique ids. */
  techniques: string[];
  /** The same techniques with their names (ids conduct has no name for are left out here). */
  attack?: AttackTechnique[];
  /** What was found, e.g. `peer:s3.amazonaws.com`; repeats of the same keys count on the incident. */
  keys: string[];
  evidence?: Record<string, unknown>;
}

/**
 * An alert is one incident: an identity's findings on one trace. The top-level fields describe
 * the incident as a whole (the leading finding's detector, title and evidence; the worst
 * severity and score; every finding's techniques and spans).
 */
export interface Alert {
  /** Stable id (string; unique across the store). */
  id: string;
  identity: string;
  identityKind: string;
  /** The leading (worst) finding's detector. */
  detector: Detector;
  /** Every finding's detector, the leading one first. */
  detectors: Detector[];
  /** The findings, worst first. */
  findings: AlertFinding[];
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
  /**
   * Wall-clock time (ISO 8601) at which conduct received the spans of the alert's latest
   * occurrence (the one `lastSeen` is the event time of); far from the event times for replayed or
   * late data. Absent on alerts raised before it was recorded.
   */
  receivedAt?: string;
  /** Deduplicated repeats (1 for a fresh alert). */
  count: number;
  status: AlertStatus;
  /** MITRE ATT&CK technique ids, e.g. T1580. */
  techniques: string[];
  /** The techniques with their names and tactics. */
  attack?: AttackTechnique[];
  links: { trace: string };
  /** Structured evidence for the UI and sinks: the baseline facts and the offending values. */
  evidence?: Record<string, unknown>;
}

/** One delivery of an alert event to one sink, as the API shows it (times ISO 8601, UTC). */
export interface AlertDeliveryView {
  sink: string;
  /** The alert's delivery sequence number: `<alertId>/<seq>` is what receivers deduplicate on. */
  seq: number;
  /** Why it was sent: raised (or an announced repeat), or its status changed. */
  event: 'alert' | 'feedback';
  state: 'pending' | 'delivered' | 'dead' | 'discarded';
  attempts: number;
  lastError?: string;
  createdAt: string;
  deliveredAt?: string;
  /** When it was given up (dead). */
  deadAt?: string;
  /** When an operator discarded it (it was dead). */
  discardedAt?: string;
  /** Pending: when the next attempt is due. */
  nextAttemptAt?: string;
}

export const SEVERITY_RANK: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** Builds `links.trace` from the `alerts.traceUrl` template. */
export function traceLink(template: string, traceId: string, spanId = ''): string {
  return template.replaceAll('{traceId}', traceId).replaceAll('{spanId}', spanId);
}
