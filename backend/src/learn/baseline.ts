import type { Call, Chain } from '@conduct/processor';
import {
  CALIBRATION_MARGIN_BITS,
  CALIBRATION_QUANTILE,
  MIN_CALIBRATION_CHAINS,
  MIN_STEP_SUPPORT,
  SURPRISAL_BUCKET_BITS,
  UNCALIBRATED_THRESHOLD_BITS,
  chainSurprisal,
  scoreSteps,
  surprisalBucket,
  type Calibration,
  type StepScore,
  type TransitionCounts,
} from './chain-model.js';
import { END, START } from './path.js';
import { createRateState, type RateState } from './rate.js';
import { KeyMemo } from './key-memo.js';
import { chainShape, shapeKey, shapeKeyOf } from './shape.js';
import { userAgentFamily } from './user-agent.js';

/**
 * A per-identity baseline: what the identity normally does, as counted entries with first and last
 * event time. Pure data and pure functions: no I/O, no clock (every time is event time).
 */

/** Kinds of baseline entry. Keys are plain strings; composite keys are JSON arrays. */
export const ENTRY_KINDS = [
  'peer',
  'operation',
  /** JSON [previous, next]; START and END mark the chain's ends. */
  'transition',
  /** JSON array: the ordered distinct operations of a chain. */
  'shape',
  'region',
  /** The caller's own account (source). */
  'account',
  'cluster',
  /** Client network segment of server-side-only calls. */
  'network',
  /** User agent family (versions dropped). */
  'userAgent',
  /** `private` or `public`: the address class of server-side-only calls. */
  'addressClass',
  /** Target resource: bucket, table, destination, tool. */
  'target',
  /** Target account (the span's own cloud.account.id). */
  'targetAccount',
  /** JSON [service, peer, operation, peerKind, external]: the learned call graph. */
  'edge',
  /** JSON [service, version]: the caller's `service.version` (its builds). */
  'version',
  /** Surprisal bucket (bits) -> learned chains: the chain model's calibration (chain-model.ts). */
  'chainSurprisal',
] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

export { END, START };

/** Entries kept per identity and kind; new keys beyond it are refused and counted. */
export const MAX_ENTRIES_PER_KIND = 2_000;
/** Shapes kept per identity (the nearest-shape search is linear in this). */
export const MAX_SHAPES = 200;
/** Longest key text kept; longer span values are cut. */
export const MAX_KEY_LENGTH = 256;
/** Calls of one chain that are learned and analysed; the rest are ignored. */
export const MAX_CALLS_PER_CHAIN = 1_000;
/** How often (event time) an identity's entries are swept for forgetting. */
export const FORGET_SWEEP_INTERVAL_MS = 60 * 60_000;

export interface Entry {
  count: number;
  firstMs: number;
  lastMs: number;
  /**
   * In its baseline's `dirty` list (until written, or until it leaves its map: then the list skips
   * it). An entry is touched many times per write (every call of the identity), so the repeats
   * skip the list.
   */
  dirty?: boolean;
}

export interface Baseline {
  identity: string;
  identityKind: string;
  displayName?: string;
  /** Event-time bounds of learned calls (0 before the first). */
  firstMs: number;
  lastMs: number;
  /** Calls learned. */
  calls: number;
  /** Event time at which the identity started enforcing; undefined while learning. */
  enforcingSinceMs?: number;
  /** Set by a `malicious` verdict on one of its alerts. */
  compromised: boolean;
  entries: Record<EntryKind, Map<string, Entry>>;
  rate: RateState;
  /** New entries refused because a kind was full. */
  dropped: number;
  lastSweepMs: number;
  /** Recent (network, client family) pairs of server-side-only calls, for credential-reuse. */
  recentSources: RecentSource[];
  /** Entries changed since the last write ({@link markDirty}, {@link takeDirty}). Not persisted. */
  dirty: DirtyEntries;
  /** Keys forgotten (or moved) since the last write, per kind. Not persisted. */
  removed: Record<EntryKind, Set<string>>;
  /**
   * Learned transitions out of each operation (the sum of their counts and the number of different
   * steps), built on first use by {@link departuresOut} and kept up to date by learning from then
   * on; not persisted. One record per operation: a step reads both numbers with one lookup, and
   * learning adds to them without setting the map again.
   */
  transitionsOut: Map<string, Departures> | undefined;
  /** Path values of new operations alerted on, by position (path-siblings.ts); not persisted, bounded. */
  candidateValues?: Map<string, Set<string>>;
  /** The `chainSurprisal` buckets in order, built on first use by {@link chainCalibration}; not persisted. */
  surprisalOrder?: SurprisalOrder | undefined;
}

