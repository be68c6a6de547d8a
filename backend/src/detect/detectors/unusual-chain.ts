import {
  CALIBRATION_MARGIN_BITS,
  CALIBRATION_QUANTILE,
  END,
  LOWEST_THRESHOLD_BITS,
  START,
  callsSurprisalOf,
  chainCalibration,
  chainCalls,
  chainShape,
  chainSteps,
  chainSurprisalOf,
  has,
  nearestShape,
  operationPath,
  parseShapeKey,
  shapeKey,
  transitionKey,
  transitionsFrom,
  type Calibration,
  type StepScore,
} from '../../learn/index.js';
import { displayName, listWithCounts, q, unique, type DetectionContext, type Finding } from '../finding.js';
import { techniquesForOperation } from '../techniques.js';

/** A shape this far (normalised edit distance) from every learned shape is unusual. */
export const SHAPE_DISTANCE_THRESHOLD = 0.5;
/** Transitions named as "usually after" in an explanation. */
export const EXPLAIN_TOP_TRANSITIONS = 5;
/** Unusual steps explained one by one (the rest are counted in the evidence). */
export const EXPLAIN_STEPS = 3;

const label = (op: string) => (op === START ? 'the start of a chain' : op === END ? 'the end of the chain' : q(op));

/** "1 in 60" for a probability. */
const oneIn = (p: number) => `1 in ${p > 0 ? Math.round(1 / p).toLocaleString('en-US') : '∞'}`;

/**
 * `unusual-chain`: the order of operations is unusual for an enforcing identity. Each step of the
 * chain between known operations is scored by the identity's chain model (learn/chain-model.ts: a
 * smoothed first-order Markov model of its learned transitions, skips of an optional step and
 * retries after an error allowed); the chain is unusual when a step is less likely than the
 * identity's own learned chains made theirs, with a margin (calibrated per identity). Medium when
 * such a step was never taken before, low when it was only rare. A chain shape (ordered distinct
 * operations) far from every learned shape is named as context, never a finding by itself.
 */
export function unusualChain(ctx: DetectionContext): Finding | undefined {
  if (ctx.learning.status !== 'enforcing') return undefined;
  const b = ctx.baseline;
  // Most chains are usual under any calibration: scored without step objects or the path's
  // array (the chain's calls are the context's, in time order), and the histogram is not read for them.
  const surprisal = chainCalls(ctx.chain) === ctx.calls ? callsSurprisalOf(b, ctx.calls) : chainSurprisalOf(b, operationPath(ctx.chain), ctx.calls);
  // Kept for learning the chain, which scores it against the same baseline.
  ctx.scored = true;
  ctx.surprisal = surprisal;
  if ((surprisal ?? 0) <= LOWEST_THRESHOLD_BITS) return undefined;
  const calibration = chainCalibration(b);
  // The surprisal is the chain's worst step's bits: no step is above the calibrated level either (no step objects built).
  if ((surprisal ?? 0) <= calibration.thresholdBits) return undefined;
  const path = operationPath(ctx.chain);
  const steps = chainSteps(b, path, ctx.calls);
  const unusual = unusualSteps(ctx, steps, calibration);
  const keys = unusual.map((s) => `transition:${transitionKey(s.from, s.to)}`);
  const sentences: string[] = [];
  const spanIds: string[] = [];
  let eventMs: number | undefined;
  if (unusual.length > 0) {
    const worst = unusual.reduce((w, s) => (s.bits > w.bits ? s : w));
    sentences.push(calibrationSentence(ctx, worst, calibration));
    for (const s of unusual) {
      const call = ctx.calls[Math.min(s.index - 1, ctx.calls.length - 1)]!;
      spanIds.push(call.spanId);
      eventMs ??= call.startMs;
    }
    for (const s of unusual.slice(0, EXPLAIN_STEPS)) sentences.push(stepSentence(ctx, s));
  }
  if (unusual.length === 0) return undefined;
  // A new shape alone is no finding (an identity that varies its order makes new ones all along); with unusual steps it is context.
  const shape = unusualShape(ctx, path);
  if (shape) sentences.push(shape.sentence);
  const never = unusual.some((s) => s.count === 0 && !s.skipped);
  const into = unusual.map((s) => s.to).filter((op) => op !== END);
  return {
    detector: 'unusual-chain',
    keys,
    severity: never ? 'medium' : 'low',
    reach: false,
    external: false,
    sensitive: ctx.calls.some((c) => spanIds.includes(c.spanId) && ctx.sensitive(c)),
    title: `${displayName(ctx)} chained operations in an unusual order`,
    explanation: sentences.join(' '),
    spanIds: unique(spanIds),
    eventMs: eventMs!,
    // An order is no technique by itself: the operations an unusual step led to may be one.
    techniques: unique(into.flatMap(techniquesForOperation)),
    evidence: {
      transitions: unusual.slice(0, 16).map((s) => stepEvidence(ctx, s)),
      score: {
        bits: round(Math.max(0, ...unusual.map((s) => s.bits))),
        thresholdBits: round(calibration.thresholdBits),
        ...(calibration.usualBits !== undefined ? { usualBits: round(calibration.usualBits) } : {}),
        learnedChains: calibration.chains,
        quantile: CALIBRATION_QUANTILE,
        marginBits: CALIBRATION_MARGIN_BITS,
      },
      ...(shape ? { shape: shape.evidence } : {}),
    },
  };
}

