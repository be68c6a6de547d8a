import type { Chain } from '@conduct/processor';
import { SEVERITY_RANK, type Alert, type AlertFinding } from '../alerts/model.js';
import type { DetectionState } from '../store/index.js';
import type { Finding } from './finding.js';
import { MAX_RELEASE_HELD_CHAINS, MAX_RELEASES_HELD } from './limits.js';

/**
 * Held learning of releases: the chains whose findings were folded into a `release` finding are
 * kept out of the baseline (as held chains of the release's incident, so they are stored with the
 * checkpoint that records the incident) until the release's grace period ends in event time, then
 * learned, unless the release was judged `malicious` or turned into an attack during its grace
 * period (a later finding of medium or above on its version, or on an incident it held): then they
 * are never learned.
 *
 * The state of each release is written on its `release` finding (`evidence.learning`: `held` with
 * `until`, then `learned` or `withheld` with the reason), so a restart rebuilds the holds from the
 * stored incidents (`load`), and the chains themselves are the store's held chains.
 */

/** What a release's learning is: held until its grace ends, learned, or withheld for good. */
export type ReleaseLearningState = 'held' | 'learned' | 'withheld';

/** One release of one identity whose chains are held. */
export interface ReleaseHold {
  identity: string;
  /** The release finding's key, `release:[service, version]`. */
  key: string;
  /** Event time its grace period ends: its chains are learned with the first chain at or after it. */
  untilMs: number;
  /** Incidents holding its chains. */
  alertIds: Set<string>;
  /** Chains held (counted from the incidents' counts after a restart, so at most this many). */
  chains: number;
  /** Why it is never learned, once that is decided. */
  withheld?: string;
}

/** What to do with a chain whose findings became a release finding. */
export type HoldDecision = { hold: ReleaseHold; alert: Alert } | { learn: true } | { drop: true };

export interface ReleaseHoldStats {
  /** Releases whose chains are held now. */
  releasesHeld: number;
  /** Chains held for a release since start. */
  releaseChainsHeld: number;
  /** Held release chains learned after their grace period. */
  releaseChainsLearned: number;
  /** Releases whose held chains were withheld for good (malicious verdict or a later attack). */
  releasesWithheld: number;
  /** Chains of a release beyond MAX_RELEASE_HELD_CHAINS: neither held nor learned (the held ones teach the release). */
  releaseChainsDropped: number;
  /** Releases beyond MAX_RELEASES_HELD: their chains were learned at once, as without a hold. */
  releaseHoldsRefused: number;
}

const refOf = (identity: string, key: string) => `${identity}\u0000${key}`;

/** The release finding of an incident (the one with `key` when given). */
function releaseFindingOf(alert: Alert, key?: string): AlertFinding | undefined {
  return alert.findings.find((f) => f.detector === 'release' && (key === undefined || f.keys.includes(key)));
}

/** Writes a release's learning state on the incident's release finding (and on the incident's evidence when it leads). */
export function markLearning(alert: Alert, key: string, learning: { state: ReleaseLearningState; until?: string; reason?: string }): void {
  const f = releaseFindingOf(alert, key);
  if (!f) return;
  f.evidence = { ...f.evidence, learning };
  if (alert.evidence && alert.findings[0] === f) alert.evidence = { ...alert.evidence, learning };
}

export interface ReleaseHolds {
  /** Rebuilds the holds of the given identities from the stored release incidents. */
  load(state: DetectionState, owned: (identity: string) => boolean): Promise<void>;
  /** The earliest event time a hold is due (Infinity when none). */
  readonly nextDueMs: number;
  /** Decides for a chain whose release finding is on `alert` (an incident below medium). */
  admit(chain: Chain, alert: Alert, release: Finding): HoldDecision;
  /** The hold of an identity's release, if any. */
  get(identity: string, key: string): ReleaseHold | undefined;
  /** Holds due at `ms` (their grace over), taken out of the book. */
  takeDue(ms: number): ReleaseHold[];
  /**
   * Marks an identity's release withheld for good (its incidents are updated by the caller),
   * opening its hold when none is open yet so that its later chains are withheld too.
   */
  withhold(identity: string, key: string, untilMs: number, reason: string): ReleaseHold | undefined;
  /** Forgets an incident (an `expected` verdict learned its chains already). */
  dropAlert(identity: string, key: string, alertId: string): void;
  /** Counts chains learned after grace. */
  learned(n: number): void;
  stats(): ReleaseHoldStats;
}

