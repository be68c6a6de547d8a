import type { DeliveryRecord } from '../store/contracts.js';
import type { AlertDeliveryView } from './model.js';

export type { AlertDeliveryView } from './model.js';

/** Deliveries shown per alert, at most (newest events first). */
export const MAX_DELIVERIES_SHOWN = 100;

const iso = (ms: number) => new Date(ms).toISOString();

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
