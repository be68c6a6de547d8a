import { describe, expect, it } from 'vitest';
import { MINUTE, T0, chain, type CallSpec } from '../testdata/chains.js';
import { contextFor, learned } from '../testdata/context.js';
import { FAN_OUT_MIN_DISTINCT, fanOut, fanOutThreshold } from './fan-out.js';

const CI = 'svc:ci/deployer';
const TRAINED = T0 + 60 * 3 * MINUTE;
const put = (bucket: string): CallSpec => ({ operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', target: bucket });
/** Enforcing; each minute it wrote to one of six buckets (two distinct targets a minute at most). */
const baseline = () =>
  learned(CI, Array.from({ length: 60 }, (_, i) => chain(CI, T0 + i * 3 * MINUTE, [
    { operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' },
    { operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', target: `logs-${i % 6}` },
    { operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', target: `logs-${i % 6}` },
    { operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', target: `logs-${i % 6}` },
  ])));

describe('fan-out', () => {
  it('thresholds at twice the learned maximum, at least the floor', () => {
    expect(fanOutThreshold([1, 1, 1, 1, 1])).toBe(FAN_OUT_MIN_DISTINCT);
    expect(fanOutThreshold([2, 5, 3])).toBe(10);
  });

  it('is medium when a minute touches many targets, some of them new', () => {
    const c = chain(CI, TRAINED + MINUTE, ['a', 'b', 'c', 'd', 'e', 'f'].map((x) => put(`other-${x}`)));
    const f = fanOut(contextFor(baseline(), c))!;
    expect(f).toMatchObject({ detector: 'fan-out', keys: ['fan-out:targets'], severity: 'medium', reach: true });
    expect(f.explanation).toContain('6 never seen before');
    expect(f.spanIds).toEqual(c.calls.map((x) => x.spanId));
  });

  it('is low when every target is known, only more at once', () => {
    const c = chain(CI, TRAINED + MINUTE, [0, 1, 2, 3, 4, 5].map((i) => put(`logs-${i}`)));
    expect(fanOut(contextFor(baseline(), c))).toMatchObject({ keys: ['fan-out:targets'], severity: 'low', reach: false });
  });

  it('stays quiet within the learned spread, while learning, and when suppressed', () => {
    const usual = chain(CI, TRAINED + MINUTE, [put('logs-1'), put('logs-2')]);
    expect(fanOut(contextFor(baseline(), usual))).toBeUndefined();
    const wide = chain(CI, TRAINED + MINUTE, ['a', 'b', 'c', 'd', 'e', 'f'].map((x) => put(`other-${x}`)));
    expect(fanOut(contextFor(learned(CI, []), wide))).toBeUndefined();
    expect(fanOut(contextFor(baseline(), wide, { suppressed: ['fan-out fan-out:targets'] }))).toBeUndefined();
  });
});
