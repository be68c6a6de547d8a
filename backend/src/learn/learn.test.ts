import { describe, expect, it } from 'vitest';
import type { Chain } from '@conduct/processor';
import {
  createBaseline,
  edgeKey,
  forget,
  learnChain,
  learningState,
  transitionKey,
  transitionsFrom,
  transitionTotals,
  END,
  MAX_ENTRIES_PER_KIND,
  MAX_KEY_LENGTH,
  MAX_MEMO_KEYS,
  START,
  unlearnChain,
  type Baseline,
} from './baseline.js';
import { MAX_RATE_SAMPLES, OPEN_WINDOWS, RATE_WINDOW_MS, createRateState, observeCalls, summarise, taintWindows } from './rate.js';
import { chainShape, nearestShape, shapeDistance, shapeKey, shapeKeyOf, MAX_MEMO_SHAPES, MAX_SHAPE_LENGTH } from './shape.js';
import { humanSoftware, isNonHumanIdentity, MAX_CACHED_USER_AGENTS, userAgentFamily } from './user-agent.js';

const T0 = Date.UTC(2026, 0, 1);
const opts = { minCalls: 4, periodMs: 10 * 60_000, forgetAfterMs: 24 * 3_600_000 };

function chainOf(ops: string[], at: number): Chain {
  return {
    traceId: 'a'.repeat(32),
    identity: 'svc:x',
    identityKind: 'workload',
    startMs: at,
    endMs: at + ops.length,
    calls: ops.map((operation, i) => ({
      traceId: 'a'.repeat(32),
      spanId: String(i).padStart(16, '0'),
      parentSpanId: '',
      identity: 'svc:x',
      identityKind: 'workload',
      service: 'x',
      peer: 'p',
      peerKind: 'service',
      external: false,
      operation,
      protocol: 'http',
      startMs: at + i,
      durationMs: 1,
      status: 'ok',
      name: operation,
      source: { host: `pod-${at}`, region: 'r1' },
    })),
  };
}

describe('shapes', () => {
  it('keeps the first-occurrence order of distinct operations and measures order, not only the set', () => {
    expect(chainShape(['a', 'b', 'a', 'c', 'b'])).toEqual(['a', 'b', 'c']);
    expect(shapeDistance(['a', 'b', 'c'], ['a', 'b', 'c'])).toBe(0);
    expect(shapeDistance(['a', 'b', 'c'], ['c', 'b', 'a'])).toBeCloseTo(2 / 3);
    expect(shapeDistance(['a'], ['x', 'y'])).toBe(1);
    expect(nearestShape(['a', 'c'], [['x'], ['a', 'b', 'c']])).toEqual({ shape: ['a', 'b', 'c'], distance: 1 / 3 });
  });
});

