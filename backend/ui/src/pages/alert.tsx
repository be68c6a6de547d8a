import { useState } from 'preact/hooks';
import type { Alert, AlertStatus, Delivery, Verdict } from '../api-types.js';
import { api } from '../api.js';
import { Ids, Loading, Mono, Problem, Section, SeverityBadge, StatusBadge, Time } from '../components/bits.js';
import { incidentOf } from '../incident.js';
import { bounds, ChainTimeline } from '../components/chain.js';
import { Deliveries } from '../components/deliveries.js';
import { asText, formatTime, safeHttpUrl } from '../format.js';
import { useApi } from '../hooks.js';
import { Link, paths } from '../router.js';

const VERDICTS: { verdict: Verdict; label: string; hint: string }[] = [
  { verdict: 'expected', label: 'Expected', hint: 'legitimate: let these calls into the baseline' },
  { verdict: 'malicious', label: 'Malicious', hint: 'confirmed bad activity' },
  { verdict: 'acknowledged', label: 'Acknowledged', hint: 'seen, being looked at' },
];

function Evidence(props: { evidence: Record<string, unknown> | undefined }) {
  const rows = Object.entries(props.evidence ?? {}).slice(0, 50);
  if (rows.length === 0) return <p class="muted">No structured evidence.</p>;
  return (
    <dl class="evidence" data-testid="evidence">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd class="mono">{asText(v)}</dd>
        </div>
      ))}
    </dl>
  );
}

/** The incident's findings, worst first: each detector's own title, explanation, score and spans. */
function Findings(props: { alert: Alert }) {
  const inc = incidentOf(props.alert);
  return (
    <Section title={inc.findings.length === 1 ? 'Finding' : `Findings (${inc.findings.length})`}>
      <ol class="findings" data-testid="findings">
        {inc.findings.map((f, i) => (
          <li key={i} data-detector={f.detector}>
            <div class="alert-head">
              <SeverityBadge severity={f.severity} />
              <span class="mono">{f.detector}</span>
              {f.score !== undefined && <span class="muted">score {f.score}</span>}
              {f.techniques.map((t) => (
                <span class="badge technique mono" key={t}>
                  {t}
                </span>
              ))}
            </div>
            <strong>{f.title}</strong>
            {f.explanation && f.explanation !== props.alert.explanation && <p class="explanation">{f.explanation}</p>}
            {f.spanIds.length > 0 && (
              <div class="muted small">
                spans:{' '}
                {f.spanIds.slice(0, 10).map((id) => (
                  <span class="mono" key={id}>
                    {id}{' '}
                  </span>
                ))}
              </div>
            )}
          </li>
        ))}
      </ol>
    </Section>
  );
}

function Feedback(props: { alert: Alert; onStatus: (s: AlertStatus) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const send = async (verdict: Verdict) => {
    setBusy(true);
    setError(undefined);
    try {
      const answer = await api.feedback(props.alert.id, verdict);
      const status = (answer as Partial<Alert> | undefined)?.status;
      props.onStatus(typeof status === 'string' ? status : verdict);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="feedback">
      {VERDICTS.map((v) => (
        <button
          type="button"
          key={v.verdict}
          class={`verdict verdict-${v.verdict}${props.alert.status === v.verdict ? ' chosen' : ''}`}
          title={v.hint}
          disabled={busy}
          onClick={() => void send(v.verdict)}
        >
          {v.label}
        </button>
      ))}
      {error && (
        <p class="problem" role="alert">
          Feedback failed: {error}
        </p>
      )}
    </div>
  );
}

export function AlertPage(props: { id: string }) {
  const alert = useApi(() => api.alert(props.id), [props.id]);
  const a = alert.data;
  const trace = useApi(() => (a ? api.trace(a.traceId) : Promise.resolve(undefined)), [a?.traceId]);
  const [status, setStatus] = useState<AlertStatus | undefined>();
  const shown: Alert | undefined = a && status ? { ...a, status } : a;

  if (!shown) {
    return (
      <main>
        <h1>Alert</h1>
        <Problem error={alert.error} what="alert" />
        <Loading when={alert.loading} />
      </main>
    );
  }
  const traceUrl = safeHttpUrl(shown.links?.trace);
  const ownChain = trace.data?.chains.find((c) => c.identity === shown.identity);
  const otherChains = trace.data?.chains.filter((c) => c !== ownChain) ?? [];
  const axis = trace.data ? bounds(...trace.data.chains) : undefined;
  const deliveries = (a as { deliveries?: Delivery[] } | undefined)?.deliveries;

  return (
    <main>
      <p class="crumbs">
        <Link to={paths.alerts()}>Alerts</Link> / <Mono>{shown.id}</Mono>
      </p>
      <h1 data-testid="alert-title">{shown.title}</h1>
      <div class="alert-head">
        <SeverityBadge severity={shown.severity} />
        <span>
          score <strong data-testid="alert-score">{shown.score}</strong>
        </span>
        <StatusBadge status={shown.status} />
        <span class="mono">{shown.detector}</span>
        {shown.techniques.map((t) => (
          <span class="badge technique mono" key={t}>
            {t}
          </span>
        ))}
      </div>
      <dl class="facts">
        <div>
          <dt>identity</dt>
          <dd>
            <Link to={paths.identity(shown.identity)} class="mono">
              <Ids text={shown.identity} />
            </Link>
          </dd>
        </div>
        <div>
          <dt>event time</dt>
          <dd>
            <Time value={shown.eventTime} />
          </dd>
        </div>
        <div>
          <dt>seen</dt>
          <dd>
            {shown.count}× · {formatTime(shown.firstSeen)} – <Time value={shown.lastSeen} received={incidentOf(shown).receivedAt} what="last seen (event time)" />
          </dd>
        </div>
        <div>
          <dt>trace</dt>
          <dd>
            <Link to={paths.trace(shown.traceId)} class="mono">
              {shown.traceId}
            </Link>
            {traceUrl && (
              <>
                {' · '}
                <a href={traceUrl} target="_blank" rel="noopener noreferrer" data-testid="trace-link">
                  open in tracing back end
                </a>
              </>
            )}
          </dd>
        </div>
      </dl>

      <Section title="Explanation">
        <p class="explanation" data-testid="explanation">
          {shown.explanation}
        </p>
      </Section>

      <Findings alert={shown} />

      <Section title="Your verdict">
        <Feedback alert={shown} onStatus={setStatus} />
      </Section>

      <Section title="The chain">
        <Problem error={trace.error} what="trace" />
        <Loading when={trace.loading && !trace.data} />
        {ownChain && <ChainTimeline chain={ownChain} highlight={shown.spanIds} axis={axis} />}
        {trace.data && !ownChain && <p class="muted">This identity's chain is no longer stored.</p>}
        {otherChains.length > 0 && (
          <details>
            <summary>Other identities in this trace ({otherChains.length})</summary>
            {otherChains.map((c) => (
              <ChainTimeline chain={c} showIdentity highlight={shown.spanIds} axis={axis} key={c.identity} />
            ))}
          </details>
        )}
      </Section>

      <Section title="Baseline evidence">
        <Evidence evidence={shown.evidence} />
      </Section>

      {deliveries && deliveries.length > 0 && (
        <Section title="Deliveries to the sinks">
          <Deliveries alertId={shown.id} deliveries={deliveries} key={shown.id} />
        </Section>
      )}
    </main>
  );
}
