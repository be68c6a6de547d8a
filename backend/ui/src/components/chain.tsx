import type { Chain, ChainCall } from '../api-types.js';
import { asText, formatDuration } from '../format.js';
import { Link, paths } from '../router.js';
import { Mono, Time } from './bits.js';

/** Calls drawn per chain; longer chains say how many were left out. */
export const MAX_CALLS_SHOWN = 200;

/** The time axis a timeline is drawn against: start (ms) and length (ms). */
export interface Axis {
  start: number;
  span: number;
}

/** The axis covering every call of the given chains. */
export function bounds(...chains: Chain[]): Axis {
  let start = Infinity;
  let end = -Infinity;
  for (const chain of chains) {
    if (Number.isFinite(chain.startMs)) start = Math.min(start, chain.startMs!);
    if (Number.isFinite(chain.endMs)) end = Math.max(end, chain.endMs!);
    for (const c of chain.calls) {
      if (!Number.isFinite(c.startMs)) continue;
      start = Math.min(start, c.startMs);
      end = Math.max(end, c.startMs + (Number.isFinite(c.durationMs) ? c.durationMs : 0));
    }
  }
  if (!Number.isFinite(start)) return { start: 0, span: 1 };
  return { start, span: Math.max(1, end - start) };
}

function isError(status: ChainCall['status']): boolean {
  return status === 'error' || status === 'ERROR' || status === 2;
}

/**
 * One identity's chain as a timeline: each call a row with a bar at its offset and length.
 * `highlight` marks offending spans; the first one is the step the alert points at.
 */
export function ChainTimeline(props: { chain: Chain; highlight?: string[]; showIdentity?: boolean; showTrace?: boolean; axis?: Axis }) {
  const { chain } = props;
  const highlight = props.highlight ?? [];
  const own = bounds(chain);
  const { start, span } = props.axis ?? own;
  const calls = [...chain.calls].sort((a, b) => a.startMs - b.startMs).slice(0, MAX_CALLS_SHOWN);
  return (
    <div class="chain" data-testid="chain">
      <div class="chain-head">
        {props.showIdentity && (
          <Link to={paths.identity(chain.identity)} class="mono strong">
            {chain.identity}
          </Link>
        )}
        {props.showTrace && chain.traceId && (
          <span>
            trace{' '}
            <Link to={paths.trace(chain.traceId)} class="mono">
              {chain.traceId}
            </Link>
          </span>
        )}
        <span class="muted">
          <Time value={own.start} received={chain.receivedMs} />
        </span>
        <span class="muted">
          {chain.calls.length} call{chain.calls.length === 1 ? '' : 's'} over {formatDuration(own.span)}
        </span>
      </div>
      <ol class="steps">
        {calls.map((c, i) => {
          const offending = highlight.includes(c.spanId);
          const primary = highlight[0] === c.spanId;
          const left = ((c.startMs - start) / span) * 100;
          const width = Math.max(0.5, ((Number.isFinite(c.durationMs) ? c.durationMs : 0) / span) * 100);
          const cls = ['step', offending ? 'offending' : '', primary ? 'primary' : '', isError(c.status) ? 'error' : '']
            .filter(Boolean)
            .join(' ');
          return (
            <li class={cls} data-span-id={c.spanId} data-testid={primary ? 'offending-step' : undefined} key={`${c.spanId}-${i}`}>
              <span class="step-n">{i + 1}</span>
              <span class="step-what">
                <span class="op mono">{c.operation ?? c.name ?? '—'}</span>
                <span class="muted">
                  {' '}
                  {c.service ?? '?'} → <span class={c.external ? 'external' : ''}>{c.peer ?? '?'}</span>
                  {c.target ? ` · ${asText(c.target)}` : ''}
                  {c.account ? ` · account ${asText(c.account)}` : ''}
                  {c.errorCode ? ` · ${asText(c.errorCode)}` : ''}
                </span>
                {c.auditId && (
                  <span class="audit-id muted mono" title="id of the audit record this call was read from" data-testid="audit-id">
                    {' '}
                    record {asText(c.auditId)}
                  </span>
                )}
                {primary && <span class="flag">offending step</span>}
              </span>
              <span class="step-bar" aria-hidden="true">
                <span class="bar" style={{ left: `${Math.min(99.5, left)}%`, width: `${Math.min(100, width)}%` }} />
              </span>
              <span class="step-dur muted">{formatDuration(c.durationMs)}</span>
            </li>
          );
        })}
      </ol>
      {chain.calls.length > MAX_CALLS_SHOWN && (
        <p class="muted">{chain.calls.length - MAX_CALLS_SHOWN} more calls not shown.</p>
      )}
    </div>
  );
}
