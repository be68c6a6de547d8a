/**
 * Hostile input on the Kubernetes audit webhook receiver, as the OTLP receivers get in
 * fuzz.test.ts: random bytes, mutated and truncated EventLists, wrong JSON types in every field,
 * deep nesting, invalid UTF-8, prototype keys, huge values, oversized bodies and gzip bombs. Every
 * request must get an expected answer (200, 400 or 413), `/metrics` must count each under its
 * status code, nothing of a refused body is stored, and a good EventList afterwards comes out as a
 * chain.
 *
 * CI runs a fixed seed and CONDUCT_FUZZ_COUNT (default 240) generated cases.
 */
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditTraceId } from '@conduct/processor';
import { startTestConduct, type TestConduct } from '../support/conduct.js';
import { counterSum } from './support/harness.js';
import { post, randomBytes, seededRandom } from './support/wire.js';

const COUNT = Math.max(1, Number(process.env.CONDUCT_FUZZ_COUNT ?? 240) || 240);
const SEED = Number(process.env.CONDUCT_FUZZ_SEED ?? 0xa0d17) || 0xa0d17;
const MAX_BYTES = 256 * 1024;
const JSON_TYPE = { 'content-type': 'application/json' };
const PATH = '/k8s-audit';

function event(rand: () => number, user = 'system:serviceaccount:fuzz:bot', at = '2026-11-27T08:00:01.000000Z'): Record<string, unknown> {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `fuzz-${Math.floor(rand() * 1e12)}`,
    stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/default/pods',
    verb: 'list',
    user: { username: user, groups: ['system:serviceaccounts'] },
    sourceIPs: ['10.1.2.3'],
    userAgent: 'fuzz/1.0',
    objectRef: { resource: 'pods', namespace: 'default', apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: at,
    stageTimestamp: at,
  };
}
const list = (items: unknown) => ({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items });

/** Values of the wrong JSON type (or hostile ones) for any field. */
const ODD_VALUES: unknown[] = [null, 0, -1, 1e308, true, '', ' ', 'x'.repeat(10_000), [], {}, [[[]]], { __proto__: { polluted: true } }, '\u0000\u001b[31m', '😀'.repeat(100), '\ud800'];

interface Case {
  name: string;
  body: Buffer | string;
  headers?: Record<string, string>;
  expect: number[];
}

function* fixedCases(rand: () => number): Generator<Case> {
  yield { name: 'empty body', body: '', expect: [400] };
  yield { name: 'not JSON', body: 'kind: EventList', expect: [400] };
  yield { name: 'JSON null', body: 'null', expect: [400] };
  yield { name: 'an array', body: JSON.stringify([event(rand)]), expect: [400] };
  yield { name: 'a single Event', body: JSON.stringify(event(rand)), expect: [400] };
  yield { name: 'items an object', body: JSON.stringify(list({ a: 1 })), expect: [400] };
  yield { name: 'deep nesting', body: `{"kind":"EventList","items":[${'['.repeat(100_000)}${']'.repeat(100_000)}]}`, expect: [200, 400] };
  yield { name: 'invalid UTF-8', body: Buffer.concat([Buffer.from('{"kind":"EventList","items":[{"user":{"username":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}}]}')]), expect: [200] };
  yield { name: '__proto__ keys', body: `{"kind":"EventList","__proto__":{"x":1},"items":[{"__proto__":{"stage":"ResponseComplete"},"constructor":{"prototype":{"y":1}}}]}`, expect: [200] };
  yield { name: 'many tiny items', body: JSON.stringify(list(Array.from({ length: 20_000 }, () => 0))), expect: [200] };
  yield { name: 'oversized', body: JSON.stringify(list([{ ...event(rand), userAgent: 'u'.repeat(MAX_BYTES) }])), expect: [413] };
  yield { name: 'gzip bomb', body: zlib.gzipSync(Buffer.alloc(32 * 1024 * 1024, 0x20)), headers: { 'content-encoding': 'gzip' }, expect: [413] };
  yield { name: 'bad gzip', body: Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]), headers: { 'content-encoding': 'gzip' }, expect: [400] };
}

