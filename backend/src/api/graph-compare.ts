/**
 * An identity's call graph in a window of event time, from its stored chains, and that graph
 * compared with its baseline graph: which (service, peer, operation) edges are new in the window,
 * which vanished, which changed volume; each with the traces and alerts behind it. Pure: the API
 * reads the chains, the baseline graph and the alerts and hands them in.
 */
import type { Chain } from '@conduct/processor';
import type { Alert } from '../alerts/model.js';

/** Operation of the edges from the identity to the services it acts through (detection's `ACTS_THROUGH`). */
export const ACTS_THROUGH = '(acts through)';
/** Traces kept per edge (the newest). */
export const TRACES_PER_EDGE = 10;
/** Alert ids kept per edge. */
export const ALERTS_PER_EDGE = 10;
/** Distinct edges a window holds at most; beyond it the answer says `truncated`. */
export const MAX_WINDOW_EDGES = 5000;
/** Volume changes smaller than this many calls are not reported (noise at low counts). */
export const MIN_VOLUME_DELTA = 5;
/**
 * A baseline edge absent from the window vanished when the baseline predicted at least this many
 * calls in it (a Poisson count that expects 3 is zero about 5% of the time); rarer ones are `idle`.
 */
export const VANISHED_EXPECTED = 3;
/** A volume this many times the expected (or this fraction of it) is a change. */
export const VOLUME_FACTOR = 2;

export type EdgeChange = 'new' | 'vanished' | 'up' | 'down' | 'same' | 'idle';

export interface GraphNodeJson {
  id: string;
  kind: string;
  label?: string;
  peerKind?: string;
  external?: boolean;
  alertOnly?: boolean;
}

export interface GraphEdgeJson {
  from: string;
  to: string;
  operation: string;
  count: number;
  firstSeen?: string;
  lastSeen?: string;
  alertOnly?: boolean;
}

export interface GraphJson {
  nodes: GraphNodeJson[];
  edges: GraphEdgeJson[];
}

export interface ComparedEdge extends GraphEdgeJson {
  change: EdgeChange;
  baselineCount: number;
  /** Calls the baseline's average rate predicts for the window (one decimal). */
  expected: number;
  traces: string[];
  alerts: string[];
}

