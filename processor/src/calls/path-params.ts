/**
 * Learned path parameters: beyond the shapes `isIdLike` knows, a path position whose literal
 * values under one prefix keep changing is a parameter. `/users/alice/profile`,
 * `/users/bob/profile`, ... on one peer become `/users/{param}/profile` once `threshold` distinct
 * values were seen at that position, the way log template miners (Drain) group lines and APM
 * agents group URLs. The count cannot tell names of endpoints from names of things: a peer that
 * serves `threshold` or more endpoints side by side under one prefix, with paths of one length
 * (`/api/orders`, `/api/users`, ...), has them folded into one template, and a new endpoint there
 * is then no new operation. Hence a threshold well above the endpoints an API lists side by side.
 *
 * A position is counted under its group: the peer, the HTTP method, the number of segments and
 * the segments before it (as templated so far, so a learned position earlier in the path folds the
 * groups after it). Paths of another length are another group: `/users/alice` and
 * `/users/alice/profile` are learned apart.
 *
 * Memory is bounded: at most `maxGroups` groups are counted (the least recently used is evicted
 * and counted), each keeps at most `threshold` values of at most {@link MAX_VALUE_LENGTH}
 * characters, and at most `maxParameters` learned positions are kept (beyond it no new one is
 * learned, counted). Learned positions are what is persisted (see {@link PathParameterStore}); the
 * counted values are not, so a restart starts their counts again.
 */

/** Placeholder of a learned parameter; `{id}` stays the placeholder of id shapes. */
export const PARAM_PLACEHOLDER = '{param}';
/** Distinct values at one position that make it a parameter (default). */
export const DEFAULT_PARAM_THRESHOLD = 12;
/** Groups counted at most (default). */
export const DEFAULT_MAX_PARAM_GROUPS = 10_000;
/** Learned positions kept at most (default). */
export const DEFAULT_MAX_PARAMETERS = 10_000;
/** Longest value kept while counting (longer values are cut; two values equal in their first 64 characters count once). */
export const MAX_VALUE_LENGTH = 64;
/** Longest peer or prefix of a learned position. */
export const MAX_PARAM_KEY_PART = 512;

/** One learned parameter position, as persisted. */
export interface LearnedPathParameter {
  /** The call's peer. */
  peer: string;
  /** The HTTP method (`GET`, `_OTHER`, ...). */
  method: string;
  /** Segments of the paths it applies to (the leading empty one of `/a/b` included: 3). */
  segments: number;
  /** The templated path before the position, e.g. `/users` (its segment count gives the position). */
  prefix: string;
  /** Event time it was learned (ms). */
  learnedMs: number;
}

/** Where learned positions are kept across restarts (the backend implements it on its store). */
export interface PathParameterStore {
  /** Every learned position. */
  loadPathParameters(): Promise<LearnedPathParameter[]>;
  /** Adds positions (one already stored is kept as it is). Resolved: durable. */
  savePathParameters(parameters: readonly LearnedPathParameter[]): Promise<void>;
}

export interface PathParameterOptions {
  /** Distinct values at one position that make it a parameter (at least 2). */
  threshold?: number;
  /** Groups counted at most; the least recently used is evicted beyond it. */
  maxGroups?: number;
  /** Learned positions kept at most. */
  maxParameters?: number;
}

export interface PathParameterStats {
  /** Groups being counted. */
  groups: number;
  /** Learned positions. */
  parameters: number;
  /** Groups evicted to stay within `maxGroups`. */
  evictedGroups: number;
  /** Positions that passed the threshold while `maxParameters` were already learned. */
  refusedParameters: number;
}

export interface PathParameterLearner {
  /**
   * The operation with learned positions replaced by {@link PARAM_PLACEHOLDER}, learning from it on
   * the way. Only `METHOD /path` operations change; others come back as they are. `ms` is the
   * call's event time (recorded on positions it teaches).
   */
  template(peer: string, operation: string, ms: number): string;
  /** Adds positions learned before (from the store); beyond `maxParameters` they are refused. */
  restore(parameters: readonly LearnedPathParameter[]): void;
  /** Positions learned since the last call (to persist). */
  takeLearned(): LearnedPathParameter[];
  stats(): PathParameterStats;
}

const HTTP_OPERATION = /^([A-Z_]{1,16}) (\/[^\s]*)$/;

