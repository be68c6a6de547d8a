import { describe, expect, it } from 'vitest';
import type { Chain } from '@conduct/processor';
import { ALL_DETECTORS } from './detectors/index.js';
import type { Finding } from './finding.js';
import { DEFAULT_RELEASE_GRACE_MS, applyRelease } from './release.js';
import { HOUR, MINUTE, T0, chain, training, type CallSpec } from './testdata/chains.js';
import { contextFor, learned, type ContextOptions } from './testdata/context.js';

const CI = 'svc:ci/deployer';
const TRAINED = T0 + 60 * 3 * MINUTE;
const OLD = '1.4.0';
const NEW = '1.5.0';

const versioned = (c: Chain, version: string): Chain => ({ ...c, calls: c.calls.map((call) => ({ ...call, version })) });
/** Enforcing on version 1.4.0 of `ci/deployer`. */
const baseline = () => learned(CI, training(CI, T0, 60, 3 * MINUTE).map((c) => versioned(c, OLD)));

const GET: CallSpec = { operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' };
const PATCH: CallSpec = { operation: 'PATCH /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments' };
const PUT: CallSpec = { operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', target: 'deploy-logs', account: '111111111111' };
/** What a benign release adds: a status endpoint on a known peer and an internal registry. */
const STATUS: CallSpec = { operation: 'GET /apis/apps/v1/deployments/{id}/status', peer: 'kube-api', target: 'deployments' };
const REGISTRY: CallSpec = { operation: 'GET /v2/_catalog', peer: 'registry' };

function findings(b: ReturnType<typeof baseline>, c: Chain, grace = DEFAULT_RELEASE_GRACE_MS, options: ContextOptions = {}): Finding[] {
  const ctx = contextFor(b, c, options);
  const found = ALL_DETECTORS.map((d) => d(ctx)).filter((f): f is Finding => f !== undefined);
  return applyRelease(ctx, found, grace);
}

describe('release', () => {
  it('a new version with new internal operations and peers is one low release finding listing what changed', () => {
    const c = versioned(chain(CI, TRAINED + MINUTE, [GET, STATUS, PATCH, REGISTRY, PUT]), NEW);
    const [f, ...rest] = findings(baseline(), c);
    expect(rest).toEqual([]);
    expect(f).toMatchObject({ detector: 'release', severity: 'low', keys: [`release:${JSON.stringify(['ci/deployer', NEW])}`], techniques: [] });
    expect(f!.title).toBe(`${CI} rolled out ci/deployer ${NEW}: 2 new operations, 1 new internal peer`);
    expect(f!.evidence).toMatchObject({ version: NEW, previousVersions: [{ version: OLD }], newOperations: [STATUS.operation, REGISTRY.operation], newPeers: ['registry'] });
    expect(f!.explanation).toContain(`runs a new version, "${NEW}"`);
    expect(f!.explanation).toContain('"GET /apis/apps/v1/deployments/{id}/status"');
    expect(f!.spanIds).toEqual(expect.arrayContaining([c.calls[1]!.spanId, c.calls[3]!.spanId]));
  });

  it('is no release on the same version, on the first version an identity reports, or after the grace period', () => {
    const same = versioned(chain(CI, TRAINED + MINUTE, [GET, STATUS, PATCH, REGISTRY, PUT]), OLD);
    expect(findings(baseline(), same).map((f) => [f.detector, f.severity])).toEqual([['new-peer', 'medium'], ['new-operation', 'medium']]);
    const unversioned = learned(CI, training(CI, T0, 60, 3 * MINUTE));
    const first = versioned(chain(CI, TRAINED + MINUTE, [GET, STATUS, PATCH, PUT]), NEW);
    expect(findings(unversioned, first).map((f) => f.detector)).toEqual(['new-operation']);
    // 1.5.0 rolled out at TRAINED; a new operation on it seven hours later is no longer its release.
    const b = learned(CI, [...training(CI, T0, 60, 3 * MINUTE).map((c) => versioned(c, OLD)), ...training(CI, TRAINED, 10, 3 * MINUTE).map((c) => versioned(c, NEW))]);
    const late = versioned(chain(CI, TRAINED + 7 * HOUR, [GET, STATUS, PATCH, PUT]), NEW);
    expect(findings(b, late).map((f) => [f.detector, f.severity])).toEqual([['new-operation', 'medium']]);
    expect(findings(b, late, 8 * HOUR).map((f) => [f.detector, f.severity])).toEqual([['release', 'low']]);
    expect(findings(baseline(), versioned(chain(CI, TRAINED + MINUTE, [GET, STATUS, PATCH, PUT]), NEW), 0).map((f) => f.detector)).toEqual(['new-operation']);
  });

  it('a poisoned release stays an attack: an external peer, a sensitive operation or another account keeps every finding, saying why', () => {
    const paste: CallSpec = { operation: 'PUT /upload', peer: 'paste.example.net:443', peerKind: 'http', external: true };
    const external = findings(baseline(), versioned(chain(CI, TRAINED + MINUTE, [GET, STATUS, PATCH, paste, PUT]), NEW));
    expect(external.map((f) => [f.detector, f.severity])).toEqual([['new-peer', 'high'], ['new-operation', 'medium']]);
    for (const f of external) expect(f.explanation).toMatch(/new version of "ci\/deployer", "1\.5\.0", and is judged as it stands: the chain brought an external peer/);
    const secrets: CallSpec = { operation: 'GET /api/v1/secrets', peer: 'kube-api', target: 'secrets' };
    expect(findings(baseline(), versioned(chain(CI, TRAINED + MINUTE, [GET, secrets, PATCH, PUT]), NEW)).map((f) => [f.detector, f.severity])).toEqual([['new-operation', 'high']]);
    const otherAccount: CallSpec = { ...PUT, account: '999999999999' };
    expect(findings(baseline(), versioned(chain(CI, TRAINED + MINUTE, [GET, STATUS, PATCH, otherAccount]), NEW)).map((f) => f.detector)).toEqual(['new-peer', 'new-operation']);
    const elsewhere = versioned(chain(CI, TRAINED + MINUTE, [GET, STATUS, PATCH, PUT].map((s) => ({ ...s, source: { region: 'ap-south-1' } }))), NEW);
    const learnedRegion = learned(CI, training(CI, T0, 60, 3 * MINUTE).map((c) => versioned({ ...c, calls: c.calls.map((x) => ({ ...x, source: { region: 'us-east-1' } })) }, OLD)));
    expect(findings(learnedRegion, elsewhere).map((f) => f.detector)).toEqual(['new-operation', 'new-source']);
  });

  it('a release an operator marked expected is not raised again', () => {
    const c = versioned(chain(CI, TRAINED + MINUTE, [GET, STATUS, PATCH, PUT]), NEW);
    const key = `release:${JSON.stringify(['ci/deployer', NEW])}`;
    expect(findings(baseline(), c, DEFAULT_RELEASE_GRACE_MS, { suppressed: [`release ${key}`] })).toEqual([]);
  });
});

