import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createCollectingIngest } from '@conduct/processor';
import type { TracesRequestData } from '@conduct/proto';
import { refuseWhileStorageDown, STORAGE_UNAVAILABLE } from './storage-gate.js';

const request: TracesRequestData = {
  resourceSpans: [{ resource: {}, spans: [{ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) } as never] }],
  spanCount: 1,
  rejectedSpans: 0,
  rejectMessage: '',
};

describe('refusing ingest while the storage is out of reach', () => {
  it('answers retryable while unavailable, passes requests on otherwise, and counts the refusals', async () => {
    let up = true;
    const registry = new Registry();
    const inner = createCollectingIngest();
    const gate = refuseWhileStorageDown(inner, { available: () => up, retryAfterMs: () => 1500, stopRetrying() {} }, registry);
    expect(await gate.accept(request)).toEqual({ ok: true });
    up = false;
    expect(await gate.accept(request)).toEqual({ ok: false, reason: STORAGE_UNAVAILABLE, retryAfterMs: 1500 });
    up = true;
    expect(await gate.accept(request)).toEqual({ ok: true });
    expect(inner.requests).toHaveLength(2);
    expect(await registry.getSingleMetricAsString('conduct_ingest_storage_refused_total')).toMatch(/ 1$/m);
  });

  it('leaves the ingest as it is for a storage that is never out of reach', () => {
    const inner = createCollectingIngest();
    expect(refuseWhileStorageDown(inner, undefined, new Registry())).toBe(inner);
  });
});