/** Creates a learner; pure and synchronous, no I/O. */
export function createPathParameterLearner(options: PathParameterOptions = {}): PathParameterLearner {
  const threshold = Math.max(2, Math.floor(options.threshold ?? DEFAULT_PARAM_THRESHOLD));
  const maxGroups = Math.max(1, Math.floor(options.maxGroups ?? DEFAULT_MAX_PARAM_GROUPS));
  const maxParameters = Math.max(0, Math.floor(options.maxParameters ?? DEFAULT_MAX_PARAMETERS));
  /** Learned positions by group key. */
  const learned = new Set<string>();
  /** Values counted per group key, in least recently used order (a Map keeps insertion order). */
  const counting = new Map<string, Set<string>>();
  let fresh: LearnedPathParameter[] = [];
  const stats = { evictedGroups: 0, refusedParameters: 0 };

  const learn = (p: LearnedPathParameter, key: string): boolean => {
    if (learned.has(key)) return true;
    if (learned.size >= maxParameters) {
      stats.refusedParameters++;
      return false;
    }
    learned.add(key);
    counting.delete(key);
    return true;
  };

  /** Counts `value` in the group; true when the position just became a parameter. */
  const count = (key: string, value: string): boolean => {
    let values = counting.get(key);
    if (values) {
      counting.delete(key); // re-inserted below: most recently used last
    } else {
      values = new Set();
      if (counting.size >= maxGroups) {
        const oldest = counting.keys().next().value as string;
        counting.delete(oldest);
        stats.evictedGroups++;
      }
    }
    counting.set(key, values);
    // At most `threshold` values are kept: the position becomes a parameter when the set is full.
    const kept = value.length > MAX_VALUE_LENGTH ? value.slice(0, MAX_VALUE_LENGTH) : value;
    if (!values.has(kept)) values.add(ownCopy(kept));
    return values.size >= threshold;
  };

  return {
    template(peer, operation, ms) {
      const m = HTTP_OPERATION.exec(operation);
      if (!m) return operation;
      const method = m[1]!;
      const segs = m[2]!.split('/');
      const boundedPeer = peer.slice(0, MAX_PARAM_KEY_PART);
      let changed = false;
      for (let i = 1; i < segs.length; i++) {
        const seg = segs[i]!;
        if (seg === '' || seg.includes('{')) continue;
        const prefix = segs.slice(0, i).join('/').slice(0, MAX_PARAM_KEY_PART);
        const key = groupKey(boundedPeer, method, segs.length, prefix);
        if (!learned.has(key)) {
          if (!count(key, seg)) continue;
          const p = { peer: boundedPeer, method, segments: segs.length, prefix, learnedMs: ms };
          if (!learn(p, key)) {
            counting.delete(key);
            continue;
          }
          fresh.push(p);
        }
        segs[i] = PARAM_PLACEHOLDER;
        changed = true;
      }
      return changed ? `${method} ${segs.join('/')}` : operation;
    },
    restore(parameters) {
      for (const p of parameters) learn(p, groupKey(p.peer, p.method, p.segments, p.prefix));
    },
    takeLearned() {
      const out = fresh;
      fresh = [];
      return out;
    },
    stats: () => ({ groups: counting.size, parameters: learned.size, ...stats }),
  };
}

/**
 * A copy of a text that holds no reference to the text it was cut from (V8 keeps a slice or a
 * split part as a view of its parent, which would keep the whole operation alive).
 */
function ownCopy(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

function groupKey(peer: string, method: string, segments: number, prefix: string): string {
  return `${peer}\u0000${method}\u0000${segments}\u0000${prefix}`;
}

/**
 * Applies given learned positions to an operation learned before they were (a literal entry of a
 * baseline): `GET /users/alice/profile` with the position of `/users` becomes
 * `GET /users/{param}/profile`. A prefix segment that is a placeholder matches any segment. `peer`,
 * when known, must be the position's; without it (an operation without its peer) any peer's
 * position applies. Returns undefined when nothing applies.
 */
export function applyPathParameters(parameters: readonly LearnedPathParameter[], operation: string, peer?: string): string | undefined {
  const m = HTTP_OPERATION.exec(operation);
  if (!m) return undefined;
  const method = m[1]!;
  const segs = m[2]!.split('/');
  const relevant = parameters.filter((p) => p.method === method && p.segments === segs.length && (peer === undefined || p.peer === peer));
  if (relevant.length === 0) return undefined;
  const prefixes = relevant.map((p) => p.prefix.split('/'));
  let changed = false;
  // A position folded here can make a later one's prefix match: go again until nothing changes.
  for (let again = true; again; ) {
    again = false;
    for (const prefix of prefixes) {
      const at = prefix.length;
      if (at >= segs.length || segs[at] === PARAM_PLACEHOLDER || !prefixMatches(prefix, segs)) continue;
      segs[at] = PARAM_PLACEHOLDER;
      changed = again = true;
    }
  }
  return changed ? `${method} ${segs.join('/')}` : undefined;
}

function prefixMatches(prefix: readonly string[], segs: readonly string[]): boolean {
  for (let i = 0; i < prefix.length; i++) {
    if (prefix[i] !== segs[i] && prefix[i] !== PARAM_PLACEHOLDER) return false;
  }
  return true;
}
