import { bound, END, markDirty, removeEntry, START, type Baseline, type EntryKind } from './baseline.js';
import { chainShape, parseShapeKey, shapeKey } from './shape.js';

/** The new name of an operation (of a call to `peer`, when known), or undefined to keep it. */
export type OperationRename = (operation: string, peer?: string) => string | undefined;

/**
 * Renames operations throughout a baseline: the operation entries, the transitions and shapes that
 * name them, and the learned call graph's edges. Used when path positions become parameters: the
 * literal operations learned before (`GET /users/alice/profile`) become the template new calls
 * carry (`GET /users/{param}/profile`), so the template is known and the identity raises no alert
 * for it. Entries that end up under one key are merged (counts added, the widest event-time
 * bounds kept); the old keys are removed (written as removed with the next checkpoint). Returns the
 * number of entries renamed.
 */
export function renameOperations(b: Baseline, rename: OperationRename): number {
  let renamed = 0;
  renamed += rekey(b, 'operation', (key) => rename(key));
  renamed += rekey(b, 'transition', (key) => renamedList(key, rename));
  renamed += rekey(b, 'shape', (key) => {
    const ops = parseShapeKey(key);
    const next = ops.map((op) => bound(rename(op) ?? op));
    return next.some((op, i) => op !== ops[i]) ? shapeKey(chainShape(next)) : undefined;
  });
  renamed += rekey(b, 'edge', (key) => renamedEdge(key, rename));
  if (renamed > 0) {
    // Summed again on their next use.
    b.transitionsOut = undefined;
  }
  return renamed;
}

/** Moves every entry of `kind` whose key `next` maps to a new key; returns how many moved. */
function rekey(b: Baseline, kind: EntryKind, next: (key: string) => string | undefined): number {
  const map = b.entries[kind];
  const moves: Array<[string, string]> = [];
  for (const key of map.keys()) {
    const to = next(key);
    if (to !== undefined && to !== key) moves.push([key, to]);
  }
  for (const [from, to] of moves) {
    const e = map.get(from)!;
    removeEntry(b, kind, from, e);
    let into = map.get(to);
    if (into) {
      into.count += e.count;
      into.firstMs = Math.min(into.firstMs, e.firstMs);
      into.lastMs = Math.max(into.lastMs, e.lastMs);
    } else {
      map.set(to, (into = { count: e.count, firstMs: e.firstMs, lastMs: e.lastMs, dirty: false }));
    }
    markDirty(b, kind, to, into);
    b.removed[kind].delete(to);
  }
  return moves.length;
}

/** A transition key `[previous, next]` with its operations renamed (START and END stay). */
function renamedList(key: string, rename: OperationRename): string | undefined {
  const pair = parseJsonArray(key);
  if (!pair || pair.length !== 2) return undefined;
  const out = pair.map((op) => (op === START || op === END || typeof op !== 'string' ? op : bound(rename(op) ?? op)));
  return out.some((op, i) => op !== pair[i]) ? JSON.stringify(out) : undefined;
}

/** An edge key `[service, peer, operation, peerKind, external]` with its operation renamed (the peer is known). */
function renamedEdge(key: string, rename: OperationRename): string | undefined {
  const edge = parseJsonArray(key);
  if (!edge || edge.length !== 5 || typeof edge[1] !== 'string' || typeof edge[2] !== 'string') return undefined;
  const op = rename(edge[2], edge[1]);
  return op === undefined || op === edge[2] ? undefined : JSON.stringify([edge[0], edge[1], bound(op), edge[3], edge[4]]);
}

function parseJsonArray(key: string): unknown[] | undefined {
  try {
    const v: unknown = JSON.parse(key);
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
