import {
  DETECTORS,
  SEVERITY_RANK,
  traceLink,
  type Alert,
  type AlertFinding,
  type AttackTechnique,
  type Detector,
  type Severity,
} from '../alerts/model.js';
import { TECHNIQUES } from '../alerts/sinks/attack.js';
import type { ScoredFinding } from './score.js';

/**
 * Incidents: one alert per identity and trace, the findings of every detector that fired on it
 * grouped inside. Pure functions: detection.ts decides when an incident is new or a repeat and
 * stores it; this file builds and merges them.
 */

/** Findings one incident holds at most (a repeat adds the new ones until then). */
export const MAX_FINDINGS_PER_INCIDENT = 16;
/** Finding references remembered for repeat lookups (oldest forgotten first). */
export const MAX_RECENT_FINDINGS = 20_000;

const iso = (ms: number) => new Date(ms).toISOString();
const parseMs = (s: string) => Date.parse(s);

/** ATT&CK ids with their names and tactics, for those conduct has a name for. */
export function attackOf(ids: readonly string[]): AttackTechnique[] {
  const out: AttackTechnique[] = [];
  for (const id of ids) {
    const t = TECHNIQUES[id];
    if (t) out.push({ id, name: t.name, tactic: t.tactic.name });
  }
  return out;
}

/** The finding as an incident holds it. */
export function toAlertFinding(f: ScoredFinding): AlertFinding {
  return {
    detector: f.detector,
    severity: f.severity,
    score: f.score,
    title: f.title,
    explanation: f.explanation,
    spanIds: f.spanIds,
    techniques: f.techniques,
    attack: attackOf(f.techniques),
    keys: [...f.keys].sort(),
    evidence: f.evidence,
  };
}

const DETECTOR_ORDER = new Map<string, number>(DETECTORS.map((d, i) => [d, i]));

/** Worst first: severity, then score, then the detectors' own order (reach before volume). */
export function byWorst(a: AlertFinding, b: AlertFinding): number {
  return (
    SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] ||
    b.score - a.score ||
    (DETECTOR_ORDER.get(a.detector) ?? 99) - (DETECTOR_ORDER.get(b.detector) ?? 99)
  );
}

/** `identity \0 detector \0 key`: what a repeat of one finding key is recognised by. */
export function findingRef(identity: string, detector: string, key: string): string {
  return `${identity}\u0000${detector}\u0000${key}`;
}

/** Every finding key of the findings, as references. */
export function findingRefs(identity: string, findings: readonly { detector: string; keys: readonly string[] }[]): string[] {
  const out: string[] = [];
  for (const f of findings) for (const k of f.keys.length ? f.keys : ['']) out.push(findingRef(identity, f.detector, k));
  return out;
}

/** The stored dedup key of an incident: its identity and its findings' references, sorted. */
export function incidentDedupKey(identity: string, findings: readonly { detector: string; keys: readonly string[] }[]): string {
  return [identity, ...findingRefs('', findings).sort()].join('\u0001');
}

/**
 * The incident's severity: the worst finding's. Agreement between detectors shows in the score
 * (score.ts adds AGREEMENT_BONUS per other detector, and a high finding scoring CRITICAL_SCORE
 * becomes critical): a new peer, its new operation and the new transition to it are one event
 * seen three ways, not three pieces of evidence, so the count of detectors alone raises nothing.
 */
export function incidentSeverity(findings: readonly AlertFinding[]): Severity {
  let worst: Severity = 'info';
  for (const f of findings) if (SEVERITY_RANK[f.severity] > SEVERITY_RANK[worst]) worst = f.severity;
  return worst;
}

/** Sets the fields an incident derives from its findings (which it sorts worst first). */
function derive(alert: Alert): void {
  const findings = alert.findings.sort(byWorst);
  const lead = findings[0]!;
  const others = findings.slice(1);
  alert.detector = lead.detector;
  alert.detectors = [...new Set(findings.map((f) => f.detector))];
  const severity = incidentSeverity(findings);
  // Never lowered: a repeat or a verdict does not make an incident look less bad than it was.
  if (SEVERITY_RANK[severity] > SEVERITY_RANK[alert.severity] || alert.findings.length === 1) alert.severity = severity;
  alert.score = Math.max(alert.score, ...findings.map((f) => f.score));
  alert.title = others.length === 0 ? lead.title : `${lead.title} (and ${others.length} more finding${others.length === 1 ? '' : 's'}: ${[...new Set(others.map((f) => f.detector))].join(', ')})`;
  alert.explanation = [lead.explanation, ...others.map((f) => `Also (${f.detector}): ${f.title}. ${f.explanation}`)].join('\n\n');
  alert.spanIds = [...new Set(findings.flatMap((f) => f.spanIds))];
  alert.techniques = [...new Set(findings.flatMap((f) => f.techniques))];
  alert.attack = attackOf(alert.techniques);
  // Record ids of audit-log sources (detection.ts) stay with the incident across repeats.
  const auditIds = alert.evidence?.auditIds;
  alert.evidence = {
    ...lead.evidence,
    // After the lead finding's own (its calls only): the incident's cover every repeat.
    ...(auditIds ? { auditIds } : {}),
    keys: [...new Set(findings.flatMap((f) => f.keys))],
    agreeing: alert.detectors.slice(1),
  };
}

export interface IncidentInput {
  id: string;
  identity: string;
  identityKind: string;
  traceId: string;
  findings: readonly ScoredFinding[];
  traceUrl: string;
}

