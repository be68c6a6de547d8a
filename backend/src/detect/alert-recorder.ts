import { createHash } from 'node:crypto';
import type { Chain } from '@conduct/processor';
import type { Alert } from '../alerts/model.js';
import type { AlertRecord, DetectionState, HeldChain } from '../store/index.js';
import { asIncident, buildIncident, countRepeat, incidentDedupKey, RecentFindings } from './incident.js';
import { ALERT_FLOOD_KEY, DEDUP_WINDOW_MS } from './limits.js';
import type { ScoredFinding } from './score.js';

const parseMs = (s: string) => Date.parse(s);

/** The dedup key an incident is stored with: identity and its findings' detectors and keys. */
export const dedupKeyOfAlert = (alert: Alert): string => incidentDedupKey(alert.identity, alert.findings);

/** One incident per identity and trace; the alert-flood incident has its own id beside it. */
export function incidentIdOf(chain: Chain, flood: boolean): string {
  const suffix = flood ? `\u0000${ALERT_FLOOD_KEY}` : '';
  return createHash('sha256').update(`${chain.identity}\u0000${chain.traceId}${suffix}`).digest('hex').slice(0, 32);
}

/** What recording a chain's findings did. */
export type Recorded = { alert: Alert; event: 'raised' | 'repeated' | 'repeated-quietly' };

/**
 * Turns a chain's findings into an incident (one alert per identity and trace, findings inside):
 * a new one, or a repeat counted on the open incident they repeat. What a batch raises, repeats
 * and holds out waits here until `take` hands it to the batch's checkpoint; lookups see those
 * unwritten alerts before the store's.
 */
export interface AlertRecorder {
  /**
   * The open incident a chain's findings repeat: the incident of the same identity and trace, else
   * the recent one holding every finding of medium or above (RecentFindings), else, after a
   * restart, one stored with exactly these findings within DEDUP_WINDOW_MS.
   */
  existing(chain: Chain, findings: readonly ScoredFinding[], flood?: boolean): Promise<Alert | undefined>;
  /** Raises a new incident for a chain's findings, or counts a repeat on the incident they repeat. */
  record(chain: Chain, findings: ScoredFinding[], flood?: boolean): Promise<Recorded>;
  /** Forgets an incident's findings as repeat targets (marked expected or superseded). */
  forget(alert: Alert): void;
  /** Keeps a chain out of the baseline until a verdict on `alert`. */
  hold(chain: Chain, alert: Alert): void;
  /** Chains held for `alertId` in this batch (not written yet). */
  heldOf(alertId: string): HeldChain[];
  /** Lets every held copy of an identity's chain of a trace go (it is learned, or no longer its own). */
  release(identity: string, traceId: string): void;
  /** Writes an alert changed outside `record` (superseded), with the key it was raised with. */
  save(alert: Alert): void;
  /** An alert, unwritten ones first. */
  get(id: string): Promise<Alert | undefined>;
  /** The alerts raised on an identity's chain of a trace, unwritten versions first. */
  alertsOfChain(traceId: string, identity: string): Promise<Alert[]>;
  /** Whether an identity's chain of a trace is held out (by any alert), counting what is not written yet. */
  isHeld(identity: string, traceId: string): Promise<boolean>;
  /** Takes what waits for the checkpoint. */
  take(): { alerts: AlertRecord[]; held: HeldChain[]; released: Array<{ identity: string; traceId: string }> };
}

