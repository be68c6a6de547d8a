import { describe, expect, it } from 'vitest';
import { MINUTE, T0, chain, training } from '../testdata/chains.js';
import { contextFor, learned } from '../testdata/context.js';
import { newSource } from './new-source.js';

const CI = 'svc:ci/deployer';
const TRAINED = T0 + 60 * 3 * MINUTE;
/** Learned from us-east-1, account 111111111111, cluster prod-a, pods with churning names. */
const baseline = () => learned(CI, training(CI, T0, 60, 3 * MINUTE));
const usualSource = { region: 'us-east-1', account: '111111111111', cluster: 'prod-a' };
/** The same, its pods' addresses in the /24s of two nodes of cluster prod-a. */
const onNodes = () =>
  learned(
    CI,
    training(CI, T0, 60, 3 * MINUTE).map((c, i) => ({ ...c, calls: c.calls.map((call) => ({ ...call, source: { ...call.source, network: `10.1.${i % 2}.0/24`, publicAddress: false } })) })),
  );

describe('new-source', () => {
  it('finds a new region, medium, naming the usual one', () => {
    const c = chain(CI, TRAINED + MINUTE, [{ operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', source: { ...usualSource, region: 'ap-south-1' } }]);
    const f = newSource(contextFor(baseline(), c))!;
    expect(f).toMatchObject({ detector: 'new-source', keys: ['region:ap-south-1'], severity: 'medium', spanIds: [c.calls[0]!.spanId] });
    expect(f.explanation).toContain('"us-east-1"');
  });

  it('is high with a sensitive operation from the new source', () => {
    const c = chain(CI, TRAINED + MINUTE, [{ operation: 'GET /api/v1/secrets/{id}', peer: 'kube-api', target: 'secrets', source: { ...usualSource, cluster: 'other' } }]);
    expect(newSource(contextFor(baseline(), c))).toMatchObject({ keys: ['cluster:other'], severity: 'high', sensitive: true });
  });

  it('ignores new host and pod names, kinds the baseline never saw, suppressed keys, and learning identities', () => {
    const pod = chain(CI, TRAINED + MINUTE, [{ operation: 'PutObject', peer: 's3.amazonaws.com', source: { ...usualSource, host: 'deployer-new-pod' } }]);
    expect(newSource(contextFor(baseline(), pod))).toBeUndefined();
    // The baseline never saw a network segment: a first one is no news.
    const net = chain(CI, TRAINED + MINUTE, [{ operation: 'PutObject', peer: 's3.amazonaws.com', source: { ...usualSource, network: '10.1.0.0/16' } }]);
    expect(newSource(contextFor(baseline(), net))).toBeUndefined();
    const region = chain(CI, TRAINED + MINUTE, [{ operation: 'PutObject', peer: 's3.amazonaws.com', source: { ...usualSource, region: 'ap-south-1' } }]);
    expect(newSource(contextFor(baseline(), region, { suppressed: ['new-source region:ap-south-1'] }))).toBeUndefined();
    expect(newSource(contextFor(learned(CI, training(CI, T0, 5, MINUTE)), region))).toBeUndefined();
  });

  it('takes a new private segment of a known cluster for a new node (node-pool rotation), not a new source', () => {
    const c = chain(CI, TRAINED + MINUTE, [{ operation: 'PutObject', peer: 's3.amazonaws.com', source: { ...usualSource, network: '10.1.60.0/24', publicAddress: false } }]);
    expect(newSource(contextFor(onNodes(), c))).toBeUndefined();
    // Without a cluster to place it (a client the identity is only seen by its address), the segment is news.
    const bare = chain(CI, TRAINED + MINUTE, [{ operation: 'PutObject', peer: 's3.amazonaws.com', source: { region: 'us-east-1', account: '111111111111', network: '10.99.7.0/24', publicAddress: false } }]);
    expect(newSource(contextFor(onNodes(), bare))).toMatchObject({ keys: ['network:10.99.7.0/24'], severity: 'medium' });
  });

  it('keeps a failover to another cluster of the same region and account low, and a new region medium', () => {
    const standby = { ...usualSource, cluster: 'prod-b', network: '10.1.90.0/24', publicAddress: false };
    const c = chain(CI, TRAINED + MINUTE, [{ operation: 'PutObject', peer: 's3.amazonaws.com', source: standby }]);
    const f = newSource(contextFor(onNodes(), c))!;
    expect(f).toMatchObject({ keys: ['cluster:prod-b', 'network:10.1.90.0/24'], severity: 'low' });
    expect(f.explanation).toContain('failed over');
    const elsewhere = chain(CI, TRAINED + MINUTE, [{ operation: 'PutObject', peer: 's3.amazonaws.com', source: { ...standby, region: 'ap-south-1' } }]);
    expect(newSource(contextFor(onNodes(), elsewhere))).toMatchObject({ severity: 'medium' });
  });

  it('keeps its credential used by another workload at medium: another cluster of the same region and account, or a new node of a known one', () => {
    // The same identity's calls made through a service it never acted through (a stolen certificate or token).
    const thief = { service: 'tools/debug-shell' };
    const standby = { ...usualSource, cluster: 'prod-b', network: '10.1.90.0/24', publicAddress: false };
    const moved = chain(CI, TRAINED + MINUTE, [{ operation: 'PutObject', peer: 's3.amazonaws.com', source: standby, ...thief }]);
    const f = newSource(contextFor(onNodes(), moved))!;
    expect(f).toMatchObject({ keys: ['cluster:prod-b', 'network:10.1.90.0/24'], severity: 'medium' });
    expect(f.explanation).toContain('"tools/debug-shell", a service it never acted through');
    const node = chain(CI, TRAINED + MINUTE, [{ operation: 'PutObject', peer: 's3.amazonaws.com', source: { ...usualSource, network: '10.1.60.0/24', publicAddress: false }, ...thief }]);
    expect(newSource(contextFor(onNodes(), node))).toMatchObject({ keys: ['network:10.1.60.0/24'], severity: 'medium' });
  });
});
