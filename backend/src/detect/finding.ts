import type { Call, Chain } from '@conduct/processor';
import type { Baseline, LearningState, RateWindow } from '../learn/index.js';
import type { Detector, Severity } from '../alerts/model.js';
import type { PolicyConfig } from './settings.js';

/** What one detector found in one chain (at most one per detector and chain). */
export interface Finding {
  detector: Detector;
  /** What was found, e.g. `peer:s3.amazonaws.com`; repeats of the same keys are deduplicated. */
  keys: string[];
  severity: Severity;
  /** The chain reached something new: peers, operations, targets, accounts or sources. */
  reach: boolean;
  /** An external peer is involved. */
  external: boolean;
  /** A sensitive operation is involved. */
  sensitive: boolean;
  title: string;
  /** Plain sentences: the baseline evidence, then what this chain did instead. */
  explanation: string;
  /** Offending spans, the one to point at first. */
  spanIds: string[];
  /** Event time of the offending call. */
  eventMs: number;
  techniques: string[];
  evidence: Record<string, unknown>;
}

/** Everything a detector may look at for one chain. Detectors are pure functions of it. */
export interface DetectionContext {
  chain: Chain;
  /** The chain's analysed calls, in time order. */
  calls: readonly Call[];
  /** The identity's baseline before this chain. */
  baseline: Baseline;
  learning: LearningState;
  /** Rate windows this chain's calls were counted in (already including them). */
  windows: readonly RateWindow[];
  /** The identity's declared context, when a policy matches it. */
  policy?: PolicyConfig;
  /** Why a call is sensitive, or undefined. */
  sensitive(call: Call): string | undefined;
  /** True when an operator marked this finding expected. */
  suppressed(detector: Detector, key: string): boolean;
  /**
   * Set by `unusual-chain` when it scored the chain against `baseline` (chainSurprisalOf), with
   * the score in `surprisal`: detection learns the chain with that score instead of scoring it
   * again (detectors change no baseline). Absent until then.
   */
  scored?: boolean;
  surprisal?: number | undefined;
}

export type DetectorFn = (ctx: DetectionContext) => Finding | undefined;

/** A short name for the identity in titles. */
export function displayName(ctx: DetectionContext): string {
  return ctx.chain.displayName ?? ctx.baseline.displayName ?? ctx.chain.identity;
}

/** `a (12 calls), b (3 calls)`; `none` when empty. */
export function listWithCounts(items: readonly { key: string; count: number }[], unit = 'calls'): string {
  if (items.length === 0) return 'none';
  return items.map((i) => `${q(i.key)} (${i.count} ${i.count === 1 ? unit.replace(/s$/, '') : unit})`).join(', ');
}

/** Quotes untrusted text for an explanation (bounded, control characters removed). */
export function q(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return `"${clean.length > 120 ? `${clean.slice(0, 117)}...` : clean}"`;
}

export function unique<T>(items: Iterable<T>): T[] {
  return [...new Set(items)];
}
