import type { Alert } from '../api-types.js';
import { formatAgo, safeHttpUrl } from '../format.js';
import { Link, paths } from '../router.js';
import { SeverityBadge, StatusBadge } from './bits.js';

/** Alerts, newest first: the title opens the alert page, the trace link opens the tracing back end. */
export function AlertTable(props: { alerts: Alert[]; showIdentity?: boolean }) {
  if (props.alerts.length === 0) return <p class="muted">No alerts.</p>;
  return (
    <table class="table" data-testid="alerts">
      <thead>
        <tr>
          <th>severity</th>
          <th>alert</th>
          {props.showIdentity && <th>identity</th>}
          <th>detector</th>
          <th class="num">score</th>
          <th>status</th>
          <th>last seen</th>
          <th>trace</th>
        </tr>
      </thead>
      <tbody>
        {props.alerts.map((a) => {
          const traceUrl = safeHttpUrl(a.links?.trace);
          return (
            <tr key={a.id} data-alert-id={a.id}>
              <td>
                <SeverityBadge severity={a.severity} />
              </td>
              <td>
                <Link to={paths.alert(a.id)}>{a.title}</Link>
                {a.count > 1 && <span class="muted"> ×{a.count}</span>}
              </td>
              {props.showIdentity && (
                <td>
                  <Link to={paths.identity(a.identity)} class="mono">
                    {a.identity}
                  </Link>
                </td>
              )}
              <td class="mono">{a.detector}</td>
              <td class="num">{a.score}</td>
              <td>
                <StatusBadge status={a.status} />
              </td>
              <td title={a.lastSeen}>{formatAgo(a.lastSeen)}</td>
              <td>
                {traceUrl ? (
                  <a href={traceUrl} target="_blank" rel="noopener noreferrer">
                    open trace
                  </a>
                ) : (
                  <Link to={paths.trace(a.traceId)} class="mono">
                    {a.traceId.slice(0, 8)}
                  </Link>
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
