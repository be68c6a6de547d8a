import { createHash } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { Call, Chain, Logger } from '@conduct/processor';
import { silentLogger } from '@conduct/processor';
import {
  SEVERITY_RANK,
  type Alert,
  type AlertStatus,
  type Detector,
  type Severity,
  type Verdict,
} from '../alerts/model.js';
import type { PolicyConfig } from '../config/index.js';
import {
  ENTRY_KINDS,
  RATE_WINDOW_MS,
  chainCalls,
  createBaseline,
  forget,
  learnChain,
  learningState,
  observeCalls,
  unlearnChain,
  openWindow,
  taintWindows,
  type Baseline,
  type EntryKind,
  type LearningOptions,
  type LearningState,
  type RateState,
  type RateWindow,
} from '../learn/index.js';
import { ALL_DETECTORS, CREDENTIAL_REUSE_WINDOW_MS, rememberSources } from './detectors/index.js';
import { q, unique, type DetectionContext, type Finding } from './finding.js';
import { policyFor, sensitiveReason } from './identity-context.js';
import { applyDetectionSchema } from '../store/sqlite/detection-state.js';
import { alertListSql } from '../store/sqlite/alert-query.js';
import { DEFAULT_HUMANS_MODE, forHumans, isHumanIdentity, type HumansMode } from './humans.js';
import { asIncident, buildIncident, countRepeat, findingRef, incidentDedupKey, RecentFindings } from './incident.js';
import { CRITICAL_SCORE, scoreFindings, type ScoredFinding } from './score.js';
import { baselineSummary, identityGraph, type BaselineSummary, type IdentityGraph } from './summary.js';

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

export const DEFAULT_CARDINALITY_LIMITS: CardinalityLimits = {
  maxIdentities: MAX_IDENTITIES,
  maxNewIdentitiesPerMinute: DEFAULT_MAX_NEW_IDENTITIES_PER_MINUTE,
  maxAlertsPerIdentityPerHour: DEFAULT_MAX_ALERTS_PER_IDENTITY_PER_HOUR,
};

export interface DetectionOptions {
  /** Open database; the detection tables are created when missing. */
  db: Database;
  learning: LearningConfig;
  /** Identity context (`policies`), first match wins. */
  policies?: readonly PolicyConfig[];
  /** `alerts.traceUrl` template for `links.trace`. */
  traceUrl: string;
  /** Novelty findings on people (`detection.humans`): `low` (default), `alert` or `ignore`. */
  humans?: HumansMode;
  logger?: Logger;
  /** Cardinality caps (config `limits`); each absent field takes its default. */
  limits?: Partial<CardinalityLimits>;
  /**
   * Learned baseline state is written to the database at most this often (ms of wall time); 0
   * (the default) writes it at the end of every `analyse`. Above 0, call `flush` before the
   * database is closed or read (see {@link Detection.flush}).
   */
  persistIntervalMs?: number;
}

/** What one `analyse` call produced. */
export interface AnalyseResult {
  /** Alerts raised now (emit these). */
  alerts: Alert[];
  /** Existing alerts whose count and lastSeen a repeat increased. */
  updated: Alert[];
  /** Alerts a later part of their trace superseded (status `superseded`; emit these as a status change). */
  superseded: Alert[];
  /** Chains kept out of the baseline because they raised an alert of medium or above. */
  held: number;
  /** Chains learned. */
  learned: number;
}

export interface AlertFilter {
  identity?: string;
  detector?: string;
  status?: string;
  /** Only alerts last seen at or after this (ms since the epoch, event time). */
  sinceMs?: number;
  /** Only alerts first seen before this (ms since the epoch, event time). */
  untilMs?: number;
  traceId?: string;
  severities?: readonly string[];
  /** Free text in the alert's ids, detector, title, explanation or findings. */
  text?: string;
  sort?: 'time' | 'score' | 'severity';
  /** Default DEFAULT_ALERTS_PER_QUERY, at most MAX_ALERTS_PER_QUERY. */
  limit?: number;
}

/** An identity's learning state as the API shows it. */
export interface IdentityDetection {
  identity: string;
  kind: string;
  status: LearningState['status'];
  /** 0..1 towards enforcing. */
  progress: number;
  /** Calls learned. */
  calls: number;
  /** Event time covered by learned calls, ms. */
  observedMs: number;
  enforcingSince?: string;
  /** A `malicious` verdict was given on one of its alerts. */
  compromised: boolean;
}

