/**
 * An alert read as an incident (backend/src/alerts/README.md: `detector` leading, `detectors`, `findings`).
 * Alerts from before incidents carry one detector and no findings: they read as a one-finding
 * incident made of the alert's own fields.
 */
import type { Alert } from './api-types.js';

export interface FindingView {
  detector: string;
  severity: string;
  score?: number;
  title: string;
  explanation?: string;
  spanIds: string[];
  techniques: string[];
  keys: string[];
  evidence?: Record<string, unknown>;
}

export interface IncidentView {
  detectors: string[];
  findings: FindingView[];
  /** When conduct received (raised) it, if the alert says; shown when it differs from event time. */
  receivedAt?: string;
}

const texts = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

export function incidentOf(alert: Alert): IncidentView {
  const a = alert as Alert & { detectors?: unknown; findings?: unknown; receivedAt?: unknown; raisedAt?: unknown };
  const raw = Array.isArray(a.findings) ? (a.findings as unknown as Record<string, unknown>[]) : [];
  const findings: FindingView[] = raw
    .filter((f) => f !== null && typeof f === 'object')
    .map((f) => ({
      detector: String(f.detector ?? a.detector),
      severity: String(f.severity ?? a.severity),
      score: typeof f.score === 'number' ? f.score : undefined,
      title: String(f.title ?? ''),
      explanation: typeof f.explanation === 'string' ? f.explanation : undefined,
      spanIds: texts(f.spanIds),
      techniques: texts(f.techniques),
      keys: texts(f.keys),
      evidence: f.evidence && typeof f.evidence === 'object' ? (f.evidence as Record<string, unknown>) : undefined,
    }));
  const detectors = texts(a.detectors);
  const received = typeof a.receivedAt === 'string' ? a.receivedAt : typeof a.raisedAt === 'string' ? a.raisedAt : undefined;
  return {
    detectors: detectors.length > 0 ? detectors : findings.length > 0 ? [...new Set(findings.map((f) => f.detector))] : [a.detector],
    findings:
      findings.length > 0
        ? findings
        : [{ detector: a.detector, severity: a.severity, score: a.score, title: a.title, explanation: a.explanation, spanIds: a.spanIds ?? [], techniques: a.techniques ?? [], keys: [], evidence: a.evidence }],
    ...(received ? { receivedAt: received } : {}),
  };
}
