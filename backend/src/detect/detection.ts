import type { Call, Chain, Logger } from '@conduct/processor';
import { silentLogger } from '@conduct/processor';
import { SEVERITY_RANK, type Alert, type AlertStatus, type Detector, type Verdict } from '../alerts/model.js';
import type { PolicyConfig } from './settings.js';
import {
  RATE_WINDOW_MS,
  chainCalls,
  forget,
  learnChain,
  learningState,
  observeCalls,
  openWindow,
  renameOperations,
  has,
  rememberCandidateValues,
  touch,
  unlearnChain,
  versionKey,
  taintWindows,
  type Baseline,
  type ChainScore,
  type LearningOptions,
  type LearningState,
  type OperationRename,
  type RateWindow,
} from '../learn/index.js';
import type { AlertListFilter, BaselineGroup, BaselineScope, DetectionCheckpoint, DetectionState, OutboxEvent, OutboxEventKind, SuppressionRecord } from '../store/index.js';
import { createAlertRecorder, dedupKeyOfAlert } from './alert-recorder.js';
import { DEFAULT_HUMANS_MODE, forHumans, isHumanIdentity, type HumansMode } from './humans.js';
import { asIncident, findingRef } from './incident.js';
import { loadBaselineBook } from './baseline-book.js';
import { createAlertBudget, identityFloodFinding } from './budget.js';
import { ALL_DETECTORS, CREDENTIAL_REUSE_WINDOW_MS, rememberSources } from './detectors/index.js';
import type { DetectionContext, Finding } from './finding.js';
import { policyFor, sensitiveReason } from './identity-context.js';
import {
  DEFAULT_ALERTS_PER_QUERY,
  DEFAULT_CARDINALITY_LIMITS,
  FLOOD_IDENTITY,
  IDENTITY_FLOOD_WINDOW_MS,
  MAX_ALERTS_PER_QUERY,
  MAX_HELD_CHAINS_IN_GRAPH,
  type CardinalityLimits,
  type LearningConfig,
} from './limits.js';
import { DEFAULT_RELEASE_GRACE_MS, applyRelease } from './release.js';
import { createReleaseHolds, markLearning, type HoldDecision, type ReleaseHold, type ReleaseHoldStats } from './release-hold.js';
import { scoreFindings, type ScoredFinding } from './score.js';
import { inStartOrder } from './start-order.js';
import { baselineSummary, identityGraph, type BaselineSummary, type IdentityGraph } from './summary.js';

export * from './limits.js';

export interface DetectionOptions {
  /** Where baselines, alerts, held chains and suppressions are kept (the store's detection state). */
  state: DetectionState;
  learning: LearningConfig;
  /** Identity context (`policies`), first match wins. */
  policies?: readonly PolicyConfig[];
  /** `alerts.traceUrl` template for `links.trace`. */
  traceUrl: string;
  logger?: Logger;
  /** Cardinality caps (config `limits`); each absent field takes its default. */
  limits?: Partial<CardinalityLimits>;
  /**
   * Learned baseline state is written to the store at most this often (ms of wall time); 0 (the
   * default) writes it with every `analyse`. Above 0, call `flush` before the store is closed or
   * read (see {@link Detection.flush}).
   */
  persistIntervalMs?: number;
  /** Novelty findings on people (`detection.humans`): `low` (default), `alert` or `ignore`. */
  humans?: HumansMode;
  /** How long a new `service.version`'s new internal behaviour counts as its release (`detection.releaseGrace`); 0 turns releases off. */
  releaseGraceMs?: number;
  /** Which baselines to load: all when absent (one instance owns every identity). */
  scope?: BaselineScope;
  /** The group a baseline is written with (its identity's partition); 0 when absent. */
  groupOf?: (identity: string) => BaselineGroup;
  /**
   * The alert sinks' routing: which sinks get an alert event. Each event is enqueued in the
   * store's outbox (for those sinks) by the same checkpoint that writes the alert. No outbox
   * entries when absent.
   */
  deliveries?: { route(alert: Alert, event: OutboxEventKind): readonly string[] };
}

