import { useMemo, useState } from 'preact/hooks';
import type { Graph, GraphComparison } from '../api-types.js';
import { api } from '../api.js';
import { formatTime } from '../format.js';
import { buildView, type ViewEdge } from '../graph-model.js';
import { useApi } from '../hooks.js';
import { setQuery, useLocation } from '../router.js';
import { Ids, Loading, Problem, Section } from './bits.js';
import { CallGraph, compact, defaultEdgeText, type Selection } from './graph.js';
import { ChangeTag, GraphPanel } from './graph-panel.js';

const HOUR = 3_600_000;
/** The windows offered, each ending at the identity's latest activity. */
export const WINDOWS: { key: string; label: string; ms: number }[] = [
  { key: '1h', label: 'last hour', ms: HOUR },
  { key: '1d', label: 'last day', ms: 24 * HOUR },
  { key: '7d', label: 'last week', ms: 7 * 24 * HOUR },
];

const CHANGE_MARK: Record<string, string> = { new: 'new · ', vanished: 'gone · ', up: '↑ ', down: '↓ ' };

/** A compared edge's label: what changed, its operations and its calls in the window. */
function compareEdgeText(e: ViewEdge): string {
  const mark = (e.change && CHANGE_MARK[e.change]) ?? '';
  if (e.actsThrough) return `${mark}${compact(e.calls)} calls`;
  const base = e.operations.reduce((n, o) => n + (o.baselineCount ?? 0), 0);
  const ops = `${e.operations.length} op${e.operations.length === 1 ? '' : 's'}`;
  return e.change === 'up' || e.change === 'down' ? `${mark}${ops} · ${compact(e.calls)} (was ${compact(base)})` : `${mark}${ops} · ${compact(e.calls)}`;
}

