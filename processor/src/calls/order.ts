import type { Call } from '../model.js';

/** Parent span ids followed at most when looking for a call's ancestor call (bounds hostile depth). */
export const MAX_ANCESTRY_DEPTH = 256;

/** Parent span id of a span of the trace, or undefined when the span is unknown or a root. */
export type ParentOf = (spanId: string) => string | undefined;

/**
 * Parent links known from the calls alone: each call's span to its parent, and a stitched call's
 * server span to its client span (so the callee's own calls descend from the call).
 */
export function parentsFromCalls(calls: readonly Call[]): ParentOf {
  const parents = new Map<string, string>();
  for (const c of calls) {
    if (c.parentSpanId && !parents.has(c.spanId)) parents.set(c.spanId, c.parentSpanId);
    if (c.serverSpanId && c.serverSpanId !== c.spanId && !parents.has(c.serverSpanId)) parents.set(c.serverSpanId, c.spanId);
  }
  return (id) => parents.get(id);
}

/**
 * Sorts one identity's calls in place into a stable, deterministic order: by start time; among
 * calls that start in the same millisecond (SDK timestamps often have ms resolution) a call whose
 * span descends from another call's span comes after it; then by end time, then by span id.
 *
 * Within a run of equal start times the order is a topological sort of the ancestry forest that
 * always takes the available call with the earliest end (then smallest span id) next: O(n log n)
 * plus at most MAX_ANCESTRY_DEPTH parent steps per call.
 */
export function orderCalls(calls: Call[], parentOf?: ParentOf): Call[] {
  if (calls.length < 2) return calls;
  const parents = parentOf ?? parentsFromCalls(calls);
  if (calls.length <= INSERTION_SORT_MAX) insertionSort(calls);
  else calls.sort(byStartThenEnd);
  for (let i = 0; i < calls.length; ) {
    let j = i + 1;
    while (j < calls.length && calls[j]!.startMs === calls[i]!.startMs) j++;
    if (j - i > 1) orderRun(calls, i, j, parents);
    i = j;
  }
  return calls;
}

/** Lists up to this long are sorted by insertion (see insertionSort). */
export const INSERTION_SORT_MAX = 16;

/**
 * Sorts a short list by byStartThenEnd, stably, as Array.prototype.sort would (both are stable
 * and the order is total, so the result is the same). Written out because V8's sort allocates
 * its merge state (~1.4 KB) on every call: sorting each chain's calls was a fifth of the bytes
 * the pipeline thread allocated with 4-span traces (2026-12-06, sampling heap profile).
 */
function insertionSort(calls: Call[]): void {
  for (let i = 1; i < calls.length; i++) {
    const c = calls[i]!;
    let j = i - 1;
    for (; j >= 0 && byStartThenEnd(calls[j]!, c) > 0; j--) calls[j + 1] = calls[j]!;
    calls[j + 1] = c;
  }
}

function byStartThenEnd(a: Call, b: Call): number {
  return a.startMs - b.startMs || byEndThenId(a, b);
}

function byEndThenId(a: Call, b: Call): number {
  return a.startMs + a.durationMs - (b.startMs + b.durationMs) || (a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : 0);
}

/** Orders calls[from, to) (equal start times, already by end then id) so ancestors come first. */
function orderRun(calls: Call[], from: number, to: number, parentOf: ParentOf): void {
  const run = calls.slice(from, to);
  const byId = new Map<string, number>();
  run.forEach((c, i) => {
    if (!byId.has(c.spanId)) byId.set(c.spanId, i);
    if (c.serverSpanId && !byId.has(c.serverSpanId)) byId.set(c.serverSpanId, i);
  });
  // Nearest ancestor call within the run, if any.
  const children: number[][] = run.map(() => []);
  const roots: number[] = [];
  run.forEach((c, i) => {
    let id: string | undefined = parentOf(c.spanId) ?? c.parentSpanId;
    let parent: number | undefined;
    for (let steps = 0; id && steps < MAX_ANCESTRY_DEPTH; steps++) {
      const hit = byId.get(id);
      if (hit !== undefined && hit !== i) {
        parent = hit;
        break;
      }
      if (hit === i) break; // a cycle back to itself: treat as a root
      id = parentOf(id);
    }
    if (parent === undefined) roots.push(i);
    else children[parent]!.push(i);
  });
  // Calls that only reach themselves through a cycle of parents would never be released: seed them.
  const released = new Set<number>();
  const heap = new MinHeap();
  for (const r of roots) heap.push(r);
  let out = from;
  const place = (i: number) => {
    released.add(i);
    calls[out++] = run[i]!;
    for (const child of children[i]!) heap.push(child);
  };
  while (out < to) {
    if (heap.size === 0) {
      // Only calls inside an ancestry cycle remain: take the first by end then id.
      for (let i = 0; i < run.length; i++) {
        if (!released.has(i)) {
          heap.push(i);
          break;
        }
      }
    }
    const next = heap.pop()!;
    if (!released.has(next)) place(next);
  }
}

/** A binary min-heap of run indexes; the run is sorted by end then id, so the index is the key. */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(value: number): void {
    const a = this.items;
    a.push(value);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  pop(): number | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]! < a[m]!) m = l;
        if (r < a.length && a[r]! < a[m]!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}