describe('baseline', () => {
  it('learns transitions with start and end states, not host names, and moves to enforcing', () => {
    const b = createBaseline('svc:x', 'workload');
    learnChain(b, chainOf(['a', 'b'], T0), opts);
    expect(transitionsFrom(b, START)).toEqual([{ next: 'a', count: 1 }]);
    expect(transitionsFrom(b, 'b')).toEqual([{ next: END, count: 1 }]);
    expect(b.entries.region.get('r1')?.count).toBe(2);
    expect(Object.values(b.entries).some((m) => [...m.keys()].some((k) => k.includes('pod-')))).toBe(false);
    expect(learningState(b, opts).status).toBe('learning');
    learnChain(b, chainOf(['a', 'b'], T0 + 11 * 60_000), opts);
    expect(learningState(b, opts)).toMatchObject({ status: 'enforcing', progress: 1, calls: 4 });
  });

  it('learns every source kind of a call: the client family, the address class, not the host', () => {
    const b = createBaseline('svc:x', 'workload');
    const c = chainOf(['a'], T0);
    const ua = 'python-requests/2.31';
    c.calls[0]!.source = { region: 'r1', account: '111', cluster: 'prod', host: 'h1', network: '203.0.113.0/24', clientAddress: '203.0.113.9', publicAddress: true, userAgent: ua };
    learnChain(b, c, opts);
    const learned = (kind: keyof typeof b.entries) => [...b.entries[kind].keys()];
    expect([learned('region'), learned('account'), learned('cluster'), learned('network')]).toEqual([['r1'], ['111'], ['prod'], ['203.0.113.0/24']]);
    expect(learned('userAgent')).toEqual([userAgentFamily(ua)]);
    expect(userAgentFamily(ua)).not.toBe(ua);
    expect(learned('addressClass')).toEqual(['public']);
  });

  it('forgets entries unseen for forgetAfter and records them for deletion', () => {
    const b = createBaseline('svc:x', 'workload');
    learnChain(b, chainOf(['old'], T0), opts);
    learnChain(b, chainOf(['new'], T0 + 2 * 24 * 3_600_000), opts);
    const dropped = forget(b, T0 + 2 * 24 * 3_600_000, opts.forgetAfterMs, true);
    expect(dropped).toBeGreaterThan(0);
    expect(b.entries.operation.has('old')).toBe(false);
    expect(b.entries.operation.has('new')).toBe(true);
    expect(b.removed.operation.has('old')).toBe(true);
  });

  it('unlearns a chain: the baseline is as if only the chain that replaced it had been learned', () => {
    const counts = (b: Baseline) =>
      Object.fromEntries(Object.entries(b.entries).map(([kind, map]) => [kind, Object.fromEntries([...map].map(([k, e]) => [k, e.count]))]));
    const provisional = chainOf(['GET /checkout', 'GET /orders/{id}'], T0);
    provisional.calls[1]!.peer = 'orders:8080';
    const merged = chainOf(['GET /checkout', 'GET /orders/{id}'], T0);
    const twice = createBaseline('svc:x', 'workload');
    learnChain(twice, chainOf(['GET /checkout'], T0 - 1), opts);
    learnChain(twice, provisional, opts);
    unlearnChain(twice, provisional);
    learnChain(twice, merged, opts);
    const once = createBaseline('svc:x', 'workload');
    learnChain(once, chainOf(['GET /checkout'], T0 - 1), opts);
    learnChain(once, merged, opts);
    expect(counts(twice)).toEqual(counts(once));
    expect(twice.calls).toBe(once.calls);
    expect(twice.entries.peer.has('orders:8080')).toBe(false);
    // What went is written as removed; what changed, as dirty.
    expect(twice.removed.peer.has('orders:8080')).toBe(true);
    expect(transitionTotals(twice)).toEqual(transitionTotals(once));
  });

  it('keeps the transition totals equal to the sum of the learned transitions', () => {
    /** The totals summed from scratch, as transitionsFrom sees them. */
    const summed = (b: Baseline) =>
      new Map([START, 'a', 'b', 'c', 'old', ...Array.from({ length: 10 }, (_, i) => `f${i}`)].map((op): [string, number] => [op, transitionsFrom(b, op).reduce((n, t) => n + t.count, 0)]).filter(([, n]) => n !== 0));
    const b = createBaseline('svc:x', 'workload');
    learnChain(b, chainOf(['old', 'a'], T0), opts);
    expect(transitionTotals(b)).toEqual(summed(b));
    learnChain(b, chainOf(['a', 'b', 'a', 'c'], T0 + 1), opts);
    learnChain(b, chainOf(['a', 'b'], T0 + 2 * 24 * 3_600_000), opts);
    expect(transitionTotals(b)).toEqual(summed(b));
    forget(b, T0 + 2 * 24 * 3_600_000, opts.forgetAfterMs, true);
    expect(transitionTotals(b).has('old')).toBe(false);
    expect(transitionTotals(b)).toEqual(summed(b));
    // A full kind refuses new transitions: they are not counted in the totals either.
    for (let i = 0; b.entries.transition.size < MAX_ENTRIES_PER_KIND; i++) b.entries.transition.set(transitionKey(`x${i}`, 'y'), { count: 1, firstMs: T0, lastMs: T0 });
    b.transitionsOut = undefined;
    transitionTotals(b);
    learnChain(b, chainOf(['f1', 'a', 'b'], T0 + 2 * 24 * 3_600_000), opts);
    expect(transitionTotals(b).get('a')).toBe(summed(b).get('a'));
    expect(transitionTotals(b).has('f1')).toBe(false);
  });
});

describe('rate windows', () => {
  it('closes windows into samples, skips tainted and late ones, and bounds the samples', () => {
    const s = createRateState();
    const minute = (m: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ startMs: T0 + m * RATE_WINDOW_MS + i, peer: 'p', target: `t${i}` }));
    observeCalls(s, minute(0, 3));
    const idx = observeCalls(s, minute(1, 50));
    taintWindows(s, idx);
    observeCalls(s, minute(2, 4));
    observeCalls(s, minute(2 + OPEN_WINDOWS + 1, 1)); // closes minutes 0, 1 (tainted) and 2
    expect(s.samples.calls).toEqual([3, 4]);
    expect(s.samples.targets).toEqual([3, 4]);
    expect(summarise(s.samples.calls)).toMatchObject({ windows: 2, max: 4 });
    // A summary is remembered until its list gains a sample.
    expect(summarise(s.samples.calls)).toBe(summarise(s.samples.calls));
    observeCalls(s, minute(2 + 2 * (OPEN_WINDOWS + 1), 9)); // closes the window of one call above
    expect(summarise(s.samples.calls)).toMatchObject({ windows: 3, max: 4, mean: 8 / 3 });
    expect(observeCalls(s, minute(0, 1))).toEqual([]);
    expect(s.lateCalls).toBe(1);
    for (let m = 10; m < 10 + MAX_RATE_SAMPLES + 10; m++) observeCalls(s, minute(m, 1));
    expect(s.samples.calls.length).toBe(MAX_RATE_SAMPLES);
    expect(summarise([1, 2, 3, 4, 100])).toMatchObject({ max: 100, p95: 100, windows: 5 });
  });
});

