import { describe, expect, it } from 'vitest';
import type { Call, Chain } from '@conduct/processor';
import { END, START, callsSurprisalOf, chainCalibration, chainSteps, chainSurprisalOf, createBaseline, forget, learnChain, operationPath, transitionTotals } from './baseline.js';
import {
  CALIBRATION_MARGIN_BITS,
  LOWEST_THRESHOLD_BITS,
  MIN_CALIBRATION_CHAINS,
  MIN_STEP_SUPPORT,
  SURPRISAL_BUCKET_BITS,
  UNCALIBRATED_THRESHOLD_BITS,
  calibrate,
  chainSurprisal,
  surprisalBucket,
} from './chain-model.js';

const T0 = Date.UTC(2026, 0, 1);
const opts = { minCalls: 4, periodMs: 10 * 60_000, forgetAfterMs: 24 * 3_600_000 };

function chainOf(ops: readonly string[], at: number, failed: readonly number[] = []): Chain {
  const calls = ops.map((operation, i): Call => ({
    traceId: 'b'.repeat(32),
    spanId: (i + 1).toString(16).padStart(16, '0'),
    parentSpanId: '',
    identity: 'svc:x',
    identityKind: 'workload',
    service: 'x',
    peer: 'api',
    peerKind: 'service',
    external: false,
    operation,
    protocol: 'http',
    startMs: at + i,
    durationMs: 1,
    status: failed.includes(i) ? 'error' : 'ok',
    name: operation,
    source: {},
  }));
  return { traceId: 'b'.repeat(32), identity: 'svc:x', identityKind: 'workload', startMs: at, endMs: at + ops.length, calls };
}

const steps = (b: ReturnType<typeof createBaseline>, c: Chain) => chainSteps(b, operationPath(c), c.calls);