/**
 * The entries changed since the last write, in the order they first changed: three parallel lists
 * (kind, key, entry) rather than a set of keys per kind. Marking an entry is three pushes, where a
 * set's add hashed the key (and `b.dirty[kind]` with a different kind at every touch was a
 * megamorphic load), and the checkpoint reads each entry from the list instead of looking its key
 * up again. An entry that left its map while listed has `dirty` false and is skipped.
 */
export interface DirtyEntries {
  kinds: EntryKind[];
  keys: string[];
  entries: Entry[];
}

/** A network segment and client software family an identity recently acted from. */
export interface RecentSource {
  network: string;
  family: string;
  ms: number;
  traceId: string;
  spanId: string;
}

export interface LearningOptions {
  /** Calls needed before enforcing. */
  minCalls: number;
  /** Event time needed before enforcing, ms. */
  periodMs: number;
  /** Entries unseen for this long age out, ms. */
  forgetAfterMs: number;
}

export type LearningStatus = 'learning' | 'enforcing';

export interface LearningState {
  status: LearningStatus;
  /** 0..1: the smaller of calls/minCalls and observed time/period. */
  progress: number;
  calls: number;
  observedMs: number;
}

export function emptyEntries(): Record<EntryKind, Map<string, Entry>> {
  return Object.fromEntries(ENTRY_KINDS.map((k) => [k, new Map<string, Entry>()])) as Record<
    EntryKind,
    Map<string, Entry>
  >;
}

export function createBaseline(identity: string, identityKind: string, displayName?: string): Baseline {
  return {
    identity,
    identityKind,
    ...(displayName ? { displayName } : {}),
    firstMs: 0,
    lastMs: 0,
    calls: 0,
    compromised: false,
    entries: emptyEntries(),
    rate: createRateState(),
    dropped: 0,
    lastSweepMs: 0,
    recentSources: [],
    dirty: { kinds: [], keys: [], entries: [] },
    removed: emptyKeySets(),
    transitionsOut: undefined,
    surprisalOrder: undefined,
  };
}

/** One empty key set per kind (removed tracking). */
export function emptyKeySets(): Record<EntryKind, Set<string>> {
  return Object.fromEntries(ENTRY_KINDS.map((k) => [k, new Set<string>()])) as Record<EntryKind, Set<string>>;
}

/** Whether any kind has a key in it. */
export function anyKeys(sets: Record<EntryKind, Set<string>>): boolean {
  for (const kind of ENTRY_KINDS) if (sets[kind].size > 0) return true;
  return false;
}

export function bound(text: string): string {
  return text.length > MAX_KEY_LENGTH ? text.slice(0, MAX_KEY_LENGTH) : text;
}

/**
 * Kinds whose keys are JSON built from already bounded parts (cutting them would break the JSON)
 * keep their key; a comparison rather than a set lookup, as every touch asks.
 */
function keyOf(kind: EntryKind, key: string): string {
  return kind === 'transition' || kind === 'shape' || kind === 'edge' || kind === 'version' ? key : bound(key);
}

/** Adds one observation of (kind, key) at event time `ms`; false when the kind was full. */
export function touch(b: Baseline, kind: EntryKind, rawKey: string, ms: number, by = 1): boolean {
  return touchIn(b, kind, b.entries[kind], keyOf(kind, rawKey), ms, by) !== REFUSED;
}

/** What {@link touchIn} did: refused a new key (its kind was full), counted a known one, added one. */
const REFUSED = 0;
const COUNTED = 1;
const ADDED = 2;

/**
 * {@link touch} into `map`, the baseline's map of `kind`, under `key` as kept (`keyOf`: already
 * bounded). Learning passes each kind's map by name: `b.entries[kind]` with another kind at every
 * touch is a megamorphic keyed load, ~15 per call; learnChain alone took 0.90 (4-span traces) and
 * 0.77 (40-span) of the time with them (bench/README.md, "Detection and learning on the main thread").
 */
