/**
 * Call-rate and fan-out statistics per identity over event-time windows. Each window (bucket of
 * RATE_WINDOW_MS) counts calls and the distinct targets, accounts and peers; a window that is
 * OPEN_WINDOWS behind the newest one closes and, unless it held calls kept out of the baseline,
 * becomes one learned sample. Statistics are over active windows (windows with at least one call).
 */

/** Width of a rate window. */
export const RATE_WINDOW_MS = 60_000;
/** Windows kept open behind the newest for late calls; older calls are not counted for rates. */
export const OPEN_WINDOWS = 2;
/** Learned window samples kept per identity (the most recent ones). */
export const MAX_RATE_SAMPLES = 1_000;
/** Distinct values counted per window and dimension; beyond it the window just says "at least". */
export const MAX_DISTINCT_PER_WINDOW = 256;

export type FanOutDimension = 'targets' | 'accounts' | 'peers';
export const FAN_OUT_DIMENSIONS: readonly FanOutDimension[] = ['targets', 'accounts', 'peers'];

/** One open window. */
export interface RateWindow {
  /** Window index: floor(startMs / RATE_WINDOW_MS). */
  index: number;
  calls: number;
  targets: string[];
  accounts: string[];
  peers: string[];
  /** Held calls fell in this window: it is not learned when it closes. */
  tainted: boolean;
}

/** Learned samples of closed windows, oldest first (bounded ring kept as arrays). */
export interface RateSamples {
  calls: number[];
  targets: number[];
  accounts: number[];
  peers: number[];
}

export interface RateState {
  open: RateWindow[];
  samples: RateSamples;
  /** Calls too late to be counted in a window. */
  lateCalls: number;
}

export interface RateCall {
  startMs: number;
  peer: string;
  target?: string;
  account?: string;
}

export interface RateSummary {
  /** Learned windows. */
  windows: number;
  mean: number;
  stddev: number;
  p95: number;
  max: number;
}

export function createRateState(): RateState {
  return { open: [], samples: { calls: [], targets: [], accounts: [], peers: [] }, lateCalls: 0 };
}

function addDistinct(list: string[], value: string | undefined): void {
  if (value === undefined || value === '') return;
  if (list.length >= MAX_DISTINCT_PER_WINDOW || list.includes(value)) return;
  list.push(value);
}

function pushSample(list: number[], v: number): void {
  summaries.delete(list);
  list.push(v);
  if (list.length > MAX_RATE_SAMPLES) list.splice(0, list.length - MAX_RATE_SAMPLES);
}

/**
 * Counts calls into their windows and closes old windows into samples. Returns the indexes of the
 * windows these calls were counted in (late calls are not).
 */
export function observeCalls(state: RateState, calls: readonly RateCall[]): number[] {
  // A list, not a set: a chain's calls fall in one or two windows.
  let touched: number[] | undefined;
  for (const call of calls) {
    const index = Math.floor(call.startMs / RATE_WINDOW_MS);
    const newest = state.open.length ? state.open[state.open.length - 1]!.index : -Infinity;
    if (index < newest - OPEN_WINDOWS) {
      state.lateCalls++;
      continue;
    }
    let w = openWindow(state, index);
    if (!w) {
      w = { index, calls: 0, targets: [], accounts: [], peers: [], tainted: false };
      state.open.push(w);
      state.open.sort((a, b) => a.index - b.index);
    }
    w.calls++;
    addDistinct(w.targets, call.target);
    addDistinct(w.accounts, call.account);
    addDistinct(w.peers, call.peer);
    if (!touched) touched = [index];
    else if (!touched.includes(index)) touched.push(index);
    closeWindows(state);
  }
  if (!touched) return [];
  return touched.length > 1 ? touched.sort((a, b) => a - b) : touched;
}

function closeWindows(state: RateState): void {
  const newest = state.open[state.open.length - 1]?.index;
  if (newest === undefined) return;
  while (state.open.length && state.open[0]!.index < newest - OPEN_WINDOWS) {
    const w = state.open.shift()!;
    if (w.tainted) continue;
    pushSample(state.samples.calls, w.calls);
    pushSample(state.samples.targets, w.targets.length);
    pushSample(state.samples.accounts, w.accounts.length);
    pushSample(state.samples.peers, w.peers.length);
  }
}

/** Keeps the given windows out of the learned samples (they held alerted calls). */
export function taintWindows(state: RateState, indexes: readonly number[]): void {
  for (const w of state.open) if (indexes.includes(w.index)) w.tainted = true;
}

export function openWindow(state: RateState, index: number): RateWindow | undefined {
  for (const w of state.open) if (w.index === index) return w;
  return undefined;
}

/**
 * Summaries of sample lists, until the list gains a sample: `rate-burst` and `fan-out` ask at
 * every chain of an enforcing identity and a window closes once a minute, while a summary sorts a
 * copy of up to MAX_RATE_SAMPLES samples. Samples change only through `pushSample`.
 */
const summaries = new WeakMap<readonly number[], RateSummary>();

/** Mean, standard deviation, 95th percentile and maximum of a list of samples (shared: read only). */
export function summarise(samples: readonly number[]): RateSummary {
  let s = summaries.get(samples);
  if (!s) {
    s = Object.freeze(summary(samples));
    summaries.set(samples, s);
  }
  return s;
}

function summary(samples: readonly number[]): RateSummary {
  const n = samples.length;
  if (n === 0) return { windows: 0, mean: 0, stddev: 0, p95: 0, max: 0 };
  let sum = 0;
  for (const v of samples) sum += v;
  const mean = sum / n;
  let sq = 0;
  for (const v of samples) sq += (v - mean) ** 2;
  const sorted = [...samples].sort((a, b) => a - b);
  const p95 = sorted[Math.min(n - 1, Math.ceil(0.95 * n) - 1)]!;
  return { windows: n, mean, stddev: Math.sqrt(sq / n), p95, max: sorted[n - 1]! };
}