export interface DetectionStats {
  identities: number;
  alertsRaised: number;
  alertsUpdated: number;
  chainsHeld: number;
  chainsLearned: number;
  /** Chains of new identities refused because `maxIdentities` or the new-identity budget was reached. */
  identitiesRefused: number;
  /** Findings folded into a flood alert because their identity was over its alert budget. */
  findingsFolded: number;
  /** Detector failures (bugs or unexpected input), logged and counted, never fatal. */
  detectorErrors: number;
  /** Alerts a later part of their trace superseded. */
  alertsSuperseded: number;
}

/**
 * What a later part of a trace changed in one identity's chain of it (engine/late.ts merges it).
 */
export interface LateChange {
  /** The identity's chain of the trace as it is now; undefined when the part took all its calls. */
  after: Chain | undefined;
  /** Its chain as it was stored before the part. */
  before: Chain | undefined;
  /** Span ids of the calls the part added or changed (new findings must concern one of them). */
  changed: ReadonlySet<string>;
  /** Span ids of the stored calls the part replaced. */
  replaced: ReadonlySet<string>;
}

export interface Detection {
  /** Analyses chains in event-time order: detects, raises or updates alerts, learns or holds out. */
  analyse(chains: readonly Chain[]): AnalyseResult;
  /**
   * Analyses what later parts of traces changed, identity by identity: the chain as stored before
   * is taken back out of the baseline (when it was learned), the merged chain is analysed, and
   * only findings that concern a changed call raise or repeat alerts; an alert the earlier chain
   * raised whose findings the merged chain no longer shows, because they concerned a call the
   * part replaced, is superseded (see README, "Late parts of a trace").
   */
  analyseLate(changes: readonly LateChange[]): AnalyseResult;
  listAlerts(filter?: AlertFilter): Alert[];
  getAlert(id: string): Alert | undefined;
  /** Records an operator verdict; undefined when the alert is unknown. */
  feedback(id: string, verdict: Verdict): Alert | undefined;
  identity(id: string): IdentityDetection | undefined;
  baseline(id: string): BaselineSummary | undefined;
  graph(id: string): IdentityGraph | undefined;
  stats(): DetectionStats;
  /**
   * Writes the learned baseline state that `persistIntervalMs` still holds back (alerts and held
   * chains are always written at once). Call it before closing the database and before anything
   * reads the baseline tables with SQL; a no-op when nothing is held back.
   */
  flush(): void;
}

interface IdentityRow {
  identity: string;
  kind: string;
  display_name: string | null;
  first_ms: number;
  last_ms: number;
  calls: number;
  enforcing_since_ms: number | null;
  compromised: number;
  dropped: number;
  last_sweep_ms: number;
  rate: string;
  recent_sources: string;
}

