import { Counter, type Registry } from 'prom-client';
import type { AcceptOutcome, RawAcceptResult, TraceIngest } from '@conduct/processor';
import type { StorageAvailability } from '../store/index.js';

/** Reason of the refusal, in the receivers' "retry later" message. */
export const STORAGE_UNAVAILABLE = 'storage unavailable';

/**
 * Refuses new requests with a retryable answer (OTLP/HTTP 503 with Retry-After, gRPC UNAVAILABLE)
 * while the storage is out of reach, so that what was acknowledged before (held by the journal
 * and by the writes that wait for the database) is stored first and memory does not grow behind
 * a database that is down. Counted in `conduct_ingest_storage_refused_total`. A storage that is
 * never out of reach (no `availability`, SQLite) leaves the ingest as it is.
 */
export function refuseWhileStorageDown(ingest: TraceIngest, availability: StorageAvailability | undefined, registry: Registry): TraceIngest {
  if (!availability) return ingest;
  const refusedTotal = new Counter({
    name: 'conduct_ingest_storage_refused_total',
    help: 'Requests refused (retryable) because the storage was out of reach.',
    registers: [registry],
  });
  const refusal = (): Extract<AcceptOutcome, { ok: false }> => {
    refusedTotal.inc();
    return { ok: false, reason: STORAGE_UNAVAILABLE, retryAfterMs: availability.retryAfterMs() };
  };
  const acceptRaw = ingest.acceptRaw?.bind(ingest);
  return {
    ...(ingest.keep ? { keep: ingest.keep } : {}),
    accept: (data, raw) => (availability.available() ? ingest.accept(data, raw) : Promise.resolve(refusal())),
    ...(acceptRaw
      ? {
          acceptRaw: (raw, limits, onAccepted): Promise<RawAcceptResult> =>
            availability.available() ? acceptRaw(raw, limits, onAccepted) : Promise.resolve({ kind: 'refused', outcome: refusal() }),
        }
      : {}),
  };
}
