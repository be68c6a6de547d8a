import type { Call } from '@conduct/processor';
import { END } from './path.js';

/**
 * The chain model: a first-order Markov model over an identity's operations, calibrated on the
 * identity's own chains. Each step of a chain (START -> first operation -> ... -> END) gets the
 * probability the learned transitions give it, smoothed the Witten-Bell way: after `prev`, seen
 * `total` times with `distinct` different next steps, a next step seen `n` times has probability
 * n / (total + distinct), and a step never taken from `prev` shares distinct / (total + distinct),
 * the rate at which `prev` has gone somewhere new so far. An identity that varies its order has a
 * high novelty rate; a rigid one a very low one. Two steps are not new behaviour: a skipped
 * optional step (`A -> C` where `A -> B -> C` is learned) scores as the two-step path through the
 * best `B`, and a repeat of a call that failed (a retry) is not scored.
 *
 * A chain's surprisal is that of its least likely step, in bits (-log2 p): a single odd step is
 * not diluted by a long usual chain. Every learned chain adds its surprisal, scored against the
 * baseline before it was learned, to a histogram kept in the baseline (`chainSurprisal` entries,
 * persisted and forgotten like any entry). A chain is unusual when its surprisal is above the
 * `CALIBRATION_QUANTILE` of that histogram plus `CALIBRATION_MARGIN_BITS`.
 *
 * Pure functions over {@link TransitionCounts}: the baseline provides them.
 */

/** Steps out of an operation left fewer times than this are not scored (too little to go on). */
export const MIN_STEP_SUPPORT = 5;
/** Width of a surprisal histogram bucket, bits. */
export const SURPRISAL_BUCKET_BITS = 0.25;
/** Surprisals above this are counted in the top bucket. */
export const MAX_SURPRISAL_BITS = 32;
/** The share of the identity's learned chains allowed above the calibrated level. */
export const CALIBRATION_QUANTILE = 0.99;
/** A chain must be this much less likely than that level (2 bits: four times less likely). */
export const CALIBRATION_MARGIN_BITS = 2;
/** Learned chain scores needed before the calibrated level is used... */
export const MIN_CALIBRATION_CHAINS = 5;
/** ...until then, a step is unusual above this surprisal (1 in 16). */
export const UNCALIBRATED_THRESHOLD_BITS = 4;

/** No calibration puts the level lower: a chain whose least likely step is at most this is usual. */
export const LOWEST_THRESHOLD_BITS = Math.min(UNCALIBRATED_THRESHOLD_BITS, SURPRISAL_BUCKET_BITS + CALIBRATION_MARGIN_BITS);

/** What the chain model reads of an identity's learned transitions. */
export interface TransitionCounts {
  /** Times `next` followed `prev`. */
  count(prev: string, next: string): number;
  /** Times `prev` was left, and how many different steps followed it. */
  departures(prev: string): { total: number; distinct: number };
  /** The learned next steps of `prev` with their counts. */
  successors(prev: string): readonly { next: string; count: number }[];
}

/** One scored step of a chain. */
export interface StepScore {
  /** Position of `to` in the operation path (0 is START). */
  index: number;
  from: string;
  to: string;
  /** Times the identity took this step. */
  count: number;
  /** Times it left `from`, and to how many different steps. */
  departures: number;
  distinct: number;
  probability: number;
  /** -log2(probability). */
  bits: number;
  /** The learned step a skip went around, when the two-step path explains the step better. */
  skipped?: string;
}

/**
 * Scores the steps of an operation path (START and END around the operations; `calls[i - 1]` is
 * the call of `path[i]`). Steps from or to an operation `known` does not hold, steps out of an
 * operation left fewer than MIN_STEP_SUPPORT times, and retries after an error are not scored.
 */
export function scoreSteps(
  t: TransitionCounts,
  path: readonly string[],
  calls: readonly Call[],
  known: (operation: string) => boolean,
): StepScore[] {
  const out: StepScore[] = [];
  for (let i = 1; i < path.length; i++) {
    const from = path[i - 1]!;
    const to = path[i]!;
    if (!known(from) || !known(to)) continue;
    if (from === to && calls[i - 2]?.status === 'error') continue;
    const { total, distinct } = t.departures(from);
    if (total < MIN_STEP_SUPPORT) continue;
    const n = t.count(from, to);
    let probability = (n > 0 ? n : distinct) / (total + distinct);
    let skipped: string | undefined;
    if (n === 0) {
      for (const s of t.successors(from)) {
        if (s.next === END || s.next === to) continue;
        const via = t.count(s.next, to);
        if (via === 0) continue;
        const after = t.departures(s.next);
        const p = (s.count / (total + distinct)) * (via / (after.total + after.distinct));
        if (p > probability) {
          probability = p;
          skipped = s.next;
        }
      }
    }
    out.push({ index: i, from, to, count: n, departures: total, distinct, probability, bits: -Math.log2(probability), ...(skipped ? { skipped } : {}) });
  }
  return out;
}

/** A chain's surprisal: its least likely step's, in bits; undefined when no step was scored. */
export function chainSurprisal(steps: readonly StepScore[]): number | undefined {
  let max: number | undefined;
  for (const s of steps) if (max === undefined || s.bits > max) max = s.bits;
  return max;
}

/** Each bucket's key by its number: learning keys every chain it learns, and a key made anew is hashed anew. */
const BUCKET_KEYS: readonly string[] = Array.from({ length: Math.floor(MAX_SURPRISAL_BITS / SURPRISAL_BUCKET_BITS) + 1 }, (_, i) => (i * SURPRISAL_BUCKET_BITS).toFixed(2));

/** The histogram key of a surprisal (its bucket's lower edge). */
export function surprisalBucket(bits: number): string {
  const clamped = Math.min(MAX_SURPRISAL_BITS, Math.max(0, bits));
  const i = Math.floor(clamped / SURPRISAL_BUCKET_BITS);
  return BUCKET_KEYS[i] ?? (i * SURPRISAL_BUCKET_BITS).toFixed(2);
}

/** Where an identity's chains stop being usual. */
export interface Calibration {
  /** Learned chains in the histogram. */
  chains: number;
  /** The CALIBRATION_QUANTILE of their surprisal (upper edge of its bucket); undefined while uncalibrated. */
  usualBits?: number;
  /** Surprisal above which a chain is unusual. */
  thresholdBits: number;
}

/** The calibration from a histogram of learned chain surprisals (bucket key -> chains). */
export function calibrate(histogram: Iterable<readonly [string, number]>): Calibration {
  const buckets: [number, number][] = [];
  let chains = 0;
  for (const [key, n] of histogram) {
    const bits = Number(key);
    if (!Number.isFinite(bits) || n <= 0) continue;
    buckets.push([bits, n]);
    chains += n;
  }
  if (chains < MIN_CALIBRATION_CHAINS) return { chains, thresholdBits: UNCALIBRATED_THRESHOLD_BITS };
  buckets.sort((a, b) => a[0] - b[0]);
  const rank = Math.ceil(CALIBRATION_QUANTILE * chains);
  let seen = 0;
  let usualBits = 0;
  for (const [bits, n] of buckets) {
    seen += n;
    usualBits = bits + SURPRISAL_BUCKET_BITS;
    if (seen >= rank) break;
  }
  return { chains, usualBits, thresholdBits: usualBits + CALIBRATION_MARGIN_BITS };
}
