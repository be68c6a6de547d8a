import { useState } from 'preact/hooks';
import type { Alert, Chain, ChainCall } from '../api-types.js';
import { api } from '../api.js';
import { Ids, Loading, plural, Problem, Section, SeverityBadge, StatusBadge, Time } from '../components/bits.js';
import { bounds, ChainTimeline, type Axis } from '../components/chain.js';
import { asText, formatDuration, safeHttpUrl } from '../format.js';
import { useApi } from '../hooks.js';
import { incidentOf } from '../incident.js';
import { Link, paths } from '../router.js';
import { spanTree, type GapRow, type SpanRow } from '../span-tree.js';

function firstStart(calls: { startMs: number }[]): number {
  return calls.reduce((m, c) => (Number.isFinite(c.startMs) ? Math.min(m, c.startMs) : m), Infinity);
}

/** The fields conduct keeps of a call's spans: the span's own, then its resource's (the caller's source). */
function SpanDetails(props: { call: ChainCall; identity: string }) {
  const c = props.call;
  const own: [string, unknown][] = [
    ['span id', c.spanId],
    ['server span id', c.serverSpanId],
    ['parent span id', c.parentSpanId || '(root)'],
    ['span name', c.name],
    ['operation', c.operation],
    ['protocol', c.protocol],
    ['identity', props.identity],
    ['service (caller)', c.service],
    ['peer', c.peer],
    ['peer kind', c.peerKind],
    ['external', c.external],
    ['target', c.target],
    ['account', c.account],
    ['status', c.status],
    ['http status', c.httpStatus],
    ['start', new Date(c.startMs).toISOString()],
    ['duration', formatDuration(c.durationMs)],
  ];
  const resource = Object.entries(c.source ?? {});
  const row = ([k, v]: [string, unknown]) =>
    v === undefined || v === null || v === '' ? null : (
      <div key={k}>
        <dt>{k}</dt>
        <dd class="mono wrap">{asText(v)}</dd>
      </div>
    );
  return (
    <div class="span-details" data-testid="span-details">
      <dl class="evidence">{own.map(row)}</dl>
      <h4>Resource and source</h4>
      {resource.length > 0 ? <dl class="evidence">{resource.map(row)}</dl> : <p class="muted">none stored</p>}
    </div>
  );
}

function SpanRowView(props: { row: SpanRow; axis: Axis; offending: Map<string, Alert[]>; open: boolean; onToggle: () => void }) {
  const { row, axis } = props;
  const c = row.call;
  const alerts = [...new Set([...(props.offending.get(c.spanId) ?? []), ...(c.serverSpanId ? (props.offending.get(c.serverSpanId) ?? []) : [])])];
  const left = ((c.startMs - axis.start) / axis.span) * 100;
  const width = Math.max(0.4, ((Number.isFinite(c.durationMs) ? c.durationMs : 0) / axis.span) * 100);
  const error = c.status === 'error';
  return (
    <>
      <li
        class={['span-row', alerts.length ? 'offending' : '', error ? 'error' : '', props.open ? 'open' : ''].filter(Boolean).join(' ')}
        data-span-id={c.spanId}
        data-depth={row.depth}
      >
        <button type="button" class="span-name" onClick={props.onToggle} aria-expanded={props.open}>
          <span class="indent" style={{ width: `${Math.min(row.depth, 12) * 14}px` }} />
          <span class="wrap">
            <span class="svc">{c.service ?? '?'}</span> → <span class={c.external ? 'external' : ''}>{c.peer ?? '?'}</span>{' '}
            <span class="mono">{c.operation ?? c.name}</span>
            {alerts.length > 0 && <span class="flag">offending</span>}
          </span>
        </button>
        <span class="span-bar" aria-hidden="true">
          <span class="bar" style={{ left: `${Math.min(99.6, left)}%`, width: `${Math.min(100, width)}%` }} />
        </span>
        <span class="step-dur muted">{formatDuration(c.durationMs)}</span>
      </li>
      {props.open && (
        <li class="span-open">
          {alerts.length > 0 && (
            <p>
              Raised here:
              {alerts.map((a) => (
                <span key={a.id}>
                  {' '}
                  <SeverityBadge severity={a.severity} /> <Link to={paths.alert(a.id)}>{a.title}</Link>
                </span>
              ))}
            </p>
          )}
          <SpanDetails call={c} identity={row.identity} />
        </li>
      )}
    </>
  );
}

/** Spans of the trace by the alerts that point at them (every finding's spans). */
function offendingSpans(alerts: Alert[]): Map<string, Alert[]> {
  const out = new Map<string, Alert[]>();
  for (const a of alerts) {
    const ids = new Set([...(a.spanIds ?? []), ...incidentOf(a).findings.flatMap((f) => f.spanIds)]);
    for (const id of ids) out.set(id, [...(out.get(id) ?? []), a]);
  }
  return out;
}