export function createAlertRecorder(state: DetectionState, traceUrl: string): AlertRecorder {
  /** Alerts raised or changed since the last `take`, by id. */
  let unwritten = new Map<string, AlertRecord>();
  let held: HeldChain[] = [];
  let released: Array<{ identity: string; traceId: string }> = [];
  const sameChain = (identity: string, traceId: string) => (h: { identity: string; traceId: string }) => h.identity === identity && h.traceId === traceId;
  /** Which incident recent finding keys were counted on (repeats of a subset count there too). */
  const recent = new RecentFindings();

  const get = async (id: string): Promise<Alert | undefined> => {
    const own = unwritten.get(id)?.alert;
    if (own) return own;
    const stored = await state.getAlert(id);
    return stored && asIncident(stored);
  };

  /** The latest-seen open alert with the key and window, among the unwritten and the stored. */
  async function findRepeat(dedupKey: string, fromMs: number, toMs: number): Promise<Alert | undefined> {
    const stored = await state.findRepeat(dedupKey, fromMs, toMs);
    // An unwritten version of an alert supersedes the stored one.
    let best = stored && (unwritten.get(stored.id)?.alert ?? asIncident(stored));
    for (const r of unwritten.values()) {
      const a = r.alert;
      if (r.dedupKey !== dedupKey || a.status === 'expected' || a.status === 'superseded' || parseMs(a.lastSeen) < fromMs || parseMs(a.firstSeen) > toMs) continue;
      if (!best || parseMs(a.lastSeen) > parseMs(best.lastSeen)) best = a;
    }
    return best;
  }

  async function existing(chain: Chain, findings: readonly ScoredFinding[], flood = false): Promise<Alert | undefined> {
    const own = await get(incidentIdOf(chain, flood));
    if (own) return own;
    const eventMs = Math.min(...findings.map((f) => f.eventMs));
    const id = recent.incidentFor(chain.identity, findings, eventMs, DEDUP_WINDOW_MS);
    const hit = id === undefined ? undefined : await get(id);
    if (hit && hit.status !== 'expected' && hit.status !== 'superseded') return hit;
    return findRepeat(incidentDedupKey(chain.identity, findings), eventMs - DEDUP_WINDOW_MS, eventMs + DEDUP_WINDOW_MS);
  }

  const save = (alert: Alert) => unwritten.set(alert.id, { alert, dedupKey: dedupKeyOfAlert(alert) });

  return {
    existing,
    get,
    forget: (alert) => recent.forget(alert),
    async record(chain, findings, flood = false) {
      const found = await existing(chain, findings, flood);
      if (found && found.status !== 'superseded') {
        countRepeat(found, findings);
        noteReceived(found, chain);
        addAuditIds(found, chain, findings.flatMap((f) => f.spanIds));
        save(found);
        recent.remember(found);
        // A flood alert is announced again only at counts 2, 4, 8, ...: one alert, not thousands.
        const announce = !flood || (found.count & (found.count - 1)) === 0;
        return { alert: found, event: announce ? 'repeated' : 'repeated-quietly' };
      }
      // The incident of this identity and trace that a later part superseded is revised: the same id
      // now holds what the merged chain raised, and names what it replaces.
      const revises = found ? { keys: found.evidence?.keys, title: found.title } : undefined;
      const alert = buildIncident({
        id: incidentIdOf(chain, flood),
        identity: chain.identity,
        identityKind: chain.identityKind,
        traceId: chain.traceId,
        findings,
        traceUrl,
      });
      if (revises) alert.evidence = { ...alert.evidence, revises };
      noteReceived(alert, chain);
      addAuditIds(alert, chain, alert.spanIds);
      save(alert);
      recent.remember(alert);
      return { alert, event: 'raised' };
    },
    hold(chain, alert) {
      held.push({ identity: chain.identity, traceId: chain.traceId, alertId: alert.id, chain });
    },
    heldOf: (alertId) => held.filter((h) => h.alertId === alertId),
    release(identity, traceId) {
      // A checkpoint writes held chains before it deletes released ones: drop this batch's copies here.
      held = held.filter((h) => !sameChain(identity, traceId)(h));
      released.push({ identity, traceId });
    },
    save(alert) {
      save(alert);
    },
    async alertsOfChain(traceId, identity) {
      const stored = await state.alertsOfChain(traceId, identity);
      const out = stored.map((a) => unwritten.get(a.id)?.alert ?? asIncident(a));
      const ids = new Set(out.map((a) => a.id));
      for (const { alert: a } of unwritten.values()) {
        if (!ids.has(a.id) && a.identity === identity && a.traceId.toLowerCase() === traceId.toLowerCase()) out.push(a);
      }
      return out;
    },
    async isHeld(identity, traceId) {
      if (held.some(sameChain(identity, traceId))) return true;
      if (released.some(sameChain(identity, traceId))) return false;
      return state.isHeld(identity, traceId);
    },
    take() {
      const taken = { alerts: [...unwritten.values()], held, released };
      unwritten = new Map();
      held = [];
      released = [];
      return taken;
    },
  };
}

/** Audit record ids kept on one alert (the first ones: an analyst needs a few to find the records). */
export const MAX_ALERT_AUDIT_IDS = 20;

/**
 * Adds to `evidence.auditIds` of the incident and of each of its findings the audit record ids
 * (CloudTrail `eventID`, Kubernetes `auditID`) of the offending calls read from audit logs, so an
 * analyst can find the original records.
 */
function addAuditIds(alert: Alert, chain: Chain, spanIds: readonly string[]): void {
  const known = auditIdsIn(alert.evidence);
  const ids = auditIdsOf(chain, spanIds, known);
  if (ids.length > known.length) alert.evidence = { ...alert.evidence, auditIds: ids };
  // Each finding of the chain names the records of its own offending calls.
  for (const f of alert.findings ?? []) {
    const mine = auditIdsIn(f.evidence);
    const found = auditIdsOf(chain, f.spanIds, mine);
    if (found.length > mine.length) f.evidence = { ...f.evidence, auditIds: found };
  }
}

function auditIdsIn(evidence: Record<string, unknown> | undefined): string[] {
  return Array.isArray(evidence?.auditIds) ? (evidence.auditIds as string[]) : [];
}

/** `known` plus the audit record ids of the chain's calls among `spanIds`, at most MAX_ALERT_AUDIT_IDS. */
function auditIdsOf(chain: Chain, spanIds: readonly string[], known: readonly string[]): string[] {
  if (known.length >= MAX_ALERT_AUDIT_IDS) return [...known];
  const offending = new Set(spanIds);
  const ids = new Set(known);
  for (const call of chain.calls) {
    if (call.auditId === undefined || !offending.has(call.spanId)) continue;
    ids.add(call.auditId);
    if (ids.size >= MAX_ALERT_AUDIT_IDS) break;
  }
  return [...ids];
}

/** The alert's `receivedAt`: when conduct received the chain that raised or repeated it, if the chain says. */
function noteReceived(alert: Alert, chain: Chain): void {
  if (typeof chain.receivedMs === 'number' && Number.isFinite(chain.receivedMs)) alert.receivedAt = new Date(chain.receivedMs).toISOString();
}
