import type { ComponentChildren } from 'preact';
import type { AlertStatus, Severity } from '../api-types.js';
import { ApiError } from '../api.js';
import { formatAgo, formatTime } from '../format.js';

const SEVERITIES = new Set(['info', 'low', 'medium', 'high', 'critical']);
const STATUSES = new Set(['open', 'acknowledged', 'expected', 'malicious', 'superseded']);

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

/** Characters after which an id may wrap: path, scheme, host and name separators. */
const SEPARATOR = /([/:.-])/;

/**
 * An id (identity, peer, operation) that wraps only after its separators: each separator is
 * followed by a <wbr>, and the style keeps words whole, so `svc:shop/storefront` breaks after
 * `svc:` or `shop/`, never inside `storefront`.
 */
export function Ids(props: { text: string; class?: string }) {
  const parts = props.text.split(SEPARATOR);
  const out: ComponentChildren[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p === '') continue;
    out.push(p);
    if (i % 2 === 1 && i < parts.length - 1) out.push(<wbr key={i} />);
  }
  return <span class={props.class ? `id ${props.class}` : 'id'}>{out}</span>;
}

/** `1 call`, `2 calls`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Event and received times further apart than this are both shown. */
export const RECEIVED_APART_MS = 60_000;

/**
 * A time as its absolute value (UTC) with the relative one beside it, e.g.
 * `2026-11-27 08:53:00Z · 9d ago`; with `received`, the time conduct received it is added when
 * it differs from the event time (replayed or late data), so old event times are not mistaken
 * for old news.
 */
export function Time(props: { value: string | number | null | undefined; received?: string | number | null; what?: string }) {
  const { value, received } = props;
  if (value === null || value === undefined || value === '') return <span class="muted">—</span>;
  const ms = typeof value === 'number' ? value : Date.parse(value);
  const receivedMs = received === null || received === undefined ? NaN : typeof received === 'number' ? received : Date.parse(received);
  const apart = Number.isFinite(ms) && Number.isFinite(receivedMs) && Math.abs(receivedMs - ms) > RECEIVED_APART_MS;
  return (
    <span class="time" data-testid="time">
      <time dateTime={Number.isFinite(ms) ? new Date(ms).toISOString() : undefined} title={props.what ?? 'event time (from the spans)'}>
        {formatTime(value)}
      </time>
      <span class="ago"> · {formatAgo(Number.isFinite(ms) ? new Date(ms).toISOString() : String(value))}</span>
      {apart && (
        <span class="received" title="when conduct received it">
          <span class="sep"> · </span>received {formatTime(receivedMs)}
        </span>
      )}
    </span>
  );
}
