/**
 * The shapes the UI reads from the HTTP API (README.md, "HTTP API"). Every string in them may come
 * from span attributes and is untrusted: it is rendered as text only.
 */

// The alert contract is the backend's own (type-only: nothing of it reaches the bundle).
export type { Alert, AlertStatus, Severity, Verdict } from '../../src/alerts/model.js';
/** One delivery of an alert event to one sink (`deliveries` of `GET /api/v1/alerts/{id}`). */
export type { AlertDeliveryView as Delivery } from '../../src/alerts/model.js';

export interface LearningProgress {
  /** 0..1 */
  progress: number;
  calls?: number;
  minCalls?: number;
  [more: string]: unknown;
}

export interface IdentitySummary {
  id: string;
  kind: string;
  displayName?: string | null;
  status: 'learning' | 'enforcing' | string;
  /** Learning progress, nested (the brief's shape) ... */
  learning?: LearningProgress | null;
  /** ... or spread into the identity (what the API sends): 0..1 towards enforcing. */
  progress?: number;
  learnedCalls?: number;
  /** An operator marked one of its alerts malicious. */
  compromised?: boolean;
  firstSeen?: string | null;
  lastSeen?: string | null;
  calls: number;
  peers: number;
  openAlerts: number;
}

/** 0..1 towards enforcing, wherever the API put it. */
export function learningProgress(i: IdentitySummary): number {
  const p = Number(i.learning?.progress ?? i.progress ?? 0);
  return Number.isFinite(p) ? Math.max(0, Math.min(1, p)) : 0;
}

export interface IdentityDetail extends IdentitySummary {
  /** Baseline summary: each field a list (or map) of learned values with counts. */
  baseline?: Record<string, unknown> | null;
  /** Declared context from the `policies` config, null when none matches. */
  policy?: Record<string, unknown> | null;
}

export interface GraphNode {
  id: string;
  label?: string;
  kind?: string;
  /** For peers: service, database, messaging, external ... */
  peerKind?: string;
  external?: boolean;
  alertOnly?: boolean;
}

export interface GraphEdge {
  from: string;
  to: string;
  operation: string;
  count: number;
  firstSeen?: string;
  lastSeen?: string;
  alertOnly?: boolean;
}

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export interface ChainCall {
  spanId: string;
  /** The server span when the call was stitched to one. */
  serverSpanId?: string;
  /** Parent of spanId, '' for a root. */
  parentSpanId?: string;
  identity?: string;
  protocol?: string;
  httpStatus?: number;
  service?: string;
  peer?: string;
  peerKind?: string;
  external?: boolean;
  operation?: string;
  target?: string | null;
  account?: string | null;
  startMs: number;
  durationMs: number;
  status?: string | number;
  name?: string;
  source?: Record<string, unknown>;
  /** The class of error the call ended with (a CloudTrail errorCode, a Kubernetes failure reason). */
  errorCode?: string;
  /** For calls read from audit logs: the record's id (CloudTrail eventID, Kubernetes auditID). */
  auditId?: string;
}

export interface Chain {
  /** Absent in a trace's chains (the trace id is the answer's). */
  traceId?: string;
  identity: string;
  startMs?: number;
  endMs?: number;
  /** Wall-clock ms at which conduct received the chain (absent on chains stored before it was kept). */
  receivedMs?: number;
  calls: ChainCall[];
}


export interface TraceAnswer {
  traceId: string;
  startMs?: number;
  endMs?: number;
  spans?: number;
  services?: string[];
  /** `links.trace`: the trace in the tracing back end (the `alerts.traceUrl` template). */
  links?: { trace?: string };
  chains: Chain[];
}

/** One (from, to, operation) of a comparison: its calls in the window against the baseline. */
export interface ComparedEdge extends GraphEdge {
  change: 'new' | 'vanished' | 'up' | 'down' | 'same' | 'idle';
  /** Calls in the baseline (0 when new). */
  baselineCount: number;
  /** Calls the baseline's average rate predicts for the window. */
  expected: number;
  /** Some traces in the window that made this call, newest first. */
  traces?: string[];
  /** Ids of the alerts raised on those traces. */
  alerts?: string[];
}

/** `GET /api/v1/identities/{id}/graph?since=&until=&compare=baseline`. */
export interface GraphComparison {
  identity: string;
  window: { since: string; until: string };
  baseline: { source: string; since?: string; until?: string };
  /** Chains of the window read; `truncated` when the window held more than were read. */
  chains: number;
  truncated: boolean;
  nodes: GraphNode[];
  edges: ComparedEdge[];
}

/** What a retry or discard of dead deliveries answers. */
import type { AlertDeliveryView as Delivery } from '../../src/alerts/model.js';

export interface DeadDeliveriesAnswer {
  changed: Array<{ sink: string; seq: number }>;
  deliveries: Delivery[];
}