function touchIn(b: Baseline, kind: EntryKind, map: Map<string, Entry>, key: string, ms: number, by = 1): number {
  let e = map.get(key);
  let done = COUNTED;
  if (e !== undefined) {
    e.count += by;
    if (ms < e.firstMs) e.firstMs = ms;
    if (ms > e.lastMs) e.lastMs = ms;
    if (e.dirty) return COUNTED;
  } else {
    done = ADDED;
    if (map.size >= (kind === 'shape' ? MAX_SHAPES : MAX_ENTRIES_PER_KIND)) {
      b.dropped++;
      return REFUSED;
    }
    map.set(key, (e = { count: by, firstMs: ms, lastMs: ms, dirty: false }));
    const removed = b.removed[kind];
    if (removed.size > 0) removed.delete(key);
  }
  e.dirty = true;
  const dirty = b.dirty;
  dirty.kinds.push(kind);
  dirty.keys.push(key);
  dirty.entries.push(e);
  return done;
}

/** Lists `e` (the entry of `kind` under `key`) as changed unless it is already. */
export function markDirty(b: Baseline, kind: EntryKind, key: string, e: Entry): void {
  if (e.dirty) return;
  e.dirty = true;
  b.dirty.kinds.push(kind);
  b.dirty.keys.push(key);
  b.dirty.entries.push(e);
}

/** Takes `e` out of its map's tracking: it left the map under `key` (forgotten, untouched, moved). */
export function removeEntry(b: Baseline, kind: EntryKind, key: string, e: Entry): void {
  b.entries[kind].delete(key);
  e.dirty = false;
  b.removed[kind].add(key);
}

/**
 * Hands every changed entry still in its map to `visit` (in the order they first changed) and
 * clears the list: their next change lists them again.
 */
export function takeDirty(b: Baseline, visit: (kind: EntryKind, key: string, e: Entry) => void): void {
  const { kinds, keys, entries } = b.dirty;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (!e.dirty) continue;
    e.dirty = false;
    visit(kinds[i]!, keys[i]!, e);
  }
  kinds.length = 0;
  keys.length = 0;
  entries.length = 0;
}

/** Whether any entry waits in the dirty list (some may have left their maps since). */
export function hasDirty(b: Baseline): boolean {
  return b.dirty.entries.length > 0;
}

/** Adds one observation of the transition from `prev` to `next` (both bounded), and to its total. */
function touchTransition(b: Baseline, prev: string, next: string, ms: number): void {
  const touched = touchIn(b, 'transition', b.entries.transition, transitionKey(prev, next), ms);
  if (touched === REFUSED) return;
  const out = b.transitionsOut;
  if (out === undefined) return;
  const d = out.get(prev);
  if (d === undefined) out.set(prev, { total: 1, distinct: touched === ADDED ? 1 : 0 });
  else {
    d.total++;
    if (touched === ADDED) d.distinct++;
  }
}

export function has(b: Baseline, kind: EntryKind, key: string): boolean {
  return b.entries[kind].has(keyOf(kind, key));
}

export function count(b: Baseline, kind: EntryKind, key: string): number {
  return b.entries[kind].get(keyOf(kind, key))?.count ?? 0;
}

/** Most composite keys remembered per kind of key. */
export const MAX_MEMO_KEYS = 20_000;
const transitionKeys = new KeyMemo(MAX_MEMO_KEYS);

export function transitionKey(prev: string, next: string): string {
  // A key made before: two probes, read here rather than through KeyMemo.level (a call per level,
  // not inlined at its several callers: ~5% of detection's CPU per chain with the edge keys below).
  const made = (transitionKeys.root.get(prev) as Map<unknown, unknown> | undefined)?.get(next) as string | undefined;
  if (made !== undefined) return made;
  const level = transitionKeys.level(transitionKeys.root, prev);
  return (level.get(next) as string | undefined) ?? transitionKeys.add(level, next, JSON.stringify([bound(prev), bound(next)]));
}

/** An edge key with the parts of it that are not levels of {@link edgeKeysByOperation}. */
interface EdgeKeyOf {
  service: string;
  peerKind: Call['peerKind'];
  external: boolean;
  key: string;
}

/**
 * Edge keys made, by operation and peer, each with its service, peer kind and external flag:
 * two probes and a short scan (the services that call one operation of one peer) instead of a
 * memo level per part (five probes and calls; learning asks for every call). Starts over at
 * MAX_MEMO_KEYS keys.
 */
const edgeKeysByOperation = new Map<string, Map<string, EdgeKeyOf[]>>();
let edgeKeysKept = 0;