export interface Window {
  sinceMs: number;
  untilMs: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** What one (service, peer, operation) did in the window. */
interface WindowEdge extends BaselineEdge {
  /** Every trace, for the alert lookup; the first TRACES_PER_EDGE are shown. */
  traces: Set<string>;
}

/** The key of an identity -> service edge, or of a service -> peer operation. */
function actsKey(service: string): string {
  return JSON.stringify(['acts', service]);
}
function callKey(service: string, peer: string, operation: string): string {
  return JSON.stringify(['call', service, peer, operation]);
}

/** The window's edges from its chains (newest first, so each edge's traces are its newest). */
export function windowEdges(chains: readonly Chain[], win: Window): { edges: Map<string, WindowEdge>; truncated: boolean } {
  const edges = new Map<string, WindowEdge>();
  let truncated = false;
  const add = (key: string, make: () => Omit<WindowEdge, 'count' | 'firstMs' | 'lastMs' | 'traces'>, ms: number, traceId: string) => {
    let e = edges.get(key);
    if (!e) {
      if (edges.size >= MAX_WINDOW_EDGES) {
        truncated = true;
        return;
      }
      e = { ...make(), count: 0, firstMs: ms, lastMs: ms, traces: new Set() };
      edges.set(key, e);
    }
    e.count++;
    e.firstMs = Math.min(e.firstMs, ms);
    e.lastMs = Math.max(e.lastMs, ms);
    e.traces.add(traceId);
  };
  for (const chain of chains) {
    for (const call of chain.calls) {
      if (call.startMs < win.sinceMs || call.startMs > win.untilMs) continue;
      add(actsKey(call.service), () => ({ service: call.service, operation: ACTS_THROUGH }), call.startMs, chain.traceId);
      add(
        callKey(call.service, call.peer, call.operation),
        () => ({ service: call.service, peer: call.peer, operation: call.operation, peerKind: call.peerKind, external: call.external }),
        call.startMs,
        chain.traceId,
      );
    }
  }
  return { edges, truncated };
}

/** The window's own graph (no comparison): identity -> services -> peers with the window's counts. */
export function windowGraph(identity: { id: string; label: string }, chains: readonly Chain[], win: Window): GraphJson & { truncated: boolean } {
  const { edges, truncated } = windowEdges(chains, win);
  const nodes = new Map<string, GraphNodeJson>([[identity.id, { id: identity.id, kind: 'identity', label: identity.label }]]);
  const out: GraphEdgeJson[] = [];
  for (const e of edges.values()) {
    addEndNodes(nodes, e.service, e.peer, e.peerKind, e.external);
    out.push({ from: e.peer === undefined ? identity.id : e.service, to: e.peer ?? e.service, operation: e.operation, count: e.count, firstSeen: iso(e.firstMs), lastSeen: iso(e.lastMs) });
  }
  return { nodes: [...nodes.values()], edges: out, truncated };
}

function addEndNodes(nodes: Map<string, GraphNodeJson>, service: string, peer?: string, peerKind?: string, external?: boolean): void {
  if (!nodes.has(service)) nodes.set(service, { id: service, kind: 'service', label: service });
  if (peer !== undefined && !nodes.has(peer)) {
    nodes.set(peer, { id: peer, kind: 'peer', label: peer, ...(peerKind ? { peerKind } : {}), ...(external ? { external: true } : {}) });
  }
}

/** A learned edge in the comparison's terms. */
interface BaselineEdge {
  service: string;
  peer?: string;
  operation: string;
  peerKind?: string;
  external?: boolean;
  count: number;
  firstMs: number;
  lastMs: number;
}

/**
 * The baseline graph's learned edges by key. Node ids differ between the learned graph (names) and
 * the observed one (`service:` / `peer:` prefixes), so edges are matched by node labels. Edges seen
 * only in alerts are not part of the baseline.
 */
function baselineEdges(graph: GraphJson): Map<string, BaselineEdge> {
  const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
  const root = graph.nodes.find((n) => n.kind === 'identity')?.id;
  const label = (id: string) => nodes.get(id)?.label ?? id;
  const out = new Map<string, BaselineEdge>();
  for (const e of graph.edges) {
    if (e.alertOnly) continue;
    const firstMs = Date.parse(e.firstSeen ?? '');
    const lastMs = Date.parse(e.lastSeen ?? '');
    const times = { count: e.count, firstMs: Number.isFinite(firstMs) ? firstMs : 0, lastMs: Number.isFinite(lastMs) ? lastMs : 0 };
    if (e.from === root) {
      out.set(actsKey(label(e.to)), { service: label(e.to), operation: ACTS_THROUGH, ...times });
    } else {
      const to = nodes.get(e.to);
      out.set(callKey(label(e.from), label(e.to), e.operation), {
        service: label(e.from),
        peer: label(e.to),
        operation: e.operation,
        peerKind: to?.peerKind,
        external: to?.external,
        ...times,
      });
    }
  }
  return out;
}

/** How a window's count compares with what the baseline's rate predicts. */
export function classify(count: number, base: BaselineEdge | undefined, expected: number, win: Window): EdgeChange {
  if (!base) return count > 0 ? 'new' : 'same';
  if (count > 0 && base.firstMs >= win.sinceMs) return 'new';
  if (count === 0) return expected >= VANISHED_EXPECTED ? 'vanished' : 'idle';
  if (count >= VOLUME_FACTOR * expected && count - expected >= MIN_VOLUME_DELTA) return 'up';
  if (count * VOLUME_FACTOR <= expected && expected - count >= MIN_VOLUME_DELTA) return 'down';
  return 'same';
}

export interface Comparison extends GraphJson {
  edges: ComparedEdge[];
  truncated: boolean;
  baselineSpan: { sinceMs: number; untilMs: number } | undefined;
}

/**
 * The window's edges against the baseline's. A baseline edge's expected calls in the window are
 * its count times the window's share of the baseline's observed span (its first to last edge
 * time, at least the window). Alerts are matched to edges through their traces.
 */
export function compareWithBaseline(
  identity: { id: string; label: string },
  baseline: GraphJson,
  chains: readonly Chain[],
  win: Window,
  alerts: readonly Alert[],
): Comparison {
  const base = baselineEdges(baseline);
  const { edges: inWindow, truncated } = windowEdges(chains, win);
  let first = Infinity;
  let last = -Infinity;
  for (const b of base.values()) {
    first = Math.min(first, b.firstMs);
    last = Math.max(last, b.lastMs);
  }
  const windowMs = Math.max(1, win.untilMs - win.sinceMs);
  const spanMs = Number.isFinite(first) ? Math.max(windowMs, last - first) : windowMs;
  const alertsByTrace = new Map<string, string[]>();
  for (const a of alerts) alertsByTrace.set(a.traceId, [...(alertsByTrace.get(a.traceId) ?? []), a.id]);

  const nodes = new Map<string, GraphNodeJson>([[identity.id, { id: identity.id, kind: 'identity', label: identity.label }]]);
  const edges: ComparedEdge[] = [];
  for (const key of new Set([...base.keys(), ...inWindow.keys()])) {
    const b = base.get(key);
    const w = inWindow.get(key);
    const shape = (w ?? b)!;
    addEndNodes(nodes, shape.service, shape.peer, shape.peerKind, shape.external);
    const count = w?.count ?? 0;
    const expected = b ? Math.round(((b.count * windowMs) / spanMs) * 10) / 10 : 0;
    const traces = w ? [...w.traces] : [];
    const alertIds = new Set<string>();
    for (const t of traces) for (const id of alertsByTrace.get(t) ?? []) if (alertIds.size < ALERTS_PER_EDGE) alertIds.add(id);
    edges.push({
      from: shape.peer === undefined ? identity.id : shape.service,
      to: shape.peer ?? shape.service,
      operation: shape.operation,
      count,
      firstSeen: iso(w ? w.firstMs : shape.firstMs),
      lastSeen: iso(w ? w.lastMs : shape.lastMs),
      change: classify(count, b, expected, win),
      baselineCount: b?.count ?? 0,
      expected,
      traces: traces.slice(0, TRACES_PER_EDGE),
      alerts: [...alertIds],
    });
  }
  return {
    nodes: [...nodes.values()],
    edges,
    truncated,
    baselineSpan: Number.isFinite(first) ? { sinceMs: first, untilMs: last } : undefined,
  };
}
