import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Chain } from '@conduct/processor';
import { SEVERITY_RANK, type Alert } from '../alerts/model.js';
import type { PolicyConfig } from './settings.js';
import { openSqliteBackend, type SqliteBackend } from '../store/index.js';
import { createDetection, type Detection, type LearningConfig } from './detection.js';
import { HOUR, MINUTE, STOREFRONT, T0, chain, deployChain, storefrontChain, storefrontChains, training } from './testdata/chains.js';
import { learned } from './testdata/context.js';

const LEARNING: LearningConfig = { minCalls: 100, period: 2 * HOUR, forgetAfter: 7 * 24 * HOUR };
const TRACE_URL = 'http://jaeger.test/trace/{traceId}?span={spanId}';
const CI = 'svc:ci/deployer';
/** Training ends here: 60 chains, one every 3 minutes. */
const TRAINED = T0 + 60 * 3 * MINUTE;

let dir: string;
let backend: SqliteBackend;

function open(policies: PolicyConfig[] = [], learning = LEARNING): Promise<Detection> {
  return createDetection({ state: backend.detection, learning, policies, traceUrl: TRACE_URL });
}

async function trained(policies: PolicyConfig[] = []): Promise<Detection> {
  const d = await open(policies);
  const r = await d.analyse(training(CI, T0, 60, 3 * MINUTE));
  expect(r.alerts).toEqual([]);
  expect(d.identity(CI)?.status).toBe('enforcing');
  return d;
}