export function edgeKey(call: Call): string {
  let byPeer = edgeKeysByOperation.get(call.operation);
  const made = byPeer?.get(call.peer);
  if (made !== undefined) {
    for (let i = 0; i < made.length; i++) {
      const k = made[i]!;
      if (k.service === call.service && k.peerKind === call.peerKind && k.external === call.external) return k.key;
    }
  }
  const key = JSON.stringify([bound(call.service), bound(call.peer), bound(call.operation), call.peerKind, call.external]);
  if (edgeKeysKept >= MAX_MEMO_KEYS) {
    // Full: start over; this key is remembered from its next use on.
    edgeKeysByOperation.clear();
    edgeKeysKept = 0;
    return key;
  }
  const kept: EdgeKeyOf = { service: call.service, peerKind: call.peerKind, external: call.external, key };
  if (made !== undefined) made.push(kept);
  else {
    if (byPeer === undefined) edgeKeysByOperation.set(call.operation, (byPeer = new Map()));
    byPeer.set(call.peer, [kept]);
  }
  edgeKeysKept++;
  return key;
}

/** The calls of a chain that are learned and analysed, in time order. */
export function chainCalls(chain: Chain): Call[] {
  return chain.calls.length > MAX_CALLS_PER_CHAIN ? chain.calls.slice(0, MAX_CALLS_PER_CHAIN) : chain.calls;
}

/** The operation sequence of a chain with START and END around it. */
export function operationPath(chain: Chain): string[] {
  return operationPathOf(chainCalls(chain));
}

/** The operation sequence of calls with START and END around it. */
export function operationPathOf(calls: readonly Call[]): string[] {
  const path = new Array<string>(calls.length + 2);
  path[0] = START;
  for (let i = 0; i < calls.length; i++) path[i + 1] = bound(calls[i]!.operation);
  path[calls.length + 1] = END;
  return path;
}

/** Source kinds learned from a call (not host or pod names, which churn). */
export const SOURCE_KINDS = ['region', 'account', 'cluster', 'network', 'userAgent', 'addressClass'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/**
 * The learned value of a call's source of one kind, if it has one: asked kind by kind, as learning
 * and `new-source` ask for every call and a list per call cost more than the rest.
 */
export function sourceKey(call: Call, kind: SourceKind): string | undefined {
  const s = call.source;
  if (!s) return undefined;
  switch (kind) {
    case 'region':
      return s.region;
    case 'account':
      return s.account;
    case 'cluster':
      return s.cluster;
    case 'network':
      return s.network;
    case 'userAgent':
      return s.userAgent ? userAgentFamily(s.userAgent) : undefined;
    case 'addressClass':
      return s.clientAddress ? (s.publicAddress ? 'public' : 'private') : undefined;
  }
}

/**
 * A chain's surprisal as {@link chainSurprisalOf} gave it (undefined: no step was scored), against
 * the baseline as it still is.
 */
export interface ChainScore {
  surprisal: number | undefined;
}

/** learnChain's operations of the chain being learned (reused, grown when short). */
let learnedOperations: string[] = new Array<string>(64).fill('');

/**
 * Folds a chain into the baseline (the caller decides whether the chain may be learned). `scored`:
 * the chain's surprisal, already scored against this baseline with nothing learned or forgotten
 * since (detection's `unusual-chain` scores every chain of an enforcing identity just before it
 * is learned; scoring it again was a quarter of detection's CPU per chain); scored here when absent.
 */
export function learnChain(b: Baseline, chain: Chain, opts: LearningOptions, scored?: ChainScore): void {
  const calls = chainCalls(chain);
  if (calls.length === 0) return;
  if (chain.displayName && !b.displayName) b.displayName = chain.displayName;
  // Scored against the baseline before the chain, as detection scores it.
  const surprisal = scored ? scored.surprisal : callsSurprisalOf(b, calls);
  if (surprisal !== undefined) touchIn(b, 'chainSurprisal', b.entries.chainSurprisal, bound(surprisalBucket(surprisal)), calls[0]!.startMs);
  // The operations between START and END (operationPath without the list around them), in a
  // scratch array: learning is synchronous.
  if (learnedOperations.length < calls.length) learnedOperations = new Array<string>(2 * calls.length).fill('');
  const operations = learnedOperations;
  const entries = b.entries;
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i]!;
    const ms = call.startMs;
    const operation = (operations[i] = bound(call.operation));
    // Kind by kind, each map by name (see touchIn); keys as `keyOf` keeps them.
    touchIn(b, 'peer', entries.peer, bound(call.peer), ms);
    touchIn(b, 'operation', entries.operation, operation, ms);
    touchIn(b, 'edge', entries.edge, edgeKey(call), ms);
    if (call.target) touchIn(b, 'target', entries.target, bound(call.target), ms);
    if (call.account) touchIn(b, 'targetAccount', entries.targetAccount, bound(call.account), ms);
    if (call.version) touchIn(b, 'version', entries.version, versionKey(call.service, call.version), ms);
    const s = call.source;
    // sourceKey's values, kind by kind in SOURCE_KINDS order.
    if (s) {
      if (s.region) touchIn(b, 'region', entries.region, bound(s.region), ms);
      if (s.account) touchIn(b, 'account', entries.account, bound(s.account), ms);
      if (s.cluster) touchIn(b, 'cluster', entries.cluster, bound(s.cluster), ms);
      if (s.network) touchIn(b, 'network', entries.network, bound(s.network), ms);
      if (s.userAgent) {
        const family = userAgentFamily(s.userAgent);
        if (family) touchIn(b, 'userAgent', entries.userAgent, bound(family), ms);
      }
      if (s.clientAddress) touchIn(b, 'addressClass', entries.addressClass, s.publicAddress ? 'public' : 'private', ms);
    }
    if (b.firstMs === 0 || ms < b.firstMs) b.firstMs = ms;
    if (ms > b.lastMs) b.lastMs = ms;
  }
  b.calls += calls.length;
  let prev: string = START;
  for (let i = 0; i < calls.length; i++) {
    touchTransition(b, prev, operations[i]!, calls[i]!.startMs);
    prev = operations[i]!;
  }
  touchTransition(b, prev, END, calls[calls.length - 1]!.startMs);
  touchIn(b, 'shape', b.entries.shape, shapeKeyOf(operations, calls.length), calls[0]!.startMs);
  // The scratch keeps no operation alive.
  for (let i = 0; i < calls.length; i++) operations[i] = '';
  updateLearningState(b, opts);
}