/** A new incident from one chain's findings (at least one). */
export function buildIncident(input: IncidentInput): Alert {
  const pairs = input.findings.map((f) => ({ f, a: toAlertFinding(f) })).sort((x, y) => byWorst(x.a, y.a));
  const findings = pairs.map((p) => p.a);
  const lead = findings[0]!;
  // The event time is the leading finding's offending call; first and last seen span them all.
  const eventMs = pairs[0]!.f.eventMs;
  const firstMs = Math.min(...input.findings.map((f) => f.eventMs));
  const lastMs = Math.max(...input.findings.map((f) => f.eventMs));
  const alert: Alert = {
    id: input.id,
    identity: input.identity,
    identityKind: input.identityKind,
    detector: lead.detector,
    detectors: [],
    findings,
    severity: lead.severity,
    score: 0,
    title: '',
    explanation: '',
    traceId: input.traceId,
    spanIds: [],
    eventTime: iso(eventMs),
    firstSeen: iso(firstMs),
    lastSeen: iso(lastMs),
    count: 1,
    status: 'open',
    techniques: [],
    links: { trace: traceLink(input.traceUrl, input.traceId, lead.spanIds[0] ?? '') },
  };
  derive(alert);
  return alert;
}

/**
 * Counts a repeat on an incident: raises `count`, widens first/last seen, and adds the findings it
 * does not hold yet (same detector and keys count as held), up to MAX_FINDINGS_PER_INCIDENT.
 * Severity and score only go up.
 */
export function countRepeat(alert: Alert, findings: readonly ScoredFinding[]): Alert {
  alert.count += 1;
  const eventMs = Math.min(...findings.map((f) => f.eventMs));
  const lastMs = Math.max(...findings.map((f) => f.eventMs));
  if (lastMs > parseMs(alert.lastSeen)) alert.lastSeen = iso(lastMs);
  if (eventMs < parseMs(alert.firstSeen)) alert.firstSeen = iso(eventMs);
  const held = new Set(findingRefs('', alert.findings));
  for (const f of findings) {
    const fresh = f.keys.filter((k) => !held.has(findingRef('', f.detector, k)));
    if (fresh.length === 0 && f.keys.length > 0) {
      // Held already: its severity and score may still rise.
      const same = alert.findings.find((x) => x.detector === f.detector && f.keys.every((k) => x.keys.includes(k)));
      if (same && SEVERITY_RANK[f.severity] > SEVERITY_RANK[same.severity]) same.severity = f.severity;
      if (same) same.score = Math.max(same.score, f.score);
      continue;
    }
    if (alert.findings.length >= MAX_FINDINGS_PER_INCIDENT) continue;
    alert.findings.push(toAlertFinding(f));
  }
  derive(alert);
  return alert;
}

/**
 * An alert as stored before incidents (one detector per alert) read as a one-finding incident;
 * incidents are returned as they are.
 */
export function asIncident(alert: Alert): Alert {
  if (Array.isArray(alert.findings) && Array.isArray(alert.detectors)) {
    // Migrated rows (store migration 041) have findings but no technique names yet.
    alert.attack ??= attackOf(alert.techniques ?? []);
    for (const f of alert.findings) f.attack ??= attackOf(f.techniques ?? []);
    return alert;
  }
  const keys = Array.isArray(alert.evidence?.keys) ? (alert.evidence.keys as string[]) : [];
  alert.detectors = [alert.detector];
  alert.findings = [
    {
      detector: alert.detector,
      severity: alert.severity,
      score: alert.score,
      title: alert.title,
      explanation: alert.explanation,
      spanIds: alert.spanIds,
      techniques: alert.techniques ?? [],
      attack: attackOf(alert.techniques ?? []),
      keys,
      ...(alert.evidence ? { evidence: alert.evidence } : {}),
    },
  ];
  alert.attack ??= attackOf(alert.techniques ?? []);
  return alert;
}

/**
 * The incidents recent findings were counted on, by finding reference: in memory, bounded
 * (MAX_RECENT_FINDINGS, oldest forgotten first). A chain whose findings all repeat findings of one
 * open incident within the dedup window counts on it. After a restart only exact repeats (the
 * stored dedup key) are recognised until the memory fills again.
 */
export class RecentFindings {
  private readonly seen = new Map<string, { alertId: string; lastMs: number }>();
  constructor(private readonly max = MAX_RECENT_FINDINGS) {}

  remember(alert: Alert): void {
    const lastMs = parseMs(alert.lastSeen);
    for (const ref of findingRefs(alert.identity, alert.findings)) {
      this.seen.delete(ref);
      this.seen.set(ref, { alertId: alert.id, lastMs });
    }
    while (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value!);
  }

  /** Forgets the references of an incident (marked expected: its findings no longer repeat it). */
  forget(alert: Alert): void {
    for (const ref of findingRefs(alert.identity, alert.findings)) {
      if (this.seen.get(ref)?.alertId === alert.id) this.seen.delete(ref);
    }
  }

  /**
   * The incident every finding at medium or above (or, with none, every finding) of a chain
   * repeats, seen within `windowMs` of `eventMs`; undefined when they point to none or to several.
   */
  incidentFor(identity: string, findings: readonly ScoredFinding[], eventMs: number, windowMs: number): string | undefined {
    const loud = findings.filter((f) => SEVERITY_RANK[f.severity] >= SEVERITY_RANK.medium);
    const judged = loud.length > 0 ? loud : findings;
    let id: string | undefined;
    for (const ref of findingRefs(identity, judged)) {
      const hit = this.seen.get(ref);
      if (!hit || Math.abs(eventMs - hit.lastMs) > windowMs) return undefined;
      if (id !== undefined && id !== hit.alertId) return undefined;
      id = hit.alertId;
    }
    return id;
  }

  get size(): number {
    return this.seen.size;
  }
}
