import type { Call } from '@conduct/processor';
import type { Severity } from '../../alerts/model.js';
import { SEVERITY_RANK } from '../../alerts/model.js';
import { matchesAny } from '../identity-context.js';
import { displayName, q, unique, type DetectionContext, type Finding } from '../finding.js';
import {
  T_DATA_FROM_CLOUD_STORAGE,
  T_EXFILTRATION_OVER_WEB_SERVICE,
  T_LATERAL_MOVEMENT_CLOUD_SERVICES,
  T_VALID_CLOUD_ACCOUNTS,
  techniquesForOperation,
} from '../techniques.js';

interface Breach {
  key: string;
  call: Call;
  severity: Severity;
  sentence: string;
  techniques: string[];
}

/**
 * `policy`: the identity's declared context (its `policies` entry) is broken. Fires from the first
 * call, learning or not. A peer outside `expectedPeers` is medium (high when external); a target
 * or account outside `approvedTargets`, a region outside `allowedRegions` and an operation in
 * `deniedOperations` are high; a denied operation that is also sensitive is critical.
 */
export function policy(ctx: DetectionContext): Finding | undefined {
  const p = ctx.policy;
  if (!p) return undefined;
  const breaches: Breach[] = [];
  const add = (b: Breach) => {
    if (breaches.some((x) => x.key === b.key) || ctx.suppressed('policy', b.key)) return;
    breaches.push(b);
  };
  for (const call of ctx.calls) {
    if (p.expectedPeers && !matchesAny(call.peer, p.expectedPeers)) {
      add({
        key: `peer:${call.peer}`,
        call,
        severity: call.external ? 'high' : 'medium',
        sentence: `It called ${q(call.peer)} (${q(call.operation)}), which is not among its expected peers (${p.expectedPeers.map(q).join(', ') || 'none'}).`,
        techniques: call.external ? [T_EXFILTRATION_OVER_WEB_SERVICE] : call.peerKind === 'service' ? [T_LATERAL_MOVEMENT_CLOUD_SERVICES] : [],
      });
    }
    if (p.approvedTargets) {
      for (const value of [call.target, call.account]) {
        if (!value || matchesAny(value, p.approvedTargets)) continue;
        const ops = techniquesForOperation(call.operation);
        add({
          key: `target:${value}`,
          call,
          severity: 'high',
          sentence: `It touched ${q(value)} with ${q(call.operation)}, outside its approved data boundaries (${p.approvedTargets.map(q).join(', ') || 'none'}).`,
          techniques: ops.length ? ops : [T_DATA_FROM_CLOUD_STORAGE],
        });
      }
    }
    const region = call.source?.region;
    if (p.allowedRegions && region && !p.allowedRegions.includes(region)) {
      add({
        key: `region:${region}`,
        call,
        severity: 'high',
        sentence: `It acted from region ${q(region)}; its allowed regions are ${p.allowedRegions.map(q).join(', ') || 'none'}.`,
        techniques: [T_VALID_CLOUD_ACCOUNTS],
      });
    }
    if (matchesAny(call.operation, p.deniedOperations)) {
      add({
        key: `op:${call.operation}`,
        call,
        severity: ctx.sensitive(call) ? 'critical' : 'high',
        sentence: `It performed ${q(call.operation)} on ${q(call.peer)}, an operation its policy denies.`,
        techniques: techniquesForOperation(call.operation),
      });
    }
  }
  if (breaches.length === 0) return undefined;
  breaches.sort((a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || a.call.startMs - b.call.startMs);
  const purpose = p.purpose ? `${displayName(ctx)} is declared as: ${p.purpose.trim().replace(/\.?$/, '.')} ` : '';
  const top = breaches[0]!;
  return {
    detector: 'policy',
    keys: breaches.map((b) => b.key),
    severity: top.severity,
    reach: breaches.some((b) => !b.key.startsWith('op:')),
    external: breaches.some((b) => b.call.external && b.key.startsWith('peer:')),
    sensitive: breaches.some((b) => !!ctx.sensitive(b.call)),
    title: `${displayName(ctx)} broke its declared context: ${top.key.replace(':', ' ')}`,
    explanation: `${purpose}${breaches.map((b) => b.sentence).join(' ')}`,
    spanIds: unique(breaches.map((b) => b.call.spanId)),
    eventMs: Math.min(...breaches.map((b) => b.call.startMs)),
    techniques: unique(breaches.flatMap((b) => b.techniques)),
    evidence: { policy: p.match, breaches: breaches.map((b) => b.key) },
  };
}
