import { describe, expect, it } from 'vitest';
import type { PolicyConfig } from '../settings.js';
import { T0, chain } from '../testdata/chains.js';
import { contextFor, learned } from '../testdata/context.js';
import { policy } from './policy.js';

const ID = 'svc:billing/exporter';
const POLICY: PolicyConfig = {
  match: 'svc:billing/*',
  purpose: 'Exports invoices to the billing bucket',
  expectedPeers: ['s3.amazonaws.com', 'kube-api'],
  approvedTargets: ['invoices-*'],
  allowedRegions: ['eu-west-1'],
  deniedOperations: ['DeleteBucket', 'GET /api/v1/secrets/*'],
};

/** A brand-new identity: policy needs no learning. */
const fresh = () => learned(ID, []);

describe('policy', () => {
  it('fires from the first call with every breach, worst first', () => {
    const c = chain(ID, T0, [
      { operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', target: 'invoices-2026', source: { region: 'eu-west-1' } },
      { operation: 'GET /v1/ledger', peer: 'ledger-api', source: { region: 'eu-west-1' } },
      { operation: 'GetObject', peer: 's3.amazonaws.com', peerKind: 'http', target: 'hr-records', source: { region: 'us-east-1' } },
    ]);
    const f = policy(contextFor(fresh(), c, { policies: [POLICY] }))!;
    expect(f.detector).toBe('policy');
    expect(f.keys.sort()).toEqual(['peer:ledger-api', 'region:us-east-1', 'target:hr-records']);
    expect(f.severity).toBe('high');
    expect(f.explanation).toMatch(/^svc:billing\/exporter is declared as: Exports invoices to the billing bucket\./);
    expect(f.spanIds).toEqual(expect.arrayContaining([c.calls[1]!.spanId, c.calls[2]!.spanId]));
    expect(f.spanIds).not.toContain(c.calls[0]!.spanId);
  });

  it('rates a denied operation high, critical when it is also sensitive', () => {
    const denied = chain(ID, T0, [{ operation: 'DeleteBucket', peer: 's3.amazonaws.com', peerKind: 'http', target: 'invoices-old' }]);
    expect(policy(contextFor(fresh(), denied, { policies: [POLICY] }))).toMatchObject({ severity: 'high', keys: ['op:DeleteBucket'], reach: false });
    const secret = chain(ID, T0, [{ operation: 'GET /api/v1/secrets/{id}', peer: 'kube-api', target: 'invoices-keys' }]);
    expect(policy(contextFor(fresh(), secret, { policies: [POLICY] }))).toMatchObject({ severity: 'critical', sensitive: true });
  });

  it('says nothing without a matching policy, within it, or for a suppressed breach', () => {
    const within = chain(ID, T0, [{ operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', target: 'invoices-1', source: { region: 'eu-west-1' } }]);
    expect(policy(contextFor(fresh(), within, { policies: [POLICY] }))).toBeUndefined();
    const other = chain('svc:other', T0, [{ operation: 'DeleteBucket', peer: 'x' }]);
    expect(policy(contextFor(learned('svc:other', []), other, { policies: [POLICY] }))).toBeUndefined();
    const peer = chain(ID, T0, [{ operation: 'GET /x', peer: 'ledger-api' }]);
    expect(policy(contextFor(fresh(), peer, { policies: [POLICY], suppressed: ['policy peer:ledger-api'] }))).toBeUndefined();
  });
});
