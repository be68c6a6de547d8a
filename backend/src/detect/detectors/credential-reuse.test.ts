import { describe, expect, it } from 'vitest';
import { HOUR, MINUTE, T0, chain } from '../testdata/chains.js';
import { contextFor, learned } from '../testdata/context.js';
import { credentialReuse } from './credential-reuse.js';

const CERT = 'spiffe://prod/ns/batch/sa/exporter';
const srv = (network: string, clientAddress: string, userAgent: string, publicAddress = false) => ({
  operation: 'GET /export/{id}',
  peer: 'export-api',
  source: { network, clientAddress, userAgent, publicAddress },
});
const cert = (at: number, ...calls: ReturnType<typeof srv>[]) => chain(CERT, at, calls, { identityKind: 'certificate' });

describe('credential-reuse', () => {
  it('fires while learning for two networks with two clients within minutes, naming both', () => {
    const b = learned(CERT, [cert(T0, srv('10.1.2.0/24', '10.1.2.7', 'python-requests/2.31'))]);
    const c = cert(T0 + 4 * MINUTE, srv('10.9.8.0/24', '10.9.8.5', 'curl/8.4.0'));
    const f = credentialReuse(contextFor(b, c))!;
    expect(f).toMatchObject({ detector: 'credential-reuse', severity: 'high', keys: ['reuse:10.1.2.0/24|10.9.8.0/24'], spanIds: [c.calls[0]!.spanId] });
    expect(f.explanation).toContain('"10.1.2.0/24"');
    expect(f.explanation).toContain('"curl"');
  });

  it('also within one chain, and not for the same client elsewhere or two clients hours apart', () => {
    const both = cert(T0, srv('10.1.2.0/24', '10.1.2.7', 'python-requests/2.31'), srv('10.9.8.0/24', '10.9.8.5', 'curl/8.4.0'));
    expect(credentialReuse(contextFor(learned(CERT, []), both))?.keys).toEqual(['reuse:10.1.2.0/24|10.9.8.0/24']);
    const b = learned(CERT, [cert(T0, srv('10.1.2.0/24', '10.1.2.7', 'python-requests/2.31'))]);
    expect(credentialReuse(contextFor(b, cert(T0 + MINUTE, srv('10.1.3.0/24', '10.1.3.9', 'python-requests/2.32'))))).toBeUndefined();
    expect(credentialReuse(contextFor(b, cert(T0 + 3 * HOUR, srv('10.7.0.0/24', '10.7.0.1', 'curl/8'))))).toBeUndefined();
  });

  it('flags a public address after private-only use, unless suppressed', () => {
    const b = learned(CERT, [0, 1, 2].map((i) => cert(T0 + i * HOUR, srv('10.1.2.0/24', `10.1.2.${i}`, 'python-requests/2.31'))));
    const c = cert(T0 + 5 * HOUR, srv('203.0.113.0/24', '203.0.113.9', 'python-requests/2.31', true));
    const f = credentialReuse(contextFor(b, c))!;
    expect(f.keys).toEqual(['public:203.0.113.0/24']);
    expect(f.explanation).toContain('"203.0.113.9"');
    expect(credentialReuse(contextFor(b, c, { suppressed: ['credential-reuse public:203.0.113.0/24'] }))).toBeUndefined();
  });

  it('flags a machine identity driven by a desktop cloud CLI', () => {
    const role = 'arn:aws:sts::123456789123:assumed-role/BankingWAFRole/i-0317f6c6b66ae9c40';
    const cli = '[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.5';
    const c = chain(role, T0, [{ operation: 'ListObjects', peer: 's3.amazonaws.com', target: 'banking-data', source: { userAgent: cli, clientAddress: '1.2.3.4', publicAddress: true, network: '1.2.3.0/24' } }], { identityKind: 'principal' });
    const f = credentialReuse(contextFor(learned(role, []), c))!;
    expect(f.explanation).toMatch(/cloud CLI \(aws-cli\) on a desktop operating system/);
    expect(f.techniques).toEqual(['T1078.004']);
  });
});
