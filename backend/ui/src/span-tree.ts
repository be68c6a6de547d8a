/**
 * The span tree of a trace as conduct stores it. conduct keeps calls, not raw spans: each call has
 * its span id (the client span, or the server span when only that was seen), the server span it
 * was stitched to, and its parent span id. A call hangs under the call whose span (client or
 * server side) is its parent; calls whose parent is not a stored call (a root, or an internal span
 * conduct does not keep) are roots.
 */
import type { Chain, ChainCall } from './api-types.js';

export interface SpanRow {
  call: ChainCall;
  identity: string;
  depth: number;
  children: number;
}

/**
 * A span conduct did not store (not a call: a root server span, an internal span) that stored
 * calls name as their parent: drawn as a row of its own so its calls stay together under it.
 */
export interface GapRow {
  gap: string;
  depth: number;
  children: number;
}

/** Rows drawn at most. */
export const MAX_SPAN_ROWS = 1000;

interface Node {
  call: ChainCall;
  identity: string;
  children: Node[];
}

/** The calls of every chain as a tree, depth first, children by start time. */
export function spanTree(chains: readonly Chain[]): { rows: (SpanRow | GapRow)[]; total: number } {
  const nodes: Node[] = [];
  const bySpan = new Map<string, Node>();
  for (const chain of chains) {
    for (const call of chain.calls) {
      const node: Node = { call, identity: call.identity ?? chain.identity, children: [] };
      nodes.push(node);
      if (call.spanId && !bySpan.has(call.spanId)) bySpan.set(call.spanId, node);
      if (call.serverSpanId && !bySpan.has(call.serverSpanId)) bySpan.set(call.serverSpanId, node);
    }
  }
  const roots: Node[] = [];
  /** Calls under each parent that is not a stored call, by that parent's span id. */
  const gaps = new Map<string, Node[]>();
  for (const node of nodes) {
    const parentId = node.call.parentSpanId ?? '';
    const parent = parentId ? bySpan.get(parentId) : undefined;
    if (parent && parent !== node) parent.children.push(node);
    else if (parentId && !parent) gaps.set(parentId, [...(gaps.get(parentId) ?? []), node]);
    else roots.push(node);
  }
  const byStart = (a: Node, b: Node) => a.call.startMs - b.call.startMs || a.call.spanId.localeCompare(b.call.spanId);
  const rows: (SpanRow | GapRow)[] = [];
  const seen = new Set<Node>();
  const visit = (node: Node, depth: number) => {
    if (seen.has(node) || rows.length >= MAX_SPAN_ROWS) return;
    seen.add(node);
    rows.push({ call: node.call, identity: node.identity, depth, children: node.children.length });
    for (const child of node.children.sort(byStart)) visit(child, depth + 1);
  };
  // Top level in time order: stored roots, and unstored parents at their first call's start.
  const top: { startMs: number; visit: () => void }[] = roots.map((r) => ({ startMs: r.call.startMs, visit: () => visit(r, 0) }));
  for (const [gap, children] of gaps) {
    children.sort(byStart);
    top.push({
      startMs: children[0]!.call.startMs,
      visit: () => {
        if (rows.length >= MAX_SPAN_ROWS) return;
        rows.push({ gap, depth: 0, children: children.length });
        for (const child of children) visit(child, 1);
      },
    });
  }
  for (const t of top.sort((a, b) => a.startMs - b.startMs)) t.visit();
  // Calls in a parent cycle (malformed input) have no root: list them at the top level.
  for (const node of nodes) if (!seen.has(node)) visit(node, 0);
  return { rows, total: nodes.length };
}
