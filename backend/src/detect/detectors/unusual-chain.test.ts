import { describe, expect, it } from 'vitest';
import { MINUTE, STOREFRONT, T0, chain, deployChain, storefrontChain, storefrontChains, training } from '../testdata/chains.js';
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

  it('explains the score: the least likely step against what the identity\'s own learned chains reached', () => {
    const c = chain(CI, TRAINED + MINUTE, [PUT, PATCH, GET]);
    const f = unusualChain(contextFor(baseline(), c))!;
    expect(f.explanation).toMatch(/least likely step had a chance of 1 in \d+ \([\d.]+ bits\); 99% of the \d+ chains it learned had no step less likely than 1 in \d+/);
    const score = f.evidence.score as { bits: number; thresholdBits: number; usualBits: number; learnedChains: number };
    expect(score.bits).toBeGreaterThan(score.thresholdBits);
    expect(score.thresholdBits).toBeCloseTo(score.usualBits + 2);
    expect(score.learnedChains).toBeGreaterThan(40);
    expect((f.evidence.transitions as { from: string; bits: number }[])[0]).toMatchObject({ from: '(start)', to: 'PutObject', count: 0 });
  });

  it('skips of a learned step and retries after an error are usual; a repeat without an error is not', () => {
    expect(unusualChain(contextFor(baseline(), chain(CI, TRAINED + MINUTE, [GET, PUT])))).toBeUndefined();
    expect(unusualChain(contextFor(baseline(), chain(CI, TRAINED + MINUTE, [GET, { ...PATCH, status: 'error' }, PATCH, PUT])))).toBeUndefined();
    const twice = unusualChain(contextFor(baseline(), chain(CI, TRAINED + MINUTE, [GET, PATCH, PATCH, PUT])))!;
    expect(twice).toMatchObject({ severity: 'medium', keys: [`transition:${JSON.stringify([PATCH.operation, PATCH.operation])}`] });
  });

  it('is calibrated per identity: a never-taken step between known operations is usual for one that varies its order', () => {
    const varied = learned(STOREFRONT, storefrontChains(T0, 120));
    // `cart -> stock` was never taken, and no learned step leads to `stock`: no skip explains it.
    expect(varied.entries.transition.has(JSON.stringify(['GET /cart', 'GET /stock']))).toBe(false);
    expect(unusualChain(contextFor(varied, storefrontChain(T0 + 200 * MINUTE, ['GET /cart', 'GET /stock'])))).toBeUndefined();
    // The rigid deployer, asked the same kind of question (a step it never took between operations it knows), alerts.
    expect(unusualChain(contextFor(baseline(), chain(CI, TRAINED + MINUTE, [GET, PATCH, GET, PUT])))).toMatchObject({ severity: 'medium' });
  });

  it('cites the technique of an operation an unusual step led to, none for an order of plain operations', () => {
    const get = { operation: 'GetObject', peer: 's3.amazonaws.com', peerKind: 'http' as const, target: 'deploy-logs' };
    // Every sixth chain only reads a log object.
    const withReads = learned(CI, training(CI, T0, 60, 3 * MINUTE).map((c, i) => (i % 6 === 0 ? chain(CI, c.startMs, [get]) : c)));
    const f = unusualChain(contextFor(withReads, chain(CI, TRAINED + MINUTE, [GET, get, PATCH, PUT])))!;
    expect(f.techniques).toEqual(['T1530']);
    expect(unusualChain(contextFor(baseline(), chain(CI, TRAINED + MINUTE, [PUT, PATCH, GET])))!.techniques).toEqual([]);
  });
});