/**
 * Takes a learned chain back out of the baseline: every observation `learnChain` added for it is
 * subtracted, and an entry left with none is removed (as forgetting removes it). Used when a later
 * part of a trace changes a chain that was learned: the old chain is unlearned and the merged one
 * learned, so the baseline counts each call once. Event-time bounds, rate windows and the
 * learning state (enforcing is sticky) stay as they are.
 */
export function unlearnChain(b: Baseline, chain: Chain): void {
  const calls = chainCalls(chain);
  if (calls.length === 0) return;
  const operations = new Array<string>(calls.length);
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i]!;
    operations[i] = bound(call.operation);
    untouch(b, 'peer', call.peer);
    untouch(b, 'operation', call.operation);
    untouch(b, 'edge', edgeKey(call));
    if (call.target) untouch(b, 'target', call.target);
    if (call.account) untouch(b, 'targetAccount', call.account);
    if (call.version) untouch(b, 'version', versionKey(call.service, call.version));
    for (const kind of SOURCE_KINDS) {
      const key = sourceKey(call, kind);
      if (key) untouch(b, kind, key);
    }
  }
  b.calls = Math.max(0, b.calls - calls.length);
  let prev: string = START;
  for (const op of operations) {
    untouch(b, 'transition', transitionKey(prev, op));
    prev = op;
  }
  untouch(b, 'transition', transitionKey(prev, END));
  untouch(b, 'shape', shapeKey(chainShape(operations)));
  // The chain's surprisal sample stays: it was scored against a baseline that is gone.
  // Totals are summed again on their next use.
  b.transitionsOut = undefined;
}

/** Removes one observation of (kind, key); the entry goes when none is left. */
function untouch(b: Baseline, kind: EntryKind, rawKey: string): void {
  const key = keyOf(kind, rawKey);
  const e = b.entries[kind].get(key);
  if (!e) return;
  e.count -= 1;
  if (e.count > 0) markDirty(b, kind, key, e);
  else removeEntry(b, kind, key, e);
}

/** Moves the identity to `enforcing` once it has enough calls and event time. Sticky. */
export function updateLearningState(b: Baseline, opts: LearningOptions): void {
  if (b.enforcingSinceMs !== undefined) return;
  if (learningState(b, opts).status === 'enforcing') b.enforcingSinceMs = b.lastMs;
}

