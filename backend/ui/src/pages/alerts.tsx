import { useEffect, useState } from 'preact/hooks';
import type { Verdict } from '../api-types.js';
import { api, type AlertQuery } from '../api.js';
import { AlertTable } from '../components/alert-table.js';
import { Loading, Problem } from '../components/bits.js';
import { useApi } from '../hooks.js';
import { setQuery, useLocation } from '../router.js';

export const ALERTS_POLL_MS = 3000;
const DETECTORS = ['new-peer', 'new-operation', 'unusual-chain', 'rate-burst', 'fan-out', 'new-source', 'credential-reuse', 'policy', 'release'];
/** Alert statuses to filter by; `superseded`: a later part of the trace replaced the call it was raised on. */
const STATUSES = ['open', 'acknowledged', 'expected', 'malicious', 'superseded'];
const SEVERITY_CHOICES: { value: string; label: string }[] = [
  { value: '', label: 'any severity' },
  { value: 'critical', label: 'critical' },
  { value: 'high,critical', label: 'high and above' },
  { value: 'medium,high,critical', label: 'medium and above' },
  { value: 'high', label: 'high' },
  { value: 'medium', label: 'medium' },
  { value: 'low', label: 'low' },
  { value: 'info', label: 'info' },
];
const HOUR = 3_600_000;
const RANGES: { value: string; label: string; ms?: number }[] = [
  { value: '', label: 'any time' },
  { value: '1h', label: 'last hour', ms: HOUR },
  { value: '1d', label: 'last day', ms: 24 * HOUR },
  { value: '7d', label: 'last week', ms: 7 * 24 * HOUR },
  { value: 'range', label: 'a range' },
];
const SORTS = [
  { value: '', label: 'newest first' },
  { value: 'score', label: 'highest score first' },
  { value: 'severity', label: 'most severe first' },
];
const VERDICTS: { verdict: Verdict; label: string }[] = [
  { verdict: 'acknowledged', label: 'Acknowledge' },
  { verdict: 'expected', label: 'Expected' },
  { verdict: 'malicious', label: 'Malicious' },
];
/** Alerts listed at most. */
const LIST_LIMIT = 200;
/** Typing pauses this long before the search goes to the URL (and the API). */
const SEARCH_DELAY_MS = 300;

/** The API query of the filters in the URL; preset ranges count back from now. */
export function alertQueryOf(search: URLSearchParams, now = Date.now()): AlertQuery {
  const range = RANGES.find((r) => r.value === (search.get('range') ?? ''));
  const since = range?.ms ? new Date(now - range.ms).toISOString() : range?.value === 'range' ? (search.get('since') ?? undefined) : undefined;
  const until = range?.value === 'range' ? (search.get('until') ?? undefined) : undefined;
  return {
    severity: search.get('severity') ?? undefined,
    detector: search.get('detector') ?? undefined,
    status: search.get('status') ?? undefined,
    identity: search.get('identity') ?? undefined,
    q: search.get('q') ?? undefined,
    sort: search.get('sort') ?? undefined,
    since,
    until,
    limit: LIST_LIMIT,
  };
}

function Select(props: { label: string; param: string; value: string; options: { value: string; label: string }[] }) {
  return (
    <select aria-label={props.label} value={props.value} onChange={(e) => setQuery({ [props.param]: (e.target as HTMLSelectElement).value })}>
      {props.options.map((o) => (
        <option value={o.value} key={o.value}>
          {o.label}
        </option>
      ))}
    </select>
  );
}

