import type { Logger } from '@conduct/processor';
import { ENTRY_KINDS, createBaseline, takeDirty, type Baseline, type EntryKind, type RateState } from '../learn/index.js';
import type { BaselineDelta, BaselineEntryRecord, BaselineGroup, BaselineRecord, BaselineScope, DetectionState } from '../store/index.js';

/** The key of one suppressed finding key. */
export function suppressionRef(identity: string, detector: string, key: string): string {
  return `${identity}\u0000${detector}\u0000${key}`;
}

/**
 * Detection's learned state in memory (baselines by identity, suppressed finding keys) and what
 * of it the store has not seen yet. Baselines changed since their last write are taken as deltas
 * into the next checkpoint: each replaces the identity's record (its rate state as JSON) and every
 * changed entry, so with a persist interval an identity active in every batch is written once per
 * interval instead of once per batch. A crash loses the learning of at most the last interval: the
 * journal replays only requests whose chains were not stored, and stored chains are never learned
 * again.
 */
export interface BaselineBook {
  readonly baselines: Map<string, Baseline>;
  readonly suppressions: Set<string>;
  /** A new, empty baseline for an identity (kept and marked unwritten). */
  add(identity: string, kind: string, displayName: string | undefined): Baseline;
  /** Marks a baseline changed. */
  touch(b: Baseline): void;
  /** Whether any baseline waits to be written. */
  readonly pending: boolean;
  /** Takes the deltas of every changed baseline (their dirty marks are cleared). */
  takeDeltas(): BaselineDelta[];
  /** The delta of one baseline now (it is no longer pending). */
  takeDelta(b: Baseline): BaselineDelta;
}

/** Loads the baselines and suppressions of `scope` (all when absent) from the store. */
export async function loadBaselineBook(
  state: DetectionState,
  options: { logger: Logger; scope?: BaselineScope; groupOf?: (identity: string) => BaselineGroup },
): Promise<BaselineBook> {
  const baselines = new Map<string, Baseline>();
  const suppressions = new Set<string>();
  const unwritten = new Set<Baseline>();
  const groupOf = options.groupOf ?? (() => 0);
  const kinds = new Set<string>(ENTRY_KINDS);
  await state.loadBaselines(
    {
      baseline(r) {
        baselines.set(r.identity, fromRecord(r));
      },
      entry(identity, e) {
        const b = baselines.get(identity);
        if (!b || !kinds.has(e.kind)) return;
        b.entries[e.kind as EntryKind].set(e.key, { count: e.count, firstMs: e.firstMs, lastMs: e.lastMs, dirty: false });
      },
    },
    options.scope,
  );
  for (const s of await state.loadSuppressions(options.scope)) suppressions.add(suppressionRef(s.identity, s.detector, s.key));
  options.logger.info({ identities: baselines.size, suppressions: suppressions.size }, 'detection state loaded');

  const takeDelta = (b: Baseline): BaselineDelta => {
    unwritten.delete(b);
    // Entries in the order they first changed (not kind by kind): the rows are the same either way.
    const entries: BaselineEntryRecord[] = [];
    takeDirty(b, (kind, key, e) => void entries.push({ kind, key, count: e.count, firstMs: e.firstMs, lastMs: e.lastMs }));
    const removed: Array<{ kind: string; key: string }> = [];
    for (const kind of ENTRY_KINDS) {
      const gone = b.removed[kind];
      if (gone.size > 0) {
        for (const key of gone) removed.push({ kind, key });
        gone.clear();
      }
    }
    return { baseline: toRecord(b, groupOf(b.identity)), entries, removed };
  };

  return {
    baselines,
    suppressions,
    add(identity, kind, displayName) {
      const b = createBaseline(identity, kind, displayName);
      baselines.set(identity, b);
      unwritten.add(b);
      return b;
    },
    touch: (b) => void unwritten.add(b),
    get pending() {
      return unwritten.size > 0;
    },
    takeDeltas: () => [...unwritten].map(takeDelta),
    takeDelta,
  };
}

function fromRecord(r: BaselineRecord): Baseline {
  const b = createBaseline(r.identity, r.kind, r.displayName);
  b.firstMs = r.firstMs;
  b.lastMs = r.lastMs;
  b.calls = r.calls;
  if (r.enforcingSinceMs !== undefined) b.enforcingSinceMs = r.enforcingSinceMs;
  b.compromised = r.compromised;
  b.dropped = r.dropped;
  b.lastSweepMs = r.lastSweepMs;
  b.rate = r.rate as RateState;
  b.recentSources = r.recentSources as Baseline['recentSources'];
  return b;
}

function toRecord(b: Baseline, group: BaselineGroup): BaselineRecord {
  return {
    identity: b.identity,
    kind: b.identityKind,
    ...(b.displayName !== undefined ? { displayName: b.displayName } : {}),
    group,
    firstMs: b.firstMs,
    lastMs: b.lastMs,
    calls: b.calls,
    ...(b.enforcingSinceMs !== undefined ? { enforcingSinceMs: b.enforcingSinceMs } : {}),
    compromised: b.compromised,
    dropped: b.dropped,
    lastSweepMs: b.lastSweepMs,
    rate: b.rate,
    recentSources: b.recentSources,
  };
}