export function learningState(b: Baseline, opts: LearningOptions): LearningState {
  const observedMs = b.calls > 0 ? b.lastMs - b.firstMs : 0;
  const byCalls = opts.minCalls <= 0 ? 1 : Math.min(1, b.calls / opts.minCalls);
  const byTime = opts.periodMs <= 0 ? 1 : Math.min(1, observedMs / opts.periodMs);
  const progress = b.enforcingSinceMs !== undefined ? 1 : Math.min(byCalls, byTime);
  const ready = b.calls > 0 && byCalls >= 1 && byTime >= 1;
  return {
    status: b.enforcingSinceMs !== undefined || ready ? 'enforcing' : 'learning',
    progress,
    calls: b.calls,
    observedMs,
  };
}

/**
 * Drops entries not seen for `forgetAfterMs` before `nowMs` (event time). Runs at most once per
 * FORGET_SWEEP_INTERVAL_MS of event time unless forced. Returns how many entries were dropped.
 */
export function forget(b: Baseline, nowMs: number, forgetAfterMs: number, force = false): number {
  if (forgetAfterMs <= 0) return 0;
  if (!force && nowMs - b.lastSweepMs < FORGET_SWEEP_INTERVAL_MS) return 0;
  b.lastSweepMs = nowMs;
  const cutoff = nowMs - forgetAfterMs;
  let dropped = 0;
  for (const kind of ENTRY_KINDS) {
    for (const [key, e] of b.entries[kind]) {
      if (e.lastMs >= cutoff) continue;
      removeEntry(b, kind, key, e);
      dropped++;
      // Totals are summed again on their next use (sweeps are rare).
      if (kind === 'transition') b.transitionsOut = undefined;
    }
  }
  return dropped;
}

/** The `n` most frequent keys of a kind, most frequent first. */
export function topEntries(b: Baseline, kind: EntryKind, n: number): { key: string; count: number }[] {
  const all = [...b.entries[kind]].map(([key, e]) => ({ key, count: e.count }));
  all.sort((x, y) => y.count - x.count || (x.key < y.key ? -1 : 1));
  return all.slice(0, n);
}

/** The learned transitions out of `operation`, most frequent first. */
export function transitionsFrom(b: Baseline, operation: string): { next: string; count: number }[] {
  const out: { next: string; count: number }[] = [];
  for (const [key, e] of b.entries.transition) {
    const pair = parsedPair(key);
    if (pair && pair[0] === operation) out.push({ next: pair[1], count: e.count });
  }
  out.sort((x, y) => y.count - x.count);
  return out;
}

/** Learned transitions out of one operation: the sum of their counts, and how many different steps. */
export interface Departures {
  total: number;
  distinct: number;
}

/**
 * The learned transitions out of each operation: summed in one pass over the transitions on first
 * use, then kept by learning (`unusual-chain` asks at every chain, and a pass per chain cost as
 * much as the rest of the detector).
 */
export function departuresOut(b: Baseline): ReadonlyMap<string, Departures> {
  if (b.transitionsOut) return b.transitionsOut;
  const out = new Map<string, Departures>();
  for (const [key, e] of b.entries.transition) {
    const pair = parsedPair(key);
    if (!pair) continue;
    const d = out.get(pair[0]);
    if (d === undefined) out.set(pair[0], { total: e.count, distinct: 1 });
    else {
      d.total += e.count;
      d.distinct++;
    }
  }
  b.transitionsOut = out;
  return out;
}

/** The sum of the learned transitions' counts out of each operation ({@link departuresOut}'s totals, as a new map). */
export function transitionTotals(b: Baseline): ReadonlyMap<string, number> {
  return new Map([...departuresOut(b)].map(([op, d]) => [op, d.total]));
}

/** The chain model's view of an identity's learned transitions. */
export function transitionCounts(b: Baseline): TransitionCounts {
  return {
    count: (prev, next) => count(b, 'transition', transitionKey(prev, next)),
    departures: (prev) => {
      const d = departuresOut(b).get(prev);
      return { total: d?.total ?? 0, distinct: d?.distinct ?? 0 };
    },
    successors: (prev) => transitionsFrom(b, prev),
  };
}

/** The chain model's scores of a chain's steps against this baseline (START and END included). */
export function chainSteps(b: Baseline, path: readonly string[], calls: readonly Call[]): StepScore[] {
  return scoreSteps(transitionCounts(b), path, calls, (op) => op === START || op === END || b.entries.operation.has(bound(op)));
}