/** `datetime-local` value of an ISO time, in the browser's zone. */
function localInput(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function fromLocalInput(v: string): string | undefined {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** The window the URL asks for; presets end at `anchor` (the identity's last activity). */
export function windowOf(search: URLSearchParams, anchorMs: number): { since: string; until: string; key: string } {
  const key = search.get('window') ?? '1h';
  const preset = WINDOWS.find((w) => w.key === key);
  if (preset || key !== 'range') {
    const ms = (preset ?? WINDOWS[0]!).ms;
    return { key: preset ? key : '1h', since: new Date(anchorMs - ms).toISOString(), until: new Date(anchorMs).toISOString() };
  }
  const until = search.get('until') ?? new Date(anchorMs).toISOString();
  const since = search.get('since') ?? new Date(Date.parse(until) - HOUR).toISOString();
  return { key, since, until };
}

function WindowPicker(props: { win: { since: string; until: string; key: string } }) {
  const { win } = props;
  return (
    <span class="window-picker">
      <select
        aria-label="window"
        value={win.key}
        onChange={(e) => {
          const key = (e.target as HTMLSelectElement).value;
          setQuery(key === 'range' ? { window: key, since: win.since, until: win.until } : { window: key, since: undefined, until: undefined });
        }}
      >
        {WINDOWS.map((w) => (
          <option value={w.key} key={w.key}>
            {w.label}
          </option>
        ))}
        <option value="range">a range</option>
      </select>
      {win.key === 'range' && (
        <>
          <input type="datetime-local" aria-label="window start" value={localInput(win.since)} onChange={(e) => setQuery({ since: fromLocalInput((e.target as HTMLInputElement).value) })} />
          <span>to</span>
          <input type="datetime-local" aria-label="window end" value={localInput(win.until)} onChange={(e) => setQuery({ until: fromLocalInput((e.target as HTMLInputElement).value) })} />
        </>
      )}
    </span>
  );
}

/** New, vanished and changed edges as rows; each selects its edge on the graph. */
function ChangeList(props: { edges: ViewEdge[]; labelOf: (id: string) => string; onPick: (id: string) => void }) {
  const changed = props.edges.filter((e) => e.change && e.change !== 'same' && e.change !== 'idle');
  if (changed.length === 0) return <p class="muted" data-testid="changes">No edge changed against the baseline in this window.</p>;
  return (
    <ul class="plain changes" data-testid="changes">
      {changed.map((e) => (
        <li key={e.id} data-change={e.change}>
          <button type="button" class="linkish" onClick={() => props.onPick(e.id)} data-edge-id={e.id}>
            <Ids text={props.labelOf(e.from)} /> → <Ids text={props.labelOf(e.to)} />
          </button>{' '}
          <ChangeTag change={e.change} /> <span class="muted">{compareEdgeText(e)}</span>
        </li>
      ))}
    </ul>
  );
}

function GraphAndPanel(props: {
  graph: Graph | GraphComparison;
  identity: string;
  compare: boolean;
  since?: string;
  until?: string;
}) {
  const view = useMemo(() => buildView(props.graph, props.identity), [props.graph, props.identity]);
  const [selected, setSelected] = useState<Selection>(undefined);
  const labels = new Map(view.nodes.map((n) => [n.id, n.label]));
  const labelOf = (id: string) => labels.get(id) ?? id;
  if (view.nodes.length <= 1 && view.edges.length === 0) return <p class="muted">{props.compare ? 'No calls in this window and nothing learned.' : 'Nothing learned yet.'}</p>;
  return (
    <>
      {props.compare && <ChangeList edges={view.edges} labelOf={labelOf} onPick={(id) => setSelected({ type: 'edge', id })} />}
      <div class="graph-layout">
        <CallGraph view={view} selected={selected} onSelect={setSelected} edgeText={props.compare ? compareEdgeText : defaultEdgeText} label={props.compare ? 'call graph compared with the baseline' : 'learned call graph'} />
        <GraphPanel view={view} selected={selected} identity={props.identity} compare={props.compare} since={props.since} until={props.until} />
      </div>
      <p class="muted small">
        {view.nodes.length} nodes, {view.edges.length} edges, {view.operations} operations.
      </p>
    </>
  );
}

function Legend(props: { compare: boolean }) {
  return (
    <span class="legend">
      <span class="key key-identity">identity</span>
      <span class="key key-service">service</span>
      <span class="key key-peer">peer</span>
      <span class="key key-external">external ↗</span>
      {props.compare ? (
        <>
          <span class="key key-new">new</span>
          <span class="key key-vanished">vanished</span>
          <span class="key key-volume">volume changed</span>
        </>
      ) : (
        <span class="key key-alert">only in alerts</span>
      )}
    </span>
  );
}

/**
 * The identity's call graph: learned, or a window of its stored chains compared with the
 * baseline. The choice and the window are kept in the URL (`graph=compare&window=1d`).
 */
export function GraphSection(props: { identity: string; lastSeen?: string | null }) {
  const { search } = useLocation();
  const compare = search.get('graph') === 'compare';
  const anchor = props.lastSeen ? Date.parse(props.lastSeen) : NaN;
  const win = windowOf(search, Number.isFinite(anchor) ? anchor : Date.now());
  const learned = useApi(() => (compare ? Promise.resolve(undefined) : api.graph(props.identity)), [props.identity, compare]);
  const compared = useApi(
    () => (compare ? api.compare(props.identity, win.since, win.until) : Promise.resolve(undefined)),
    [props.identity, compare, win.since, win.until],
  );
  const loaded = compare ? compared : learned;
  const tabs = (
    <span class="tabs" role="tablist">
      <button type="button" role="tab" aria-selected={!compare} class={compare ? '' : 'chosen'} onClick={() => setQuery({ graph: undefined })}>
        learned
      </button>
      <button type="button" role="tab" aria-selected={compare} class={compare ? 'chosen' : ''} onClick={() => setQuery({ graph: 'compare' })} data-testid="compare-tab">
        compare a window with the baseline
      </button>
    </span>
  );
  return (
    <Section title={compare ? 'Call graph: window against baseline' : 'Learned call graph'} aside={<Legend compare={compare} />}>
      <div class="graph-controls">
        {tabs}
        {compare && <WindowPicker win={win} />}
      </div>
      {compare && compared.data && (
        <p class="muted small" data-testid="compare-window">
          Window {formatTime(compared.data.window.since)} – {formatTime(compared.data.window.until)} (event time
          {win.key !== 'range' ? ', ending at the identity’s latest activity' : ''}): {compared.data.chains} chains
          {compared.data.truncated ? ' (the newest ones; the window holds more)' : ''}, against the {compared.data.baseline.source} baseline.
        </p>
      )}
      <Problem error={loaded.error} what="graph" />
      <Loading when={loaded.loading && !loaded.data} />
      {loaded.data && (
        <GraphAndPanel
          key={compare ? `${win.since}/${win.until}` : 'learned'}
          graph={loaded.data}
          identity={props.identity}
          compare={compare}
          since={compare ? win.since : undefined}
          until={compare ? win.until : undefined}
        />
      )}
    </Section>
  );
}