/**
 * Where `analyse` and `analyseLate` write their checkpoint instead of the state: the engine's
 * commit, which stores the analysed chains in the same transaction. The checkpoint then always
 * carries the learned baselines (`persistIntervalMs` applies only without a sink), so that the
 * chains stored and the calls learned from them advance together.
 */
export type CheckpointSink = (checkpoint: DetectionCheckpoint) => Promise<void>;

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

/**
 * Which alerts `listAlerts` answers: the store's filter (store/contracts.ts), with the limit
 * optional (default DEFAULT_ALERTS_PER_QUERY, at most MAX_ALERTS_PER_QUERY).
 */
export type AlertFilter = Omit<AlertListFilter, 'limit'> & { limit?: number };

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

export interface DetectionStats extends ReleaseHoldStats {
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
  /**
   * Analyses chains in event-time order: detects, raises or updates alerts, learns or holds out.
   * Resolved: the batch's alerts and held chains are stored (one checkpoint with the learned
   * baselines that are due). Batches, verdicts and flushes run one at a time, in call order.
   * `batchEnds`: the chains are several batches' (stored in one write), batch after batch, and
   * each batch's end is given: each batch is put in event-time order by itself, as if they came
   * one by one, with one checkpoint for them all.
   */
  analyse(chains: readonly Chain[], commit?: CheckpointSink, batchEnds?: readonly number[]): Promise<AnalyseResult>;
  /**
   * Analyses what later parts of traces changed, identity by identity: the chain as stored before
   * is taken back out of the baseline (when it was learned), the merged chain is analysed, and
   * only findings that concern a changed call raise or repeat alerts; an alert the earlier chain
   * raised whose findings the merged chain no longer shows, because they concerned a call the
   * part replaced, is superseded (see README, "Late parts of a trace").
   */
  analyseLate(changes: readonly LateChange[], commit?: CheckpointSink): Promise<AnalyseResult>;
  /**
   * Renames operations in every baseline (learn/rename.ts): when path positions became
   * parameters, the literal operations learned before take the template's name. Runs in turn
   * with batches; the renamed entries are written with the next checkpoint. Resolves with the
   * number of entries renamed.
   */
  renameOperations(rename: OperationRename): Promise<number>;
  listAlerts(filter?: AlertFilter): Promise<Alert[]>;
  getAlert(id: string): Promise<Alert | undefined>;
  /** Records an operator verdict; undefined when the alert is unknown. */
  feedback(id: string, verdict: Verdict): Promise<Alert | undefined>;
  identity(id: string): IdentityDetection | undefined;
  baseline(id: string): BaselineSummary | undefined;
  graph(id: string): Promise<IdentityGraph | undefined>;
  stats(): DetectionStats;
  /**
   * Writes the learned baseline state that `persistIntervalMs` still holds back (alerts and held
   * chains are always written at once). Call it before closing the store; a no-op when nothing is
   * held back.
   */
  flush(): Promise<void>;
}

/** Identities whose matching policy is remembered (the memo starts over beyond it). */
const MAX_POLICY_MEMO = 10_000;

/**
 * What the detectors see of one chain. A class rather than an object literal with two closures:
 * one object per chain instead of three (every chain is analysed; most find nothing).
 */
class ChainContext implements DetectionContext {
  scored = false;
  surprisal: number | undefined = undefined;

  constructor(
    readonly chain: Chain,
    readonly calls: readonly Call[],
    readonly baseline: Baseline,
    readonly learning: LearningState,
    readonly windows: readonly RateWindow[],
    readonly policy: PolicyConfig | undefined,
    private readonly suppressions: ReadonlySet<string>,
  ) {}

  sensitive(call: Call): string | undefined {
    return sensitiveReason(call, this.policy);
  }

  suppressed(detector: Detector, key: string): boolean {
    // Most deployments have no suppression: no reference string built and hashed per question.
    return this.suppressions.size > 0 && this.suppressions.has(findingRef(this.chain.identity, detector, key));
  }
}

/** No findings (shared: never written). */
const NO_FINDINGS: Finding[] = [];

