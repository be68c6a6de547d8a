import { describe, expect, it } from 'vitest';
import { openSqliteBackend } from '../store/index.js';
import { createDetection } from './detection.js';
import { HOUR, MINUTE, T0, chain, training } from './testdata/chains.js';

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
});
