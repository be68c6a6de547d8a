import { api } from '../api.js';
import { Loading, Problem } from '../components/bits.js';
import { bounds, ChainTimeline } from '../components/chain.js';
import { useApi } from '../hooks.js';

function firstStart(calls: { startMs: number }[]): number {
  return calls.reduce((m, c) => (Number.isFinite(c.startMs) ? Math.min(m, c.startMs) : m), Infinity);
}

/** Every identity's chain in one trace, in time order. */
export function TracePage(props: { traceId: string }) {
  const trace = useApi(() => api.trace(props.traceId), [props.traceId]);
  const chains = [...(trace.data?.chains ?? [])].sort(
    (a, b) => (a.startMs ?? firstStart(a.calls)) - (b.startMs ?? firstStart(b.calls)),
  );
  // One time axis for all chains, so their bars line up in trace time.
  const axis = bounds(...chains);
  return (
    <main>
      <h1>
        Trace <span class="mono">{props.traceId}</span>
      </h1>
      <Problem error={trace.error} what="trace" />
      <Loading when={trace.loading && !trace.data} />
      {trace.data && (
        <p class="muted">
          {chains.length} identit{chains.length === 1 ? 'y' : 'ies'} acted in this trace.
        </p>
      )}
      {chains.map((c) => (
        <ChainTimeline chain={c} showIdentity axis={axis} key={c.identity} />
      ))}
    </main>
  );
}
