import type { JSX } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { layoutGraph, splinePath, type Placed } from '../graph-layout.js';
import type { GraphView, ViewEdge } from '../graph-model.js';

/** Tests (and curious users in devtools) read the drawn graph from here. */
declare global {
  interface Window {
    __conductGraph?: {
      nodes: string[];
      edges: { from: string; to: string; calls: number; operations: string[]; alertOnly: boolean; change?: string }[];
    };
  }
}

export type Selection = { type: 'edge'; id: string } | { type: 'node'; id: string } | undefined;

interface Transform {
  k: number;
  x: number;
  y: number;
}

const MIN_ZOOM = 0.15;
const MAX_ZOOM = 4;
const MIN_HEIGHT = 260;
const MAX_HEIGHT = 680;
/** Operations listed in an edge's tooltip; the side panel lists them all. */
const TOOLTIP_OPERATIONS = 12;

/** The edge's label: its operation count (and calls); the identity's own edges say calls. */
export function defaultEdgeText(e: ViewEdge): string {
  const calls = `${compact(e.calls)} call${e.calls === 1 ? '' : 's'}`;
  if (e.actsThrough) return calls;
  return `${e.operations.length} op${e.operations.length === 1 ? '' : 's'} · ${calls}`;
}

export function compact(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

function tooltip(e: ViewEdge): string {
  const lines = e.operations.slice(0, TOOLTIP_OPERATIONS).map((o) => `${o.operation} ×${o.count}${o.change ? ` (${o.change})` : ''}`);
  if (e.operations.length > TOOLTIP_OPERATIONS) lines.push(`… ${e.operations.length - TOOLTIP_OPERATIONS} more (click the edge)`);
  return lines.join('\n');
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/** The transform that shows the whole graph in a `w` x `h` viewport, never enlarged past 1:1. */
function fitTransform(placed: Placed, w: number, h: number): Transform {
  const k = clamp(Math.min(w / placed.width, h / placed.height, 1), MIN_ZOOM, MAX_ZOOM);
  return { k, x: (w - placed.width * k) / 2, y: (h - placed.height * k) / 2 };
}

/** Wheel zoom about the pointer and drag to pan, on the given SVG. */
function usePanZoom(svg: { current: SVGSVGElement | null }, setT: (f: (t: Transform) => Transform) => void) {
  useEffect(() => {
    const el = svg.current;
    if (!el) return;
    const onWheel = (ev: WheelEvent) => {
      ev.preventDefault();
      const r = el.getBoundingClientRect();
      const px = ev.clientX - r.left;
      const py = ev.clientY - r.top;
      const factor = Math.exp(-ev.deltaY * 0.0015);
      setT((t) => {
        const k = clamp(t.k * factor, MIN_ZOOM, MAX_ZOOM);
        return { k, x: px - ((px - t.x) * k) / t.k, y: py - ((py - t.y) * k) / t.k };
      });
    };
    let drag: { x: number; y: number; id: number } | undefined;
    const onDown = (ev: PointerEvent) => {
      if (ev.button !== 0 || (ev.target as Element).closest('[data-hit]')) return;
      drag = { x: ev.clientX, y: ev.clientY, id: ev.pointerId };
      el.setPointerCapture(ev.pointerId);
      el.classList.add('dragging');
    };
    const onMove = (ev: PointerEvent) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const dx = ev.clientX - drag.x;
      const dy = ev.clientY - drag.y;
      drag.x = ev.clientX;
      drag.y = ev.clientY;
      setT((t) => ({ ...t, x: t.x + dx, y: t.y + dy }));
    };
    const onUp = () => {
      drag = undefined;
      el.classList.remove('dragging');
    };
    el.addEventListener('wheel', onWheel, { passive: false });
    el.addEventListener('pointerdown', onDown);
    el.addEventListener('pointermove', onMove);
    el.addEventListener('pointerup', onUp);
    el.addEventListener('pointercancel', onUp);
    return () => {
      el.removeEventListener('wheel', onWheel);
      el.removeEventListener('pointerdown', onDown);
      el.removeEventListener('pointermove', onMove);
      el.removeEventListener('pointerup', onUp);
      el.removeEventListener('pointercancel', onUp);
    };
  }, []);
}

/**
 * The call graph drawn as SVG: nodes are boxes holding their label, edges carry their operation
 * count; hover an edge for its operations, click an edge or a node to select it. Wheel zooms,
 * dragging pans, the buttons zoom, fit and reset. Every label is a text node.
 */
export function CallGraph(props: {
  view: GraphView;
  selected?: Selection;
  onSelect?: (s: Selection) => void;
  edgeText?: (e: ViewEdge) => string;
  label?: string;
}) {
  const { view } = props;
  const edgeText = props.edgeText ?? defaultEdgeText;
  const placed = useMemo(() => layoutGraph(view, edgeText), [view, edgeText]);
  const box = useRef<HTMLDivElement>(null);
  const svg = useRef<SVGSVGElement>(null);
  const [width, setWidth] = useState(800);
  const height = clamp(Math.round(placed.height) + 24, MIN_HEIGHT, MAX_HEIGHT);
  const [t, setT] = useState<Transform>({ k: 1, x: 0, y: 0 });
  const fit = () => setT(fitTransform(placed, width, height));

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = () => setWidth(Math.max(200, el.clientWidth));
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  useEffect(fit, [placed, width, height]);
  usePanZoom(svg, setT);

  useEffect(() => {
    window.__conductGraph = {
      nodes: view.nodes.map((n) => n.id),
      edges: view.edges.map((e) => ({
        from: e.from,
        to: e.to,
        calls: e.calls,
        operations: e.operations.map((o) => o.operation),
        alertOnly: e.alertOnly,
        change: e.change,
      })),
    };
    return () => {
      delete window.__conductGraph;
    };
  }, [view]);

  const sel = props.selected;
  const select = (s: Selection) => (ev: JSX.TargetedMouseEvent<SVGGElement>) => {
    ev.stopPropagation();
    props.onSelect?.(sel && s && sel.type === s.type && sel.id === s.id ? undefined : s);
  };
  const zoomBy = (f: number) =>
    setT((cur) => {
      const k = clamp(cur.k * f, MIN_ZOOM, MAX_ZOOM);
      const cx = width / 2;
      const cy = height / 2;
      return { k, x: cx - ((cx - cur.x) * k) / cur.k, y: cy - ((cy - cur.y) * k) / cur.k };
    });

  return (
    <div class="graph-box" ref={box}>
      <div class="graph-tools" role="toolbar" aria-label="graph view">
        <button type="button" onClick={() => zoomBy(1.25)} title="zoom in" aria-label="zoom in">
          +
        </button>
        <button type="button" onClick={() => zoomBy(0.8)} title="zoom out" aria-label="zoom out">
          −
        </button>
        <button type="button" onClick={fit} title="fit the graph in view" data-testid="graph-fit">
          fit
        </button>
        <button type="button" onClick={() => setT({ k: 1, x: 12, y: 12 })} title="actual size">
          1:1
        </button>
      </div>
      <svg
        ref={svg}
        class="graph"
        width={width}
        height={height}
        role="img"
        aria-label={props.label ?? 'call graph'}
        data-testid="graph"
        data-zoom={t.k.toFixed(3)}
        onClick={() => props.onSelect?.(undefined)}
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrow-head" />
          </marker>
        </defs>
        <g transform={`translate(${t.x.toFixed(1)},${t.y.toFixed(1)}) scale(${t.k.toFixed(4)})`}>
          {placed.edges.map((p) => {
            const e = p.edge;
            const cls = ['gedge', e.alertOnly ? 'alert-only' : '', e.change ? `change-${e.change}` : '', sel?.type === 'edge' && sel.id === e.id ? 'selected' : '']
              .filter(Boolean)
              .join(' ');
            return (
              <g class={cls} key={e.id} data-edge-id={e.id} data-from={e.from} data-to={e.to} data-hit="" onClick={select({ type: 'edge', id: e.id })}>
                <title>{tooltip(e)}</title>
                <path class="hit" d={splinePath(p.points)} />
                <path class="line" d={splinePath(p.points)} />
                <g class="elabel" data-label="edge">
                  <rect x={p.label.x} y={p.label.y} width={p.label.width} height={p.label.height} rx="3" />
                  <text x={p.label.x + p.label.width / 2} y={p.label.y + p.label.height / 2}>
                    {p.text}
                  </text>
                </g>
              </g>
            );
          })}
          {placed.nodes.map((p) => {
            const n = p.node;
            const cls = ['gnode', `style-${n.style}`, n.alertOnly ? 'alert-only' : '', sel?.type === 'node' && sel.id === n.id ? 'selected' : '']
              .filter(Boolean)
              .join(' ');
            return (
              <g class={cls} key={n.id} data-node-id={n.id} data-label="node" data-hit="" onClick={select({ type: 'node', id: n.id })}>
                <title>{n.external ? `${n.label} (external)` : n.label}</title>
                <rect x={p.box.x} y={p.box.y} width={p.box.width} height={p.box.height} rx={n.style === 'identity' ? 3 : 11} />
                <text x={p.box.x + p.box.width / 2} y={p.box.y + p.box.height / 2}>
                  {p.text}
                </text>
              </g>
            );
          })}
        </g>
      </svg>
    </div>
  );
}