/** The calls by start time (a stable sort); the same array when they already are in that order. */
function inTimeOrder(calls: Call[]): Call[] {
  for (let i = 1; i < calls.length; i++) {
    if (calls[i]!.startMs < calls[i - 1]!.startMs) return [...calls].sort((x, y) => x.startMs - y.startMs);
  }
  return calls;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The chains of each batch (see Detection.analyse's `batchEnds`); all of them as one without ends. */
function batchesOf(chains: readonly Chain[], ends: readonly number[] | undefined): ReadonlyArray<readonly Chain[]> {
  if (!ends || ends.length < 2) return [chains];
  return ends.map((end, k) => chains.slice(k > 0 ? ends[k - 1] : 0, end));
}

/** The object without its undefined fields (so they do not override defaults). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Runs tasks one at a time in call order; a failed task does not stop the next. */
function createSerial(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (task) => {
    const run = tail.then(task, task);
    tail = run.catch(() => undefined);
    return run;
  };
}

/**
 * Creates the learning and detection service over the store's detection state (loaded now).
 * Orchestration lives here: admit identities, run the detectors, score, keep the alert budget,
 * then learn or hold out; alerts are made in alert-recorder.ts, the budget in budget.ts, and the
 * baselines' persistence in baseline-book.ts.
 */
export async function createDetection(options: DetectionOptions): Promise<Detection> {
  const { state } = options;
  const logger = options.logger ?? silentLogger;
  const policies = options.policies ?? [];
  const opts: LearningOptions = {
    minCalls: options.learning.minCalls,
    periodMs: options.learning.period,
    forgetAfterMs: options.learning.forgetAfter,
  };
  const limits: CardinalityLimits = { ...DEFAULT_CARDINALITY_LIMITS, ...definedOnly(options.limits ?? {}) };
  const humansMode = options.humans ?? DEFAULT_HUMANS_MODE;
  const releaseGraceMs = options.releaseGraceMs ?? DEFAULT_RELEASE_GRACE_MS;
  const book = await loadBaselineBook(state, {
    logger,
    ...(options.scope ? { scope: options.scope } : {}),
    ...(options.groupOf ? { groupOf: options.groupOf } : {}),
  });
  const { baselines, suppressions } = book;
  const recorder = createAlertRecorder(state, options.traceUrl);
  const budget = createAlertBudget(limits, recorder);
  const serial = createSerial();
  const holds = createReleaseHolds(releaseGraceMs);
  await holds.load(state, (identity) => baselines.has(identity));
  /** Learning of held releases was done in this batch: its baselines are written with it whatever the interval. */
  let releaseLearned = false;

  const stats: Omit<DetectionStats, keyof ReleaseHoldStats> = {
    identities: baselines.size,
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
  const persistIntervalMs = Math.max(0, options.persistIntervalMs ?? 0);
  /** performance.now() of the last baseline write (monotonic: a wall clock step does not stall writes). */
  let writtenAt = -Infinity;
  /** Writes what is held back once the interval is over, also when no further batch comes. */
  let writeTimer: ReturnType<typeof setTimeout> | undefined;

  /** The outbox events of what a batch or verdict announces: each alert once per event kind. */
  function outboxEvents(announced: ReadonlyArray<[Alert, OutboxEventKind]>): OutboxEvent[] {
    const route = options.deliveries?.route;
    if (!route || announced.length === 0) return [];
    const atMs = Date.now();
    const seen = new Set<string>();
    const out: OutboxEvent[] = [];
    for (const [alert, event] of announced) {
      const key = `${event}\u0000${alert.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const sinks = route(alert, event);
      if (sinks.length > 0) out.push({ alert, event, sinks, atMs });
    }
    return out;
  }

  /** What a batch announces: raised and repeated alerts, and status changes (superseded). */
  const announcedBy = (result: AnalyseResult): Array<[Alert, OutboxEventKind]> => [
    ...[...result.alerts, ...result.updated].map((a): [Alert, OutboxEventKind] => [a, 'alert']),
    ...result.superseded.map((a): [Alert, OutboxEventKind] => [a, 'feedback']),
  ];

  /**
   * Commits the batch's alerts and held chains, with the learned baselines when `withBaselines`,
   * and the outbox events of what it announces, to `sink` (the engine's commit, with the chains)
   * or the state.
   */
  async function commit(
    withBaselines: boolean,
    extra: DetectionCheckpoint = {},
    announced: ReadonlyArray<[Alert, OutboxEventKind]> = [],
    sink?: CheckpointSink,
  ): Promise<void> {
    const { alerts, held, released } = recorder.take();
    const checkpoint: DetectionCheckpoint = {
      ...extra,
      alerts: [...(extra.alerts ?? []), ...alerts],
      held,
      released: [...(extra.released ?? []), ...released],
      outbox: outboxEvents(announced),
    };
    if (withBaselines) {
      checkpoint.baselines = [...(extra.baselines ?? []), ...book.takeDeltas()];
      writtenAt = performance.now();
      if (writeTimer) {
        clearTimeout(writeTimer);
        writeTimer = undefined;
      }
    }
    await (sink ? sink(checkpoint) : state.checkpoint(checkpoint));
  }

  function writeLater(): void {
    writeTimer = undefined;
    serial(() => commit(true)).catch((err: unknown) => logger.error({ err: String(err) }, 'writing learned baselines failed'));
  }

  /** A new baseline for the chain's identity within the caps; undefined when the caps refuse it. */
  function admit(chain: Chain): Baseline | undefined {
    const window = Math.floor(chain.startMs / IDENTITY_FLOOD_WINDOW_MS);
    if (window !== newIdentities.window) {
      newIdentities.window = window;
      newIdentities.admitted = 0;
    }
    if (baselines.size >= limits.maxIdentities || newIdentities.admitted >= limits.maxNewIdentitiesPerMinute) return undefined;
    newIdentities.admitted++;
    const b = book.add(chain.identity, chain.identityKind, chain.displayName);
    stats.identities = baselines.size;
    return b;
  }

  /** Counts a chain `admit` refused and reports the flood: a promise while its alert is recorded. */
  function refuse(chain: Chain, result: AnalyseResult): Promise<unknown> | undefined {
    stats.identitiesRefused++;
    const full = baselines.size >= limits.maxIdentities;
    const finding = identityFloodFinding(chain, chainCalls(chain), full, limits);
    // One `fan-out` alert on FLOOD_IDENTITY per hour, its count the refused chains.
    return finding ? record({ ...chain, identity: FLOOD_IDENTITY, identityKind: 'system' }, [finding], result, true) : undefined;
  }

  async function record(chain: Chain, findings: ScoredFinding[], result: AnalyseResult, flood = false): Promise<Alert> {
    const { alert, event } = await recorder.record(chain, findings, flood);
    if (event === 'raised') {
      result.alerts.push(alert);
      stats.alertsRaised++;
    } else {
      if (event === 'repeated') result.updated.push(alert);
      stats.alertsUpdated++;
    }
    return alert;
  }

  /** The chain's findings: NO_FINDINGS (shared, never written) for most chains. */
  function runDetectors(ctx: DetectionContext): Finding[] {
    let out: Finding[] | undefined;
    for (const detect of ALL_DETECTORS) {
      try {
        const f = detect(ctx);
        if (f && f.spanIds.length > 0) (out ??= []).push(f);
      } catch (err) {
        stats.detectorErrors++;
        logger.error({ err, detector: detect.name, identity: ctx.chain.identity }, 'detector failed');
      }
    }
    return out ? applyRelease(ctx, out, releaseGraceMs) : NO_FINDINGS;
  }

  /** Policies matched per identity (the policies are fixed; identities admitted are capped, the memo too). */
  const policyMemo = new Map<string, PolicyConfig | null>();
  function policyOf(identity: string): PolicyConfig | undefined {
    let p = policyMemo.get(identity);
    if (p === undefined) {
      if (policyMemo.size >= MAX_POLICY_MEMO) policyMemo.clear();
      policyMemo.set(identity, (p = policyFor(policies, identity) ?? null));
    }
    return p ?? undefined;
  }

  /** Alerts the chain's findings raise or repeat, within the identity's budget: those that hold the chain out, and its incident. */
  async function alertOn(chain: Chain, calls: readonly Call[], b: Baseline, found: Finding[], result: AnalyseResult): Promise<{ holding: Alert[]; incident?: Alert }> {
    let scored = scoreFindings(found, b.compromised);
    if (humansMode !== 'alert' && isHumanIdentity(chain.identity, chain.identityKind)) scored = forHumans(scored, humansMode);
    const budgeted = await budget.apply(chain, calls, scored);
    stats.findingsFolded += budgeted.folded;
    const raised: Alert[] = [];
    const incident = budgeted.findings.length > 0 ? await record(chain, budgeted.findings, result) : undefined;
    if (incident) raised.push(incident);
    if (budgeted.flood) raised.push(await record(chain, [budgeted.flood], result, true));
    const holding = raised.filter((alert) => SEVERITY_RANK[alert.severity] >= SEVERITY_RANK.medium && alert.status !== 'expected');
    return incident ? { holding, incident } : { holding };
  }

  /**
   * What a chain's release finding means for its learning: held until the release's grace ends
   * (release-hold.ts), unless the chain is held out anyway. A chain of medium or above on a
   * version being rolled out (or on an incident holding a release) withholds that release for good.
   */
  async function releaseDecision(chain: Chain, found: readonly Finding[], holding: readonly Alert[], incident: Alert | undefined): Promise<HoldDecision | undefined> {
    if (holding.length > 0) {
      const reason = 'a finding of medium or above came on its version during its grace period';
      for (const f of found) {
        const onVersion = f.evidence.newVersion as { service: string; version: string; firstSeen: string } | undefined;
        const key = onVersion ? `release:${JSON.stringify([onVersion.service, onVersion.version])}` : f.detector === 'release' ? f.keys[0] : undefined;
        const firstMs = Date.parse(String(onVersion?.firstSeen ?? f.evidence.firstSeen));
        if (key === undefined || !Number.isFinite(firstMs)) continue;
        const hold = holds.withhold(chain.identity, key, firstMs + releaseGraceMs, reason);
        if (hold) await markHold(hold, 'withheld');
      }
      return undefined;
    }
    const release = found.find((f) => f.detector === 'release');
    if (!release || !incident || incident.status === 'expected' || !incident.findings.some((f) => f.detector === 'release' && f.keys.includes(release.keys[0]!))) return undefined;
    const decision = holds.admit(chain, incident, release);
    if ('hold' in decision) markLearning(incident, decision.hold.key, learningOf(decision.hold));
    return decision;
  }

  const learningOf = (hold: ReleaseHold) =>
    hold.withheld !== undefined ? { state: 'withheld' as const, reason: hold.withheld } : { state: 'held' as const, until: iso(hold.untilMs) };

  /** Writes a hold's state on each incident of it. */
  async function markHold(hold: ReleaseHold, state: 'withheld' | 'learned', skip?: string): Promise<void> {
    for (const id of hold.alertIds) {
      if (id === skip) continue;
      const alert = await recorder.get(id);
      if (!alert) continue;
      markLearning(alert, hold.key, state === 'withheld' ? learningOf(hold) : { state: 'learned', until: iso(hold.untilMs) });
      recorder.save(alert);
    }
  }

  /**
   * Learns the held chains of releases whose grace period ended at `ms` (event time), each chain
   * once, oldest first, and lets their held rows go; a release judged malicious, or whose incident
   * rose to medium or above, stays withheld.
   */
  async function learnDueReleases(ms: number): Promise<void> {
    for (const hold of holds.takeDue(ms)) {
      const b = baselines.get(hold.identity);
      const alerts: Alert[] = [];
      for (const id of hold.alertIds) {
        const alert = await recorder.get(id);
        if (!alert || alert.status === 'expected') continue;
        if (alert.status === 'malicious') hold.withheld ??= 'judged malicious';
        else if (SEVERITY_RANK[alert.severity] >= SEVERITY_RANK.medium) hold.withheld ??= 'its incident rose to medium or above';
        alerts.push(alert);
      }
      if (hold.withheld !== undefined || !b) {
        await markHold(hold, 'withheld');
        continue;
      }
      const chains = new Map<string, Chain>();
      for (const a of alerts) {
        for (const h of [...(await state.heldByAlert(a.id)), ...recorder.heldOf(a.id)]) if (h.identity === hold.identity) chains.set(h.traceId, h.chain);
      }
      for (const chain of [...chains.values()].sort((x, y) => x.startMs - y.startMs)) {
        learnChain(b, chain, opts);
        recorder.release(hold.identity, chain.traceId);
      }
      holds.learned(chains.size);
      stats.chainsLearned += chains.size;
      book.touch(b);
      releaseLearned = true;
      await markHold(hold, 'learned');
    }
  }

  /**
   * Detects on one chain, records what it found, then learns the chain or holds it out. With
   * `late` (a chain a later part of its trace changed): rate windows count only calls new to the
   * trace, only findings that concern a changed call are recorded, the alerts the earlier chain
   * raised are revised first, and those still standing hold the chain out as before.
   *
   * Synchronous for the chains that find nothing (most of them): a promise only when an alert is
   * recorded (the store may be asked for a repeat), so a batch awaits once per alert, not per chain.
   */
  function analyseChain(chain: Chain, result: AnalyseResult, late?: { change: LateChange; earlier: Alert[] }): Promise<void> | undefined {
    const b = baselines.get(chain.identity) ?? admit(chain);
    if (!b) return refuse(chain, result)?.then(() => undefined);
    const calls = inTimeOrder(chainCalls(chain));
    if (calls.length === 0) return undefined;
    const ordered: Chain = calls === chain.calls ? chain : { ...chain, calls };
    book.touch(b);
    const learning = learningState(b, opts);
    const counted = late ? calls.filter((c) => !late.change.replaced.has(c.spanId) && late.change.changed.has(c.spanId)) : calls;
    const indexes = counted.length > 0 ? observeCalls(b.rate, counted) : [];
    const windows: RateWindow[] = [];
    for (const i of indexes) {
      const w = openWindow(b.rate, i);
      if (w) windows.push(w);
    }
    const ctx = new ChainContext(ordered, calls, b, learning, windows, policyOf(chain.identity), suppressions);
    let found = runDetectors(ctx);
    const holding: Alert[] = late ? reviseEarlier(late.earlier, found, late.change, result) : [];
    if (late) found = found.filter((f) => f.spanIds.some((id) => late.change.changed.has(id)));
    // Most chains find nothing: no scoring, budget, store lookups or waiting for them.
    if (found.length === 0) return settleChain(chain, ordered, calls, b, indexes, holding, result, late !== undefined, scoreOf(ctx));
    return alertOn(ordered, calls, b, found, result).then(async (raised) => {
      holding.push(...raised.holding);
      const release = await releaseDecision(chain, found, holding, raised.incident);
      settleChain(chain, ordered, calls, b, indexes, holding, result, late !== undefined, scoreOf(ctx), release);
    });
  }

  /**
   * The chain's score `unusual-chain` kept, for learning the chain without scoring it again: still
   * its score when it is learned, as nothing between the detectors and `settleChain` changes the
   * baseline (detectors are pure; alerting, budget and release holds touch no entry; batches,
   * verdicts and renames run one at a time).
   */
  const scoreOf = (ctx: DetectionContext): ChainScore | undefined => (ctx.scored ? (ctx as ChainScore) : undefined);

  /** After a chain's alerts: holds it out (when `holding` has any) or learns it, and keeps its sources. */
  function settleChain(
    chain: Chain,
    ordered: Chain,
    calls: readonly Call[],
    b: Baseline,
    indexes: readonly number[],
    holding: readonly Alert[],
    result: AnalyseResult,
    late: boolean,
    scored: ChainScore | undefined,
    release?: HoldDecision,
  ): undefined {
    if (holding.length > 0) {
      taintWindows(b.rate, indexes);
      for (const a of holding) recorder.hold(ordered, a);
      // Its new operations are not learned: their path values are remembered as parameter candidates' siblings.
      for (const call of calls) if (call.protocol === 'http' && !has(b, 'operation', call.operation)) rememberCandidateValues(b, call.peer, call.operation);
      result.held++;
      stats.chainsHeld++;
    } else if (release && !('learn' in release)) {
      // A release's chain: learned when its grace period ends (or never); the version is known from now.
      for (const call of calls) if (call.version) touch(b, 'version', versionKey(call.service, call.version), call.startMs);
      if ('hold' in release) recorder.hold(ordered, release.alert);
    } else {
      // A chain held before the part arrived is learned now, whole: its held copies go.
      if (late) recorder.release(chain.identity, chain.traceId);
      learnChain(b, ordered, opts, scored);
      result.learned++;
      stats.chainsLearned++;
    }
    const newest = calls[calls.length - 1]!.startMs;
    rememberSources(b.recentSources, calls);
    const cutoff = newest - CREDENTIAL_REUSE_WINDOW_MS;
    // A new list only when a source expired (rarely: each identity keeps a handful, oldest first).
    if ((b.recentSources[0]?.ms ?? cutoff) < cutoff) b.recentSources = b.recentSources.filter((s) => s.ms >= cutoff);
    // Never ahead of the wall clock: one chain stamped in the future (a skewed or hostile sender)
    // would otherwise forget the identity's whole baseline, and the next usual chain looks new.
    forget(b, Math.min(Math.max(newest, b.lastMs), Date.now()), opts.forgetAfterMs);
    return undefined;
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
    recorder.save(a);
    recorder.forget(a);
    result.superseded.push(a);
    stats.alertsSuperseded++;
  }

  /** One identity's changed chain of a trace: unlearn the stored chain (if it was learned), analyse the merged one. */
  async function analyseChange(change: LateChange, result: AnalyseResult): Promise<void> {
    const identity = change.after?.identity ?? change.before?.identity;
    const traceId = change.after?.traceId ?? change.before?.traceId;
    if (identity === undefined || traceId === undefined) return;
    const earlier = await recorder.alertsOfChain(traceId, identity);
    // Held out (by an alert of this trace, or a repeat it counted on another's): never learned.
    const held = await recorder.isHeld(identity, traceId);
    const b = baselines.get(identity);
    if (b && change.before && !held) {
      unlearnChain(b, change.before);
      book.touch(b);
    }
    if (change.after && change.after.calls.length > 0) {
      await analyseChain(change.after, result, { change, earlier });
      return;
    }
    // The part took every call of this identity's chain (its calls belong to another identity now).
    for (const a of earlier) if (a.status !== 'superseded') supersede(a, change, result);
    recorder.release(identity, traceId);
  }

  /** Runs a batch's analysis, then commits what it decided (also when a later item failed: learning stays in memory). */
  async function inBatch(run: (result: AnalyseResult) => Promise<void>, sink?: CheckpointSink): Promise<AnalyseResult> {
    const result: AnalyseResult = { alerts: [], updated: [], superseded: [], held: 0, learned: 0 };
    try {
      await run(result);
    } finally {
      // What the batch decided is written even when a later chain failed: learning stays in memory.
      // Held releases learned here are written with the deletion of their held chains.
      const due = sink !== undefined || persistIntervalMs === 0 || releaseLearned || performance.now() - writtenAt >= persistIntervalMs;
      releaseLearned = false;
      await commit(due, {}, announcedBy(result), sink);
    }
    if (book.pending && !writeTimer) {
      writeTimer = setTimeout(writeLater, Math.max(0, writtenAt + persistIntervalMs - performance.now()));
      writeTimer.unref();
    }
    return result;
  }

  const analyseBatch = (chains: readonly Chain[], sink?: CheckpointSink, batchEnds?: readonly number[]) =>
    inBatch(async (result) => {
      for (const run of batchesOf(chains, batchEnds)) {
        for (const chain of inStartOrder(run)) {
          if (chain.startMs >= holds.nextDueMs) await learnDueReleases(chain.startMs);
          const alerting = analyseChain(chain, result);
          if (alerting) await alerting;
        }
      }
    }, sink);

  const analyseLateBatch = (changes: readonly LateChange[], sink?: CheckpointSink) =>
    inBatch(async (result) => {
      for (const change of changes) {
        const startMs = change.after?.startMs ?? -Infinity;
        if (startMs >= holds.nextDueMs) await learnDueReleases(startMs);
        await analyseChange(change, result);
      }
    }, sink);

  async function giveVerdict(alert: Alert, verdict: Verdict): Promise<Alert> {
    alert.status = verdict as AlertStatus;
    const checkpoint: DetectionCheckpoint = { alerts: [{ alert, dedupKey: dedupKeyOfAlert(alert) }] };
    const b = baselines.get(alert.identity);
    if (verdict === 'expected') {
      // Every finding of the incident is expected: each of its keys stops alerting for its detector.
      checkpoint.suppressions = alert.findings.flatMap((f) =>
        f.keys.map((key): SuppressionRecord => ({ identity: alert.identity, detector: f.detector, key, alertId: alert.id })),
      );
      for (const s of checkpoint.suppressions) suppressions.add(findingRef(s.identity, s.detector, s.key));
      recorder.forget(alert);
      const held = await state.heldByAlert(alert.id);
      for (const h of held) {
        const target = baselines.get(h.identity);
        if (target) {
          learnChain(target, h.chain, opts);
          if (target !== b) book.touch(target);
        }
      }
      checkpoint.released = held.map((h) => ({ identity: h.identity, traceId: h.traceId }));
      for (const f of alert.findings) {
        if (f.detector !== 'release' || !f.keys[0] || !holds.get(alert.identity, f.keys[0])) continue;
        holds.dropAlert(alert.identity, f.keys[0], alert.id);
        markLearning(alert, f.keys[0], { state: 'learned', reason: 'judged expected' });
      }
    } else if (verdict === 'malicious') {
      if (b) b.compromised = true;
      // A release judged malicious is never learned: every incident of it says so.
      for (const f of alert.findings) {
        const hold = f.detector === 'release' && f.keys[0] ? holds.get(alert.identity, f.keys[0]) : undefined;
        if (!hold) continue;
        holds.withhold(hold.identity, hold.key, hold.untilMs, 'judged malicious');
        markLearning(alert, hold.key, learningOf(hold));
        await markHold(hold, 'withheld', alert.id);
      }
    }
    if (b) checkpoint.baselines = [book.takeDelta(b)];
    await commit(false, checkpoint, [[alert, 'feedback']]);
    return alert;
  }

  return {
    analyse: (chains, sink, batchEnds) => serial(() => analyseBatch(chains, sink, batchEnds)),

    analyseLate: (changes, sink) => serial(() => analyseLateBatch(changes, sink)),

    renameOperations: (rename) =>
      serial(async () => {
        let renamed = 0;
        for (const b of baselines.values()) {
          const n = renameOperations(b, rename);
          if (n > 0) book.touch(b);
          renamed += n;
        }
        return renamed;
      }),

    flush: () => serial(async () => {
      if (book.pending) await commit(true);
    }),

    async listAlerts(filter = {}) {
      const limit = Math.max(1, Math.min(MAX_ALERTS_PER_QUERY, Math.floor(filter.limit ?? DEFAULT_ALERTS_PER_QUERY)));
      return (await state.listAlerts({ ...definedOnly(filter), limit })).map(asIncident);
    },

    getAlert: async (id) => {
      const alert = await state.getAlert(id);
      return alert && asIncident(alert);
    },

    feedback: (id, verdict) =>
      serial(async () => {
        const alert = await state.getAlert(id);
        return alert && giveVerdict(asIncident(alert), verdict);
      }),

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

    async graph(id) {
      const b = baselines.get(id);
      if (!b) return undefined;
      return identityGraph(b, await state.heldChainsOf(id, MAX_HELD_CHAINS_IN_GRAPH));
    },

    stats() {
      return { ...stats, ...holds.stats() };
    },
  };
}
