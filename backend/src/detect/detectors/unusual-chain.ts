import {
  END,
  START,
  chainShape,
  count,
  has,
  nearestShape,
  operationPath,
  parseShapeKey,
  shapeKey,
  transitionKey,
  transitionTotals,
  transitionsFrom,
} from '../../learn/index.js';
import { isRetryAfterError, skipsOptionalStep } from '../chain-likelihood.js';
import { displayName, listWithCounts, q, unique, type DetectionContext, type Finding } from '../finding.js';

/** A transition is rare when it is below this share of the transitions out of its operation... */
export const RARE_TRANSITION_SHARE = 0.01;
/** ...and that operation has been left at least this many times. */
export const RARE_TRANSITION_MIN_SUPPORT = 200;
/** A shape this far (normalised edit distance) from every learned shape is unusual. */
export const SHAPE_DISTANCE_THRESHOLD = 0.5;
/** Transitions named as "usually after" in an explanation. */
export const EXPLAIN_TOP_TRANSITIONS = 5;

const isRare = (n: number, total: number) => total >= RARE_TRANSITION_MIN_SUPPORT && n / total < RARE_TRANSITION_SHARE;

const label = (op: string) => (op === START ? 'the start of a chain' : op === END ? 'the end of the chain' : q(op));

/**
 * `unusual-chain`: the order of operations is unusual for an enforcing identity. Uses the order,
 * not the set: a transition between known operations that was never (medium) or rarely (low) seen,
 * or a chain shape (ordered distinct operations) far from every learned shape (medium).
 */
export function unusualChain(ctx: DetectionContext): Finding | undefined {
  if (ctx.learning.status !== 'enforcing') return undefined;
  const b = ctx.baseline;
  const path = operationPath(ctx.chain);
  const known = (op: string) => op === START || op === END || has(b, 'operation', op);
  const sentences: string[] = [];
  const keys: string[] = [];
  const spanIds: string[] = [];
  let eventMs: number | undefined;
  let never = false;
  const evidence: Record<string, unknown>[] = [];
  /**
   * Transition keys reported: a repeat in the chain is reported once. Every other step of a repeat
   * comes to the same answer again, so no set of all the chain's keys is kept.
   */
  const reported: string[] = [];
  let totals: ReadonlyMap<string, number> | undefined;

  for (let i = 1; i < path.length; i++) {
    const prev = path[i - 1]!;
    const next = path[i]!;
    if (!known(prev) || !known(next)) continue;
    const key = transitionKey(prev, next);
    if (reported.includes(key)) continue;
    const n = count(b, 'transition', key);
    // A retry after an error, or a skipped optional step, is not a new way of working.
    if (n === 0 && (isRetryAfterError(ctx.calls[i - 2], prev, next) || skipsOptionalStep(b, prev, next))) continue;
    if (n > 0) {
      totals ??= transitionTotals(b);
      if (!isRare(n, totals.get(prev) ?? 0)) continue;
    }
    if (ctx.suppressed('unusual-chain', `transition:${key}`)) continue;
    const out = transitionsFrom(b, prev);
    const total = out.reduce((s, t) => s + t.count, 0);
    if (n === 0) never = true;
    reported.push(key);
    keys.push(`transition:${key}`);
    const call = ctx.calls[Math.min(i - 1, ctx.calls.length - 1)]!;
    spanIds.push(call.spanId);
    eventMs ??= call.startMs;
    const usual = out.slice(0, EXPLAIN_TOP_TRANSITIONS).map((t) => ({ key: t.next === END ? '(end of chain)' : t.next, count: t.count }));
    sentences.push(
      `After ${label(prev)} ${displayName(ctx)} usually goes on to ${listWithCounts(usual, 'times')}; in this chain ${label(prev)} was followed by ${label(next)}, ${n === 0 ? 'which it has never done' : `which it did only ${n} time${n === 1 ? '' : 's'} out of ${total}`}.`,
    );
    evidence.push({ from: prev, to: next, count: n, usualNext: usual });
  }

  const shape = chainShape(path.slice(1, -1));
  const sKey = shapeKey(shape);
  let shapeEvidence: Record<string, unknown> | undefined;
  if (shape.length > 0 && b.entries.shape.size > 0 && !has(b, 'shape', sKey) && !ctx.suppressed('unusual-chain', `shape:${sKey}`)) {
    const nearest = nearestShape(shape, [...b.entries.shape.keys()].map(parseShapeKey));
    if (nearest && nearest.distance >= SHAPE_DISTANCE_THRESHOLD) {
      keys.push(`shape:${sKey}`);
      never = true;
      spanIds.push(ctx.calls[0]!.spanId);
      eventMs ??= ctx.calls[0]!.startMs;
      sentences.push(
        `The chain's sequence of operations (${shape.map(q).join(' then ')}) is ${Math.round(nearest.distance * 100)}% different from the closest of its ${b.entries.shape.size} learned chain shapes (${nearest.shape.map(q).join(' then ')}).`,
      );
      shapeEvidence = { shape, nearest: nearest.shape, distance: nearest.distance };
    }
  }
  if (keys.length === 0) return undefined;
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
    eventMs: eventMs ?? ctx.chain.startMs,
    techniques: [],
    evidence: { transitions: evidence, ...(shapeEvidence ? { shape: shapeEvidence } : {}) },
  };
}
