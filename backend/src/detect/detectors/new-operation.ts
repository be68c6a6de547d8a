import type { Call } from '@conduct/processor';
import { bound, parameterCandidate, topEntries, type ParameterCandidate } from '../../learn/index.js';
import { displayName, listWithCounts, q, unique, type DetectionContext, type Finding } from '../finding.js';
import { techniquesForOperation } from '../techniques.js';

/** Usual operations named in an explanation. */
export const EXPLAIN_TOP_OPERATIONS = 8;

/**
 * `new-operation`: an enforcing identity performs an operation its baseline does not hold.
 * Medium; high when the operation is sensitive; low when every new operation is a parameter
 * candidate (learn/path-siblings.ts: the next value at a path position that already shows rarely
 * seen values on the same peer), keyed by its template so that the values of one position are one
 * incident.
 */
export function newOperation(ctx: DetectionContext): Finding | undefined {
  if (ctx.learning.status !== 'enforcing') return undefined;
  const b = ctx.baseline;
  // Made for the first new operation only: most chains have none.
  let found: Map<string, Call[]> | undefined;
  // The map by name: `has` reads `b.entries[kind]`, a megamorphic load at every call of every chain.
  const operations = b.entries.operation;
  for (const call of ctx.calls) {
    if (operations.has(bound(call.operation)) || ctx.suppressed('new-operation', `op:${call.operation}`)) continue;
    found ??= new Map();
    found.set(call.operation, [...(found.get(call.operation) ?? []), call]);
  }
  if (!found) return undefined;
  const offending = [...found.values()].flat().sort((a, c) => a.startMs - c.startMs);
  const sensitiveCalls = offending.filter((c) => ctx.sensitive(c));
  const candidates = sensitiveCalls.length === 0 ? candidatesOf(ctx, found) : undefined;
  if (candidates) return candidateFinding(ctx, found, offending, candidates);
  const usual = topEntries(b, 'operation', EXPLAIN_TOP_OPERATIONS);
  const sentences = [
    `Normally ${displayName(ctx)} performs ${b.entries.operation.size} operation${b.entries.operation.size === 1 ? '' : 's'}, most often ${listWithCounts(usual)}.`,
  ];
  for (const [op, calls] of found) {
    const peers = unique(calls.map((c) => c.peer)).slice(0, 3);
    const targets = unique(calls.map((c) => c.target).filter((t): t is string => !!t)).slice(0, 5);
    sentences.push(
      `In this chain it performed ${q(op)} on ${peers.map(q).join(', ')}${targets.length ? ` (targets ${targets.map(q).join(', ')})` : ''} ${calls.length} time${calls.length === 1 ? '' : 's'}, which it has never done before.`,
    );
  }
  for (const c of sensitiveCalls.slice(0, 3)) sentences.push(`${q(c.operation)} is sensitive: ${ctx.sensitive(c)}.`);
  const ops = [...found.keys()];
  return {
    detector: 'new-operation',
    keys: ops.map((o) => `op:${o}`),
    severity: sensitiveCalls.length > 0 ? 'high' : 'medium',
    reach: true,
    external: offending.some((c) => c.external),
    sensitive: sensitiveCalls.length > 0,
    title: `${displayName(ctx)} performed ${ops.length === 1 ? 'a new operation' : `${ops.length} new operations`}: ${ops.slice(0, 3).join(', ')}${ops.length > 3 ? ', ...' : ''}`,
    explanation: sentences.join(' '),
    spanIds: unique(offending.map((c) => c.spanId)),
    eventMs: offending[0]!.startMs,
    techniques: unique(offending.flatMap((c) => techniquesForOperation(c.operation))),
    evidence: { usualOperations: usual, newOperations: ops },
  };
}

/** Each new operation's parameter candidate, or undefined when any of them is none. */
function candidatesOf(ctx: DetectionContext, found: ReadonlyMap<string, Call[]>): Map<string, ParameterCandidate> | undefined {
  const out = new Map<string, ParameterCandidate>();
  for (const [op, calls] of found) {
    const candidate = calls[0]!.protocol === 'http' ? parameterCandidate(ctx.baseline, calls[0]!.peer, op) : undefined;
    if (!candidate) return undefined;
    out.set(op, candidate);
  }
  return out;
}

/** A low finding: new values of path positions that look like parameters the templates have not learned yet. */
function candidateFinding(ctx: DetectionContext, found: ReadonlyMap<string, Call[]>, offending: readonly Call[], candidates: ReadonlyMap<string, ParameterCandidate>): Finding {
  const templates = unique([...candidates.values()].map((c) => c.template));
  const ops = [...found.keys()];
  const sentences = ops.map((op) => {
    const c = candidates.get(op)!;
    return `${q(op)} differs from operations ${displayName(ctx)} already performed on ${q(found.get(op)![0]!.peer)} only in one path segment, where it used ${c.values.slice(0, 5).map(q).join(', ')}, each rarely: most likely a new value of ${q(c.template)}, not a new endpoint.`;
  });
  sentences.push('Values of a position become a learned parameter once enough of them are seen; until then they are reported here, low, one incident per template.');
  return {
    detector: 'new-operation',
    keys: templates.map((t) => `param:${t}`),
    severity: 'low',
    reach: true,
    external: offending.some((c) => c.external),
    sensitive: false,
    title: `${displayName(ctx)} used a new value of ${templates.length === 1 ? 'a path parameter' : `${templates.length} path parameters`}: ${templates.slice(0, 3).join(', ')}`,
    explanation: sentences.join(' '),
    spanIds: unique(offending.map((c) => c.spanId)),
    eventMs: offending[0]!.startMs,
    techniques: unique(offending.flatMap((c) => techniquesForOperation(c.operation))),
    evidence: { newOperations: ops, parameterCandidates: templates },
  };
}