/**
 * chainSurprisal(chainSteps(b, path, calls)) without a step object or a closure per chain:
 * learning scores every chain it learns and `unusual-chain` every chain it judges, and most have
 * only steps taken before. A chain with a step never taken (whose score looks for a skipped step)
 * is scored the general way. Hand-written for the hot path; the same comparisons and arithmetic
 * as scoreSteps, so the same value to the bit (chain-model.test.ts compares them).
 */
export function chainSurprisalOf(b: Baseline, path: readonly string[], calls: readonly Call[]): number | undefined {
  const known = b.entries.operation;
  let out: ReadonlyMap<string, Departures> | undefined;
  let max: number | undefined;
  const isKnown = (op: string): boolean => op === START || op === END || known.has(bound(op));
  // Each operation looked up once: a step's `to` is the next step's `from`.
  let fromKnown = path.length > 0 && isKnown(path[0]!);
  for (let i = 1; i < path.length; i++) {
    const from = path[i - 1]!;
    const to = path[i]!;
    const toKnown = isKnown(to);
    const between = fromKnown && toKnown;
    fromKnown = toKnown;
    if (!between) continue;
    if (from === to && calls[i - 2]?.status === 'error') continue;
    // Built where scoreSteps builds them (at the first step it scores).
    out ??= departuresOut(b);
    const d = out.get(from);
    // MIN_STEP_SUPPORT is above 0: a step out of an operation without departures is skipped.
    if (d === undefined || d.total < MIN_STEP_SUPPORT) continue;
    const n = b.entries.transition.get(transitionKey(from, to))?.count ?? 0;
    if (n === 0) return chainSurprisal(chainSteps(b, path, calls));
    const bits = -Math.log2(n / (d.total + d.distinct));
    if (max === undefined || bits > max) max = bits;
  }
  return max;
}

/** Whether `op`, a step of a path, is an operation the baseline knows (START and END always are). */
function isKnownStep(known: ReadonlyMap<string, Entry>, op: string): boolean {
  return op === START || op === END || known.has(bound(op));
}

/**
 * chainSurprisalOf(b, operationPath of `calls`, calls) without the path's array: the same steps,
 * comparisons and arithmetic, so the same value to the bit (chain-model.test.ts compares them).
 * Learning and `unusual-chain` score a chain each; the path (an array per chain) and a closure
 * per call of chainSurprisalOf were a fifth of detection's allocated bytes on the main thread
 * (bench/README.md "Main thread per chain (issue 19, 2026-12-07, third)"). A chain with a step
 * never taken is scored the general way, on the path.
 */
export function callsSurprisalOf(b: Baseline, calls: readonly Call[]): number | undefined {
  const known = b.entries.operation;
  const n = calls.length;
  let out: ReadonlyMap<string, Departures> | undefined;
  let max: number | undefined;
  // The path is START, the calls' bounded operations, END; step i goes from path[i - 1] to path[i].
  let from: string = START;
  let fromKnown = true;
  for (let i = 1; i < n + 2; i++) {
    const to = i <= n ? bound(calls[i - 1]!.operation) : END;
    const toKnown = isKnownStep(known, to);
    const between = fromKnown && toKnown;
    const prev = from;
    from = to;
    fromKnown = toKnown;
    if (!between) continue;
    if (prev === to && calls[i - 2]?.status === 'error') continue;
    out ??= departuresOut(b);
    const d = out.get(prev);
    if (d === undefined || d.total < MIN_STEP_SUPPORT) continue;
    const count = b.entries.transition.get(transitionKey(prev, to))?.count ?? 0;
    if (count === 0) return chainSurprisal(chainSteps(b, operationPathOf(calls), calls));
    const bits = -Math.log2(count / (d.total + d.distinct));
    if (max === undefined || bits > max) max = bits;
  }
  return max;
}

/**
 * Where the identity's chains stop being usual, from the surprisal of the chains it learned:
 * `calibrate` over the `chainSurprisal` entries, to the bit. Hand-written for the hot path
 * (`unusual-chain` asks for every chain above the lowest level, and building, parsing and sorting
 * the histogram each time was 2% of the main thread): the buckets' numeric order is kept with the
 * baseline and built again only when the histogram's keys changed (a new bucket, one forgotten),
 * then the counts are read from the entries as they are now.
 */
