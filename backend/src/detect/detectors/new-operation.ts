import type { Call } from '@conduct/processor';
import { has, topEntries } from '../../learn/index.js';
import { displayName, listWithCounts, q, unique, type DetectionContext, type Finding } from '../finding.js';
import { techniquesForOperation } from '../techniques.js';

/** Usual operations named in an explanation. */
export const EXPLAIN_TOP_OPERATIONS = 8;

/**
 * `new-operation`: an enforcing identity performs an operation its baseline does not hold.
 * Medium; high when the operation is sensitive.
 */
export function newOperation(ctx: DetectionContext): Finding | undefined {
  if (ctx.learning.status !== 'enforcing') return undefined;
  const b = ctx.baseline;
  // Made for the first new operation only: most chains have none.
  let found: Map<string, Call[]> | undefined;
  for (const call of ctx.calls) {
    if (has(b, 'operation', call.operation) || ctx.suppressed('new-operation', `op:${call.operation}`)) continue;
    found ??= new Map();
    found.set(call.operation, [...(found.get(call.operation) ?? []), call]);
  }
  if (!found) return undefined;
  const offending = [...found.values()].flat().sort((a, c) => a.startMs - c.startMs);
  const sensitiveCalls = offending.filter((c) => ctx.sensitive(c));
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