function SpanTree(props: { rows: (SpanRow | GapRow)[]; total: number; axis: Axis; alerts: Alert[] }) {
  const [open, setOpen] = useState<Set<string>>(new Set());
  const offending = offendingSpans(props.alerts);
  const toggle = (id: string) => {
    const next = new Set(open);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setOpen(next);
  };
  return (
    <>
      <div class="span-axis muted small">
        <span>0 ms</span>
        <span>{formatDuration(props.axis.span / 2)}</span>
        <span>{formatDuration(props.axis.span)}</span>
      </div>
      <ol class="span-tree" data-testid="span-tree">
        {props.rows.map((r) =>
          'gap' in r ? (
            <li class="span-row gap" data-span-id={r.gap} data-depth={r.depth} key={`gap-${r.gap}`}>
              <span class="muted small">
                span <span class="mono">{r.gap}</span> (not a call, not stored) · {plural(r.children, 'call')} under it
              </span>
            </li>
          ) : (
            <SpanRowView row={r} axis={props.axis} offending={offending} open={open.has(r.call.spanId)} onToggle={() => toggle(r.call.spanId)} key={r.call.spanId} />
          ),
        )}
      </ol>
      {props.total > props.rows.length && <p class="muted">{props.total - props.rows.length} more calls not drawn.</p>}
    </>
  );
}

/**
 * One trace: the span tree of its calls with timing bars and each span's stored fields, the
 * identities that acted in it with their calls, the alerts raised on it with their spans
 * highlighted, and the link to the tracing back end.
 */

/** When conduct last received a part of the trace: the latest of its chains' received times. */
function latestReceived(chains: readonly Chain[]): number | undefined {
  const times = chains.map((c) => c.receivedMs).filter((ms): ms is number => typeof ms === 'number');
  return times.length > 0 ? Math.max(...times) : undefined;
}
export function TracePage(props: { traceId: string }) {
  const trace = useApi(() => api.trace(props.traceId), [props.traceId]);
  const alerts = useApi(() => api.alerts({ traceId: props.traceId, limit: 100 }), [props.traceId]);
  const chains = [...(trace.data?.chains ?? [])].sort((a, b) => (a.startMs ?? firstStart(a.calls)) - (b.startMs ?? firstStart(b.calls)));
  const axis = bounds(...chains);
  const tree = spanTree(chains);
  const raised = alerts.data ?? [];
  const backEnd = safeHttpUrl(trace.data?.links?.trace) ?? safeHttpUrl(raised[0]?.links?.trace);
  const t = trace.data;
  return (
    <main class="wide">
      <h1>
        Trace <span class="mono">{props.traceId}</span>
      </h1>
      <Problem error={trace.error} what="trace" />
      <Loading when={trace.loading && !t} />
      {t && (
        <dl class="facts">
          <div>
            <dt>start</dt>
            <dd>
              <Time value={t.startMs ?? axis.start} received={latestReceived(t.chains)} />
            </dd>
          </div>
          <div>
            <dt>duration</dt>
            <dd>{formatDuration(t.endMs !== undefined && t.startMs !== undefined ? t.endMs - t.startMs : axis.span)}</dd>
          </div>
          {t.spans !== undefined && (
            <div>
              <dt>spans</dt>
              <dd>{t.spans}</dd>
            </div>
          )}
          <div>
            <dt>calls</dt>
            <dd>{tree.total}</dd>
          </div>
          {t.services && (
            <div>
              <dt>services</dt>
              <dd class="wrap">{t.services.join(', ')}</dd>
            </div>
          )}
          <div>
            <dt>tracing back end</dt>
            <dd>
              {backEnd ? (
                <a href={backEnd} target="_blank" rel="noopener noreferrer" data-testid="trace-link">
                  open this trace
                </a>
              ) : (
                <span class="muted">no link configured</span>
              )}
            </dd>
          </div>
        </dl>
      )}
      {t && (
        <div class="trace-layout">
          <Section title="Span tree">
            <p class="muted small">
              Built from the calls conduct stores (span ids, parent span ids, times). Spans that were not calls (a root server span, internal
              spans) are not stored: they appear as a grey row holding their calls. Click a call for its fields.
            </p>
            <SpanTree rows={tree.rows} total={tree.total} axis={axis} alerts={raised} />
          </Section>
          <aside>
            <Section title={`Alerts on this trace (${raised.length})`}>
              <Problem error={alerts.error} what="alerts" />
              {raised.length === 0 && <p class="muted">None.</p>}
              <ul class="plain" data-testid="trace-alerts">
                {raised.map((a) => (
                  <li key={a.id} data-alert-id={a.id}>
                    <SeverityBadge severity={a.severity} /> <StatusBadge status={a.status} />{' '}
                    <Link to={paths.alert(a.id)}>{a.title}</Link>
                    <div class="muted small">
                      <Ids text={a.identity} /> · {incidentOf(a).detectors.join(', ')} · score {a.score}
                    </div>
                  </li>
                ))}
              </ul>
            </Section>
            <Section title="Identities in this trace">
              <ul class="plain" data-testid="trace-identities">
                {chains.map((c) => (
                  <li key={c.identity}>
                    <Link to={paths.identity(c.identity)} class="mono">
                      <Ids text={c.identity} />
                    </Link>
                    <div class="muted small">
                      {plural(c.calls.length, 'call')} · {formatDuration(bounds(c).span)} · peers {[...new Set(c.calls.map((x) => x.peer))].slice(0, 4).join(', ')}
                    </div>
                  </li>
                ))}
              </ul>
            </Section>
          </aside>
        </div>
      )}
      {t && (
        <Section title="Chains per identity">
          {chains.map((c) => (
            <ChainTimeline chain={c} showIdentity axis={axis} highlight={raised.filter((a) => a.identity === c.identity).flatMap((a) => a.spanIds)} key={c.identity} />
          ))}
        </Section>
      )}
    </main>
  );
}
