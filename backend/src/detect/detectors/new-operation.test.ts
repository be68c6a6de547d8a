import { describe, expect, it } from 'vitest';
import { MINUTE, T0, chain, training } from '../testdata/chains.js';
import { contextFor, learned } from '../testdata/context.js';
import { newOperation } from './new-operation.js';

const CI = 'svc:ci/deployer';
const TRAINED = T0 + 60 * 3 * MINUTE;
const baseline = () => learned(CI, training(CI, T0, 60, 3 * MINUTE));

describe('new-operation', () => {
  it('finds an operation the baseline does not hold on a known peer, medium', () => {
    const c = chain(CI, TRAINED + MINUTE, [{ operation: 'DELETE /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' }]);
    const f = newOperation(contextFor(baseline(), c))!;
    expect(f).toMatchObject({ detector: 'new-operation', keys: ['op:DELETE /apis/apps/v1/deployments/{id}'], severity: 'medium', reach: true });
    expect(f.spanIds).toEqual([c.calls[0]!.spanId]);
    expect(f.explanation).toContain('"deployments"');
  });

  it('is high when the operation is sensitive', () => {
    const c = chain(CI, TRAINED + MINUTE, [{ operation: 'GET /api/v1/secrets/{id}', peer: 'kube-api', target: 'secrets' }]);
    const f = newOperation(contextFor(baseline(), c))!;
    expect(f.severity).toBe('high');
    expect(f.sensitive).toBe(true);
    expect(f.explanation).toContain('is sensitive');
  });

  it('finds nothing for known operations, while learning, or when suppressed', () => {
    expect(newOperation(contextFor(baseline(), training(CI, TRAINED + MINUTE, 1, MINUTE)[0]!))).toBeUndefined();
    const c = chain(CI, TRAINED + MINUTE, [{ operation: 'GET /new', peer: 'kube-api' }]);
    expect(newOperation(contextFor(learned(CI, training(CI, T0, 5, MINUTE)), c))).toBeUndefined();
    expect(newOperation(contextFor(baseline(), c, { suppressed: ['new-operation op:GET /new'] }))).toBeUndefined();
  });
});