export function createReleaseHolds(graceMs: number): ReleaseHolds {
  const holds = new Map<string, ReleaseHold>();
  let nextDueMs = Infinity;
  const counters = { releaseChainsHeld: 0, releaseChainsLearned: 0, releasesWithheld: 0, releaseChainsDropped: 0, releaseHoldsRefused: 0 };

  const recomputeDue = () => {
    nextDueMs = Infinity;
    for (const h of holds.values()) nextDueMs = Math.min(nextDueMs, h.untilMs);
  };

  function open(identity: string, key: string, untilMs: number): ReleaseHold | undefined {
    const ref = refOf(identity, key);
    const found = holds.get(ref);
    if (found) return found;
    if (holds.size >= MAX_RELEASES_HELD) return undefined;
    const hold: ReleaseHold = { identity, key, untilMs, alertIds: new Set(), chains: 0 };
    holds.set(ref, hold);
    nextDueMs = Math.min(nextDueMs, untilMs);
    return hold;
  }

  const untilOf = (f: { evidence?: Record<string, unknown> }) => Date.parse(String(f.evidence?.firstSeen)) + graceMs;

  return {
    async load(state, owned) {
      if (graceMs <= 0) return;
      const alerts = await state.listAlerts({ detector: 'release', limit: MAX_RELEASES_HELD * 4 });
      for (const alert of alerts) {
        if (!owned(alert.identity)) continue;
        for (const f of alert.findings ?? []) {
          const learning = f.evidence?.learning as { state?: string; reason?: string } | undefined;
          if (f.detector !== 'release' || !learning || learning.state === 'learned' || !f.keys[0]) continue;
          const until = untilOf(f);
          if (!Number.isFinite(until)) continue;
          const hold = open(alert.identity, f.keys[0], until);
          if (!hold) continue;
          hold.alertIds.add(alert.id);
          hold.chains += alert.count;
          if (learning.state === 'withheld') hold.withheld ??= learning.reason ?? 'withheld';
          else if (alert.status === 'malicious') hold.withheld ??= 'judged malicious';
          else if (SEVERITY_RANK[alert.severity] >= SEVERITY_RANK.medium) hold.withheld ??= 'its incident rose to medium or above';
        }
      }
    },
    get nextDueMs() {
      return nextDueMs;
    },
    admit(chain, alert, release) {
      const key = release.keys[0]!;
      const existing = holds.get(refOf(chain.identity, key));
      const hold = existing ?? open(chain.identity, key, untilOf(release));
      if (!hold) {
        counters.releaseHoldsRefused++;
        return { learn: true };
      }
      if (hold.chains >= MAX_RELEASE_HELD_CHAINS) {
        counters.releaseChainsDropped++;
        return { drop: true };
      }
      hold.alertIds.add(alert.id);
      hold.chains++;
      counters.releaseChainsHeld++;
      return { hold, alert };
    },
    get: (identity, key) => holds.get(refOf(identity, key)),
    takeDue(ms) {
      if (ms < nextDueMs) return [];
      const due: ReleaseHold[] = [];
      for (const [ref, h] of holds) {
        if (h.untilMs > ms) continue;
        due.push(h);
        holds.delete(ref);
      }
      recomputeDue();
      return due;
    },
    withhold(identity, key, untilMs, reason) {
      const hold = open(identity, key, untilMs);
      if (!hold) return undefined;
      if (hold.withheld === undefined) counters.releasesWithheld++;
      hold.withheld ??= reason;
      return hold;
    },
    dropAlert(identity, key, alertId) {
      holds.get(refOf(identity, key))?.alertIds.delete(alertId);
    },
    learned(n) {
      counters.releaseChainsLearned += n;
    },
    stats: () => ({ releasesHeld: holds.size, ...counters }),
  };
}