/** The chain's steps above the calibrated level, each transition once, suppressed ones left out. */
function unusualSteps(ctx: DetectionContext, steps: readonly StepScore[], calibration: Calibration): StepScore[] {
  const out: StepScore[] = [];
  const reported = new Set<string>();
  for (const s of steps) {
    if (s.bits <= calibration.thresholdBits) continue;
    const key = transitionKey(s.from, s.to);
    if (reported.has(key) || ctx.suppressed('unusual-chain', `transition:${key}`)) continue;
    reported.add(key);
    out.push(s);
  }
  return out;
}

const round = (n: number) => Math.round(n * 100) / 100;

function calibrationSentence(ctx: DetectionContext, worst: StepScore, c: Calibration): string {
  const level =
    c.usualBits !== undefined
      ? `${Math.round(CALIBRATION_QUANTILE * 100)}% of the ${c.chains} chains it learned had no step less likely than ${oneIn(2 ** -c.usualBits)}`
      : `it has learned too few chains to calibrate on (${c.chains}), so a step counts as unusual below ${oneIn(2 ** -c.thresholdBits)}`;
  return (
    `Scored by how likely ${displayName(ctx)}'s learned transitions make each step, this chain's least likely step had a chance of ${oneIn(worst.probability)} (${round(worst.bits)} bits); ` +
    `${level}, and a chain is unusual ${c.usualBits !== undefined ? `${CALIBRATION_MARGIN_BITS} bits (${2 ** CALIBRATION_MARGIN_BITS} times) below that` : 'then'}.`
  );
}

function stepSentence(ctx: DetectionContext, s: StepScore): string {
  const usual = transitionsFrom(ctx.baseline, s.from)
    .slice(0, EXPLAIN_TOP_TRANSITIONS)
    .map((t) => ({ key: t.next === END ? '(end of chain)' : t.next, count: t.count }));
  const what =
    s.count === 0
      ? s.skipped
        ? `which it only ever did through ${q(s.skipped)}`
        : `which it has never done (after ${label(s.from)} it took ${s.distinct} different step${s.distinct === 1 ? '' : 's'} in ${s.departures} times, so something new has a chance of ${oneIn(s.probability)})`
      : `which it did only ${s.count} time${s.count === 1 ? '' : 's'} out of ${s.departures}`;
  return `After ${label(s.from)} ${displayName(ctx)} usually goes on to ${listWithCounts(usual, 'times')}; in this chain ${label(s.from)} was followed by ${label(s.to)}, ${what}.`;
}

function stepEvidence(ctx: DetectionContext, s: StepScore): Record<string, unknown> {
  const usualNext = transitionsFrom(ctx.baseline, s.from)
    .slice(0, EXPLAIN_TOP_TRANSITIONS)
    .map((t) => ({ key: t.next === END ? '(end of chain)' : t.next, count: t.count }));
  return {
    from: s.from,
    to: s.to,
    count: s.count,
    departures: s.departures,
    probability: s.probability,
    bits: round(s.bits),
    ...(s.skipped ? { skipped: s.skipped } : {}),
    usualNext,
  };
}

/** A chain shape far from every learned shape, or undefined. */
function unusualShape(ctx: DetectionContext, path: readonly string[]): { sentence: string; evidence: Record<string, unknown> } | undefined {
  const b = ctx.baseline;
  const shape = chainShape(path.slice(1, -1));
  if (shape.length === 0 || b.entries.shape.size === 0 || has(b, 'shape', shapeKey(shape))) return undefined;
  const nearest = nearestShape(shape, [...b.entries.shape.keys()].map(parseShapeKey));
  if (!nearest || nearest.distance < SHAPE_DISTANCE_THRESHOLD) return undefined;
  return {
    sentence: `The chain's sequence of operations (${shape.map(q).join(' then ')}) is ${Math.round(nearest.distance * 100)}% different from the closest of its ${b.entries.shape.size} learned chain shapes (${nearest.shape.map(q).join(' then ')}).`,
    evidence: { shape, nearest: nearest.shape, distance: nearest.distance },
  };
}
