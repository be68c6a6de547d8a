import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { AlertTable } from '../components/alert-table.js';
import { Loading, Problem } from '../components/bits.js';
import { useApi } from '../hooks.js';

export const ALERTS_POLL_MS = 3000;
const DETECTORS = ['new-peer', 'new-operation', 'unusual-chain', 'rate-burst', 'fan-out', 'new-source', 'credential-reuse', 'policy'];
const STATUSES = ['open', 'acknowledged', 'expected', 'malicious'];

/** All alerts, newest first, refreshed every few seconds so new ones appear without a reload. */
export function AlertsPage() {
  const [detector, setDetector] = useState('');
  const [status, setStatus] = useState('');
  const alerts = useApi(() => api.alerts({ detector, status, limit: 200 }), [detector, status], ALERTS_POLL_MS);
  return (
    <main>
      <h1>Alerts</h1>
      <div class="filters">
        <select aria-label="detector" value={detector} onChange={(e) => setDetector((e.target as HTMLSelectElement).value)}>
          <option value="">all detectors</option>
          {DETECTORS.map((d) => (
            <option value={d} key={d}>
              {d}
            </option>
          ))}
        </select>
        <select aria-label="status" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
          <option value="">any status</option>
          {STATUSES.map((s) => (
            <option value={s} key={s}>
              {s}
            </option>
          ))}
        </select>
        <span class="muted live">live</span>
      </div>
      <Problem error={alerts.error} what="alerts" />
      <Loading when={alerts.loading && !alerts.data} />
      {alerts.data && <AlertTable alerts={alerts.data} showIdentity />}
    </main>
  );
}
