import type { AlertDeliveryView } from '../alerts/deliveries.js';
import type { Alert, AlertStatus, Severity, Verdict } from '../alerts/model.js';

/** Learning state of an identity as the API shows it. */
export type IdentityStatus = 'learning' | 'enforcing' | (string & {});

/** Query of `GET /api/v1/alerts`, validated by the API. */
export interface AlertQuery {
  identity?: string;
  detector?: string;
  status?: AlertStatus;
  /** Only alerts last seen at or after this (ms since the epoch, event time). */
  sinceMs?: number;
  /** Only alerts first seen before this (ms since the epoch, event time). */
  untilMs?: number;
  /** Only alerts raised on this trace. */
  traceId?: string;
  /** Only alerts of these severities. */
  severities?: Severity[];
  /** Free text in the alert's ids, detector, title, explanation or findings (case-insensitive). */
  text?: string;
  /** `time` (newest first, the default), `score` or `severity` (highest first). */
  sort?: 'time' | 'score' | 'severity';
  /** 1..MAX_LIMIT, default DEFAULT_ALERT_LIMIT. */
  limit: number;
}

/** How far an identity is towards enforcing, as `GET /api/v1/identities` shows it. */
export interface IdentityLearning {
  /** 0..1: the smaller of learned calls / learning.minCalls and observed event time / learning.period. */
  progress: number;
  /** Calls learned into the baseline. */
  learnedCalls: number;
  /** Event time covered by learned calls, ms. */
  observedMs: number;
  /** ISO time the identity started enforcing. */
  enforcingSince?: string;
  /** An operator marked one of its alerts malicious. */
  compromised?: boolean;
}

/** Where the API's alert routes read and write (detection backs it). */
export interface AlertsProvider {
  /** Alerts matching the query, newest first. */
  list(query: AlertQuery): Alert[] | Promise<Alert[]>;
  get(id: string): Alert | undefined | Promise<Alert | undefined>;
  /** Records an operator verdict; undefined when the alert is unknown. */
  feedback(id: string, verdict: Verdict): Alert | undefined | Promise<Alert | undefined>;
  /** Open alerts per identity, for the identities list. Absent: 0 for everyone. */
  openCounts?(): Map<string, number> | Promise<Map<string, number>>;
  /** An alert's deliveries to the sinks (newest event first), shown by `GET /api/v1/alerts/{id}`. Absent: not shown. */
  deliveries?(id: string): Promise<AlertDelivery[]>;
  /**
   * An operator's retry (`retry`: pending again, due now, retries anew) or discard (`discard`: given
   * up for good) of the alert's dead deliveries, all of them or one sink's or one event's.
   * Undefined when the alert is unknown. Absent: the routes answer 404.
   */
  deadDeliveries?(id: string, action: DeadDeliveryAction, which: { sink?: string; seq?: number }): Promise<DeadDeliveriesAnswer | undefined>;
}

export type DeadDeliveryAction = 'retry' | 'discard';

/** What `POST /api/v1/alerts/{id}/deliveries/retry` and `/discard` answer. */
export interface DeadDeliveriesAnswer {
  /** The deliveries the action changed (none when none of the chosen was dead). */
  changed: Array<{ sink: string; seq: number }>;
  /** The alert's deliveries after it, as `GET /api/v1/alerts/{id}` shows them. */
  deliveries: AlertDelivery[];
}

/** One delivery of an alert event to one sink, as the API shows it. */
export type AlertDelivery = AlertDeliveryView;

/** A learned view of identities (detection backs it); every method may answer undefined. */
export interface IdentityInsights {
  /**
   * Optional: called before the other methods are asked about these identities in one answer
   * (a cluster loads their partitions' baselines here, so the methods can answer synchronously).
   */
  prepare?(ids: readonly string[]): Promise<void>;
  /** `learning` until detection says otherwise. */
  status(id: string): IdentityStatus | undefined;
  /** Learning progress (0..1 towards enforcing) and what it is made of; absent fields are not shown. */
  learning?(id: string): IdentityLearning | undefined;
  /** Baseline summary shown in `GET /api/v1/identities/{id}`; the observed one when undefined. */
  baseline?(id: string): object | undefined;
  /** Learned graph; the observed edges when undefined. */
  graph?(id: string): { nodes: object[]; edges: object[] } | undefined | Promise<{ nodes: object[]; edges: object[] } | undefined>;
}

/** No alerts until detection is plugged in. */
export const noAlerts: AlertsProvider = {
  list: () => [],
  get: () => undefined,
  feedback: () => undefined,
};

/** Everyone is learning until detection is plugged in. */
export const noInsights: IdentityInsights = {
  status: () => undefined,
};
