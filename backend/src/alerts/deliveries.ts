import type { DeliveryRecord } from '../store/contracts.js';

/** Deliveries shown per alert, at most (newest events first). */
export const MAX_DELIVERIES_SHOWN = 100;

const iso = (ms: number) => new Date(ms).toISOString();

/** One delivery of an alert event to one sink, as the API shows it (times ISO 8601, UTC). */
export interface AlertDeliveryView {
  sink: string;
  /** The alert's delivery sequence number: `<alertId>/<seq>` is what receivers deduplicate on. */
  seq: number;
  event: DeliveryRecord['event'];
  state: DeliveryRecord['state'];
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

/** One outbox delivery as the API shows it (`deliveries` of `GET /api/v1/alerts/{id}`). */
export function deliveryView(r: DeliveryRecord): AlertDeliveryView {
  return {
    sink: r.sink,
    seq: r.seq,
    event: r.event,
    state: r.state,
    attempts: r.attempts,
    ...(r.lastError !== undefined ? { lastError: r.lastError } : {}),
    createdAt: iso(r.createdMs),
    ...(r.state === 'delivered' && r.doneMs !== undefined ? { deliveredAt: iso(r.doneMs) } : {}),
    ...(r.state === 'dead' && r.doneMs !== undefined ? { deadAt: iso(r.doneMs) } : {}),
    ...(r.state === 'discarded' && r.doneMs !== undefined ? { discardedAt: iso(r.doneMs) } : {}),
    ...(r.state === 'pending' && r.dueMs !== undefined ? { nextAttemptAt: iso(r.dueMs) } : {}),
  };
}