const atLeastMedium = (alerts: Alert[]) => alerts.filter((a) => SEVERITY_RANK[a.severity] >= SEVERITY_RANK.medium);

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conduct-detect-'));
  backend = await openSqliteBackend({ path: join(dir, 'conduct.db') });
});
afterEach(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('learning state', () => {
  it('stays learning until both minCalls calls and the period of event time, then enforces', async () => {
    const d = await open();
    // 40 chains in 40 minutes: enough calls (> 100), not enough time.
    await d.analyse(training(CI, T0, 40, MINUTE));
    const early = d.identity(CI)!;
    expect(early.calls).toBeGreaterThanOrEqual(100);
    expect(early.status).toBe('learning');
    expect(early.progress).toBeGreaterThan(0.2);
    expect(early.progress).toBeLessThan(0.5);
    await d.analyse([deployChain(CI, T0 + 2 * HOUR + MINUTE, 1)]);
    expect(d.identity(CI)).toMatchObject({ status: 'enforcing', progress: 1 });
  });

  it('needs the calls too: a long but quiet identity keeps learning', async () => {
    const d = await open();
    await d.analyse(training(CI, T0, 5, HOUR));
    expect(d.identity(CI)).toMatchObject({ status: 'learning' });
    expect(d.identity(CI)!.progress).toBeLessThan(0.25);
  });

  it('raises nothing for a brand-new identity while it learns, however odd its calls', async () => {
    const d = await open();
    const chains = [
      ...training(CI, T0, 10, MINUTE),
      chain(CI, T0 + 11 * MINUTE, [
        { operation: 'ListBuckets', peer: 's3.amazonaws.com', peerKind: 'http', account: '999999999999' },
        { operation: 'POST /upload', peer: 'paste.example.com', peerKind: 'http', external: true },
      ]),
    ];
    const r = await d.analyse(chains);
    expect(r.alerts).toEqual([]);
    expect(r.learned).toBe(11);
  });
});

describe('new-peer', () => {
  it('fires with baseline evidence, trace link and span ids, and holds the chain out', async () => {
    const d = await trained();
    const c = chain(CI, TRAINED + MINUTE, [
      { operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' },
      { operation: 'GET /v1/payments/{id}', peer: 'payments-api' },
    ]);
    const r = await d.analyse([c]);
    const alert = r.alerts.find((a) => a.detectors.includes('new-peer'))!;
    expect(alert).toBeDefined();
    expect(alert.identity).toBe(CI);
    expect(alert.traceId).toBe(c.traceId);
    expect(alert.spanIds[0]).toBe(c.calls[1]!.spanId);
    expect(alert.severity).toBe('medium');
    expect(alert.techniques).toContain('T1021.007');
    expect(alert.explanation).toMatch(/"kube-api" \(\d+ calls\)/);
    expect(alert.explanation).toContain('"payments-api"');
    expect(alert.links.trace).toBe(`http://jaeger.test/trace/${c.traceId}?span=${c.calls[1]!.spanId}`);
    expect(alert.eventTime).toBe(new Date(c.calls[1]!.startMs).toISOString());
    expect(r.held).toBe(1);
    expect(d.baseline(CI)!.peers.map((p) => p.key)).not.toContain('payments-api');
  });

  it('rates an external new peer high and maps it to exfiltration over a web service', async () => {
    const d = await trained();
    const r = await d.analyse([
      chain(CI, TRAINED + MINUTE, [{ operation: 'POST /upload', peer: 'transfer.example.net', peerKind: 'http', external: true }]),
    ]);
    const alert = r.alerts.find((a) => a.detectors.includes('new-peer'))!;
    expect(SEVERITY_RANK[alert.severity]).toBeGreaterThanOrEqual(SEVERITY_RANK.high);
    expect(alert.techniques).toContain('T1567');
  });

  it('deduplicates repeats into a count and stops after an expected verdict, absorbing the chains', async () => {
    const d = await trained();
    const mk = (at: number) =>
      chain(CI, at, [{ operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' }, { operation: 'GET /metrics', peer: 'metrics-api' }]);
    const first = (await d.analyse([mk(TRAINED + MINUTE)])).alerts.find((a) => a.detectors.includes('new-peer'))!;
    const second = await d.analyse([mk(TRAINED + 5 * MINUTE)]);
    expect(second.alerts.filter((a) => a.detectors.includes('new-peer'))).toEqual([]);
    const repeated = second.updated.find((a) => a.id === first.id)!;
    expect(repeated.count).toBe(2);
    expect(repeated.lastSeen).toBe(new Date(TRAINED + 5 * MINUTE + 100).toISOString());
    expect(await d.listAlerts({ detector: 'new-peer' })).toHaveLength(1);

    const after = (await d.feedback(first.id, 'expected'))!;
    expect(after.status).toBe('expected');
    const peers = d.baseline(CI)!.peers;
    expect(peers.find((p) => p.key === 'metrics-api')?.count).toBe(2);
    const third = await d.analyse([mk(TRAINED + 10 * MINUTE)]);
    expect(third.alerts).toEqual([]);
    expect(third.updated).toEqual([]);
  });

  it('marks the identity compromised on a malicious verdict and keeps the chain out', async () => {
    const d = await trained();
    const r = await d.analyse([chain(CI, TRAINED + MINUTE, [{ operation: 'GET /x', peer: 'vault' }])]);
    const alert = r.alerts.find((a) => a.detectors.includes('new-peer'))!;
    expect((await d.feedback(alert.id, 'malicious'))!.status).toBe('malicious');
    expect(d.identity(CI)!.compromised).toBe(true);
    expect(d.baseline(CI)!.peers.map((p) => p.key)).not.toContain('vault');
    const g = (await d.graph(CI))!;
    // The one call raised one incident with several findings; it is still one call on the graph.
    expect(r.alerts.filter((a) => a.traceId === alert.traceId)).toHaveLength(1);
    expect(alert.findings.length).toBeGreaterThan(1);
    expect(alert.detectors).toEqual(alert.findings.map((f) => f.detector));
    expect(g.edges.find((e) => e.to === 'vault')).toMatchObject({ alertOnly: true, operation: 'GET /x', count: 1 });
    expect(g.nodes.find((n) => n.id === 'vault')).toMatchObject({ alertOnly: true });
    expect(await d.feedback('no-such-alert', 'expected')).toBeUndefined();
  });
});

describe('new-operation', () => {
  it('fires for an unseen operation on a known peer, high when it is sensitive', async () => {
    const d = await trained();
    const r = await d.analyse([
      chain(CI, TRAINED + MINUTE, [
        { operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' },
        { operation: 'GET /api/v1/secrets', peer: 'kube-api', target: 'secrets' },
      ]),
    ]);
    const alert = r.alerts.find((a) => a.detectors.includes('new-operation'))!;
    expect(alert.severity).toBe('high');
    expect(alert.explanation).toContain('"GET /api/v1/secrets"');
    expect(alert.explanation).toMatch(/most often .*"PATCH \/apis\/apps\/v1\/deployments\/\{id\}" \(60 calls\)/);
    expect(r.alerts.find((a) => a.detectors.includes('new-peer'))).toBeUndefined();
  });
});

describe('unusual-chain', () => {
  it('uses the order of known operations: a reversed chain is unusual, the usual one is not', async () => {
    const d = await trained();
    const usual = await d.analyse([deployChain(CI, TRAINED + MINUTE, 1)]);
    expect(usual.alerts).toEqual([]);
    const reversed = await d.analyse([
      chain(CI, TRAINED + 2 * MINUTE, [
        { operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', target: 'deploy-logs', account: '111111111111' },
        { operation: 'PATCH /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' },
        { operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' },
      ]),
    ]);
    expect(reversed.alerts.map((a) => a.detector)).toEqual(['unusual-chain']);
    const alert = reversed.alerts[0]!;
    expect(alert.severity).toBe('medium');
    expect(alert.explanation).toMatch(/After the start of a chain .* usually goes on to "GET \/apis\/apps\/v1\/deployments\/\{id\}" \(\d+ times\)/);
    expect(alert.explanation).toContain('followed by "PutObject"');
  });

  it('skipping a learned step and retrying a failed call are not unusual; a never-seen jump still is', async () => {
    const d = await trained();
    const kube = { peer: 'kube-api', target: 'deployments' };
    const s3 = { operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http' as const, target: 'deploy-logs', account: '111111111111' };
    // GET -> PutObject was never seen, but GET -> PATCH -> PutObject was: the PATCH was skipped.
    const skipped = await d.analyse([chain(CI, TRAINED + MINUTE, [{ operation: 'GET /apis/apps/v1/deployments/{id}', ...kube }, s3])]);
    expect(skipped.alerts).toEqual([]);
    const patch = { operation: 'PATCH /apis/apps/v1/deployments/{id}', ...kube };
    // The same repeat without an error before it is not a retry.
    const twice = await d.analyse([chain(CI, TRAINED + 2 * MINUTE, [{ operation: 'GET /apis/apps/v1/deployments/{id}', ...kube }, patch, patch, s3])]);
    expect(twice.alerts.flatMap((a) => a.detectors)).toEqual(['unusual-chain']);
    // PATCH -> PATCH was never learned (that chain was held out); after a failed PATCH it is a retry.
    const retried = await d.analyse([
      chain(CI, TRAINED + 3 * MINUTE, [{ operation: 'GET /apis/apps/v1/deployments/{id}', ...kube }, { ...patch, status: 'error' as const }, patch, s3]),
    ]);
    expect(retried.alerts).toEqual([]);
    // PutObject -> GET skips nothing learned (PutObject only ever ends a chain): unusual.
    const jump = await d.analyse([chain(CI, TRAINED + 4 * MINUTE, [{ operation: 'GET /apis/apps/v1/deployments/{id}', ...kube }, patch, s3, { operation: 'GET /apis/apps/v1/deployments/{id}', ...kube }])]);
    expect(jump.alerts.flatMap((a) => a.detectors)).toEqual(['unusual-chain']);
  });
});

describe('rate-burst and fan-out', () => {
  it('an 8x burst of the usual chains over known peers and operations stays below medium', async () => {
    const d = await trained();
    // Usually ~3.3 calls per minute; now 8 chains per minute for five minutes.
    const burst: Chain[] = [];
    for (let m = 0; m < 5; m++) for (let k = 0; k < 8; k++) burst.push(deployChain(CI, TRAINED + m * MINUTE + k * 5_000, k));
    // Plus the same automation at 8x over a longer window in one minute to pass the burst threshold.
    for (let k = 0; k < 40; k++) burst.push(deployChain(CI, TRAINED + 10 * MINUTE + k * 1_000, k));
    const r = await d.analyse(burst);
    const all = [...r.alerts, ...r.updated];
    expect(atLeastMedium(all)).toEqual([]);
    const rate = r.alerts.find((a) => a.detectors.includes('rate-burst'))!;
    expect(rate).toBeDefined();
    expect(rate.severity).toBe('low');
    expect(rate.explanation).toMatch(/calls per active minute/);
  });

  it('fan-out across several new accounts is medium or above and agrees with new-peer', async () => {
    const d = await trained();
    const accounts = ['222222222222', '333333333333', '444444444444', '555555555555', '666666666666'];
    const c = chain(
      CI,
      TRAINED + MINUTE,
      accounts.map((account) => ({ operation: 'ListBuckets', peer: 's3.amazonaws.com', peerKind: 'http' as const, account, target: `bucket-${account}` })),
    );
    const r = await d.analyse([c]);
    // One incident for the identity and trace, both findings inside.
    expect(r.alerts).toHaveLength(1);
    const incident = r.alerts[0]!;
    const fan = incident.findings.find((f) => f.detector === 'fan-out')!;
    expect(fan).toBeDefined();
    expect(SEVERITY_RANK[fan.severity]).toBeGreaterThanOrEqual(SEVERITY_RANK.medium);
    expect(fan.techniques).toContain('T1619');
    expect(fan.attack).toContainEqual({ id: 'T1619', name: 'Cloud Storage Object Discovery', tactic: 'Discovery' });
    expect(incident.techniques).toContain('T1619');
    const peer = incident.findings.find((f) => f.detector === 'new-peer')!;
    expect(peer.severity === 'high' || peer.severity === 'critical').toBe(true);
    // The incident leads with its worst finding and takes its severity and score.
    expect(incident.detector).toBe('new-peer');
    expect(incident.severity).toBe(peer.severity);
    expect(incident.score).toBe(Math.max(...incident.findings.map((f) => f.score)));
    expect(incident.evidence?.agreeing).toContain('fan-out');
    // agreement raises the score above a lone finding of the same severity
    expect(peer.score).toBeGreaterThan(75);
  });

  it('fan-out judged expected stops finding that fan-out, while the other findings of a later chain stand', async () => {
    const d = await trained();
    const fanning = (at: number, accounts: string[]) =>
      chain(CI, at, accounts.map((account) => ({ operation: 'ListBuckets', peer: 's3.amazonaws.com', peerKind: 'http' as const, account, target: `bucket-${account}` })));
    const first = await d.analyse([fanning(TRAINED + MINUTE, ['222222222222', '333333333333', '444444444444', '555555555555', '666666666666'])]);
    const incident = first.alerts[0]!;
    expect(incident.findings.map((f) => f.detector)).toContain('fan-out');
    await d.feedback(incident.id, 'expected');
    // Another minute, other new accounts: the fan-out is suppressed, the new accounts are not.
    const later = await d.analyse([fanning(TRAINED + 10 * MINUTE, ['777777777777', '888888888888', '999999999999', '121212121212', '131313131313'])]);
    const findings = [...later.alerts, ...later.updated].flatMap((a) => a.findings.map((f) => f.detector));
    expect(findings).not.toContain('fan-out');
    expect(findings).toContain('new-peer');
  });
});

describe('new-source', () => {
  it('fires for a new region and stays quiet for new pod and host names', async () => {
    const d = await trained();
    const pods = training(CI, TRAINED + MINUTE, 5, MINUTE).map((c) => {
      for (const call of c.calls) call.source = { ...call.source, host: `deployer-new-${call.spanId}` };
      return c;
    });
    expect((await d.analyse(pods)).alerts).toEqual([]);
    const moved = deployChain(CI, TRAINED + HOUR, 2);
    for (const call of moved.calls) call.source = { ...call.source, region: 'ap-southeast-3' };
    const r = await d.analyse([moved]);
    const alert = r.alerts.find((a) => a.detectors.includes('new-source'))!;
    expect(alert.severity).toBe('medium');
    expect(alert.explanation).toContain('"ap-southeast-3"');
    expect(alert.explanation).toMatch(/region "us-east-1" \(\d+ calls\)/);
    expect(alert.techniques).toEqual(['T1078.004']);
  });
});

describe('credential-reuse', () => {
  const CERT = 'spiffe://prod/ns/batch/sa/exporter';
  const srv = (network: string, clientAddress: string, userAgent: string, publicAddress = false) => ({
    operation: 'GET /export/{id}',
    peer: 'export-api',
    source: { network, clientAddress, userAgent, publicAddress },
  });

  it('fires while learning for two networks with two clients within minutes', async () => {
    const d = await open();
    const a = await d.analyse([chain(CERT, T0, [srv('10.1.2.0/24', '10.1.2.7', 'python-requests/2.31')], { identityKind: 'certificate' })]);
    expect(a.alerts).toEqual([]);
    const c = chain(CERT, T0 + 4 * MINUTE, [srv('10.9.8.0/24', '10.9.8.5', 'curl/8.4.0')], { identityKind: 'certificate' });
    const r = await d.analyse([c]);
    expect(d.identity(CERT)!.status).toBe('learning');
    const alert = r.alerts.find((x) => x.detectors.includes('credential-reuse'))!;
    expect(alert.severity === 'high' || alert.severity === 'critical').toBe(true);
    expect(alert.traceId).toBe(c.traceId);
    expect(alert.explanation).toContain('"10.1.2.0/24"');
    expect(alert.explanation).toContain('"curl"');
  });

  it('stays quiet for the same client on another network, or two clients far apart in time', async () => {
    const d = await open();
    await d.analyse([chain(CERT, T0, [srv('10.1.2.0/24', '10.1.2.7', 'python-requests/2.31')], { identityKind: 'certificate' })]);
    expect((await d.analyse([chain(CERT, T0 + MINUTE, [srv('10.1.3.0/24', '10.1.3.9', 'python-requests/2.32')], { identityKind: 'certificate' })])).alerts).toEqual([]);
    expect((await d.analyse([chain(CERT, T0 + 3 * HOUR, [srv('10.7.0.0/24', '10.7.0.1', 'curl/8')], { identityKind: 'certificate' })])).alerts).toEqual([]);
  });

  it('flags a workload role driven by a desktop cloud CLI, not a console user', async () => {
    const d = await open();
    const role = 'arn:aws:sts::123456789123:assumed-role/BankingWAFRole/i-0317f6c6b66ae9c40';
    const user = 'arn:aws:iam::123456789123:user/pedro';
    const cli = '[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.5';
    const r = await d.analyse([
      chain(user, T0, [{ operation: 'DescribeInstances', peer: 'ec2.amazonaws.com', source: { userAgent: 'console.ec2.amazonaws.com', clientAddress: '1.2.3.4', publicAddress: true, network: '1.2.3.0/24' } }], { identityKind: 'principal' }),
      chain(user, T0 + MINUTE, [{ operation: 'ListBuckets', peer: 's3.amazonaws.com', source: { userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)', clientAddress: '1.2.3.4', publicAddress: true, network: '1.2.3.0/24' } }], { identityKind: 'principal' }),
      chain(role, T0 + 2 * MINUTE, [{ operation: 'ListObjects', peer: 's3.amazonaws.com', target: 'banking-data', source: { userAgent: cli, clientAddress: '1.2.3.4', publicAddress: true, network: '1.2.3.0/24' } }], { identityKind: 'principal' }),
    ]);
    expect(r.alerts.filter((a) => a.identity === user)).toEqual([]);
    const alert = r.alerts.find((a) => a.identity === role && a.detectors.includes('credential-reuse'))!;
    expect(alert.explanation).toMatch(/cloud CLI \(aws-cli\) on a desktop operating system/);
    expect(alert.techniques).toEqual(['T1078.004']);
  });

  it('flags a public address after private-only use', async () => {
    const d = await open();
    await d.analyse([0, 1, 2].map((i) => chain(CERT, T0 + i * HOUR, [srv('10.1.2.0/24', `10.1.2.${i}`, 'python-requests/2.31')], { identityKind: 'certificate' })));
    const r = await d.analyse([chain(CERT, T0 + 5 * HOUR, [srv('203.0.113.0/24', '203.0.113.9', 'python-requests/2.31', true)], { identityKind: 'certificate' })]);
    expect(r.alerts.find((a) => a.detectors.includes('credential-reuse'))?.explanation).toContain('"203.0.113.9"');
  });
});

describe('policy', () => {
  it('fires from the first call, learning or not', async () => {
    const d = await open([
      { match: 'svc:ci/*', purpose: 'Deploys to the prod-a cluster', expectedPeers: ['kube-api', 's3.amazonaws.com'], deniedOperations: ['Delete*'], allowedRegions: ['us-east-1'] },
    ]);
    const c = chain(CI, T0, [{ operation: 'DeleteBucket', peer: 's3.amazonaws.com', source: { region: 'eu-west-1' } }]);
    const r = await d.analyse([c]);
    const alert = r.alerts.find((a) => a.detectors.includes('policy'))!;
    expect(alert.severity).toBe('high');
    expect(alert.explanation).toContain('Deploys to the prod-a cluster');
    expect(alert.explanation).toContain('"DeleteBucket"');
    expect(alert.explanation).toContain('"eu-west-1"');
    expect((await d.analyse([deployChain(CI, T0 + MINUTE, 1)])).alerts).toEqual([]);
  });
});

describe('forgetting and persistence', () => {
  it('ages out entries unseen for forgetAfter, so the peer is new again', async () => {
    const d = await open([], { ...LEARNING, forgetAfter: 24 * HOUR });
    await d.analyse(training(CI, T0, 60, 3 * MINUTE));
    (await d.analyse([chain(CI, T0 + 4 * HOUR, [{ operation: 'GET /v1/rare', peer: 'rare-api' }])])).alerts; // learned? it is new: alerted
    await d.feedback((await d.listAlerts({ detector: 'new-peer' }))[0]!.id, 'acknowledged');
    expect(d.baseline(CI)!.peers.map((p) => p.key)).not.toContain('rare-api');
    // Learn rare-api through an expected verdict, then go quiet on it for two days.
    const id = (await d.analyse([chain(CI, T0 + 5 * HOUR, [{ operation: 'GET /v1/rare2', peer: 'rare2-api' }])])).alerts.find((a) => a.detectors.includes('new-peer'))!.id;
    await d.feedback(id, 'expected');
    expect(d.baseline(CI)!.peers.map((p) => p.key)).toContain('rare2-api');
    await d.analyse(training(CI, T0 + 3 * 24 * HOUR, 3, 3 * MINUTE));
    expect(d.baseline(CI)!.peers.map((p) => p.key)).not.toContain('rare2-api');
    expect(d.baseline(CI)!.peers.map((p) => p.key)).toContain('kube-api');
  });

  it('a chain stamped a year ahead of the wall clock forgets nothing: the usual chain stays quiet after it', async () => {
    // Live traffic: trained over the last four hours of the wall clock.
    const from = Date.now() - 4 * HOUR;
    const d = await open();
    expect((await d.analyse(training(CI, from, 60, 3 * MINUTE))).alerts).toEqual([]);
    expect(d.identity(CI)?.status).toBe('enforcing');
    await d.analyse([chain(CI, Date.now() + 365 * 24 * HOUR, [{ operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api' }])]);
    expect(d.baseline(CI)!.peers.map((p) => p.key)).toContain('s3.amazonaws.com');
    expect(atLeastMedium((await d.analyse([deployChain(CI, from + 3 * HOUR + MINUTE, 1)])).alerts)).toEqual([]);
  });

  it('keeps baselines, learning state and alerts across reopening the database file', async () => {
    const path = join(dir, 'conduct.db');
    let d = await trained();
    const alert = (await d.analyse([chain(CI, TRAINED + MINUTE, [{ operation: 'GET /v1/ledger', peer: 'ledger-api' }])])).alerts[0]!;
    await backend.close();
    backend = await openSqliteBackend({ path });
    d = await open();
    expect(d.identity(CI)).toMatchObject({ status: 'enforcing' });
    expect(d.baseline(CI)!.peers.find((p) => p.key === 'kube-api')!.count).toBeGreaterThan(100);
    expect(d.baseline(CI)!.rate.calls.windows).toBeGreaterThan(50);
    expect(await d.getAlert(alert.id)).toEqual(alert);
    // The repeat after the restart is deduplicated into the stored alert.
    const r = await d.analyse([chain(CI, TRAINED + 2 * MINUTE, [{ operation: 'GET /v1/ledger', peer: 'ledger-api' }])]);
    expect(r.updated.find((a) => a.id === alert.id)?.count).toBe(2);
    // A usual chain is still quiet after the restart.
    expect((await d.analyse([deployChain(CI, TRAINED + 3 * MINUTE, 4)])).alerts).toEqual([]);
  });

  it('keeps the chain model\'s calibration across reopening: a varied identity stays quiet on a step it never took', async () => {
    const path = join(dir, 'conduct.db');
    let d = await open();
    expect((await d.analyse(storefrontChains(T0, 150))).alerts).toEqual([]);
    expect(d.identity(STOREFRONT)?.status).toBe('enforcing');
    await backend.close();
    backend = await openSqliteBackend({ path });
    const samples = backend.store.db.prepare("SELECT sum(count) AS n FROM baseline_entries WHERE identity = ? AND kind = 'chainSurprisal'").get(STOREFRONT) as { n: number };
    expect(samples.n).toBeGreaterThan(100);
    d = await open();
    const at = T0 + 151 * MINUTE;
    expect((await d.analyse([storefrontChain(at, ['GET /cart', 'GET /stock'])])).alerts).toEqual([]);
    // A step out of its end, where it never went on, is still unusual.
    const r = await d.analyse([storefrontChain(at + MINUTE, ['GET /stock', 'GET /cart', 'GET /stock', 'GET /stock', 'GET /stock', 'GET /stock'])]);
    expect(r.alerts.flatMap((a) => a.detectors)).toContain('unusual-chain');
  });

  it('learns each chain of an enforcing identity with the surprisal unusual-chain scored: the same histogram as scoring it at learning', async () => {
    const chains = storefrontChains(T0, 150);
    const d = await open();
    expect((await d.analyse(chains)).alerts).toEqual([]);
    expect(d.identity(STOREFRONT)?.status).toBe('enforcing');
    const stored = backend.store.db
      .prepare("SELECT key, count FROM baseline_entries WHERE identity = ? AND kind = 'chainSurprisal' ORDER BY key")
      .all(STOREFRONT) as { key: string; count: number }[];
    // Every chain scored again by learnChain itself, against the baseline before it.
    const again = learned(STOREFRONT, chains, { minCalls: LEARNING.minCalls, periodMs: LEARNING.period, forgetAfterMs: LEARNING.forgetAfter });
    const expected = [...again.entries.chainSurprisal].map(([key, e]) => ({ key, count: e.count })).sort((x, y) => (x.key < y.key ? -1 : 1));
    expect(stored).toEqual(expected);
    // Most of those chains were learned after enforcing began (scored once, by unusual-chain).
    expect(expected.reduce((n, e) => n + e.count, 0)).toBeGreaterThan(100);
  });

  it('with persistIntervalMs, writes learned state once per interval or on flush, alerts at once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const persisted = () => backend.store.db.prepare('SELECT count FROM baseline_entries WHERE identity = ? AND kind = ? AND key = ?');
      const peerCount = (peer: string) => (persisted().get(CI, 'peer', peer) as { count: number } | undefined)?.count;
      let d = await createDetection({ state: backend.detection, learning: LEARNING, traceUrl: TRACE_URL, persistIntervalMs: 1_000 });
      await d.analyse(training(CI, T0, 60, 3 * MINUTE));
      // The first batch is written: nothing was written for an interval.
      const learned = peerCount('kube-api')!;
      expect(learned).toBeGreaterThan(100);
      const alert = (await d.analyse([chain(CI, TRAINED + MINUTE, [{ operation: 'GET /v1/ledger', peer: 'ledger-api' }])])).alerts[0]!;
      await d.analyse([deployChain(CI, TRAINED + 2 * MINUTE, 1)]);
      // Within the interval the alert is stored, the learning held back...
      expect(await d.getAlert(alert.id)).toEqual(alert);
      expect(peerCount('kube-api')).toBe(learned);
      // ...until the interval is over, also when no further batch comes.
      await vi.advanceTimersByTimeAsync(1_000);
      expect(peerCount('kube-api')).toBe(d.baseline(CI)!.peers.find((p) => p.key === 'kube-api')!.count);
      expect(peerCount('kube-api')).toBeGreaterThan(learned);
      await d.analyse([deployChain(CI, TRAINED + 3 * MINUTE, 2)]);
      await d.analyse([deployChain(CI, TRAINED + 4 * MINUTE, 3)]);
      await d.flush();
      const before = d.baseline(CI);
      d = await open();
      expect(d.baseline(CI)).toEqual(before);
    } finally {
      vi.useRealTimers();
    }
  });

  it('lists alerts newest first with identity, detector, status and since filters', async () => {
    const d = await trained();
    await d.analyse([chain(CI, TRAINED + MINUTE, [{ operation: 'GET /a', peer: 'a-api' }])]);
    await d.analyse([chain(CI, TRAINED + 2 * HOUR, [{ operation: 'GET /b', peer: 'b-api' }])]);
    const all = await d.listAlerts();
    expect(all.length).toBeGreaterThanOrEqual(2);
    expect(Date.parse(all[0]!.lastSeen)).toBeGreaterThanOrEqual(Date.parse(all[all.length - 1]!.lastSeen));
    const since = await d.listAlerts({ sinceMs: TRAINED + HOUR, detector: 'new-peer' });
    expect(since).toHaveLength(1);
    expect(since[0]!.explanation).toContain('"b-api"');
    expect(await d.listAlerts({ identity: 'nobody' })).toEqual([]);
    await d.feedback(since[0]!.id, 'acknowledged');
    expect((await d.listAlerts({ status: 'acknowledged' })).map((a) => a.id)).toEqual([since[0]!.id]);
    expect(await d.listAlerts({ limit: 1 })).toHaveLength(1);
  });

  it('builds the graph from the learned baseline with counts and first/last seen', async () => {
    const d = await trained();
    const g = (await d.graph(CI))!;
    expect(g.nodes.map((n) => n.id).sort()).toEqual([CI, 'ci/deployer', 'kube-api', 's3.amazonaws.com'].sort());
    const put = g.edges.find((e) => e.to === 's3.amazonaws.com')!;
    expect(put).toMatchObject({ from: 'ci/deployer', operation: 'PutObject', count: 60 });
    expect(put.firstSeen).toBe(new Date(T0 + 300).toISOString());
    expect(g.edges.some((e) => e.alertOnly)).toBe(false);
    expect(await d.graph('unknown')).toBeUndefined();
  });
});

describe('hostile input', () => {
  it('bounds huge and odd values and never throws', async () => {
    const d = await open();
    const long = 'x'.repeat(100_000);
    const r = await d.analyse([
      chain('svc:evil', T0, [
        { operation: long, peer: long, target: long, source: { userAgent: long, region: long, network: long, clientAddress: long } },
        { operation: '\u0000"\'); DROP TABLE alerts;--', peer: '\n' },
      ]),
    ]);
    expect(r.learned).toBe(1);
    const b = d.baseline('svc:evil')!;
    expect(b.peers.every((p) => p.key.length <= 256)).toBe(true);
    expect(await d.listAlerts()).toEqual([]);
  });
});
