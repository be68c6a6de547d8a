import type { Call, Chain } from '@conduct/processor';
import { SEVERITY_RANK } from '../alerts/model.js';
import { q, unique } from './finding.js';
import { ALERT_FLOOD_KEY, ALERT_FLOOD_WINDOW_MS, FLOOD_MAX_SEVERITY, IDENTITY_FLOOD_KEY, type CardinalityLimits } from './limits.js';
import { CRITICAL_SCORE, type ScoredFinding } from './score.js';
import type { AlertRecorder } from './alert-recorder.js';

const iso = (ms: number) => new Date(ms).toISOString();

/** A chain's findings within its identity's alert budget, and the flood finding that folds the rest. */
export interface Budgeted {
  findings: ScoredFinding[];
  flood?: ScoredFinding;
}

/**
 * The per-identity alert budget (limits.maxAlertsPerIdentityPerHour), in memory per event-time
 * hour, bounded by the identities with a baseline.
 */
export interface AlertBudget {
  /**
   * Keeps an identity within its alert budget, counted in incidents. Only a chain that would raise
   * a new incident counts: a repeat only raises the incident's count. Incidents of medium or above
   * have the whole budget to themselves (`loud`); lower ones may use only what the two together
   * have left, so a stream of low incidents never swallows a reach-expansion one. Over budget, the
   * chain's findings fold into one flood finding whose severity is the worst it folds (at most
   * FLOOD_MAX_SEVERITY); `folded` counts them.
   */
  apply(chain: Chain, calls: readonly Call[], findings: ScoredFinding[]): Promise<Budgeted & { folded: number }>;
}

export function createAlertBudget(limits: CardinalityLimits, recorder: Pick<AlertRecorder, 'existing'>): AlertBudget {
  const budgets = new Map<string, { window: number; loud: number; quiet: number }>();
  return {
    async apply(chain, calls, findings) {
      if (findings.length === 0 || (await recorder.existing(chain, findings))) return { findings, folded: 0 };
      const window = Math.floor(calls[0]!.startMs / ALERT_FLOOD_WINDOW_MS);
      let budget = budgets.get(chain.identity);
      if (!budget || budget.window !== window) {
        budget = { window, loud: 0, quiet: 0 };
        budgets.set(chain.identity, budget);
      }
      const max = limits.maxAlertsPerIdentityPerHour;
      const worst = findings.reduce((w, f) => (SEVERITY_RANK[f.severity] > SEVERITY_RANK[w.severity] ? f : w));
      const loud = SEVERITY_RANK[worst.severity] >= SEVERITY_RANK.medium;
      if (loud ? budget.loud < max : budget.loud + budget.quiet < max) {
        if (loud) budget.loud++;
        else budget.quiet++;
        return { findings, folded: 0 };
      }
      return { findings: [], flood: alertFloodFinding(chain, findings, max, window), folded: findings.length };
    },
  };
}

/** The finding that folds an identity's findings over its alert budget. */
function alertFloodFinding(chain: Chain, folded: ScoredFinding[], max: number, window: number): ScoredFinding {
  const name = chain.displayName ?? chain.identity;
  const worst = folded.reduce((w, f) => (SEVERITY_RANK[f.severity] > SEVERITY_RANK[w.severity] ? f : w));
  const severity = SEVERITY_RANK[worst.severity] > SEVERITY_RANK[FLOOD_MAX_SEVERITY] ? FLOOD_MAX_SEVERITY : worst.severity;
  return {
    detector: 'fan-out',
    keys: [ALERT_FLOOD_KEY],
    severity,
    score: severity === worst.severity ? worst.score : Math.min(worst.score, CRITICAL_SCORE - 1),
    reach: folded.some((f) => f.reach),
    external: folded.some((f) => f.external),
    sensitive: folded.some((f) => f.sensitive),
    title: `${name} is flooding conduct with new findings (more than ${max} incidents in an hour)`,
    explanation: `Normally an identity raises a handful of alerts; ${q(name)} raised ${max} in the hour from ${iso(window * ALERT_FLOOD_WINDOW_MS)} (limits.maxAlertsPerIdentityPerHour), so further new findings are folded into this alert${SEVERITY_RANK[worst.severity] >= SEVERITY_RANK.medium ? ' and their chains are kept out of the baseline' : ''}. Its severity is the worst folded finding's. The latest folded finding: ${worst.title}. This alert's count is the number of folded chains.`,
    spanIds: worst.spanIds,
    eventMs: worst.eventMs,
    techniques: unique(folded.flatMap((f) => f.techniques)),
    evidence: { folded: folded.map((f) => ({ detector: f.detector, severity: f.severity, keys: f.keys.slice(0, 5) })) },
  };
}

/** The `fan-out` finding on FLOOD_IDENTITY that reports new identities refused by a cap; undefined for a chain without calls. */
export function identityFloodFinding(chain: Chain, calls: readonly Call[], full: boolean, limits: CardinalityLimits): ScoredFinding | undefined {
  const first = calls[0];
  if (!first) return undefined;
  const reason = full
    ? `conduct already keeps baselines for ${limits.maxIdentities} identities (limits.maxIdentities)`
    : `more than ${limits.maxNewIdentitiesPerMinute} new identities appeared in one minute of event time (limits.maxNewIdentitiesPerMinute)`;
  return {
    detector: 'fan-out',
    keys: [IDENTITY_FLOOD_KEY],
    severity: 'medium',
    score: 60,
    reach: true,
    external: false,
    sensitive: false,
    title: 'Identity flood: new identities are arriving faster than conduct admits them',
    explanation: `Normally identities appear a few at a time; ${reason}. New identities beyond the cap are not learned or analysed until the flood stops; established identities keep their baselines. The first refused identity was ${q(chain.identity)}; this alert's count is the number of refused chains.`,
    spanIds: [first.spanId],
    eventMs: first.startMs,
    techniques: [],
    evidence: { refusedIdentity: chain.identity.slice(0, 256), limit: full ? limits.maxIdentities : limits.maxNewIdentitiesPerMinute, cap: full ? 'maxIdentities' : 'maxNewIdentitiesPerMinute' },
  };
}
