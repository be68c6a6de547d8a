import type { Call, Chain, TraceSummary } from '@conduct/processor';
import { BOUNDARY_IDENTITY, chainsOf } from '@conduct/processor';
import type { ChainReader } from '../store/index.js';

/**
 * A later part of a trace merged into what was stored of it: the trace's chains as they are now
 * (one per identity), and which calls the part added and which stored calls it took the place of.
 */
export interface LateMerge {
  traceId: string;
  /** Every chain of the trace after the merge, one per identity. */
  chains: Chain[];
  /** The trace's chains as they were stored before the part arrived. */
  before: Chain[];
  /** Calls of the part that are now in the trace (new calls, and calls that complete stored ones). */
  added: Call[];
  /** Stored calls that the part's calls took the place of (provisional calls, repeats). */
  removed: Call[];
  /** Identities whose chain changed. */
  identities: Set<string>;
  /** A trace a journal replay fed again after a restart, merged by span id into what was stored of it. */
  replayed?: boolean;
}

/**
 * Merges the chains derived from a later part of a trace into the chains stored for it. A call
 * is identified by its span id (the client span when there is one): the part's call takes the
 * place of the stored call with the same span id (the client span was stored alone, and its
 * server span arrived now), and of the stored server-side-only call of its server span (the
 * server span was stored alone, and its caller's span arrived now). A stored call that is
 * already stitched to its server span is not replaced by the same client span alone (a retried
 * copy of an earlier part). Pure.
 */
export function mergeLatePart(traceId: string, stored: readonly Chain[], part: readonly Chain[], boundary: readonly Call[] = []): LateMerge {
  const bySpan = new Map<string, Call>();
  const names = new Map<string, string>();
  for (const chain of stored) {
    if (chain.displayName) names.set(chain.identity, chain.displayName);
    for (const call of chain.calls) if (!bySpan.has(call.spanId)) bySpan.set(call.spanId, call);
  }
  const removed: Call[] = [];
  const added: Call[] = [];
  const take = (spanId: string) => {
    const old = bySpan.get(spanId);
    if (!old) return;
    bySpan.delete(spanId);
    removed.push(old);
  };
  // A server span whose caller's span is stored alone completes that call (the pipeline no
  // longer had the caller's span in memory to stitch them itself).
  const completed: Call[] = [];
  for (const b of boundary) {
    const caller = bySpan.get(b.parentSpanId);
    if (caller && caller.serverSpanId === undefined && caller.service !== b.peer) completed.push(stitchStored(caller, b));
  }
  for (const chain of [...part, { identity: '', calls: completed }]) {
    if ('displayName' in chain && chain.displayName && !names.has(chain.identity)) names.set(chain.identity, chain.displayName);
    for (const call of chain.calls) {
      const old = bySpan.get(call.spanId);
      if (old && old.serverSpanId !== undefined && old.serverSpanId !== old.spanId && call.serverSpanId === undefined) continue;
      // The same call again (a retried copy of a stored part): nothing changes.
      if (old && sameCall(old, call)) continue;
      take(call.spanId);
      if (call.serverSpanId !== undefined && call.serverSpanId !== call.spanId) take(call.serverSpanId);
      bySpan.set(call.spanId, call);
      added.push(call);
    }
  }
  // Stored calls copied: the chains are ordered (and their calls sorted) afresh.
  const chains = chainsOf([...bySpan.values()], names);
  const identities = new Set<string>([...added, ...removed].map((c) => c.identity));
  return { traceId, chains, before: [...stored], added, removed, identities };
}

/**
 * The call a stored client-only call makes with a later part's server-side-only view of its
 * server span, as the pipeline would have stitched the two spans: the server's service is the
 * peer, its operation (a route, mostly) the operation unless it only has the span name, its
 * client-side facts join the caller's source, an error on either side is an error.
 */
export function stitchStored(caller: Call, server: Call): Call {
  const call: Call = {
    ...caller,
    serverSpanId: server.spanId,
    peer: server.peer,
    peerKind: 'service',
    external: false,
    operation: server.protocol !== 'internal' ? server.operation : caller.operation,
    protocol: server.protocol !== 'internal' ? server.protocol : caller.protocol,
    status: caller.status === 'error' || server.status === 'error' ? 'error' : caller.status === 'ok' || server.status === 'ok' ? 'ok' : 'unset',
    source: { ...caller.source, ...server.source },
  };
  const httpStatus = server.httpStatus ?? caller.httpStatus;
  if (httpStatus !== undefined) call.httpStatus = httpStatus;
  const target = caller.target ?? server.target;
  if (target !== undefined) call.target = target;
  const account = caller.account ?? server.account;
  if (account !== undefined) call.account = account;
  return call;
}

/** Whether two calls say the same (their fields, in any order; the source's too). */
function sameCall(a: Call, b: Call): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as object).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : v,
  );
}

/** What became of the spans of a later part of a trace (`conduct_late_spans_total{outcome}`). */
export type LateOutcome = 'joined' | 'fragment' | 'missing';
export const LATE_OUTCOMES: readonly LateOutcome[] = ['joined', 'fragment', 'missing'];

/**
 * What the store must answer for the late parts of a batch: the stored summaries of the traces it
 * asks about, then the stored chains of those that join, each all at once (a read a trace was a
 * round trip each on PostgreSQL, bench/README.md "Later parts on PostgreSQL").
 */
