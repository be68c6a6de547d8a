import { describe, expect, it } from 'vitest';
import { HOUR, MINUTE, T0, chain, training } from '../testdata/chains.js';
import { contextFor, learned } from '../testdata/context.js';
import { newPeer } from './new-peer.js';

const CI = 'svc:ci/deployer';
const TRAINED = T0 + 60 * 3 * MINUTE;
/** Enforcing: 60 usual deploys (kube-api, s3) over three hours. */
const baseline = () => learned(CI, training(CI, T0, 60, 3 * MINUTE));

describe('new-peer', () => {
  it('finds a peer the baseline does not hold, medium for an internal service, with the offending span', () => {
    const c = chain(CI, TRAINED + MINUTE, [{ operation: 'GET /v1/ledger', peer: 'ledger-api' }]);
    const f = newPeer(contextFor(baseline(), c))!;
    expect(f).toMatchObject({ detector: 'new-peer', keys: ['peer:ledger-api'], severity: 'medium', reach: true, external: false });
    expect(f.spanIds).toEqual([c.calls[0]!.spanId]);
    expect(f.eventMs).toBe(c.calls[0]!.startMs);
    expect(f.explanation).toContain('"kube-api"');
    expect(f.explanation).toContain('"ledger-api"');
  });

  it('is high for an external peer and for an account the identity never touched', () => {
    const external = chain(CI, TRAINED + MINUTE, [{ operation: 'POST /upload', peer: 'paste.example.com', peerKind: 'http', external: true }]);
    expect(newPeer(contextFor(baseline(), external))).toMatchObject({ severity: 'high', external: true, keys: ['peer:paste.example.com'] });
    const account = chain(CI, TRAINED + MINUTE, [{ operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', account: '999999999999' }]);
    expect(newPeer(contextFor(baseline(), account))).toMatchObject({ severity: 'high', keys: ['account:999999999999'] });
  });

  it('finds nothing in a usual chain, while learning, or for a suppressed key', () => {
    const usual = training(CI, TRAINED + MINUTE, 1, MINUTE)[0]!;
    expect(newPeer(contextFor(baseline(), usual))).toBeUndefined();
    const odd = chain(CI, TRAINED + MINUTE, [{ operation: 'GET /v1/ledger', peer: 'ledger-api' }]);
    // Ten chains in ten minutes: not enough calls or time to enforce.
    expect(newPeer(contextFor(learned(CI, training(CI, T0, 10, MINUTE)), odd))).toBeUndefined();
    expect(newPeer(contextFor(baseline(), odd, { suppressed: ['new-peer peer:ledger-api'] }))).toBeUndefined();
  });

  it('names several new peers in one finding, in time order', () => {
    const c = chain(CI, TRAINED + HOUR, [
      { operation: 'GET /a', peer: 'a-api' },
      { operation: 'GET /b', peer: 'b-api' },
      { operation: 'GET /a2', peer: 'a-api' },
    ]);
    const f = newPeer(contextFor(baseline(), c))!;
    expect(f.keys).toEqual(['peer:a-api', 'peer:b-api']);
    expect(f.spanIds).toEqual(c.calls.map((x) => x.spanId));
    expect(f.title).toContain('2 new peers');
  });

  it('keeps a known database operation answered by another host (a failover to the standby) low, and a new statement medium', () => {
    const primary = { operation: 'SELECT releases', peer: 'deploy-db-0.db.internal:5432', peerKind: 'database' as const, protocol: 'db', target: 'releases' };
    const withDb = learned(
      CI,
      training(CI, T0, 60, 3 * MINUTE).map((c) => chain(CI, c.startMs, [...c.calls, { ...primary }])),
    );
    const standby = chain(CI, TRAINED + MINUTE, [{ ...primary, peer: 'deploy-db-1.db.internal:5432' }]);
    const f = newPeer(contextFor(withDb, standby))!;
    expect(f).toMatchObject({ keys: ['peer:deploy-db-1.db.internal:5432'], severity: 'low' });
    expect(f.explanation).toContain('failover');
    const other = chain(CI, TRAINED + MINUTE, [{ ...primary, operation: 'SELECT users', target: 'users', peer: 'deploy-db-1.db.internal:5432' }]);
    expect(newPeer(contextFor(withDb, other))).toMatchObject({ severity: 'medium' });
    // A new service next to the standby is still news.
    const both = chain(CI, TRAINED + MINUTE, [{ ...primary, peer: 'deploy-db-1.db.internal:5432' }, { operation: 'GET /v1/ledger', peer: 'ledger-api' }]);
    expect(newPeer(contextFor(withDb, both))).toMatchObject({ severity: 'medium' });
  });
});
