import type { Baseline } from './baseline.js';

/**
 * Parameter candidates: a new HTTP operation that differs from operations the identity already
 * performed on the same peer in one path segment only, at a position where those operations show
 * at least MIN_CANDIDATE_VALUES distinct values, each rarely seen (at most RARE_COUNT times), is
 * most likely the next value of a parameter the path templates have not learned yet (the
 * processor learns a position at 12 distinct values). Endpoints called side by side are called
 * often; ids, names and dates in a path mostly once or twice. Pure: the values the identity was
 * alerted on (held out of the baseline) are remembered on the baseline (`candidateValues`, not
 * persisted, bounded) by `rememberCandidateValues`.
 */

/** Distinct rare values at one position that make a new value there a candidate. */
export const MIN_CANDIDATE_VALUES = 2;
/** A learned operation seen at most this often counts as a rare value. */
export const RARE_COUNT = 3;
/** Positions remembered per identity (oldest forgotten first). */
export const MAX_CANDIDATE_GROUPS = 256;
/** Values remembered per position. */
export const MAX_CANDIDATE_VALUES = 16;

export interface ParameterCandidate {
  /** The operation with the varying segment as `{param}`. */
  template: string;
  /** Values seen at that position before (learned rare ones and remembered ones), at most 8. */
  values: string[];
}

/** Each position of a `METHOD /a/b` operation on a peer: its group key (the rest of the path) and value. */
function positions(peer: string, operation: string): Array<{ group: string; value: string; template: string }> {
  const space = operation.indexOf(' ');
  if (space <= 0 || operation[space + 1] !== '/') return [];
  const method = operation.slice(0, space);
  const segs = operation.slice(space + 1).split('/');
  const out: Array<{ group: string; value: string; template: string }> = [];
  // Segment 0 is the empty one before the leading slash.
  for (let i = 1; i < segs.length; i++) {
    const value = segs[i]!;
    if (value === '' || value.startsWith('{')) continue;
    const rest = [...segs.slice(0, i), '{param}', ...segs.slice(i + 1)].join('/');
    out.push({ group: `${peer}\u0000${method} ${rest}`, value, template: `${method} ${rest}` });
  }
  return out;
}

/** The learned (peer, operation, count) of the identity's call graph edges on `peer`. */
function learnedOn(b: Baseline, peer: string): Array<{ operation: string; count: number }> {
  const out: Array<{ operation: string; count: number }> = [];
  for (const [key, e] of b.entries.edge) {
    try {
      const v: unknown = JSON.parse(key);
      if (Array.isArray(v) && v[1] === peer && typeof v[2] === 'string') out.push({ operation: v[2], count: e.count });
    } catch {
      /* not an edge key */
    }
  }
  return out;
}

/** The candidate a new operation on a known peer is, if it is one (see the module comment). */
export function parameterCandidate(b: Baseline, peer: string, operation: string): ParameterCandidate | undefined {
  const mine = positions(peer, operation);
  if (mine.length === 0) return undefined;
  const rare = new Map<string, Set<string>>();
  for (const { operation: op, count } of learnedOn(b, peer)) {
    if (count > RARE_COUNT) continue;
    for (const p of positions(peer, op)) {
      const set = rare.get(p.group) ?? new Set<string>();
      set.add(p.value);
      rare.set(p.group, set);
    }
  }
  for (const p of mine) {
    const values = new Set([...(rare.get(p.group) ?? []), ...(b.candidateValues?.get(p.group) ?? [])]);
    values.delete(p.value);
    if (values.size >= MIN_CANDIDATE_VALUES) return { template: p.template, values: [...values].slice(0, 8) };
  }
  return undefined;
}

/** Remembers the values of new operations an identity was alerted on (their chains are not learned). */
export function rememberCandidateValues(b: Baseline, peer: string, operation: string): void {
  const memory = (b.candidateValues ??= new Map());
  for (const p of positions(peer, operation)) {
    const set = memory.get(p.group) ?? new Set<string>();
    memory.delete(p.group);
    if (set.size < MAX_CANDIDATE_VALUES) set.add(p.value);
    memory.set(p.group, set);
    if (memory.size > MAX_CANDIDATE_GROUPS) memory.delete(memory.keys().next().value!);
  }
}
