import { RATE_WINDOW_MS, summarise, type FanOutDimension, type RateWindow } from '../../learn/index.js';
import { displayName, type DetectionContext, type Finding } from '../finding.js';
import { techniquesForOperations } from '../techniques.js';

/** Learned windows needed before rates are judged. */
export const MIN_RATE_WINDOWS = 5;
/** A window must hold more than this many calls to be a burst at all. */
export const MIN_BURST_CALLS = 30;
/** A burst exceeds this multiple of the learned 95th percentile of calls per window... */
export const BURST_FACTOR = 4;
/** ...and the learned mean by this many standard deviations. */
export const BURST_SIGMAS = 6;

/** Calls per window above which a window is a burst, given the learned samples. */
export function burstThreshold(samples: readonly number[]): number {
  const s = summarise(samples);
  return Math.max(MIN_BURST_CALLS, BURST_FACTOR * s.p95, s.mean + BURST_SIGMAS * s.stddev);
}

/**
 * `rate-burst`: an enforcing identity's calls in one event-time window exceed its learned rate by
 * a robust margin. Low on its own (bursty automation over known peers is not a compromise); the
 * scorer raises it to medium when the same chain also reaches something new.
 */
/**
 * The first of the windows with the most calls or distinct values of a dimension (what a stable
 * sort by it, largest first, puts first): asked at every chain of an enforcing identity, so no
 * copy of the list and no sort.
 */
export function busiest(windows: readonly RateWindow[], by: 'calls' | FanOutDimension): RateWindow | undefined {
  let best: RateWindow | undefined;
  let most = 0;
  for (const w of windows) {
    const n = by === 'calls' ? w.calls : w[by].length;
    if (best === undefined || n > most) {
      best = w;
      most = n;
    }
  }
  return best;
}

export function rateBurst(ctx: DetectionContext): Finding | undefined {
  if (ctx.learning.status !== 'enforcing') return undefined;
  const samples = ctx.baseline.rate.samples.calls;
  if (samples.length < MIN_RATE_WINDOWS || ctx.suppressed('rate-burst', 'rate')) return undefined;
  const threshold = burstThreshold(samples);
  const window = busiest(ctx.windows, 'calls');
  if (!window || window.calls <= threshold) return undefined;
  const s = summarise(samples);
  const startIso = new Date(window.index * RATE_WINDOW_MS).toISOString();
  const inWindow = ctx.calls.filter((c) => Math.floor(c.startMs / RATE_WINDOW_MS) === window.index);
  const ratio = s.p95 > 0 ? window.calls / s.p95 : window.calls;
  return {
    detector: 'rate-burst',
    keys: ['rate'],
    severity: 'low',
    reach: false,
    external: false,
    sensitive: false,
    title: `${displayName(ctx)} burst to ${window.calls} calls per minute`,
    explanation:
      `Normally ${displayName(ctx)} makes about ${s.mean.toFixed(1)} calls per active minute (95th percentile ${s.p95}, highest ${s.max}, over ${s.windows} learned minutes). ` +
      `In the minute starting ${startIso} it made ${window.calls} calls, ${ratio.toFixed(1)} times its usual 95th percentile and above the burst threshold of ${Math.ceil(threshold)}.`,
    spanIds: inWindow.length ? inWindow.slice(0, 20).map((c) => c.spanId) : [ctx.calls[0]!.spanId],
    eventMs: (inWindow[0] ?? ctx.calls[0]!).startMs,
    // Volume is no technique by itself; a burst of discovery or collection calls is that technique.
    techniques: techniquesForOperations((inWindow.length ? inWindow : ctx.calls).map((c) => c.operation)),
    evidence: { windowStart: startIso, calls: window.calls, threshold, usual: s },
  };
}
