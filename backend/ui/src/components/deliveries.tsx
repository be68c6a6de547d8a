import { useState } from 'preact/hooks';
import type { Delivery } from '../api-types.js';
import { api } from '../api.js';
import { formatTime } from '../format.js';

/** When a delivery's state began (or, pending, when its next attempt is due). */
function since(d: Delivery): string {
  const at = d.deliveredAt ?? d.deadAt ?? d.discardedAt ?? d.nextAttemptAt;
  if (!at) return '';
  return d.state === 'pending' ? `next attempt ${formatTime(at)}` : formatTime(at);
}

/**
 * An alert's deliveries to the sinks, newest event first. A dead one (given up after the sink's
 * retries) has the operator's two ways out: retry it (once the receiver is mended) or discard it.
 */
export function Deliveries(props: { alertId: string; deliveries: Delivery[] }) {
  const [rows, setRows] = useState(props.deliveries);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const act = async (d: Delivery, action: 'retry' | 'discard') => {
    setBusy(true);
    setError(undefined);
    try {
      setRows((await api.deadDelivery(props.alertId, action, d.sink, d.seq)).deliveries);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <table class="table" data-testid="deliveries">
        <thead>
          <tr>
            <th>sink</th>
            <th>event</th>
            <th>state</th>
            <th>attempts</th>
            <th>when</th>
            <th>last error</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rows.map((d) => (
            <tr key={`${d.sink}/${d.seq}`} data-sink={d.sink} data-seq={d.seq} data-state={d.state}>
              <td class="mono">{d.sink}</td>
              <td>
                #{d.seq} {d.event}
              </td>
              <td class={`delivery-${d.state}`}>{d.state}</td>
              <td>{d.attempts}</td>
              <td class="small">{since(d)}</td>
              <td class="mono small">{d.lastError ?? ''}</td>
              <td>
                {d.state === 'dead' && (
                  <span class="feedback">
                    <button type="button" disabled={busy} title="deliver it again now, with the sink's retries anew" onClick={() => void act(d, 'retry')}>
                      Retry
                    </button>
                    <button type="button" disabled={busy} title="give it up for good" onClick={() => void act(d, 'discard')}>
                      Discard
                    </button>
                  </span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {error && (
        <p class="problem" role="alert">
          Could not change the delivery: {error}
        </p>
      )}
    </>
  );
}
