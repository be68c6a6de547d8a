import { describe, expect, it } from 'vitest';
import { MINUTE, T0, chain, training, type CallSpec } from '../testdata/chains.js';
import { contextFor, learned } from '../testdata/context.js';
import { MIN_BURST_CALLS, burstThreshold, rateBurst } from './rate-burst.js';

const CI = 'svc:ci/deployer';
const TRAINED = T0 + 60 * 3 * MINUTE;
const baseline = () => learned(CI, training(CI, T0, 60, 3 * MINUTE));
/** `n` calls of the usual kind, 100 ms apart (within one minute for n < 600). */
const usualCalls = (n: number): CallSpec[] => Array.from({ length: n }, () => ({ operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' }));

describe('rate-burst', () => {
  it('thresholds at the larger of a floor, a multiple of the 95th percentile and mean plus six sigma', () => {
    expect(burstThreshold([1, 1, 1, 1, 1])).toBe(MIN_BURST_CALLS);
    expect(burstThreshold(Array.from({ length: 20 }, () => 20))).toBe(80);
  });

  it('finds a minute far above the learned rate, low, pointing at the calls of that minute', () => {
    const c = chain(CI, TRAINED + MINUTE, usualCalls(50));
    const f = rateBurst(contextFor(baseline(), c))!;
    expect(f).toMatchObject({ detector: 'rate-burst', keys: ['rate'], severity: 'low', reach: false });
    expect(f.evidence.calls).toBe(50);
    expect(f.spanIds).toEqual(c.calls.slice(0, 20).map((x) => x.spanId));
    expect(f.title).toContain('50 calls per minute');
  });

  it('stays quiet for the usual rate, below the floor, while learning, and when suppressed', () => {
    expect(rateBurst(contextFor(baseline(), training(CI, TRAINED + MINUTE, 1, MINUTE)[0]!))).toBeUndefined();
    expect(rateBurst(contextFor(baseline(), chain(CI, TRAINED + MINUTE, usualCalls(MIN_BURST_CALLS))))).toBeUndefined();
    expect(rateBurst(contextFor(learned(CI, training(CI, T0, 5, MINUTE)), chain(CI, TRAINED + MINUTE, usualCalls(50))))).toBeUndefined();
    expect(rateBurst(contextFor(baseline(), chain(CI, TRAINED + MINUTE, usualCalls(50)), { suppressed: ['rate-burst rate'] }))).toBeUndefined();
  });

  it('cites the techniques of the operations in the burst: discovery calls are discovery, usual calls none', () => {
    const describe = Array.from({ length: 50 }, (_, i): CallSpec => ({ operation: i % 2 ? 'DescribeInstances' : 'ListBuckets', peer: 'aws-api' }));
    expect(rateBurst(contextFor(baseline(), chain(CI, TRAINED + MINUTE, describe)))!.techniques.sort()).toEqual(['T1580', 'T1619']);
    expect(rateBurst(contextFor(baseline(), chain(CI, TRAINED + MINUTE, usualCalls(50))))!.techniques).toEqual([]);
  });
});
