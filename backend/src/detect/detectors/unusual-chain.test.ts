import { describe, expect, it } from 'vitest';
import { MINUTE, T0, chain, deployChain, training } from '../testdata/chains.js';
import { contextFor, learned } from '../testdata/context.js';
import { unusualChain } from './unusual-chain.js';

const CI = 'svc:ci/deployer';
const TRAINED = T0 + 60 * 3 * MINUTE;
/** Enforcing: GET then PATCH the deployment (sometimes a health check), then PutObject. */
const baseline = () => learned(CI, training(CI, T0, 60, 3 * MINUTE));
const GET = { operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' };
const PATCH = { operation: 'PATCH /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' };
const PUT = { operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http' as const, target: 'deploy-logs', account: '111111111111' };

describe('unusual-chain', () => {
  it('finds known operations in a never-seen order, medium, naming what usually follows', () => {
    const c = chain(CI, TRAINED + MINUTE, [PUT, PATCH, GET]);
    const f = unusualChain(contextFor(baseline(), c))!;
    expect(f).toMatchObject({ detector: 'unusual-chain', severity: 'medium' });
    expect(f.keys.length).toBeGreaterThan(0);
    expect(f.explanation).toMatch(/After the start of a chain .* usually goes on to "GET \/apis\/apps\/v1\/deployments\/\{id\}"/);
    expect(f.explanation).toContain('followed by "PutObject"');
    expect(f.spanIds).toContain(c.calls[0]!.spanId);
  });

  it('leaves the usual order alone, and unknown operations to new-operation', () => {
    expect(unusualChain(contextFor(baseline(), deployChain(CI, TRAINED + MINUTE, 3)))).toBeUndefined();
    const unknown = chain(CI, TRAINED + MINUTE, [{ operation: 'DELETE /x', peer: 'kube-api' }, GET, PATCH, PUT]);
    expect(unusualChain(contextFor(baseline(), unknown))).toBeUndefined();
  });

  it('says nothing while learning or for suppressed keys', () => {
    const reversed = chain(CI, TRAINED + MINUTE, [PUT, PATCH, GET]);
    expect(unusualChain(contextFor(learned(CI, training(CI, T0, 5, MINUTE)), reversed))).toBeUndefined();
    const keys = unusualChain(contextFor(baseline(), reversed))!.keys;
    expect(unusualChain(contextFor(baseline(), reversed, { suppressed: keys.map((k) => `unusual-chain ${k}`) }))).toBeUndefined();
  });
});