/** A text input that writes to the URL once typing pauses. */
function DelayedInput(props: { label: string; param: string; value: string; type: 'search' | 'text'; placeholder: string }) {
  const [text, setText] = useState(props.value);
  useEffect(() => setText(props.value), [props.value]);
  useEffect(() => {
    if (text === props.value) return;
    const timer = setTimeout(() => setQuery({ [props.param]: text.trim() }), SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [text]);
  return (
    <input
      type={props.type}
      aria-label={props.label}
      placeholder={props.placeholder}
      value={text}
      onInput={(e) => setText((e.target as HTMLInputElement).value)}
      onKeyDown={(e) => e.key === 'Enter' && setQuery({ [props.param]: text.trim() })}
    />
  );
}

const isoInput = (v: string | null) => (v ? v.slice(0, 16) : '');
const fromInput = (v: string) => (v ? new Date(`${v}Z`).toISOString() : undefined);

function Filters(props: { search: URLSearchParams }) {
  const s = props.search;
  const get = (k: string) => s.get(k) ?? '';
  return (
    <div class="filters" data-testid="alert-filters">
      <DelayedInput label="search" param="q" value={get('q')} type="search" placeholder="search titles, explanations, ids" />
      <Select label="severity" param="severity" value={get('severity')} options={SEVERITY_CHOICES} />
      <Select label="detector" param="detector" value={get('detector')} options={[{ value: '', label: 'all detectors' }, ...DETECTORS.map((d) => ({ value: d, label: d }))]} />
      <Select label="status" param="status" value={get('status')} options={[{ value: '', label: 'any status' }, ...STATUSES.map((d) => ({ value: d, label: d }))]} />
      <DelayedInput label="identity" param="identity" value={get('identity')} type="text" placeholder="identity id" />
      <Select label="time range" param="range" value={get('range')} options={RANGES} />
      {get('range') === 'range' && (
        <>
          <input type="datetime-local" aria-label="from (UTC)" value={isoInput(s.get('since'))} onChange={(e) => setQuery({ since: fromInput((e.target as HTMLInputElement).value) })} />
          <input type="datetime-local" aria-label="to (UTC)" value={isoInput(s.get('until'))} onChange={(e) => setQuery({ until: fromInput((e.target as HTMLInputElement).value) })} />
        </>
      )}
      <Select label="sort" param="sort" value={get('sort')} options={SORTS} />
      <span class="muted live">live</span>
    </div>
  );
}

/** Sends one verdict for every selected alert; answers how many were recorded. */
function BulkVerdicts(props: { selected: string[]; onDone: () => void }) {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | undefined>();
  const send = async (verdict: Verdict) => {
    setBusy(true);
    setMessage(undefined);
    const results = await Promise.allSettled(props.selected.map((id) => api.feedback(id, verdict)));
    const failed = results.filter((r) => r.status === 'rejected').length;
    setMessage(`${results.length - failed} marked ${verdict}${failed ? `, ${failed} failed` : ''}.`);
    setBusy(false);
    props.onDone();
  };
  return (
    <div class="bulk" data-testid="bulk">
      <span>{props.selected.length} selected:</span>
      {VERDICTS.map((v) => (
        <button type="button" key={v.verdict} class={`verdict verdict-${v.verdict}`} disabled={busy || props.selected.length === 0} onClick={() => void send(v.verdict)}>
          {v.label}
        </button>
      ))}
      {message && (
        <span class="muted" role="status">
          {message}
        </span>
      )}
    </div>
  );
}

/**
 * Alerts (incidents) with their findings: filtered by severity, detector, status, identity, time
 * range and free text, sorted by time, score or severity, all kept in the URL so a link shows
 * the same list; refreshed every few seconds; verdicts for many at once.
 */
export function AlertsPage() {
  const { search } = useLocation();
  const key = search.toString();
  const alerts = useApi(() => api.alerts(alertQueryOf(search)), [key], ALERTS_POLL_MS);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  useEffect(() => setSelected(new Set()), [key]);
  const shown = alerts.data ?? [];
  const chosen = shown.filter((a) => selected.has(a.id)).map((a) => a.id);
  return (
    <main class="wide">
      <h1>Alerts</h1>
      <Filters search={search} />
      <BulkVerdicts
        selected={chosen}
        onDone={() => {
          setSelected(new Set());
          alerts.reload();
        }}
      />
      <Problem error={alerts.error} what="alerts" />
      <Loading when={alerts.loading && !alerts.data} />
      {alerts.data && (
        <>
          <AlertTable alerts={shown} showIdentity selected={selected} onSelect={setSelected} />
          {shown.length >= LIST_LIMIT && <p class="muted">The newest {LIST_LIMIT} matching alerts are listed; narrow the filters for older ones.</p>}
        </>
      )}
    </main>
  );
}