function* generatedCases(rand: () => number, count: number): Generator<Case> {
  const good = () => JSON.stringify(list([event(rand), event(rand)]));
  for (let i = 0; i < count; i++) {
    const kind = Math.floor(rand() * 5);
    if (kind === 0) {
      yield { name: `random bytes ${i}`, body: randomBytes(rand, 1 + Math.floor(rand() * 2000)), expect: [400] };
    } else if (kind === 1) {
      const text = Buffer.from(good());
      for (let k = 0; k < 1 + Math.floor(rand() * 8); k++) text[Math.floor(rand() * text.length)] = Math.floor(rand() * 256);
      yield { name: `flipped bytes ${i}`, body: text, expect: [200, 400] };
    } else if (kind === 2) {
      const text = good();
      yield { name: `truncated ${i}`, body: text.slice(0, Math.floor(rand() * text.length)), expect: [400] };
    } else {
      // A field of an event (or of its parts) set to a value of the wrong type.
      const e = event(rand);
      const fields = ['kind', 'apiVersion', 'auditID', 'stage', 'requestURI', 'verb', 'user', 'sourceIPs', 'userAgent', 'objectRef', 'responseStatus', 'requestReceivedTimestamp', 'stageTimestamp', 'impersonatedUser'];
      const field = fields[Math.floor(rand() * fields.length)]!;
      const value = ODD_VALUES[Math.floor(rand() * ODD_VALUES.length)];
      if (kind === 3) e[field] = value;
      else if (field === 'user' || field === 'objectRef' || field === 'responseStatus') e[field] = { ...(e[field] as object), [['username', 'resource', 'code', 'namespace', 'subresource'][Math.floor(rand() * 5)]!]: value };
      else e[field] = value;
      yield { name: `odd ${field} ${i}`, body: JSON.stringify(list([e, event(rand)])), expect: [200] };
    }
  }
}

describe('hostile input on the Kubernetes audit webhook', () => {
  let conduct: TestConduct;
  let endpoint: string;
  beforeAll(async () => {
    conduct = await startTestConduct({ receivers: { k8sAudit: { endpoint: '127.0.0.1:0', maxRequestBytes: `${MAX_BYTES}B` as unknown as number } } });
    endpoint = conduct.running.k8sAuditAddress;
  });
  afterAll(async () => {
    await conduct?.dispose();
  });

  it(`answers every hostile request correctly, counts it, stores nothing of refused bodies and keeps working (seed ${SEED}, ${COUNT} generated)`, async () => {
    const rand = seededRandom(SEED);
    const metrics = async () => String((await conduct.get<string>('/metrics')).body);
    const before = await metrics();
    const seen = new Map<number, number>();
    const wrong: string[] = [];
    const run = async (c: Case) => {
      const res = await post(endpoint, PATH, { ...JSON_TYPE, ...c.headers }, c.body);
      seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
      if (!c.expect.includes(res.status)) wrong.push(`${c.name}: ${res.status} (expected ${c.expect.join('/')}) ${res.body.toString('utf8').slice(0, 200)}`);
    };
    for (const c of fixedCases(rand)) await run(c);
    const gen = [...generatedCases(rand, COUNT)];
    for (let i = 0; i < gen.length; i += 8) await Promise.all(gen.slice(i, i + 8).map(run));

    expect(wrong).toEqual([]);
    expect(seen.get(0) ?? 0).toBe(0);
    expect(seen.get(400) ?? 0).toBeGreaterThan(10);
    expect(seen.get(200) ?? 0).toBeGreaterThan(10);
    const after = await metrics();
    for (const [code, n] of seen) {
      const counted = counterSum(after, 'conduct_receiver_requests_total', { protocol: 'k8s-audit', code: String(code) }) - counterSum(before, 'conduct_receiver_requests_total', { protocol: 'k8s-audit', code: String(code) });
      expect(counted, `requests counted with code ${code}`).toBe(n);
    }
    expect(counterSum(after, 'conduct_receiver_requests_rejected_total', { protocol: 'k8s-audit', reason: 'too-large' })).toBe(2);
    expect(counterSum(after, 'conduct_receiver_spans_rejected_total', { protocol: 'k8s-audit', reason: 'invalid-span' })).toBeGreaterThan(0);

    // What was stored came from whole, readable events only: every call names the fuzz user.
    await conduct.flush();
    const { body } = await conduct.get<{ identities: { id: string }[] }>('/api/v1/identities');
    for (const i of body.identities) expect(typeof i.id === 'string' && i.id.length > 0 && i.id.length <= 256, i.id).toBe(true);

    // A good EventList still works and its chain shows up.
    const at = '2026-11-27T09:30:00.000000Z';
    const res = await post(endpoint, PATH, JSON_TYPE, JSON.stringify(list([event(rand, 'system:serviceaccount:after:the-storm', at)])));
    expect(res.status).toBe(200);
    await conduct.flush();
    const trace = await conduct.get<{ chains: { identity: string }[] }>(`/api/v1/traces/${auditTraceId('system:serviceaccount:after:the-storm', Date.parse(at))}`);
    expect(trace.body.chains.map((c) => c.identity)).toEqual(['system:serviceaccount:after:the-storm']);
  });
});