export type LateStore = Pick<ChainReader, 'traceSummaries' | 'chainsOfTraces'>;

/** Whether any trace of the batch is a later part of its trace (most batches have none). */
export function hasLateParts(summaries: readonly TraceSummary[] | undefined): boolean {
  if (summaries) for (const s of summaries) if (s.late !== undefined) return true;
  return false;
}

/** A batch's chains sorted into those stored as they are and the late parts merged into their trace. */
export interface LateSplit {
  /** Chains of traces seen for the first time, and of fragments. */
  onTime: Chain[];
  merges: LateMerge[];
  /** Spans of the batch's later parts by outcome (a `maybe` trace that is not stored is not late). */
  spans: Record<LateOutcome, number>;
  /** Spans of replayed traces that were stored already (merged by span id, not stored again). */
  replayedSpans: number;
}

/**
 * Sorts a batch by its trace summaries' `late` marks. A part that `joins` its trace is merged
 * into the stored chains of its trace; so is a `maybe` whose trace the store holds, provided the
 * stored trace ends no more than `windowMs` (event time) before the part starts. Otherwise the
 * part is stored on its own: a `fragment`, or `missing` when a trace the pipeline remembered is
 * not in the store (retention deleted it).
 * Reads only: run it before the batch is written.
 */
export async function splitLateParts(
  store: LateStore,
  chains: readonly Chain[],
  summaries: readonly TraceSummary[] | undefined,
  windowMs: number,
  /** Trace ids (lower case) a journal replay fed again: each one stored already is merged into what was stored, whatever its time. */
  replayed?: ReadonlySet<string>,
  /**
   * False when a `maybe` part's trace cannot be in the store (engine/recent-traces.ts): it is then
   * not looked up, and is not late. Absent: every `maybe` is looked up.
   */
  mayBeStored?: (traceId: string) => boolean,
): Promise<LateSplit> {
  const spans: Record<LateOutcome, number> = { joined: 0, fragment: 0, missing: 0 };
  let replayedSpans = 0;
  const joining = new Map<string, Chain[]>();
  const replays = new Set<string>();
  const all = summaries ?? [];
  const idOf = (s: TraceSummary) => (typeof s.traceId === 'string' ? s.traceId.toLowerCase() : '');
  // The stored summary of each trace that needs one, asked of the store together.
  const asks = (s: TraceSummary) =>
    Boolean(replayed?.has(idOf(s))) || (s.late !== undefined && s.late !== 'fragment' && !(s.late === 'maybe' && mayBeStored && !mayBeStored(s.traceId)));
  const asked = all.filter(asks);
  // By the lower-cased id, as joining keys its trace (the store reads either case; a malformed id is '').
  const found = asked.length > 0 ? await store.traceSummaries(asked.map(idOf)) : [];
  const storedOf = new Map<TraceSummary, TraceSummary | undefined>(asked.map((s, i) => [s, found[i]]));
  for (const s of all) {
    const id = idOf(s);
    const stored = storedOf.get(s);
    // A replayed trace the store holds is merged into it whatever the pipeline marked it.
    if (replayed?.has(id) && stored) {
      replayedSpans += s.spans;
      replays.add(id);
      joining.set(id, []);
      continue;
    }
    if (s.late === undefined) continue;
    if (s.late === 'fragment') {
      spans.fragment += s.spans;
      continue;
    }
    // A maybe whose trace cannot be stored was not asked about: not late.
    if (!storedOf.has(s)) continue;
    if (!stored) {
      if (s.late === 'joins') spans.missing += s.spans;
      continue;
    }
    if (s.late === 'maybe' && stored.endMs < s.startMs - windowMs) {
      spans.fragment += s.spans;
      continue;
    }
    spans.joined += s.spans;
    joining.set(s.traceId.toLowerCase(), []);
  }
  const onTime: Chain[] = [];
  const boundaries = new Map<string, Call[]>();
  for (const chain of chains) {
    // No part joins (the batch's `maybe` parts were not stored before): no id to compare.
    const traceId = joining.size > 0 && typeof chain.traceId === 'string' ? chain.traceId.toLowerCase() : '';
    // Boundary calls are never stored: they only complete a stored call of a part that joins.
    if (chain.identity === BOUNDARY_IDENTITY) {
      if (joining.has(traceId)) boundaries.set(traceId, [...(boundaries.get(traceId) ?? []), ...chain.calls]);
      continue;
    }
    const part = joining.size > 0 ? joining.get(traceId) : undefined;
    if (part) part.push(chain);
    else onTime.push(chain);
  }
  const merging = [...joining].filter(([traceId, part]) => part.length > 0 || (boundaries.get(traceId)?.length ?? 0) > 0);
  const mergingIds = merging.map(([traceId]) => traceId);
  const storedChains = merging.length > 0 ? await store.chainsOfTraces(mergingIds) : [];
  const merges = merging.map(([traceId, part], i) => {
    const merge = mergeLatePart(traceId, storedChains[i]!, part, boundaries.get(traceId) ?? []);
    if (replays.has(traceId)) merge.replayed = true;
    return merge;
  });
  return { onTime, merges, spans, replayedSpans };
}

/** The part's calls that changed the trace, as one chain per identity (for analysers that see only chains). */
export function addedChains(merge: LateMerge): Chain[] {
  return merge.added.length > 0 ? chainsOf(merge.added) : [];
}
