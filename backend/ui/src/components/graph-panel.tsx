import type { Chain } from '../api-types.js';
import { api } from '../api.js';
import { formatTime } from '../format.js';
import type { GraphView, ViewEdge, ViewNode, ViewOperation } from '../graph-model.js';
import { useApi } from '../hooks.js';
import { Link, paths } from '../router.js';
import { Ids, Loading, plural, Problem, Time } from './bits.js';
import type { Selection } from './graph.js';

/** Chains listed for a selected peer. */
const PEER_CHAINS = 15;
/** Operations listed for a selected edge (the rest counted). */
const PANEL_OPERATIONS = 300;

const CHANGE_TEXT: Record<string, string> = {
  new: 'new in the window',
  vanished: 'vanished',
  up: 'more than usual',
  down: 'less than usual',
  same: 'as usual',
  idle: 'rare, not in the window',
};

export function ChangeTag(props: { change?: string }) {
  if (!props.change || props.change === 'same') return null;
  return <span class={`change-tag change-${props.change}`}>{CHANGE_TEXT[props.change] ?? props.change}</span>;
}

function OperationRows(props: { ops: ViewOperation[]; compare: boolean }) {
  const shown = props.ops.slice(0, PANEL_OPERATIONS);
  const more = props.ops.length - shown.length;
  if (props.compare) {
    // Compared operations: a block each, with the window's and the baseline's counts and what lies behind it.
    return (
      <ul class="plain compared-ops" data-testid="panel-operations">
        {shown.map((o) => (
          <li key={o.operation} data-change={o.change}>
            <div class="wrap">
              <Ids text={o.operation} />
              <ChangeTag change={o.change} />
            </div>
            <div class="muted small">
              {o.count} in the window · {o.baselineCount ?? 0} in the baseline
              {o.expected !== undefined && ` (about ${o.expected.toFixed(1)} expected)`}
            </div>
            <Behind op={o} />
          </li>
        ))}
        {more > 0 && <li class="muted">{more} more not listed</li>}
      </ul>
    );
  }
  return (
    <table class="table compact" data-testid="panel-operations">
      <thead>
        <tr>
          <th>operation · last seen</th>
          <th class="num">calls</th>
        </tr>
      </thead>
      <tbody>
        {shown.map((o) => (
          <tr key={o.operation} class={o.alertOnly ? 'alert-only' : undefined}>
            <td class="wrap">
              <Ids text={o.operation} />
              {o.alertOnly && <span class="flag">only in alerts</span>}
              <div class="small">
                <Time value={o.lastSeen} />
              </div>
            </td>
            <td class="num">{o.count}</td>
          </tr>
        ))}
      </tbody>
      {more > 0 && <caption>{more} more not listed</caption>}
    </table>
  );
}

/** The traces and alerts behind one compared operation. */
function Behind(props: { op: ViewOperation }) {
  const traces = props.op.traces ?? [];
  const alerts = props.op.alerts ?? [];
  if (traces.length === 0 && alerts.length === 0) {
    return <div class="muted small">{props.op.lastSeen ? `last call ${formatTime(props.op.lastSeen)}` : ''}</div>;
  }
  return (
    <div class="behind small">
      {alerts.length > 0 && <span>alerts:</span>}
      {alerts.map((id, i) => (
        <Link to={paths.alert(id)} key={id} title="an alert raised on a trace behind this edge">
          #{i + 1}
        </Link>
      ))}
      <span>traces:</span>
      {traces.slice(0, 5).map((t) => (
        <Link to={paths.trace(t)} key={t} class="mono" title={t}>
          {t.slice(0, 8)}
        </Link>
      ))}
    </div>
  );
}

