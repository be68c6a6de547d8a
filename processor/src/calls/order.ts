import type { Call } from '../model.js';
import { CallTable } from './call-table.js';

/** Parent span ids followed at most when looking for a call's ancestor call (bounds hostile depth). */
export const MAX_ANCESTRY_DEPTH = 256;

/** Parent span id of a span of the trace, or undefined when the span is unknown or a root. */
export type ParentOf = (spanId: string) => string | undefined;

/**
 * Parent links known from the calls alone: each call's span to its parent, and a stitched call's
 * server span to its client span (so the callee's own calls descend from the call).
 */
export function parentsFromCalls(calls: readonly Call[]): ParentOf {
  const rows = new CallTable();
  for (let i = 0; i < calls.length; i++) rows.push(calls[i]!);
  return parentsOfRows(rows, 0, rows.n);
}

/** parentsFromCalls for call rows [from, to) of a table. */
export function parentsOfRows(t: CallTable, from: number, to: number): ParentOf {
  const parents = new Map<string, string>();
  for (let c = from; c < to; c++) {
    const spanId = t.spanId[c]!;
    const parentSpanId = t.parentSpanId[c]!;
    const serverSpanId = t.serverSpanId[c];
    if (parentSpanId && !parents.has(spanId)) parents.set(spanId, parentSpanId);
    if (serverSpanId && serverSpanId !== spanId && !parents.has(serverSpanId)) parents.set(serverSpanId, spanId);
  }
  return (id) => parents.get(id);
}

/** Orders the object API's calls through a table of their own (see orderRows). */
const objectRows = new CallTable();

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
  const t = objectRows;
  t.clear();
  for (let i = 0; i < calls.length; i++) t.push(calls[i]!);
  const rows = new Int32Array(calls.length);
  for (let i = 0; i < rows.length; i++) rows[i] = i;
  orderRows(t, rows, 0, rows.length, parentOf ?? parentsOfRows(t, 0, t.n));
  const before = calls.slice();
  for (let i = 0; i < rows.length; i++) calls[i] = before[rows[i]!]!;
  t.clear();
  return calls;
}

/** orderCalls for the call rows listed in rows[from, to) of table `t`, reordered in place. */
export function orderRows(t: CallTable, rows: Int32Array, from: number, to: number, parentOf: ParentOf): void {
  if (to - from < 2) return;
  if (to - from <= INSERTION_SORT_MAX) insertionSort(t, rows, from, to);
  else {
    const sorted = Array.from(rows.subarray(from, to)).sort((a, b) => byStartThenEnd(t, a, b));
    rows.set(sorted, from);
  }
  const starts = t.startMs;
  for (let i = from; i < to; ) {
    let j = i + 1;
    while (j < to && starts[rows[j]!] === starts[rows[i]!]) j++;
    if (j - i > 1) orderRun(t, rows, i, j, parentOf);
    i = j;
  }
}

/** Lists up to this long are sorted by insertion (see insertionSort). */
export const INSERTION_SORT_MAX = 16;

/**
 * Sorts a short list by byStartThenEnd, stably, as Array.prototype.sort would (both are stable
 * and the order is total, so the result is the same). Written out because V8's sort allocates
 * its merge state (~1.4 KB) on every call: sorting each chain's calls was a fifth of the bytes
 * the pipeline thread allocated with 4-span traces (2026-12-06, sampling heap profile).
 */
function insertionSort(t: CallTable, rows: Int32Array, from: number, to: number): void {
  for (let i = from + 1; i < to; i++) {
    const c = rows[i]!;
    let j = i - 1;
    for (; j >= from && byStartThenEnd(t, rows[j]!, c) > 0; j--) rows[j + 1] = rows[j]!;
    rows[j + 1] = c;
  }
}

function byStartThenEnd(t: CallTable, a: number, b: number): number {
  return t.startMs[a]! - t.startMs[b]! || byEndThenId(t, a, b);
}

function byEndThenId(t: CallTable, a: number, b: number): number {
  const ids = t.spanId;
  return t.startMs[a]! + t.durationMs[a]! - (t.startMs[b]! + t.durationMs[b]!) || (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0);
}

/** Orders rows[from, to) (equal start times, already by end then id) so ancestors come first. */
function orderRun(t: CallTable, rows: Int32Array, from: number, to: number, parentOf: ParentOf): void {
  const run = Array.from(rows.subarray(from, to));
  const byId = new Map<string, number>();
  run.forEach((c, i) => {
    const serverSpanId = t.serverSpanId[c];
    if (!byId.has(t.spanId[c]!)) byId.set(t.spanId[c]!, i);
    if (serverSpanId && !byId.has(serverSpanId)) byId.set(serverSpanId, i);
  });
  // Nearest ancestor call within the run, if any.
  const children: number[][] = run.map(() => []);
  const roots: number[] = [];
  run.forEach((c, i) => {
    let id: string | undefined = parentOf(t.spanId[c]!) ?? t.parentSpanId[c];
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
    rows[out++] = run[i]!;
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