describe('chain model', () => {
  it('gives a learned step its share and a never-taken step the identity\'s rate of going somewhere new (Witten-Bell)', () => {
    const b = createBaseline('svc:x', 'workload');
    for (let i = 0; i < 9; i++) learnChain(b, chainOf(['a', 'b'], T0 + i), opts);
    learnChain(b, chainOf(['a', 'c'], T0 + 9), opts);
    // Out of `a`: b 9 times, c once; 2 distinct next steps in 10.
    const [first, toB] = steps(b, chainOf(['a', 'b'], T0 + 10));
    expect(first).toMatchObject({ from: START, to: 'a', count: 10, departures: 10, distinct: 1 });
    expect(first!.probability).toBeCloseTo(10 / 11);
    expect(toB!.probability).toBeCloseTo(9 / 12);
    const [, back] = steps(b, chainOf(['a', 'a'], T0 + 10));
    expect(back).toMatchObject({ from: 'a', to: 'a', count: 0 });
    expect(back!.probability).toBeCloseTo(2 / 12);
    expect(back!.bits).toBeCloseTo(Math.log2(6));
  });

  it('scores a skipped optional step as the path through it and leaves a retry after an error unscored', () => {
    const b = createBaseline('svc:x', 'workload');
    for (let i = 0; i < 20; i++) learnChain(b, chainOf(['get', 'stock', 'put'], T0 + i), opts);
    const skip = steps(b, chainOf(['get', 'put'], T0 + 30)).find((s) => s.from === 'get')!;
    expect(skip).toMatchObject({ to: 'put', count: 0, skipped: 'stock' });
    expect(skip.bits).toBeLessThan(1);
    const jump = steps(b, chainOf(['put', 'get'], T0 + 30)).find((s) => s.from === 'put')!;
    expect(jump.skipped).toBeUndefined();
    expect(jump.bits).toBeCloseTo(Math.log2(21));
    // A repeat after a failed call is not scored; without the failure it is.
    expect(steps(b, chainOf(['get', 'stock', 'stock', 'put'], T0 + 30, [1])).some((s) => s.from === 'stock' && s.to === 'stock')).toBe(false);
    expect(steps(b, chainOf(['get', 'stock', 'stock', 'put'], T0 + 30)).find((s) => s.from === 'stock' && s.to === 'stock')!.bits).toBeGreaterThan(4);
  });

  it('does not score steps out of an operation left fewer than MIN_STEP_SUPPORT times, nor unknown operations', () => {
    const b = createBaseline('svc:x', 'workload');
    for (let i = 0; i < MIN_STEP_SUPPORT - 1; i++) learnChain(b, chainOf(['a', 'b'], T0 + i), opts);
    expect(steps(b, chainOf(['b', 'a'], T0 + 10))).toEqual([]);
    learnChain(b, chainOf(['a', 'b'], T0 + 5), opts);
    expect(steps(b, chainOf(['b', 'a'], T0 + 10)).map((s) => [s.from, s.to])).toEqual([[START, 'b'], ['b', 'a'], ['a', END]]);
    expect(steps(b, chainOf(['a', 'new'], T0 + 10)).map((s) => s.to)).toEqual(['a']);
  });

  it('calibrates on the learned chains: the quantile of their surprisal plus the margin, a fixed level before enough chains', () => {
    expect(calibrate([['1.00', MIN_CALIBRATION_CHAINS - 1]])).toEqual({ chains: MIN_CALIBRATION_CHAINS - 1, thresholdBits: UNCALIBRATED_THRESHOLD_BITS });
    // 200 chains: the 99% quantile is in the 3.00 bucket, two chains above it are the 1% allowed.
    const c = calibrate([['0.25', 150], ['1.50', 46], ['3.00', 2], ['9.00', 2], ['junk', 5]]);
    expect(c).toEqual({ chains: 200, usualBits: 3 + SURPRISAL_BUCKET_BITS, thresholdBits: 3 + SURPRISAL_BUCKET_BITS + CALIBRATION_MARGIN_BITS });
    expect(surprisalBucket(3.3)).toBe('3.25');
    expect(surprisalBucket(-1)).toBe('0.00');
    expect(surprisalBucket(1e9)).toBe('32.00');
    expect(chainSurprisal([])).toBeUndefined();
    // The lowest level any calibration gives (a rigid identity's): the detector's shortcut below it is safe.
    expect(calibrate([['0.00', 500]]).thresholdBits).toBe(LOWEST_THRESHOLD_BITS);
    expect(calibrate([]).thresholdBits).toBeGreaterThanOrEqual(LOWEST_THRESHOLD_BITS);
  });

  it('learns each chain\'s surprisal, scored before the chain, into the baseline; forgetting ages it out', () => {
    const b = createBaseline('svc:x', 'workload');
    for (let i = 0; i < 30; i++) learnChain(b, chainOf(i % 10 === 9 ? ['a', 'c'] : ['a', 'b'], T0 + i), opts);
    const learned = [...b.entries.chainSurprisal.values()].reduce((n, e) => n + e.count, 0);
    // The first chains are not scored: nothing was left MIN_STEP_SUPPORT times yet.
    expect(learned).toBe(30 - MIN_STEP_SUPPORT);
    const c = chainCalibration(b);
    expect(c.chains).toBe(learned);
    // The rare `a -> c` made the worst learned chains: the calibration sits above it.
    expect(c.usualBits).toBeGreaterThan(2);
    forget(b, T0 + 2 * opts.forgetAfterMs, opts.forgetAfterMs, true);
    expect(chainCalibration(b).chains).toBe(0);
  });

  it('calibrates from the histogram\'s kept bucket order exactly as calibrate() over the entries, through new, emptied, forgotten and odd keys', () => {
    const b = createBaseline('svc:x', 'workload');
    const fresh = () => calibrate([...b.entries.chainSurprisal].map(([key, e]): [string, number] => [key, e.count]));
    const checked: number[] = [];
    for (let i = 0; i < 300; i++) {
      const seq = i % 7 === 0 ? ['a', 'c'] : i % 29 === 0 ? ['c', 'a', 'b'] : i % 3 === 0 ? ['a', 'b', 'b'] : ['a', 'b'];
      learnChain(b, chainOf(seq, T0 + i * 1_000), opts);
      if (i === 120) b.entries.chainSurprisal.set('junk', { count: 3, firstMs: T0, lastMs: T0 });
      if (i === 150) b.entries.chainSurprisal.delete('junk');
      // A bucket emptied and another with an equal value in other words: the same key count, other keys.
      if (i === 180) {
        const [key, e] = [...b.entries.chainSurprisal][0]!;
        b.entries.chainSurprisal.delete(key);
        b.entries.chainSurprisal.set(`${Number(key)}`, { ...e, count: 0 });
      }
      if (i === 220) forget(b, T0 + 250_000 + opts.forgetAfterMs, opts.forgetAfterMs, true);
      const c = chainCalibration(b);
      expect(c).toEqual(fresh());
      if (c.usualBits !== undefined) checked.push(c.usualBits);
    }
    expect(b.surprisalOrder).toBeDefined();
    // Calibrated most of the way, at more than one level.
    expect(checked.length).toBeGreaterThan(200);
    expect(new Set(checked).size).toBeGreaterThan(1);
  });

  it('scores a chain without step objects exactly as chainSurprisal(chainSteps(...)), new and skipped steps, retries and unknown operations included', () => {
    const b = createBaseline('svc:x', 'workload');
    const ops = ['A', 'B', 'C', 'D', 'E'];
    let compared = 0;
    let scored = 0;
    for (let i = 0; i < 400; i++) {
      // Mostly usual orders, some skips, repeats after an error, new operations and new steps.
      const pick = (k: number) => ops[(i * 7 + k * 3) % (i % 9 === 0 ? 5 : 3)]!;
      const seq = i % 11 === 0 ? ['A', 'C'] : i % 13 === 0 ? ['B', 'B', 'C'] : i % 17 === 0 ? ['A', `new-${i}`, 'B'] : [pick(0), pick(1), pick(2)];
      const c = chainOf(seq, T0 + i * 1_000, i % 13 === 0 ? [0] : []);
      const path = operationPath(c);
      // The general way first on a copy of the totals' state: both build them at the same step.
      const hadTotals = b.transitionsOut !== undefined;
      const fast = chainSurprisalOf(b, path, c.calls);
      const builtByFast = !hadTotals && b.transitionsOut !== undefined;
      if (builtByFast) b.transitionsOut = undefined;
      expect(fast).toBe(chainSurprisal(chainSteps(b, path, c.calls)));
      // Scored from the calls without the path's array: the same value to the bit.
      expect(callsSurprisalOf(b, c.calls)).toBe(fast);
      expect(b.transitionsOut !== undefined).toBe(hadTotals || builtByFast);
      compared++;
      if (fast !== undefined) scored++;
      if (i % 10 !== 3) learnChain(b, c, opts);
      if (i === 200) transitionTotals(b);
    }
    expect(compared).toBe(400);
    expect(scored).toBeGreaterThan(300);
  });
});