/** The chains of the identity that reached a peer (in the window when there is one). */
function PeerChains(props: { identity: string; peer: string; since?: string; until?: string }) {
  const chains = useApi(
    () => api.chains(props.identity, { peer: props.peer, since: props.since, until: props.until, limit: PEER_CHAINS }),
    [props.identity, props.peer, props.since, props.until],
  );
  return (
    <div data-testid="peer-chains">
      <h3>Chains that reached it{props.since ? ' in the window' : ''}</h3>
      <Problem error={chains.error} what="chains" />
      <Loading when={chains.loading && !chains.data} />
      {chains.data?.length === 0 && <p class="muted">None stored.</p>}
      <ul class="plain">
        {chains.data?.map((c: Chain) => {
          const calls = c.calls.filter((x) => x.peer === props.peer);
          return (
            <li key={`${c.traceId}-${c.startMs}`}>
              <Link to={paths.trace(c.traceId ?? '')} class="mono">
                {(c.traceId ?? '').slice(0, 16)}
              </Link>{' '}
              <span class="muted">
                <Time value={c.startMs} received={c.receivedMs} />
              </span>
              <div class="muted small wrap">{calls.map((x) => x.operation).filter(Boolean).slice(0, 3).join(', ')}</div>
            </li>
          );
        })}
      </ul>
    </div>
  );
}

function EdgeDetails(props: { edge: ViewEdge; from: ViewNode | undefined; to: ViewNode | undefined; compare: boolean }) {
  const { edge } = props;
  return (
    <div data-testid="graph-panel-edge">
      <h3 class="wrap">
        <Ids text={props.from?.label ?? edge.from} /> → <Ids text={props.to?.label ?? edge.to} />
      </h3>
      <p class="muted">
        {edge.actsThrough ? 'the identity acts through this service' : plural(edge.operations.length, 'operation')} · {plural(edge.calls, 'call')}{' '}
        <ChangeTag change={edge.change} />
      </p>
      <OperationRows ops={edge.operations} compare={props.compare} />
    </div>
  );
}

function NodeDetails(props: { view: GraphView; node: ViewNode; identity: string; compare: boolean; since?: string; until?: string }) {
  const { node, view } = props;
  const incoming = view.edges.filter((e) => e.to === node.id);
  const outgoing = view.edges.filter((e) => e.from === node.id);
  const ops = incoming.flatMap((e) => e.operations).sort((a, b) => b.count - a.count);
  return (
    <div data-testid="graph-panel-node">
      <h3 class="wrap">
        <Ids text={node.label} />
      </h3>
      <p class="muted">
        {node.style === 'identity' ? 'the identity' : node.layer === 1 ? 'a service the identity acts through' : node.external ? 'external peer' : 'peer'}
        {node.alertOnly && <span class="flag">only in alerts</span>} · {incoming.length} in, {outgoing.length} out
      </p>
      {node.layer > 0 && ops.length > 0 && !incoming.every((e) => e.actsThrough) && <OperationRows ops={ops} compare={props.compare} />}
      {node.layer > 0 && <PeerChains identity={props.identity} peer={node.label} since={props.since} until={props.until} />}
    </div>
  );
}

/** What is selected on the graph: an edge's operations, or a node and the chains that reached it. */
export function GraphPanel(props: { view: GraphView; selected: Selection; identity: string; compare?: boolean; since?: string; until?: string }) {
  const { view, selected } = props;
  const nodes = new Map(view.nodes.map((n) => [n.id, n]));
  let body;
  if (selected?.type === 'edge') {
    const edge = view.edges.find((e) => e.id === selected.id);
    if (edge) body = <EdgeDetails edge={edge} from={nodes.get(edge.from)} to={nodes.get(edge.to)} compare={Boolean(props.compare)} />;
  } else if (selected?.type === 'node') {
    const node = nodes.get(selected.id);
    if (node)
      body = <NodeDetails view={view} node={node} identity={props.identity} compare={Boolean(props.compare)} since={props.since} until={props.until} />;
  }
  return (
    <aside class="graph-panel" data-testid="graph-panel">
      {body ?? (
        <p class="muted">
          Click an edge for its operations, or a peer for the chains that reached it. Hover an edge for a summary. Scroll to zoom, drag to
          pan.
        </p>
      )}
    </aside>
  );
}
