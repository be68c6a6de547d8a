/**
 * The call graph as the UI draws it: one edge per (node, peer) carrying its operations, instead of
 * one edge per operation (which the API answers). Pure functions over API data; no DOM.
 */
import type { GraphEdge, GraphNode } from './api-types.js';

/** How an edge (or one of its operations) compares with the baseline; absent outside a comparison. */
export type Change = 'new' | 'vanished' | 'up' | 'down' | 'same' | 'idle';

/** The drawing style of a node. */
export type NodeStyle = 'identity' | 'service' | 'peer' | 'database' | 'messaging' | 'external';

export interface ViewNode {
  id: string;
  label: string;
  style: NodeStyle;
  external: boolean;
  alertOnly: boolean;
  /** Layer: 0 the identity, 1 the services it acts through, 2 the peers they call. */
  layer: number;
}

export interface ViewOperation {
  operation: string;
  count: number;
  firstSeen?: string;
  lastSeen?: string;
  alertOnly: boolean;
  change?: Change;
  baselineCount?: number;
  expected?: number;
  traces?: string[];
  alerts?: string[];
}

export interface ViewEdge {
  /** Stable id of the (from, to) pair. */
  id: string;
  from: string;
  to: string;
  /** Calls over all its operations. */
  calls: number;
  /** Sorted by count, most first. */
  operations: ViewOperation[];
  /** Every operation on it is seen only in alerts. */
  alertOnly: boolean;
  /** The edge's change: the most notable of its operations' (new > vanished > up > down > idle > same). */
  change?: Change;
  /** The identity's edge to a service it acts through (its operations are not calls to a peer). */
  actsThrough: boolean;
}

export interface GraphView {
  nodes: ViewNode[];
  edges: ViewEdge[];
  /** Operations over all edges (identity -> service edges excluded). */
  operations: number;
}

/** What the identity -> service edges carry as their operation (backend `ACTS_THROUGH`). */
export const ACTS_THROUGH = '(acts through)';

/** Edges drawn at most; a bigger graph draws its busiest edges and says how many were left out. */
export const MAX_EDGES_DRAWN = 400;

const CHANGE_RANK: Record<Change, number> = { new: 5, vanished: 4, up: 3, down: 2, idle: 1, same: 0 };

/** The more notable of two changes. */
export function moreNotable(a: Change | undefined, b: Change | undefined): Change | undefined {
  if (!a) return b;
  if (!b) return a;
  return CHANGE_RANK[a] >= CHANGE_RANK[b] ? a : b;
}

function styleOf(n: GraphNode | undefined, isRoot: boolean): NodeStyle {
  if (isRoot || n?.kind === 'identity') return 'identity';
  if (n?.external || n?.peerKind === 'external') return 'external';
  if (n?.kind === 'service') return 'service';
  if (n?.peerKind === 'database' || n?.peerKind === 'messaging') return n.peerKind;
  return 'peer';
}

/** An API edge with the comparison fields the compare answer adds. */
export type ApiEdge = GraphEdge & {
  change?: Change;
  baselineCount?: number;
  expected?: number;
  traces?: string[];
  alerts?: string[];
};

/**
 * Groups the API's per-operation edges into one edge per (from, to). The root is the node of kind
 * `identity` (or the one whose id is `rootId`); services are the nodes it acts through; every
 * other node is a peer, external ones marked.
 */
export function buildView(graph: { nodes: GraphNode[]; edges: ApiEdge[] }, rootId: string): GraphView {
  const apiNodes = new Map<string, GraphNode>();
  for (const n of graph.nodes) if (!apiNodes.has(n.id)) apiNodes.set(n.id, n);
  const root = graph.nodes.find((n) => n.kind === 'identity')?.id ?? rootId;

  const grouped = new Map<string, ViewEdge>();
  let operations = 0;
  for (const e of graph.edges) {
    const key = JSON.stringify([e.from, e.to]);
    let edge = grouped.get(key);
    if (!edge) {
      edge = { id: `e${grouped.size}`, from: e.from, to: e.to, calls: 0, operations: [], alertOnly: true, actsThrough: e.from === root && e.operation === ACTS_THROUGH };
      grouped.set(key, edge);
    }
    const count = Number.isFinite(e.count) ? e.count : 0;
    edge.calls += count;
    edge.alertOnly &&= Boolean(e.alertOnly);
    edge.change = moreNotable(edge.change, e.change);
    edge.operations.push({
      operation: e.operation,
      count,
      firstSeen: e.firstSeen,
      lastSeen: e.lastSeen,
      alertOnly: Boolean(e.alertOnly),
      change: e.change,
      baselineCount: e.baselineCount,
      expected: e.expected,
      traces: e.traces,
      alerts: e.alerts,
    });
    if (!edge.actsThrough) operations++;
  }
  const edges = [...grouped.values()]
    .map((e) => ({ ...e, operations: e.operations.sort((a, b) => b.count - a.count || a.operation.localeCompare(b.operation)) }))
    .sort((a, b) => Number(b.actsThrough) - Number(a.actsThrough) || b.calls - a.calls)
    .slice(0, MAX_EDGES_DRAWN);

  // Layers: the root, what it acts through, then everything reached from those.
  const services = new Set(edges.filter((e) => e.from === root).map((e) => e.to));
  const used = new Set<string>([root]);
  for (const e of edges) used.add(e.from).add(e.to);
  const nodes: ViewNode[] = [...used].map((id) => {
    const n = apiNodes.get(id);
    const layer = id === root ? 0 : services.has(id) ? 1 : 2;
    const style = layer === 1 && n?.kind !== 'service' ? 'service' : styleOf(n, id === root);
    const alertOnly = n ? Boolean(n.alertOnly) : edges.filter((e) => e.to === id || e.from === id).every((e) => e.alertOnly);
    return { id, label: n?.label ?? id, style, external: style === 'external', alertOnly, layer };
  });
  return { nodes, edges, operations };
}
