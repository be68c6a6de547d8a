import { describe, expect, it } from 'vitest';
import { TECHNIQUES } from '../alerts/sinks/attack.js';
import { openSqliteBackend } from '../store/index.js';
import { createDetection } from './detection.js';
import { HOUR, MINUTE, T0, chain, training } from './testdata/chains.js';
import * as techniques from './techniques.js';

const CI = 'svc:ci/deployer';
const TRAINED = T0 + 60 * 3 * MINUTE;

async function trained() {
  const d = await createDetection({ state: (await openSqliteBackend({ path: ':memory:' })).detection, learning: { minCalls: 100, period: 2 * HOUR, forgetAfter: 7 * 24 * HOUR }, traceUrl: '{traceId}' });
  expect((await d.analyse(training(CI, T0, 60, 3 * MINUTE))).alerts).toEqual([]);
  return d;
}

describe('explanations', () => {
  it('say each new peer and account once, with a title that counts what the evidence lists, and name every cited technique', async () => {
    const d = await trained();
    const accounts = ['222222222222', '333333333333', '444444444444'];
    const calls = [
      ...accounts.flatMap((account) => [
        { operation: 'ListBuckets', peer: 's3.amazonaws.com', peerKind: 'http' as const, account, target: `b-${account}` },
        { operation: 'ListBuckets', peer: 's3.amazonaws.com', peerKind: 'http' as const, account, target: `c-${account}` },
      ]),
      { operation: 'GET /v1/secrets/{id}', peer: 'vault.internal', peerKind: 'service' as const },
      { operation: 'GET /v1/keys', peer: 'kms.internal', peerKind: 'service' as const },
    ];
    const [incident] = (await d.analyse([chain(CI, TRAINED + MINUTE, calls)])).alerts;
    const peer = incident!.findings.find((f) => f.detector === 'new-peer')!;
    const evidence = peer.evidence as { newPeers: string[]; newAccounts: string[] };
    expect(evidence.newAccounts).toEqual(accounts);
    expect(peer.title).toContain(`${evidence.newPeers.length} new peers`);
    expect(peer.title).toContain('3 other accounts');
    // Each new peer and account is named once in the sentences about them.
    for (const name of [...evidence.newPeers, ...accounts]) {
      expect(peer.explanation.split(`"${name}"`).length - 1, `${name} in: ${peer.explanation}`).toBe(1);
    }
    expect(peer.explanation.match(/never seen for this identity/g)).toHaveLength(1);
    // Every technique a finding cites comes with its ATT&CK name.
    for (const f of incident!.findings) {
      expect(f.attack!.map((t) => t.id)).toEqual(f.techniques);
      for (const t of f.attack!) expect(t.name.length).toBeGreaterThan(3);
    }
    expect(incident!.attack!.map((t) => t.id)).toEqual(incident!.techniques);
  });

  it('name the technique a burst of discovery calls cites, and every technique an operation maps to', async () => {
    const d = await trained();
    const kube = { peer: 'kube-api', target: 'deployments' };
    // The usual deploy, then a burst of 50 storage listings.
    const listing = Array.from({ length: 50 }, () => ({ operation: 'ListObjects', peer: 's3.amazonaws.com', peerKind: 'http' as const, target: 'deploy-logs', account: '111111111111' }));
    await d.analyse([chain(CI, TRAINED + MINUTE, [{ operation: 'GET /apis/apps/v1/deployments/{id}', ...kube }, { operation: 'PATCH /apis/apps/v1/deployments/{id}', ...kube }, { operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', target: 'deploy-logs', account: '111111111111' }, ...listing])]);
    const alerts = await d.listAlerts({});
    const findings = alerts.flatMap((a) => a.findings).filter((f) => f.detector === 'rate-burst' || f.detector === 'unusual-chain');
    expect(findings.map((f) => f.detector).sort()).toEqual(['rate-burst']);
    expect(findings[0]!.attack).toEqual([{ id: 'T1619', name: 'Cloud Storage Object Discovery', tactic: 'Discovery' }]);
    for (const value of Object.values(techniques) as unknown[]) if (typeof value === 'string') expect(TECHNIQUES[value]?.name, value).toBeTruthy();
  });
});