interface EntryRow {
  identity: string;
  kind: string;
  key: string;
  count: number;
  first_ms: number;
  last_ms: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The object without its undefined fields (so they do not override defaults). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
const parseMs = (s: string) => Date.parse(s);

/** The calls by start time (a stable sort); the same array when they already are in that order. */
function inTimeOrder(calls: Call[]): Call[] {
  for (let i = 1; i < calls.length; i++) {
    if (calls[i]!.startMs < calls[i - 1]!.startMs) return [...calls].sort((x, y) => x.startMs - y.startMs);
  }
  return calls;
}

/** Creates the learning and detection service over one database. */
export function createDetection(options: DetectionOptions): Detection {
  const { db } = options;
  const logger = options.logger ?? silentLogger;
  const policies = options.policies ?? [];
  const humansMode = options.humans ?? DEFAULT_HUMANS_MODE;
  const opts: LearningOptions = {
    minCalls: options.learning.minCalls,
    periodMs: options.learning.period,
    forgetAfterMs: options.learning.forgetAfter,
  };
  const limits: CardinalityLimits = { ...DEFAULT_CARDINALITY_LIMITS, ...definedOnly(options.limits ?? {}) };
  applyDetectionSchema(db);

  // Baseline rows are written whole (every column but the key), and their tables have no other
  // index or trigger: replacing a row is the same as updating it, and cheaper than an upsert.
  const stmt = {
    upsertIdentity: db.prepare(`INSERT OR REPLACE INTO baseline_identities
      (identity, kind, display_name, first_ms, last_ms, calls, enforcing_since_ms, compromised, dropped, last_sweep_ms, rate, recent_sources)
      VALUES (@identity, @kind, @display_name, @first_ms, @last_ms, @calls, @enforcing_since_ms, @compromised, @dropped, @last_sweep_ms, @rate, @recent_sources)`),
    upsertEntry: db.prepare(`INSERT OR REPLACE INTO baseline_entries (identity, kind, key, count, first_ms, last_ms)
      VALUES (?, ?, ?, ?, ?, ?)`),
    deleteEntry: db.prepare('DELETE FROM baseline_entries WHERE identity = ? AND kind = ? AND key = ?'),
    insertAlert: db.prepare(`INSERT INTO alerts (id, identity, detector, severity, status, trace_id, event_ms, last_seen_ms, dedup_key, body)
      VALUES (@id, @identity, @detector, @severity, @status, @trace_id, @event_ms, @last_seen_ms, @dedup_key, @body)
      ON CONFLICT (id) DO UPDATE SET severity = excluded.severity, status = excluded.status,
        last_seen_ms = excluded.last_seen_ms, body = excluded.body`),
    getAlert: db.prepare('SELECT body FROM alerts WHERE id = ?'),
    alertsOfChain: db.prepare('SELECT body FROM alerts WHERE trace_id = ? AND identity = ?'),
    isHeld: db.prepare('SELECT 1 FROM held_chains WHERE identity = ? AND trace_id = ? LIMIT 1').pluck(),
    findRepeat: db.prepare(`SELECT body FROM alerts WHERE dedup_key = ? AND last_seen_ms >= ? AND event_ms <= ?
      AND status NOT IN ('expected', 'superseded') ORDER BY last_seen_ms DESC LIMIT 1`),
    hold: db.prepare(`INSERT OR REPLACE INTO held_chains (identity, trace_id, alert_id, start_ms, chain) VALUES (?, ?, ?, ?, ?)`),
    heldByAlert: db.prepare('SELECT identity, trace_id, chain FROM held_chains WHERE alert_id = ?'),
    // A chain is held once per alert it raised: count it once on the graph.
    heldByIdentity: db.prepare(`SELECT h.chain, max(h.start_ms) AS start_ms FROM held_chains h JOIN alerts a ON a.id = h.alert_id
      WHERE h.identity = ? AND a.status <> 'expected' GROUP BY h.trace_id, h.chain ORDER BY start_ms DESC LIMIT ?`),
    release: db.prepare('DELETE FROM held_chains WHERE identity = ? AND trace_id = ?'),
    suppress: db.prepare('INSERT OR IGNORE INTO finding_suppressions (identity, detector, key, alert_id) VALUES (?, ?, ?, ?)'),
  };

  const baselines = new Map<string, Baseline>();
  const suppressions = new Set<string>();
  /** Which incident recent finding keys were counted on (repeats of a subset count there too). */
  const recent = new RecentFindings();
  const stats: DetectionStats = {
    identities: 0,
    alertsRaised: 0,
    alertsUpdated: 0,
    chainsHeld: 0,
    chainsLearned: 0,
    identitiesRefused: 0,
    findingsFolded: 0,
    detectorErrors: 0,
    alertsSuperseded: 0,
  };
  /** New identities admitted in the current event-time minute. */
  const newIdentities = { window: -1, admitted: 0 };
  /** Alerts raised per identity in its current event-time hour (in memory; bounded by the baselines). */
  const alertBudget = new Map<string, { window: number; loud: number; quiet: number }>();
  /**
   * Baselines changed since they were last written. Each write replaces the identity's row (its
   * rate state as JSON) and every changed entry, so with `persistIntervalMs` an identity active in
   * every batch is written once per interval instead of once per batch. A crash loses the learning
   * of at most the last interval: the journal replays only requests whose chains were not stored,
   * and stored chains are never learned again.
   */
  const unwritten = new Set<Baseline>();
  const persistIntervalMs = Math.max(0, options.persistIntervalMs ?? 0);
  /** performance.now() of the last write (monotonic: a wall clock step does not stall writes). */
  let writtenAt = -Infinity;
  /** Writes what is held back once the interval is over, also when no further batch comes. */
  let writeTimer: ReturnType<typeof setTimeout> | undefined;

  // Load the persisted state.
  for (const row of db.prepare('SELECT * FROM baseline_identities').iterate() as Iterable<IdentityRow>) {
    const b = createBaseline(row.identity, row.kind, row.display_name ?? undefined);
    b.firstMs = row.first_ms;
    b.lastMs = row.last_ms;
    b.calls = row.calls;
    if (row.enforcing_since_ms !== null) b.enforcingSinceMs = row.enforcing_since_ms;
    b.compromised = row.compromised === 1;
    b.dropped = row.dropped;
    b.lastSweepMs = row.last_sweep_ms;
    b.rate = JSON.parse(row.rate) as RateState;
    b.recentSources = JSON.parse(row.recent_sources) as Baseline['recentSources'];
    baselines.set(b.identity, b);
  }
  const kinds = new Set<string>(ENTRY_KINDS);
  for (const row of db.prepare('SELECT * FROM baseline_entries').iterate() as Iterable<EntryRow>) {
    const b = baselines.get(row.identity);
    if (!b || !kinds.has(row.kind)) continue;
    b.entries[row.kind as EntryKind].set(row.key, { count: row.count, firstMs: row.first_ms, lastMs: row.last_ms, dirty: false });
  }
  for (const row of db.prepare('SELECT identity, detector, key FROM finding_suppressions').iterate() as Iterable<{
    identity: string;
    detector: string;
    key: string;
  }>) {
    suppressions.add(findingRef(row.identity, row.detector, row.key));
  }
  stats.identities = baselines.size;
  logger.info({ identities: baselines.size, suppressions: suppressions.size }, 'detection state loaded');


  function persistBaseline(b: Baseline): void {
    stmt.upsertIdentity.run({
      identity: b.identity,
      kind: b.identityKind,
      display_name: b.displayName ?? null,
      first_ms: b.firstMs,
      last_ms: b.lastMs,
      calls: b.calls,
      enforcing_since_ms: b.enforcingSinceMs ?? null,
      compromised: b.compromised ? 1 : 0,
      dropped: b.dropped,
      last_sweep_ms: b.lastSweepMs,
      rate: JSON.stringify(b.rate),
      recent_sources: JSON.stringify(b.recentSources),
    });
    for (const kind of ENTRY_KINDS) {
      const dirty = b.dirty[kind];
      const removed = b.removed[kind];
      if (dirty.size > 0) {
        const map = b.entries[kind];
        for (const key of dirty) {
          const e = map.get(key);
          if (!e) continue;
          stmt.upsertEntry.run(b.identity, kind, key, e.count, e.firstMs, e.lastMs);
          e.dirty = false;
        }
        dirty.clear();
      }
      if (removed.size > 0) {
        for (const key of removed) stmt.deleteEntry.run(b.identity, kind, key);
        removed.clear();
      }
    }
  }

  function writeUnwritten(): void {
    for (const b of unwritten) persistBaseline(b);
    unwritten.clear();
    writtenAt = performance.now();
    if (writeTimer) {
      clearTimeout(writeTimer);
      writeTimer = undefined;
    }
  }

  const flushTx = db.transaction(writeUnwritten);

  function writeLater(): void {
    writeTimer = undefined;
    // Closed without a flush: what was held back is lost, as in a crash.
    if (!db.open) return;
    try {
      flushTx();
    } catch (err) {
      logger.error({ err: String(err) }, 'writing learned baselines failed');
    }
  }

  function saveAlert(a: Alert, dedupKey: string): void {
    stmt.insertAlert.run({
      id: a.id,
      identity: a.identity,
      detector: a.detector,
      severity: a.severity,
      status: a.status,
      trace_id: a.traceId,
      event_ms: parseMs(a.firstSeen),
      last_seen_ms: parseMs(a.lastSeen),
      dedup_key: dedupKey,
      body: JSON.stringify(a),
    });
  }

  function getAlert(id: string): Alert | undefined {
    const row = stmt.getAlert.get(id) as { body: string } | undefined;
    return row ? asIncident(JSON.parse(row.body) as Alert) : undefined;
  }

  function baselineFor(chain: Chain, result: AnalyseResult): Baseline | undefined {
    let b = baselines.get(chain.identity);
    if (b) return b;
    const window = Math.floor(chain.startMs / IDENTITY_FLOOD_WINDOW_MS);
    if (window !== newIdentities.window) {
      newIdentities.window = window;
      newIdentities.admitted = 0;
    }
    const full = baselines.size >= limits.maxIdentities;
    if (full || newIdentities.admitted >= limits.maxNewIdentitiesPerMinute) {
      stats.identitiesRefused++;
      identityFlood(chain, full, result);
      return undefined;
    }
    newIdentities.admitted++;
    b = createBaseline(chain.identity, chain.identityKind, chain.displayName);
    baselines.set(chain.identity, b);
    stats.identities = baselines.size;
    return b;
  }

  /** One incident per identity and trace; the alert-flood incident has its own id beside it. */
  function incidentIdOf(chain: Chain, flood: boolean): string {
    const suffix = flood ? `\u0000${ALERT_FLOOD_KEY}` : '';
    return createHash('sha256').update(`${chain.identity}\u0000${chain.traceId}${suffix}`).digest('hex').slice(0, 32);
  }

  /**
   * The open incident a chain's findings repeat: the incident of the same identity and trace, else
   * the recent one holding every finding of medium or above (RecentFindings), else, after a
   * restart, one stored with exactly these findings within DEDUP_WINDOW_MS.
   */
  function existingIncident(chain: Chain, findings: readonly ScoredFinding[], flood = false): Alert | undefined {
    const own = getAlert(incidentIdOf(chain, flood));
    if (own) return own;
    const eventMs = Math.min(...findings.map((f) => f.eventMs));
    const id = recent.incidentFor(chain.identity, findings, eventMs, DEDUP_WINDOW_MS);
    const hit = id === undefined ? undefined : getAlert(id);
    if (hit && hit.status !== 'expected' && hit.status !== 'superseded') return hit;
    const row = stmt.findRepeat.get(incidentDedupKey(chain.identity, findings), eventMs - DEDUP_WINDOW_MS, eventMs + DEDUP_WINDOW_MS) as
      | { body: string }
      | undefined;
    return row ? asIncident(JSON.parse(row.body) as Alert) : undefined;
  }

  /** Raises a new incident for a chain's findings, or counts a repeat on the incident they repeat. */
  function record(chain: Chain, findings: ScoredFinding[], result: AnalyseResult, flood = false): Alert {
    const existing = existingIncident(chain, findings, flood);
    if (existing && existing.status !== 'superseded') {
      countRepeat(existing, findings);
      addAuditIds(existing, chain, findings.flatMap((f) => f.spanIds));
      saveAlert(existing, incidentDedupKey(existing.identity, existing.findings));
      recent.remember(existing);
      // A flood alert is announced again only at counts 2, 4, 8, ...: one alert, not thousands.
      if (!flood || (existing.count & (existing.count - 1)) === 0) result.updated.push(existing);
      stats.alertsUpdated++;
      return existing;
    }
    // The incident of this identity and trace that a later part superseded is revised: the same id
    // now holds what the merged chain raised, and names what it replaces.
    const revises = existing?.status === 'superseded' ? { keys: existing.evidence?.keys, title: existing.title } : undefined;
    const alert = buildIncident({
      id: incidentIdOf(chain, flood),
      identity: chain.identity,
      identityKind: chain.identityKind,
      traceId: chain.traceId,
      findings,
      traceUrl: options.traceUrl,
    });
    if (revises) alert.evidence = { ...alert.evidence, revises };
    addAuditIds(alert, chain, alert.spanIds);
    saveAlert(alert, incidentDedupKey(alert.identity, alert.findings));
    recent.remember(alert);
    result.alerts.push(alert);
    stats.alertsRaised++;
    return alert;
  }

  function runDetectors(ctx: DetectionContext): Finding[] {
    const out: Finding[] = [];
    for (const detect of ALL_DETECTORS) {
      try {
        const f = detect(ctx);
        if (f && f.spanIds.length > 0) out.push(f);
      } catch (err) {
        stats.detectorErrors++;
        logger.error({ err, detector: detect.name, identity: ctx.chain.identity }, 'detector failed');
      }
    }
    return out;
  }

  /** One `fan-out` alert on FLOOD_IDENTITY per hour for new identities refused by a cap. */
  function identityFlood(chain: Chain, full: boolean, result: AnalyseResult): void {
    const calls = chainCalls(chain);
    const first = calls[0];
    if (!first) return;
    const reason = full
      ? `conduct already keeps baselines for ${limits.maxIdentities} identities (limits.maxIdentities)`
      : `more than ${limits.maxNewIdentitiesPerMinute} new identities appeared in one minute of event time (limits.maxNewIdentitiesPerMinute)`;
    const finding: ScoredFinding = {
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
    record({ ...chain, identity: FLOOD_IDENTITY, identityKind: 'system' }, [finding], result, true);
  }

  /**
   * Keeps an identity within its alert budget, counted in incidents. Only a chain that would raise
   * a new incident counts: a repeat only raises the incident's count. Incidents of medium or above
   * have the whole budget to themselves (`loud`); lower ones may use only what the two together
   * have left, so a stream of low incidents never swallows a reach-expansion one. Over budget, the
   * chain's findings fold into one flood finding whose severity is the worst it folds (at most
   * FLOOD_MAX_SEVERITY).
   */
  function withinAlertBudget(chain: Chain, calls: readonly Call[], findings: ScoredFinding[]): { findings: ScoredFinding[]; flood?: ScoredFinding } {
    if (findings.length === 0 || existingIncident(chain, findings)) return { findings };
    const window = Math.floor(calls[0]!.startMs / ALERT_FLOOD_WINDOW_MS);
    let budget = alertBudget.get(chain.identity);
    if (!budget || budget.window !== window) {
      budget = { window, loud: 0, quiet: 0 };
      alertBudget.set(chain.identity, budget);
    }
    const max = limits.maxAlertsPerIdentityPerHour;
    const worst = findings.reduce((w, f) => (SEVERITY_RANK[f.severity] > SEVERITY_RANK[w.severity] ? f : w));
    const loud = SEVERITY_RANK[worst.severity] >= SEVERITY_RANK.medium;
    if (loud ? budget.loud < max : budget.loud + budget.quiet < max) {
      if (loud) budget.loud++;
      else budget.quiet++;
      return { findings };
    }
    stats.findingsFolded += findings.length;
    const name = chain.displayName ?? chain.identity;
    const severity = SEVERITY_RANK[worst.severity] > SEVERITY_RANK[FLOOD_MAX_SEVERITY] ? FLOOD_MAX_SEVERITY : worst.severity;
    const flood: ScoredFinding = {
      detector: 'fan-out',
      keys: [ALERT_FLOOD_KEY],
      severity,
      score: severity === worst.severity ? worst.score : Math.min(worst.score, CRITICAL_SCORE - 1),
      reach: findings.some((f) => f.reach),
      external: findings.some((f) => f.external),
      sensitive: findings.some((f) => f.sensitive),
      title: `${name} is flooding conduct with new findings (more than ${max} incidents in an hour)`,
      explanation: `Normally an identity raises a handful of alerts; ${q(name)} raised ${max} in the hour from ${iso(window * ALERT_FLOOD_WINDOW_MS)} (limits.maxAlertsPerIdentityPerHour), so further new findings are folded into this alert${loud ? ' and their chains are kept out of the baseline' : ''}. Its severity is the worst folded finding's. The latest folded finding: ${worst.title}. This alert's count is the number of folded chains.`,
      spanIds: worst.spanIds,
      eventMs: worst.eventMs,
      techniques: unique(findings.flatMap((f) => f.techniques)),
      evidence: { folded: findings.map((f) => ({ detector: f.detector, severity: f.severity, keys: f.keys.slice(0, 5) })) },
    };
    return { findings: [], flood };
  }

  /**
   * Detects on one chain, records what it found, then learns the chain or holds it out. With
   * `late` (a chain a later part of its trace changed): rate windows count only calls new to the
   * trace, only findings that concern a changed call are recorded, the alerts the earlier chain
   * raised are revised first, and those still standing hold the chain out as before.
   */
  function analyseChain(chain: Chain, result: AnalyseResult, late?: { change: LateChange; earlier: Alert[] }): void {
    const b = baselineFor(chain, result);
    if (!b) return;
    const calls = inTimeOrder(chainCalls(chain));
    if (calls.length === 0) return;
    const ordered: Chain = calls === chain.calls ? chain : { ...chain, calls };
    unwritten.add(b);
    const learning = learningState(b, opts);
    const counted = late ? calls.filter((c) => !late.change.replaced.has(c.spanId) && late.change.changed.has(c.spanId)) : calls;
    const indexes = counted.length > 0 ? observeCalls(b.rate, counted) : [];
    const windows: RateWindow[] = [];
    for (const i of indexes) {
      const w = openWindow(b.rate, i);
      if (w) windows.push(w);
    }
    const policy = policyFor(policies, chain.identity);
    const ctx: DetectionContext = {
      chain: ordered,
      calls,
      baseline: b,
      learning,
      windows,
      policy,
      sensitive: (call) => sensitiveReason(call, policy),
      suppressed: (detector, key) => suppressions.has(findingRef(chain.identity, detector, key)),
    };
    let found = runDetectors(ctx);
    const holding: Alert[] = [];
    if (late) {
      holding.push(...reviseEarlier(late.earlier, found, late.change, result));
      found = found.filter((f) => f.spanIds.some((id) => late.change.changed.has(id)));
    }
    // Most chains find nothing: no scoring, budget or lists of detectors for them.
    if (found.length > 0) {
      let scored = scoreFindings(found, b.compromised);
      if (humansMode !== 'alert' && isHumanIdentity(chain.identity, chain.identityKind)) scored = forHumans(scored, humansMode);
      const budgeted = withinAlertBudget(ordered, calls, scored);
      const raised: Alert[] = [];
      if (budgeted.findings.length > 0) raised.push(record(ordered, budgeted.findings, result));
      if (budgeted.flood) raised.push(record(ordered, [budgeted.flood], result, true));
      for (const alert of raised) {
        if (SEVERITY_RANK[alert.severity] >= SEVERITY_RANK.medium && alert.status !== 'expected') holding.push(alert);
      }
    }
    if (holding.length > 0) {
      taintWindows(b.rate, indexes);
      const json = JSON.stringify(ordered);
      for (const a of holding) stmt.hold.run(chain.identity, chain.traceId, a.id, chain.startMs, json);
      result.held++;
      stats.chainsHeld++;
    } else {
      // A chain held before the part arrived is learned now, whole: its held copies go.
      if (late) stmt.release.run(chain.identity, chain.traceId);
      learnChain(b, ordered, opts);
      result.learned++;
      stats.chainsLearned++;
    }
    const newest = calls[calls.length - 1]!.startMs;
    rememberSources(b.recentSources, calls);
    const cutoff = newest - CREDENTIAL_REUSE_WINDOW_MS;
    // A new list only when a source expired (rarely: each identity keeps a handful, oldest first).
    if ((b.recentSources[0]?.ms ?? cutoff) < cutoff) b.recentSources = b.recentSources.filter((s) => s.ms >= cutoff);
    forget(b, Math.max(newest, b.lastMs), opts.forgetAfterMs);
  }

  /**
   * The alerts an identity's chain raised before a later part of its trace changed it: an alert
   * whose finding keys the merged chain no longer shows, and whose spans include a call the part
   * replaced, is superseded (status `superseded`, the reason in `evidence.superseded`); the others
   * stand. Returns those still standing that hold the chain out (medium or above, not expected).
   */
  function reviseEarlier(earlier: readonly Alert[], found: readonly Finding[], change: LateChange, result: AnalyseResult): Alert[] {
    const still = new Set(found.flatMap((f) => f.keys.map((k) => `${f.detector}\u0000${k}`)));
    const standing: Alert[] = [];
    for (const a of earlier) {
      if (a.status === 'superseded') continue;
      // The incident still stands while the merged chain shows any of its findings.
      const shown = a.findings.some((f) => f.keys.some((k) => still.has(`${f.detector}\u0000${k}`)));
      if (!shown && a.spanIds.some((id) => change.replaced.has(id))) {
        supersede(a, change, result);
        continue;
      }
      if (SEVERITY_RANK[a.severity] >= SEVERITY_RANK.medium && a.status !== 'expected') standing.push(a);
    }
    return standing;
  }

  function supersede(a: Alert, change: LateChange, result: AnalyseResult): void {
    const replaced = a.spanIds.filter((id) => change.replaced.has(id));
    a.status = 'superseded';
    a.evidence = {
      ...a.evidence,
      superseded: {
        reason: 'a later part of the trace completed the calls this alert was raised on, and they no longer show what it found',
        spanIds: replaced,
      },
    };
    saveAlert(a, incidentDedupKey(a.identity, a.findings));
    recent.forget(a);
    result.superseded.push(a);
    stats.alertsSuperseded++;
  }

  /** One identity's changed chain of a trace: unlearn the stored chain (if it was learned), analyse the merged one. */
  function analyseChange(change: LateChange, result: AnalyseResult): void {
    const identity = change.after?.identity ?? change.before?.identity;
    const traceId = change.after?.traceId ?? change.before?.traceId;
    if (identity === undefined || traceId === undefined) return;
    const earlier = (stmt.alertsOfChain.all(traceId, identity) as { body: string }[]).map((r) => asIncident(JSON.parse(r.body) as Alert));
    // Held out (by an alert of this trace, or a repeat it counted on another's): never learned.
    const held = stmt.isHeld.get(identity, traceId) !== undefined;
    const b = baselines.get(identity);
    if (b && change.before && !held) {
      unlearnChain(b, change.before);
      unwritten.add(b);
    }
    if (change.after && change.after.calls.length > 0) {
      analyseChain(change.after, result, { change, earlier });
      return;
    }
    // The part took every call of this identity's chain (its calls belong to another identity now).
    for (const a of earlier) if (a.status !== 'superseded') supersede(a, change, result);
    stmt.release.run(identity, traceId);
  }

  const analyseLateTx = db.transaction((changes: readonly LateChange[]): AnalyseResult => {
    const result: AnalyseResult = { alerts: [], updated: [], superseded: [], held: 0, learned: 0 };
    for (const change of changes) analyseChange(change, result);
    if (persistIntervalMs === 0 || performance.now() - writtenAt >= persistIntervalMs) writeUnwritten();
    return result;
  });

  const analyseTx = db.transaction((chains: readonly Chain[]): AnalyseResult => {
    const result: AnalyseResult = { alerts: [], updated: [], superseded: [], held: 0, learned: 0 };
    const sorted = chains.filter((c) => c.calls.length > 0).sort((a, b) => a.startMs - b.startMs);
    for (const chain of sorted) analyseChain(chain, result);
    if (persistIntervalMs === 0 || performance.now() - writtenAt >= persistIntervalMs) writeUnwritten();
    return result;
  });

  const feedbackTx = db.transaction((alert: Alert, verdict: Verdict): Alert => {
    alert.status = verdict as AlertStatus;
    saveAlert(alert, incidentDedupKey(alert.identity, alert.findings));
    const b = baselines.get(alert.identity);
    if (verdict === 'expected') {
      // Every finding of the incident is expected: each of its keys stops alerting for its detector.
      for (const f of alert.findings) {
        for (const key of f.keys) {
          stmt.suppress.run(alert.identity, f.detector, key, alert.id);
          suppressions.add(findingRef(alert.identity, f.detector, key));
        }
      }
      recent.forget(alert);
      const held = stmt.heldByAlert.all(alert.id) as { identity: string; trace_id: string; chain: string }[];
      for (const row of held) {
        const target = baselines.get(row.identity);
        if (target) learnChain(target, JSON.parse(row.chain) as Chain, opts);
        stmt.release.run(row.identity, row.trace_id);
      }
    } else if (verdict === 'malicious' && b) {
      b.compromised = true;
    }
    if (b) {
      persistBaseline(b);
      unwritten.delete(b);
    }
    return alert;
  });

  const scheduleWrite = () => {
    if (unwritten.size > 0 && !writeTimer) {
      writeTimer = setTimeout(writeLater, Math.max(0, writtenAt + persistIntervalMs - performance.now()));
      writeTimer.unref();
    }
  };

  return {
    analyse(chains) {
      const result = analyseTx(chains);
      scheduleWrite();
      return result;
    },

    analyseLate(changes) {
      const result = analyseLateTx(changes);
      scheduleWrite();
      return result;
    },

    flush() {
      if (unwritten.size > 0) flushTx();
    },

    listAlerts(filter = {}) {
      const limit = Math.max(1, Math.min(MAX_ALERTS_PER_QUERY, Math.floor(filter.limit ?? DEFAULT_ALERTS_PER_QUERY)));
      const q = alertListSql(filter);
      return (db.prepare(q.sql).all(...q.params, limit) as { body: string }[]).map((r) => asIncident(JSON.parse(r.body) as Alert));
    },

    getAlert,

    feedback(id, verdict) {
      const alert = getAlert(id);
      if (!alert) return undefined;
      return feedbackTx(alert, verdict);
    },

    identity(id) {
      const b = baselines.get(id);
      if (!b) return undefined;
      const s = learningState(b, opts);
      return {
        identity: b.identity,
        kind: b.identityKind,
        status: s.status,
        progress: s.progress,
        calls: s.calls,
        observedMs: s.observedMs,
        ...(b.enforcingSinceMs !== undefined ? { enforcingSince: iso(b.enforcingSinceMs) } : {}),
        compromised: b.compromised,
      };
    },

    baseline(id) {
      const b = baselines.get(id);
      if (!b) return undefined;
      return baselineSummary(b, learningState(b, opts), policyFor(policies, id), RATE_WINDOW_MS);
    },

    graph(id) {
      const b = baselines.get(id);
      if (!b) return undefined;
      const held = (stmt.heldByIdentity.all(id, MAX_HELD_CHAINS_IN_GRAPH) as { chain: string }[]).map(
        (r) => JSON.parse(r.chain) as Chain,
      );
      return identityGraph(b, held);
    },

    stats() {
      return { ...stats };
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