describe('user agents', () => {
  it('drops versions and recognises human software', () => {
    expect(userAgentFamily('aws-cli/2.15.0 Python/3.11 Darwin/23.1.0')).toBe('aws-cli');
    expect(userAgentFamily('[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.5')).toBe('aws-cli');
    expect(userAgentFamily('Boto3/1.34.0 md/Botocore#1.34.0')).toBe('boto3');
    expect(userAgentFamily('Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120')).toBe('browser');
    expect(humanSoftware('aws-cli/2.15.0 Python/3.11 exe/x86_64.windows os/windows#10')).toMatch(/cloud CLI/);
    expect(humanSoftware('aws-cli/2.15.0 Python/3.11 Linux/6.1 exe/x86_64.amzn.2')).toBeUndefined();
    expect(humanSoftware('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Safari/605')).toBe('a web browser');
    expect(humanSoftware('python-requests/2.31')).toBeUndefined();
    expect(isNonHumanIdentity('arn:aws:sts::1:assumed-role/Role/i-0abc', 'principal')).toBe(true);
    expect(isNonHumanIdentity('arn:aws:iam::1:user/pedro', 'principal')).toBe(false);
    expect(isNonHumanIdentity('agent:triage', 'agent')).toBe(true);
  });
});

describe('composite keys', () => {
  it('are the JSON of their bounded parts, also after the memo was cleared for being full', () => {
    const call = chainOf(['GET /a'], T0).calls[0]!;
    const long = 'o'.repeat(MAX_KEY_LENGTH + 10);
    for (let i = 0; i < MAX_MEMO_KEYS + 10; i++) {
      const op = i % 2 === 0 ? `op ${i}` : long + i;
      const bounded = op.slice(0, MAX_KEY_LENGTH);
      expect(transitionKey('prev', op)).toBe(JSON.stringify(['prev', bounded]));
      const c = { ...call, operation: op, external: i % 3 === 0 };
      expect(edgeKey(c)).toBe(JSON.stringify(['x', 'p', bounded, 'service', i % 3 === 0]));
    }
    // Same parts, same key; a different external flag is a different edge.
    expect(edgeKey({ ...call, external: true })).toBe(JSON.stringify(['x', 'p', 'GET /a', 'service', true]));
    expect(edgeKey({ ...call, external: false })).toBe(JSON.stringify(['x', 'p', 'GET /a', 'service', false]));
  });

  it('give a shape the JSON of its operations: a prefix, a repeat and the empty shape, also after the memo filled', () => {
    for (let round = 0; round < 2; round++) {
      for (const shape of [['a', 'b'], ['a'], [], ['a', 'b'], ['b', 'a']]) expect(shapeKey(shape)).toBe(JSON.stringify(shape));
      for (let i = 0; round === 0 && i < MAX_MEMO_SHAPES + 10; i++) expect(shapeKey(['s', `op ${i}`])).toBe(JSON.stringify(['s', `op ${i}`]));
    }
  });
});

describe('shape key of operations', () => {
  it('is the key of the chain shape of the first operations, made before or not, repeats and long chains included', () => {
    const long = Array.from({ length: MAX_SHAPE_LENGTH + 8 }, (_, i) => `op ${i % (MAX_SHAPE_LENGTH + 4)}`);
    const cases: string[][] = [['a', 'b', 'a', 'c', 'b'], ['a'], [], ['b', 'b', 'b'], long, ['x', 'a', 'b'], ['a', 'b', 'a', 'c', 'b']];
    for (let round = 0; round < 2; round++) {
      for (const ops of cases) {
        for (const count of [ops.length, Math.floor(ops.length / 2)]) {
          // With a longer array than the operations counted, as learning's scratch array is.
          const padded = [...ops.slice(0, count), 'never', 'counted'];
          expect(shapeKeyOf(padded, count)).toBe(JSON.stringify(chainShape(ops.slice(0, count))));
        }
      }
    }
  });
});

describe('user agent classification memo', () => {
  it('answers the same before, while and after the memo fills', () => {
    const browser = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Chrome/120';
    const cli = 'aws-cli/2.15.0 Python/3.11 Darwin/23.1.0 source/arm64';
    for (let round = 0; round < 2; round++) {
      expect(userAgentFamily(browser)).toBe('browser');
      expect(humanSoftware(browser)).toBe('a web browser');
      expect(userAgentFamily(cli)).toBe('aws-cli');
      expect(humanSoftware(cli)).toMatch(/^a cloud CLI \(aws-cli\)/);
      expect(humanSoftware('boto3/1.34 Linux')).toBeUndefined();
      for (let i = 0; i < MAX_CACHED_USER_AGENTS + 5; i++) expect(userAgentFamily(`tool${i}/1.0`)).toBe(`tool${i}`);
    }
  });
});
