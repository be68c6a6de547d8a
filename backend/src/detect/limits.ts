/**
 * Detection's own settings and their defaults: learning (config `learning`) and the cardinality
 * caps (config `limits`). The config schema's pieces for them (settings.ts) take their defaults from here.
 */
import type { Severity } from '../alerts/model.js';

/** A repeat of the same finding within this much event time updates the alert instead of adding one. */
export const DEDUP_WINDOW_MS = 60 * 60_000;
/** Identities whose baselines are kept; chains of further new identities are not analysed (counted). */
export const MAX_IDENTITIES = 100_000;
/** Default of {@link CardinalityLimits.maxNewIdentitiesPerMinute}. */
export const DEFAULT_MAX_NEW_IDENTITIES_PER_MINUTE = 1_000;
/** Default of {@link CardinalityLimits.maxAlertsPerIdentityPerHour}. */
export const DEFAULT_MAX_ALERTS_PER_IDENTITY_PER_HOUR = 50;
/** Event-time window of the new-identity budget. */
export const IDENTITY_FLOOD_WINDOW_MS = 60_000;
/** Event-time window of the per-identity alert budget. */
export const ALERT_FLOOD_WINDOW_MS = 60 * 60_000;
/** The synthetic identity that identity-flood alerts are raised on. */
export const FLOOD_IDENTITY = 'conduct:ingest';
/** Finding keys of the two flood alerts (both `fan-out`). */
export const IDENTITY_FLOOD_KEY = 'flood:identities';
export const ALERT_FLOOD_KEY = 'flood:findings';
/** Highest severity of an alert-flood alert: it reports volume, so it never pages as critical. */
export const FLOOD_MAX_SEVERITY: Severity = 'high';
/** Most alerts one list query returns. */
export const MAX_ALERTS_PER_QUERY = 1_000;
export const DEFAULT_ALERTS_PER_QUERY = 100;
/** Held chains of an identity read for the alert-only parts of its graph. */
export const MAX_HELD_CHAINS_IN_GRAPH = 200;

/** `detection.humans`: `low` (default): novelty findings on people at most low; `alert`: as for machines; `ignore`: none. */
export const HUMANS_MODES = ['low', 'alert', 'ignore'] as const;
export type HumansMode = (typeof HUMANS_MODES)[number];
export const DEFAULT_HUMANS_MODE: HumansMode = 'low';

/** `detection.releaseGrace`: how long after a new `service.version` is first seen its new internal behaviour counts as its release. */
export const DEFAULT_RELEASE_GRACE_MS = 6 * 3_600_000;
/** Releases whose chains are held until their grace period ends, at most; chains of further releases are learned at once (counted). */
export const MAX_RELEASES_HELD = 1_000;
/** Chains held for one release, at most; further chains of it are neither held nor learned (counted): the held ones teach the release. */
export const MAX_RELEASE_HELD_CHAINS = 200;

/** Learning settings as the config gives them (`learning.*`, durations in ms). */
export interface LearningConfig {
  /** Calls an identity needs before it enforces. Default 100. */
  minCalls: number;
  /** Event time (ms) an identity needs before it enforces. Default 24h. */
  period: number;
  /** Baseline entries unseen for this long (ms) age out. Default 30d. */
  forgetAfter: number;
}

/**
 * Caps that keep a cardinality attack (a flood of distinct identities, operations or peers) from
 * growing memory or the alert list without bound (config `limits`). Established baselines are
 * never evicted to make room: what does not fit is refused and counted.
 */
export interface CardinalityLimits {
  /** Identities with a baseline, at most; chains of further new identities are not analysed. Default MAX_IDENTITIES. */
  maxIdentities: number;
  /**
   * New identities given a baseline per minute of event time, at most. Beyond it, further new
   * identities of that minute are refused and one `fan-out` alert on `conduct:ingest` reports the
   * flood (repeats raise its count). Default DEFAULT_MAX_NEW_IDENTITIES_PER_MINUTE.
   */
  maxNewIdentitiesPerMinute: number;
  /**
   * New alerts one identity may raise per hour of event time. Repeats of an open alert (counted on
   * it) do not count. Findings of medium or above may use the whole budget; findings below medium
   * only what is left of it, so low findings never crowd out a reach-expansion finding. Beyond it,
   * that identity's further new findings fold into one `fan-out` flood alert whose severity is the
   * worst folded one (at most FLOOD_MAX_SEVERITY); chains folded at medium or above are held out of
   * the baseline. Default DEFAULT_MAX_ALERTS_PER_IDENTITY_PER_HOUR.
   */
  maxAlertsPerIdentityPerHour: number;
}

/** Defaults of `learning.*`: 100 calls and a day of event time before enforcing; entries unseen for 30 days age out. */
export const DEFAULT_LEARNING: LearningConfig = {
  minCalls: 100,
  period: 24 * 60 * 60_000,
  forgetAfter: 30 * 24 * 60 * 60_000,
};

export const DEFAULT_CARDINALITY_LIMITS: CardinalityLimits = {
  maxIdentities: MAX_IDENTITIES,
  maxNewIdentitiesPerMinute: DEFAULT_MAX_NEW_IDENTITIES_PER_MINUTE,
  maxAlertsPerIdentityPerHour: DEFAULT_MAX_ALERTS_PER_IDENTITY_PER_HOUR,
};
