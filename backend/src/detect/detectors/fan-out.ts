import { FAN_OUT_DIMENSIONS, has, RATE_WINDOW_MS, summarise, type EntryKind, type FanOutDimension } from '../../learn/index.js';
import { displayName, q, unique, type DetectionContext, type Finding } from '../finding.js';
import { techniquesForOperations } from '../techniques.js';
import { MIN_RATE_WINDOWS, busiest } from './rate-burst.js';

/** A window must touch more than this many distinct values of a dimension to be a fan-out... */
export const FAN_OUT_MIN_DISTINCT = 3;
/** ...and more than this multiple of the learned maximum per window. */
export const FAN_OUT_FACTOR = 2;

const BASELINE_KIND: Record<FanOutDimension, EntryKind> = { targets: 'target', accounts: 'targetAccount', peers: 'peer' };
const NOUN: Record<FanOutDimension, string> = { targets: 'targets', accounts: 'accounts', peers: 'peers' };

export function fanOutThreshold(samples: readonly number[]): number {
  const max = summarise(samples).max;
  return Math.max(FAN_OUT_MIN_DISTINCT, FAN_OUT_FACTOR * max);
}

/**
 * `fan-out`: in one event-time window an enforcing identity touches more distinct targets,
 * accounts or peers than its baseline ever did (enumeration). Medium when some of them are new to
 * it, low when they are all known.
 */
export function fanOut(ctx: DetectionContext): Finding | undefined {
  if (ctx.learning.status !== 'enforcing') return undefined;
  const b = ctx.baseline;
  // Made for the first window over its threshold only: most chains have none.
  let sentences: string[] | undefined;
  let keys: string[] | undefined;
  let evidence: Record<string, unknown> | undefined;
  let reach = false;
  let windowIndex: number | undefined;
  for (const dim of FAN_OUT_DIMENSIONS) {
    const samples = b.rate.samples[dim];
    if (samples.length < MIN_RATE_WINDOWS) continue;
    const threshold = fanOutThreshold(samples);
    const window = busiest(ctx.windows, dim);
    // The suppression asked last: its key is a string built per question.
    if (!window || window[dim].length <= threshold || ctx.suppressed('fan-out', `fan-out:${dim}`)) continue;
    const values = window[dim];
    const fresh = values.filter((v) => !has(b, BASELINE_KIND[dim], v));
    if (fresh.length) reach = true;
    (keys ??= []).push(`fan-out:${dim}`);
    windowIndex ??= window.index;
    const s = summarise(samples);
    (sentences ??= []).push(
      `Normally ${displayName(ctx)} touches at most ${s.max} distinct ${NOUN[dim]} per minute (mean ${s.mean.toFixed(1)} over ${s.windows} learned minutes); in the minute starting ${new Date(window.index * RATE_WINDOW_MS).toISOString()} it touched ${values.length}${values.length >= 256 ? ' or more' : ''}: ${values.slice(0, 8).map(q).join(', ')}${values.length > 8 ? ', ...' : ''}${fresh.length ? `, of which ${fresh.length} never seen before` : ''}.`,
    );
    (evidence ??= {})[dim] = { distinct: values.length, threshold, learnedMax: s.max, new: fresh.slice(0, 20) };
  }
  if (!keys || !sentences || !evidence) return undefined;
  const inWindow = ctx.calls.filter((c) => Math.floor(c.startMs / RATE_WINDOW_MS) === windowIndex);
  const offending = inWindow.length ? inWindow : [...ctx.calls];
  const sensitive = offending.some((c) => ctx.sensitive(c));
  return {
    detector: 'fan-out',
    keys,
    severity: reach ? 'medium' : 'low',
    reach,
    external: false,
    sensitive,
    title: `${displayName(ctx)} enumerated many ${keys.map((k) => k.slice('fan-out:'.length)).join(' and ')} at once`,
    explanation: sentences.join(' '),
    spanIds: unique(offending.slice(0, 20).map((c) => c.spanId)),
    eventMs: offending[0]!.startMs,
    techniques: techniquesForOperations(offending.map((c) => c.operation)),
    evidence,
  };
}
