import { describe, expect, it } from 'vitest';
import type { Chain } from '@conduct/processor';
import { openSqliteBackend } from '../store/index.js';
import { createDetection } from './detection.js';
import { isHumanIdentity, type HumansMode } from './humans.js';
import { HOUR, MINUTE, T0, chain, deployChain } from './testdata/chains.js';

const TERRAFORM_USER = 'arn:aws:iam::123456789012:user/alice';
const LEARNING = { minCalls: 100, period: 2 * HOUR, forgetAfter: 7 * 24 * HOUR };
const TRAINED = T0 + 60 * 3 * MINUTE;

/** The identity's usual deploy, made by a principal of `kind`. */
const asPrincipal = (c: Chain, identity: string, kind: string): Chain => ({
  ...c,
  identity,
  identityKind: kind,
  calls: c.calls.map((call) => ({ ...call, identity, identityKind: kind })),
});

async function trainedAs(identity: string, kind: string, humans?: HumansMode) {
  const d = await createDetection({ state: (await openSqliteBackend({ path: ':memory:' })).detection, learning: LEARNING, traceUrl: '{traceId}', ...(humans ? { humans } : {}) });
  const r = await d.analyse(Array.from({ length: 60 }, (_, i) => asPrincipal(deployChain(identity, T0 + i * 3 * MINUTE, i), identity, kind)));
  expect(r.alerts).toEqual([]);
  expect(d.identity(identity)?.status).toBe('enforcing');
  return d;
}

/** A new peer with a sensitive new operation: high (or more) for a machine. */
const novel = (identity: string, kind: string) =>
  chain(identity, TRAINED + MINUTE, [{ operation: 'CreateAccessKey', peer: 'iam.amazonaws.com', peerKind: 'http', identity, identityKind: kind }], {
    identityKind: kind,
  });

describe('human principals (detection.humans)', () => {
  it('tells people from machines', async () => {
    expect(isHumanIdentity(TERRAFORM_USER, 'principal')).toBe(true);
    expect(isHumanIdentity('arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com', 'principal')).toBe(true);
    expect(isHumanIdentity('alice@example.com', 'principal')).toBe(true);
    expect(isHumanIdentity('customer-4711', 'principal')).toBe(true);
    expect(isHumanIdentity('arn:aws:sts::123456789012:assumed-role/DeployRole/i-0abc', 'principal')).toBe(false);
    expect(isHumanIdentity('deployer@proj.iam.gserviceaccount.com', 'principal')).toBe(false);
    expect(isHumanIdentity('system:serviceaccount:monitoring:agent', 'principal')).toBe(false);
    expect(isHumanIdentity('system:node:ip-10-0-1-2', 'principal')).toBe(false);
    expect(isHumanIdentity('svc:ci/deployer', 'workload')).toBe(false);
  });

  it('keeps novelty on a person at low by default, alerts as for machines with `alert`, and drops it with `ignore`', async () => {
    const low = await trainedAs(TERRAFORM_USER, 'principal');
    const lowAlerts = (await low.analyse([novel(TERRAFORM_USER, 'principal')])).alerts;
    expect(lowAlerts).toHaveLength(1);
    expect(lowAlerts[0]!.severity).toBe('low');
    expect(lowAlerts[0]!.score).toBeLessThan(40);
    expect(lowAlerts[0]!.findings.every((f) => f.severity === 'low' || f.severity === 'info')).toBe(true);
    expect(lowAlerts[0]!.explanation).toContain('detection.humans');

    const loud = await trainedAs(TERRAFORM_USER, 'principal', 'alert');
    const loudAlerts = (await loud.analyse([novel(TERRAFORM_USER, 'principal')])).alerts;
    expect(loudAlerts.map((a) => a.severity)).toEqual([expect.stringMatching(/high|critical/)]);

    const none = await trainedAs(TERRAFORM_USER, 'principal', 'ignore');
    expect((await none.analyse([novel(TERRAFORM_USER, 'principal')])).alerts).toEqual([]);

    // A machine under the same traffic is judged in full whatever the setting.
    const machine = await trainedAs('arn:aws:sts::123456789012:assumed-role/DeployRole/i-0abc', 'principal', 'ignore');
    const machineAlerts = (await machine.analyse([novel('arn:aws:sts::123456789012:assumed-role/DeployRole/i-0abc', 'principal')])).alerts;
    expect(machineAlerts.map((a) => a.severity)).toEqual([expect.stringMatching(/high|critical/)]);
  });

  it('judges a policy breach of a person as before', async () => {
    const d = await createDetection({
      state: (await openSqliteBackend({ path: ':memory:' })).detection,
      learning: LEARNING,
      traceUrl: '{traceId}',
      policies: [{ match: 'arn:aws:iam::*:user/*', deniedOperations: ['DeleteBucket'] }],
      humans: 'ignore',
    });
    const r = await d.analyse([chain(TERRAFORM_USER, T0, [{ operation: 'DeleteBucket', peer: 's3', identity: TERRAFORM_USER, identityKind: 'principal' }], { identityKind: 'principal' })]);
    expect(r.alerts.map((a) => [a.detector, a.severity])).toEqual([['policy', expect.stringMatching(/high|critical/)]]);
  });
});
