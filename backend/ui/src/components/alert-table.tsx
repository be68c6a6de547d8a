import type { Alert } from '../api-types.js';
import { incidentOf } from '../incident.js';
import { Link, paths } from '../router.js';
import { Ids, SeverityBadge, StatusBadge, Time } from './bits.js';

/** Findings named in a row (the alert page shows them all). */
const ROW_FINDINGS = 4;

/**
 * Alerts (incidents): severity, title with the findings inside it, identity, detectors, score,
 * status, event time; the title opens the alert, the trace id conduct's trace page. With
 * `onSelect`, each row has a box for bulk verdicts.
 */
export function AlertTable(props: {
  alerts: Alert[];
  showIdentity?: boolean;
  selected?: Set<string>;
  onSelect?: (s: Set<string>) => void;
}) {
  const { selected, onSelect } = props;
  if (props.alerts.length === 0) return <p class="muted">No alerts.</p>;
  const toggle = (id: string) => {
    if (!selected || !onSelect) return;
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    onSelect(next);
  };
  const allChosen = Boolean(selected) && props.alerts.every((a) => selected!.has(a.id));
  return (
    <table class="table alerts" data-testid="alerts">
      <thead>
        <tr>
          {onSelect && (
            <th class="pick">
              <input type="checkbox" aria-label="select all" checked={allChosen} onChange={() => onSelect(allChosen ? new Set() : new Set(props.alerts.map((a) => a.id)))} />
            </th>
          )}
          <th>severity</th>
          <th>incident</th>
          {props.showIdentity && <th>identity</th>}
          <th>detectors</th>
          <th class="num">score</th>
          <th>status</th>
          <th>last seen (event time)</th>
          <th>trace</th>
        </tr>
      </thead>
      <tbody>
        {props.alerts.map((a) => {
          const inc = incidentOf(a);
          return (
            <tr key={a.id} data-alert-id={a.id} data-severity={a.severity} data-score={a.score} class={selected?.has(a.id) ? 'chosen' : undefined}>
              {onSelect && (
                <td class="pick">
                  <input type="checkbox" aria-label={`select ${a.title}`} checked={selected!.has(a.id)} onChange={() => toggle(a.id)} />
                </td>
              )}
              <td>
                <SeverityBadge severity={a.severity} />
              </td>
              <td class="wrap">
                <Link to={paths.alert(a.id)}>{a.title}</Link>
                {a.count > 1 && <span class="muted"> ×{a.count}</span>}
                {inc.findings.length > 1 && (
                  <ul class="findings-inline" data-testid="row-findings">
                    {inc.findings.slice(0, ROW_FINDINGS).map((f, i) => (
                      <li key={i}>
                        <span class={`dot sev-${f.severity}`} aria-hidden="true" /> {f.title}
                      </li>
                    ))}
                    {inc.findings.length > ROW_FINDINGS && <li class="muted">{inc.findings.length - ROW_FINDINGS} more findings</li>}
                  </ul>
                )}
              </td>
              {props.showIdentity && (
                <td>
                  <Link to={paths.identity(a.identity)} class="mono">
                    <Ids text={a.identity} />
                  </Link>
                </td>
              )}
              <td class="mono detectors">
                {inc.detectors.map((d) => (
                  <div key={d}>{d}</div>
                ))}
              </td>
              <td class="num">{a.score}</td>
              <td>
                <StatusBadge status={a.status} />
              </td>
              <td>
                <Time value={a.lastSeen} received={inc.receivedAt} />
              </td>
              <td>
                <Link to={paths.trace(a.traceId)} class="mono" title={a.traceId}>
                  {a.traceId.slice(0, 8)}…
                </Link>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