export function chainCalibration(b: Baseline): Calibration {
  const histogram = b.entries.chainSurprisal;
  let order = b.surprisalOrder;
  if (!order || !sameKeys(order, histogram)) order = b.surprisalOrder = bucketOrder(histogram);
  const { keys, bits } = order;
  let chains = 0;
  for (let i = 0; i < keys.length; i++) {
    const n = histogram.get(keys[i]!)!.count;
    if (n <= 0) continue;
    chains += n;
  }
  if (chains < MIN_CALIBRATION_CHAINS) return { chains, thresholdBits: UNCALIBRATED_THRESHOLD_BITS };
  // The walk of `calibrate`; buckets of equal bits give the same level in any order.
  const rank = Math.ceil(CALIBRATION_QUANTILE * chains);
  let seen = 0;
  let usualBits = 0;
  for (let i = 0; i < keys.length; i++) {
    const n = histogram.get(keys[i]!)!.count;
    if (n <= 0) continue;
    seen += n;
    usualBits = bits[i]! + SURPRISAL_BUCKET_BITS;
    if (seen >= rank) break;
  }
  return { chains, usualBits, thresholdBits: usualBits + CALIBRATION_MARGIN_BITS };
}

/** The `chainSurprisal` keys in the numeric order of their buckets (see {@link chainCalibration}). */
export interface SurprisalOrder {
  /** Keys that are numbers, by their value (a stable sort, as `calibrate` sorts)... */
  keys: string[];
  bits: number[];
  /** ...and those that are not (never counted; kept to tell whether the key set changed). */
  other: string[];
}

function bucketOrder(histogram: ReadonlyMap<string, Entry>): SurprisalOrder {
  const buckets: Array<[number, string]> = [];
  const other: string[] = [];
  for (const key of histogram.keys()) {
    const bits = Number(key);
    if (Number.isFinite(bits)) buckets.push([bits, key]);
    else other.push(key);
  }
  buckets.sort((x, y) => x[0] - y[0]);
  return { keys: buckets.map((x) => x[1]), bits: buckets.map((x) => x[0]), other };
}

/** Whether the histogram has exactly the keys `order` was built from (as many, each of them in it). */
function sameKeys(order: SurprisalOrder, histogram: ReadonlyMap<string, Entry>): boolean {
  if (histogram.size !== order.keys.length + order.other.length) return false;
  for (const key of order.keys) if (!histogram.has(key)) return false;
  for (const key of order.other) if (!histogram.has(key)) return false;
  return true;
}

const versionKeys = new KeyMemo(MAX_MEMO_KEYS);

/** The `version` entry key of a caller service's `service.version`. */
/** The caller service of an `edge` key (edgeKey), undefined for a key that is not one. */
export function parseEdgeService(key: string): string | undefined {
  try {
    const v: unknown = JSON.parse(key);
    return Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
  } catch {
    return undefined;
  }
}

export function versionKey(service: string, version: string): string {
  // A key made before: two probes read here (see transitionKey).
  const made = (versionKeys.root.get(service) as Map<unknown, unknown> | undefined)?.get(version) as string | undefined;
  if (made !== undefined) return made;
  const level = versionKeys.level(versionKeys.root, service);
  return (level.get(version) as string | undefined) ?? versionKeys.add(level, version, JSON.stringify([bound(service), bound(version)]));
}

/** Transition keys already parsed (read-only pairs); cleared whenever it holds MAX_MEMO_KEYS. */
const parsedPairs = new Map<string, readonly [string, string] | undefined>();

/**
 * {@link parsePair}, remembered: `unusual-chain` reads every transition out of an operation at
 * each step of each chain, and the keys are the baseline's own (their hashes already computed).
 */
function parsedPair(key: string): readonly [string, string] | undefined {
  let pair = parsedPairs.get(key);
  if (pair === undefined && !parsedPairs.has(key)) {
    pair = parsePair(key);
    if (parsedPairs.size >= MAX_MEMO_KEYS) parsedPairs.clear();
    parsedPairs.set(key, pair);
  }
  return pair;
}

/** A JSON [a, b] key, or undefined when it is not one. */
export function parsePair(key: string): [string, string] | undefined {
  try {
    const v: unknown = JSON.parse(key);
    return Array.isArray(v) && v.length >= 2 ? [String(v[0]), String(v[1])] : undefined;
  } catch {
    return undefined;
  }
}
