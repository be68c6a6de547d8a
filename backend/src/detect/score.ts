import { SEVERITY_RANK, type Severity } from '../alerts/model.js';
import type { Finding } from './finding.js';

/** Score a finding starts from, by severity. */
export const SEVERITY_BASE_SCORE: Record<Severity, number> = { info: 10, low: 30, medium: 55, high: 75, critical: 90 };
/** Added when an external peer is involved. */
export const EXTERNAL_BONUS = 8;
/** Added when a sensitive operation is involved. */
export const SENSITIVE_BONUS = 8;
/** Added for each other detector that fired on the same chain... */
export const AGREEMENT_BONUS = 7;
/** ...up to this much. */
export const MAX_AGREEMENT_BONUS = 21;
/** Added when the identity was marked compromised by a `malicious` verdict. */
export const COMPROMISED_BONUS = 10;
/** Highest score of a burst or fan-out over known peers, operations and sources (severity `low`). */
export const BURST_ONLY_MAX_SCORE = 39;
/** A high finding scoring at least this is raised to critical. */
export const CRITICAL_SCORE = 95;

export interface ScoredFinding extends Finding {
  score: number;
}

/**
 * Final severity and score of a chain's findings. Reach expansion (new peers, operations, targets,
 * accounts, sources) outranks volume: a rate burst or fan-out over only known things stays `low`,
 * a burst in a chain that also reached something new is `medium`. Several detectors agreeing,
 * external peers and sensitive operations raise the score.
 */
export function scoreFindings(findings: readonly Finding[], compromised = false): ScoredFinding[] {
  const chainReach = findings.some((f) => f.reach && f.detector !== 'rate-burst');
  const external = findings.some((f) => f.external);
  const others = Math.min(MAX_AGREEMENT_BONUS, AGREEMENT_BONUS * (findings.length - 1));
  return findings.map((f) => {
    let severity = f.severity;
    const volumeOnly = f.detector === 'rate-burst' || f.detector === 'fan-out';
    if (f.detector === 'rate-burst') severity = chainReach ? 'medium' : 'low';
    let score =
      SEVERITY_BASE_SCORE[severity] +
      (f.external || (external && volumeOnly) ? EXTERNAL_BONUS : 0) +
      (f.sensitive ? SENSITIVE_BONUS : 0) +
      others +
      (compromised ? COMPROMISED_BONUS : 0);
    if (volumeOnly && !chainReach) {
      if (SEVERITY_RANK[severity] > SEVERITY_RANK.low) severity = 'low';
      score = Math.min(score, BURST_ONLY_MAX_SCORE);
    }
    score = Math.max(0, Math.min(100, Math.round(score)));
    if (severity === 'high' && score >= CRITICAL_SCORE) severity = 'critical';
    return { ...f, severity, score };
  });
}
