import type { ComponentChildren } from 'preact';
import type { AlertStatus, Severity } from '../api-types.js';
import { ApiError } from '../api.js';

const SEVERITIES = new Set(['info', 'low', 'medium', 'high', 'critical']);
const STATUSES = new Set(['open', 'acknowledged', 'expected', 'malicious']);

export function SeverityBadge(props: { severity: Severity | string }) {
  const known = SEVERITIES.has(props.severity) ? props.severity : 'info';
  return <span class={`badge sev-${known}`}>{props.severity}</span>;
}

export function StatusBadge(props: { status: AlertStatus | string }) {
  const known = STATUSES.has(props.status) ? props.status : 'open';
  return (
    <span class={`badge status-${known}`} data-testid="alert-status">
      {props.status}
    </span>
  );
}

export function Mono(props: { children: ComponentChildren; title?: string }) {
  return (
    <span class="mono" title={props.title}>
      {props.children}
    </span>
  );
}

export function Problem(props: { error: Error | undefined; what: string }) {
  if (!props.error) return null;
  if (props.error instanceof ApiError && props.error.status === 401) return null;
  const notFound = props.error instanceof ApiError && props.error.status === 404;
  return (
    <p class="problem" role="alert">
      {notFound ? `No such ${props.what}.` : `Could not load the ${props.what}: ${props.error.message}`}
    </p>
  );
}

export function Loading(props: { when: boolean }) {
  return props.when ? <p class="muted">Loading…</p> : null;
}

export function Section(props: { title: string; children: ComponentChildren; aside?: ComponentChildren }) {
  return (
    <section class="card">
      <header class="card-head">
        <h2>{props.title}</h2>
        {props.aside}
      </header>
      {props.children}
    </section>
  );
}
