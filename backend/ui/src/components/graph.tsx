import cytoscape from 'cytoscape';
import type { Core, ElementDefinition, StylesheetJson } from 'cytoscape';
import { useEffect, useRef } from 'preact/hooks';
import type { Graph, GraphNode } from '../api-types.js';

/** Tests (and curious users in devtools) read the drawn graph from here. */
declare global {
  interface Window {
    __conductGraph?: { nodes: string[]; edges: { from: string; to: string; operation: string; alertOnly: boolean }[]; cy: Core };
  }
}

const MAX_LABEL = 48;
const clip = (s: string) => (s.length > MAX_LABEL ? `${s.slice(0, MAX_LABEL - 1)}…` : s);

// Styles go through Cytoscape's JS style API (drawn on a canvas), so the CSP needs no inline styles.
const STYLE: StylesheetJson = [
  {
    selector: 'node',
    style: {
      label: 'data(label)',
      'font-size': 11,
      'font-family': 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
      color: '#1f2933',
      'text-valign': 'bottom',
      'text-margin-y': 4,
      'background-color': '#7b8794',
      width: 22,
      height: 22,
      'border-width': 1,
      'border-color': '#3e4c59',
    },
  },
  { selector: 'node[kind = "identity"]', style: { 'background-color': '#2f6fde', shape: 'round-rectangle', width: 30, height: 30 } },
  { selector: 'node[kind = "service"]', style: { 'background-color': '#3ebd93', shape: 'ellipse' } },
  { selector: 'node[kind = "peer"]', style: { 'background-color': '#9aa5b1', shape: 'ellipse' } },
  { selector: 'node[kind = "database"]', style: { 'background-color': '#9aa5b1', shape: 'barrel' } },
  { selector: 'node[kind = "messaging"]', style: { 'background-color': '#9aa5b1', shape: 'tag' } },
  { selector: 'node[kind = "external"]', style: { 'background-color': '#f0b429', shape: 'diamond' } },
  {
    selector: 'node[?alertOnly]',
    style: { 'border-color': '#d64545', 'border-width': 3, 'border-style': 'dashed', 'background-color': '#ffe3e3', color: '#a61b1b' },
  },
  {
    selector: 'edge',
    style: {
      label: 'data(label)',
      'font-size': 9,
      'font-family': 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
      color: '#3e4c59',
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.85,
      'text-background-padding': '2px',
      'text-rotation': 'autorotate',
      width: 'data(weight)',
      'line-color': '#9aa5b1',
      'target-arrow-color': '#9aa5b1',
      'target-arrow-shape': 'triangle',
      'curve-style': 'bezier',
    },
  },
  {
    selector: 'edge[?alertOnly]',
    style: { 'line-color': '#d64545', 'target-arrow-color': '#d64545', 'line-style': 'dashed', color: '#a61b1b' },
  },
];

/**
 * Cytoscape adds a `<style>` element to the page unless an element with this id exists. The CSP
 * would block that element, so a marker stands in for it; styles.css carries its one rule.
 */
const CYTOSCAPE_STYLESHEET_ID = '__________cytoscape_stylesheet';
function claimCytoscapeStylesheet(): void {
  if (document.getElementById(CYTOSCAPE_STYLESHEET_ID)) return;
  const marker = document.createElement('meta');
  marker.id = CYTOSCAPE_STYLESHEET_ID;
  document.head.appendChild(marker);
}

/** The style class of a node: identity, service, external, database, messaging or peer. */
function nodeKind(n: GraphNode, rootId: string): string {
  if (n.id === rootId || n.kind === 'identity') return 'identity';
  if (n.kind === 'service') return 'service';
  if (n.external || n.peerKind === 'external') return 'external';
  if (n.peerKind === 'database' || n.peerKind === 'messaging') return n.peerKind;
  return 'peer';
}

function elements(graph: Graph, rootId: string): ElementDefinition[] {
  const out: ElementDefinition[] = [];
  const ids = new Set<string>();
  for (const n of graph.nodes) {
    if (ids.has(n.id)) continue;
    ids.add(n.id);
    const kind = nodeKind(n, rootId);
    out.push({ group: 'nodes', data: { id: n.id, label: clip(n.label ?? n.id), kind, alertOnly: Boolean(n.alertOnly) } });
  }
  // Parallel edges (one per operation) are kept; Cytoscape draws them as a bundle of curves.
  graph.edges.forEach((e, i) => {
    for (const end of [e.from, e.to]) {
      if (!ids.has(end)) {
        ids.add(end);
        out.push({ group: 'nodes', data: { id: end, label: clip(end), kind: 'peer', alertOnly: Boolean(e.alertOnly) } });
      }
    }
    const count = Number.isFinite(e.count) ? e.count : 0;
    out.push({
      group: 'edges',
      data: {
        id: `e${i}`,
        source: e.from,
        target: e.to,
        label: clip(`${e.operation} ×${count}`),
        weight: Math.min(6, 1 + Math.log10(Math.max(1, count))),
        alertOnly: Boolean(e.alertOnly),
      },
    });
  });
  return out;
}

/** The learned call graph, laid out in layers from the identity outwards. */
export function CallGraph(props: { graph: Graph; rootId: string }) {
  const container = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!container.current) return;
    claimCytoscapeStylesheet();
    const els = elements(props.graph, props.rootId);
    const roots = els.filter((e) => e.group === 'nodes' && e.data.kind === 'identity').map((e) => e.data.id as string);
    const cy = cytoscape({
      container: container.current,
      elements: els,
      style: STYLE,
      layout: {
        name: 'breadthfirst',
        directed: true,
        roots: roots.length > 0 ? roots : undefined,
        spacingFactor: 1.1,
        padding: 24,
        animate: false,
      } as cytoscape.LayoutOptions,
      minZoom: 0.2,
      maxZoom: 3,
      boxSelectionEnabled: false,
    });
    window.__conductGraph = {
      nodes: cy.nodes().map((n) => n.id()),
      edges: props.graph.edges.map((e) => ({ from: e.from, to: e.to, operation: e.operation, alertOnly: Boolean(e.alertOnly) })),
      cy,
    };
    return () => {
      if (window.__conductGraph?.cy === cy) delete window.__conductGraph;
      cy.destroy();
    };
  }, [props.graph, props.rootId]);
  return <div class="graph" ref={container} role="img" aria-label="learned call graph" data-testid="graph" />;
}
