import { isNonHumanIdentity } from '../learn/index.js';
import { SEVERITY_RANK } from '../alerts/model.js';
import { BURST_ONLY_MAX_SCORE, type ScoredFinding } from './score.js';
import type { HumansMode } from './limits.js';

/**
 * People among the identities. conduct watches non-human identities; a person's work (an IAM
 * user running Terraform, an SSO session in the console, an end user of an application) is novel
 * by nature, so novelty findings on people stay low by default (config `detection.humans`).
 */

export { DEFAULT_HUMANS_MODE, HUMANS_MODES, type HumansMode } from './limits.js';

/** Detectors that judge people as they judge machines: a stolen credential and a declared rule. */
const ALWAYS_JUDGED = new Set(['credential-reuse', 'policy']);

/** Ids of people: IAM users, AWS SSO sessions, e-mail addresses (not service accounts). */
const HUMAN_ID = [/:user\//i, /:assumed-role\/AWSReservedSSO_/i, /^[^@\s/:]+@[^@\s/]+\.[^@\s/]+$/];
/** Platform users that are machines (Kubernetes nodes, controllers, the API server's own users). */
const PLATFORM_ID = /^system:/i;

/**
 * True when the identity is a person: a `principal` (enduser.id, user.id, a cloud principal) that
 * names no role, service account or workload, or any identity whose id names an IAM user, an SSO
 * session or an e-mail address.
 */
export function isHumanIdentity(identity: string, kind: string): boolean {
  if (isNonHumanIdentity(identity, kind) || PLATFORM_ID.test(identity)) return false;
  return kind === 'principal' || HUMAN_ID.some((re) => re.test(identity));
}

/**
 * The findings as `detection.humans` wants them for a person: novelty findings capped at low
 * (score at most BURST_ONLY_MAX_SCORE) or dropped; credential-reuse and policy unchanged.
 */
export function forHumans(findings: ScoredFinding[], mode: HumansMode): ScoredFinding[] {
  if (mode === 'alert') return findings;
  const out: ScoredFinding[] = [];
  for (const f of findings) {
    if (ALWAYS_JUDGED.has(f.detector)) out.push(f);
    else if (mode === 'low') {
      const capped = SEVERITY_RANK[f.severity] > SEVERITY_RANK.low;
      out.push({
        ...f,
        severity: capped ? 'low' : f.severity,
        score: Math.min(f.score, BURST_ONLY_MAX_SCORE),
        explanation: `${f.explanation} ${capped ? `This is a person's identity, so the finding is kept at low (detection.humans: low; it would have been ${f.severity}).` : ''}`.trim(),
      });
    }
  }
  return out;
}
