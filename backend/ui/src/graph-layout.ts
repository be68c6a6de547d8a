/**
 * Positions a GraphView in layers, left to right: identity, the services it acts through, their
 * peers. dagre (a Sugiyama-style layered layout) does the work: it orders each layer to reduce
 * crossings and gives every edge label a slot of its own in a layer between its two nodes, so
 * labels cannot overlap each other or a node. Node labels are drawn inside their node's box, whose
 * width is the measured text.
 */
import dagre from '@dagrejs/dagre';
import type { GraphView, ViewEdge, ViewNode } from './graph-model.js';

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PlacedNode {
  node: ViewNode;
  /** Text drawn in the node (clipped); the full label is its tooltip. */
  text: string;
  box: Box;
}

export interface PlacedEdge {
  edge: ViewEdge;
  /** From the source node's border to the target's. */
  points: { x: number; y: number }[];
  text: string;
  /** The label's box. */
  label: Box;
}

export interface Placed {
  nodes: PlacedNode[];
  edges: PlacedEdge[];
  width: number;
  height: number;
}

export const NODE_FONT = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace';
export const LABEL_FONT = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace';
const NODE_HEIGHT = 24;
const NODE_PAD_X = 10;
const LABEL_HEIGHT = 16;
const LABEL_PAD_X = 5;
/** Characters of a node label drawn; longer ones end in an ellipsis (the full text is the tooltip). */
export const MAX_NODE_CHARS = 44;

let measureCtx: CanvasRenderingContext2D | null | undefined;

/** Width of `text` in `font`, measured on a canvas (a generous monospace estimate without one). */
export function textWidth(text: string, font: string): number {
  if (measureCtx === undefined) measureCtx = typeof document === 'undefined' ? null : document.createElement('canvas').getContext('2d');
  const size = Number(/(\d+)px/.exec(font)?.[1] ?? 12);
  if (!measureCtx) return text.length * size * 0.62;
  measureCtx.font = font;
  return Math.ceil(measureCtx.measureText(text).width);
}

export function clipText(s: string, max = MAX_NODE_CHARS): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** What a node shows: its label, clipped; external peers carry an arrow out. */
export function nodeText(n: ViewNode): string {
  return clipText(n.external ? `↗ ${n.label}` : n.label);
}

/** Lays the view out; `edgeText` gives each edge's label (its operation count by default). */
export function layoutGraph(view: GraphView, edgeText: (e: ViewEdge) => string): Placed {
  const g = new dagre.graphlib.Graph<Record<string, unknown>, { width: number; height: number }, { width: number; height: number }>({
    multigraph: false,
  });
  g.setGraph({ rankdir: 'LR', nodesep: 10, edgesep: 10, ranksep: 36, marginx: 12, marginy: 12, ranker: 'network-simplex' });
  g.setDefaultEdgeLabel(() => ({ width: 0, height: 0 }));
  const texts = new Map<string, string>();
  for (const n of view.nodes) {
    const text = nodeText(n);
    texts.set(n.id, text);
    const font = n.style === 'identity' ? `600 ${NODE_FONT}` : NODE_FONT;
    g.setNode(n.id, { width: textWidth(text, font) + 2 * NODE_PAD_X, height: NODE_HEIGHT });
  }
  const labels = new Map<string, string>();
  for (const e of view.edges) {
    const text = edgeText(e);
    labels.set(e.id, text);
    // A self edge (a service calling itself) is laid out by dagre like any other.
    g.setEdge(e.from, e.to, { width: textWidth(text, LABEL_FONT) + 2 * LABEL_PAD_X, height: LABEL_HEIGHT, labelpos: 'c', id: e.id } as never);
  }
  dagre.layout(g as never);

  const nodes: PlacedNode[] = view.nodes.map((node) => {
    const p = g.node(node.id) as unknown as { x: number; y: number; width: number; height: number };
    return { node, text: texts.get(node.id)!, box: { x: p.x - p.width / 2, y: p.y - p.height / 2, width: p.width, height: p.height } };
  });
  const edges: PlacedEdge[] = view.edges.map((edge) => {
    const p = g.edge(edge.from, edge.to) as unknown as { points: { x: number; y: number }[]; x: number; y: number; width: number; height: number };
    return {
      edge,
      points: p.points ?? [],
      text: labels.get(edge.id)!,
      label: { x: p.x - p.width / 2, y: p.y - p.height / 2, width: p.width, height: p.height },
    };
  });
  const graph = g.graph() as { width?: number; height?: number };
  return { nodes, edges, width: Math.max(1, graph.width ?? 1), height: Math.max(1, graph.height ?? 1) };
}

/** A smooth SVG path through the points (a uniform cubic B-spline, clamped at both ends). */
export function splinePath(points: { x: number; y: number }[]): string {
  if (points.length === 0) return '';
  const f = (n: number) => Math.round(n * 10) / 10;
  const [first] = points;
  if (points.length < 3) return `M${f(first!.x)},${f(first!.y)}` + points.slice(1).map((p) => `L${f(p.x)},${f(p.y)}`).join('');
  // Each interior point pulls the curve towards it; the ends are hit exactly.
  let d = `M${f(first!.x)},${f(first!.y)}`;
  const p = points;
  d += `L${f((5 * p[0]!.x + p[1]!.x) / 6)},${f((5 * p[0]!.y + p[1]!.y) / 6)}`;
  for (let i = 1; i < p.length - 1; i++) {
    const a = p[i - 1]!;
    const b = p[i]!;
    const c = p[i + 1]!;
    d += `C${f((2 * a.x + b.x) / 3)},${f((2 * a.y + b.y) / 3)} ${f((a.x + 2 * b.x) / 3)},${f((a.y + 2 * b.y) / 3)} ${f((a.x + 4 * b.x + c.x) / 6)},${f((a.y + 4 * b.y + c.y) / 6)}`;
  }
  const a = p[p.length - 2]!;
  const b = p[p.length - 1]!;
  d += `C${f((2 * a.x + b.x) / 3)},${f((2 * a.y + b.y) / 3)} ${f((a.x + 2 * b.x) / 3)},${f((a.y + 2 * b.y) / 3)} ${f(b.x)},${f(b.y)}`;
  return d;
}

/** True when two boxes share area (touching edges do not count). */
export function intersects(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}
