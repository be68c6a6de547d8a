import type { Chain } from '@conduct/processor';
import type { PolicyConfig } from '../settings.js';
import {
  chainCalls,
  createBaseline,
  learnChain,
  learningState,
  observeCalls,
  openWindow,
  type Baseline,
  type LearningOptions,
  type RateWindow,
} from '../../learn/index.js';
import { rememberSources } from '../detectors/index.js';
import type { DetectionContext } from '../finding.js';
import { policyFor, sensitiveReason } from '../identity-context.js';

/** Learning settings of the detector tests: enforcing after 100 calls over two hours. */
export const TEST_LEARNING: LearningOptions = { minCalls: 100, periodMs: 2 * 3_600_000, forgetAfterMs: 30 * 24 * 3_600_000 };

/** A baseline that learned `chains` in order, as detection learns chains that raise nothing. No store. */
export function learned(identity: string, chains: readonly Chain[], opts: LearningOptions = TEST_LEARNING): Baseline {
  const b = createBaseline(identity, chains[0]?.identityKind ?? 'workload');
  for (const c of chains) {
    const calls = chainCalls(c);
    observeCalls(b.rate, calls);
    learnChain(b, c, opts);
    rememberSources(b.recentSources, calls);
  }
  return b;
}

export interface ContextOptions {
  policies?: readonly PolicyConfig[];
  /** Finding keys an operator marked expected, as `detector key`. */
  suppressed?: readonly string[];
  opts?: LearningOptions;
}

/**
 * What a detector sees for `chain` against `baseline`: the same steps as detection takes before
 * it runs the detectors (rate windows counted, policy matched), over plain objects.
 */
export function contextFor(baseline: Baseline, chain: Chain, options: ContextOptions = {}): DetectionContext {
  const calls = [...chainCalls(chain)].sort((x, y) => x.startMs - y.startMs);
  const learning = learningState(baseline, options.opts ?? TEST_LEARNING);
  const windows: RateWindow[] = [];
  for (const i of observeCalls(baseline.rate, calls)) {
    const w = openWindow(baseline.rate, i);
    if (w) windows.push(w);
  }
  const policy = policyFor(options.policies ?? [], chain.identity);
  const suppressed = new Set(options.suppressed ?? []);
  return {
    chain: { ...chain, calls },
    calls,
    baseline,
    learning,
    windows,
    ...(policy ? { policy } : {}),
    sensitive: (call) => sensitiveReason(call, policy),
    suppressed: (detector, key) => suppressed.has(`${detector} ${key}`),
  };
}
