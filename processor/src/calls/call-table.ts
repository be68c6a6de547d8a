import type { Call, Chain, IdentityKind, PeerKind, SourceContext, TraceSummary } from '../model.js';

/** A call's flags in {@link CallTable.flags}. */
export const CALL_EXTERNAL = 1;
export const CALL_PATH_OPERATION = 2;

/** Calls a table starts with room for. */
const INITIAL_CALLS = 256;
/**
 * Calls (and chains) a table keeps room for between batches at most: one grown by a hostile trace
 * of hundreds of thousands of spans is let go, with the strings its columns still hold.
 */
const MAX_KEPT_CALLS = 16_384;

/**
 * Calls and chains as columns: one column per field of Call and Chain, a row per call and per
 * chain, and the calls of each chain as a run of row numbers in `order`; and a batch's trace
 * summaries, a row per trace. Derivation writes the
 * calls of a batch's traces here and the batch encoder reads them from here (the pipeline thread
 * hands its batches over encoded): no call object, chain object or list of calls per chain is
 * made for them. Written by hand for that hot path (issue 19): call and chain objects and their
 * lists were a third of the bytes the pipeline thread allocated, every one garbage by the time
 * its batch was encoded. Callers that want objects (tests, a pipeline whose consumer runs on the
 * same thread, the backend's late merge) get them made from the rows (`call`, `chain`).
 *
 * Reused from batch to batch: `clear` empties it, keeping its room.
 */
export class CallTable {
  /** Rows of calls in use. */
  n = 0;
  traceId: string[] = [];
  spanId: string[] = [];
  serverSpanId: (string | undefined)[] = [];
  parentSpanId: string[] = [];
  identity: string[] = [];
  identityKind: IdentityKind[] = [];
  service: string[] = [];
  version: (string | undefined)[] = [];
  peer: string[] = [];
  peerKind: PeerKind[] = [];
  operation: string[] = [];
  target: (string | undefined)[] = [];
  account: (string | undefined)[] = [];
  protocol: string[] = [];
  status: Call['status'][] = [];
  name: string[] = [];
  source: SourceContext[] = [];
  errorCode: (string | undefined)[] = [];
  auditId: (string | undefined)[] = [];
  /** CALL_EXTERNAL | CALL_PATH_OPERATION. */
  flags = new Uint8Array(INITIAL_CALLS);
  startMs = new Float64Array(INITIAL_CALLS);
  durationMs = new Float64Array(INITIAL_CALLS);
  /** NaN when absent. */
  httpStatus = new Float64Array(INITIAL_CALLS);

  /** Rows of chains in use. */
  chains = 0;
  chainTraceId: string[] = [];
  chainIdentity: string[] = [];
  chainIdentityKind: IdentityKind[] = [];
  chainDisplayName: (string | undefined)[] = [];
  chainStartMs = new Float64Array(INITIAL_CALLS);
  chainEndMs = new Float64Array(INITIAL_CALLS);
  /** A chain's calls are the rows order[chainFrom[c], chainFrom[c] + chainCalls[c]). */
  chainFrom = new Int32Array(INITIAL_CALLS);
  chainCalls = new Int32Array(INITIAL_CALLS);
  /** Call rows in chain order; `ordered` of them in use. */
  order = new Int32Array(INITIAL_CALLS);
  ordered = 0;

  /** Rows of trace summaries in use (TraceSummary's fields; its services are `services[serviceFrom[s], serviceFrom[s + 1])`). */
  summaries = 0;
  summaryTraceId: string[] = [];
  summaryLate: TraceSummary['late'][] = [];
  summaryStartMs = new Float64Array(INITIAL_CALLS);
  summaryEndMs = new Float64Array(INITIAL_CALLS);
  summarySpans = new Float64Array(INITIAL_CALLS);
  serviceFrom = new Int32Array(INITIAL_CALLS + 1);
  services: string[] = [];

  /**
   * A new call row, every field set (a row holds nothing of an earlier call): the fields a call
   * takes from its span; the caller sets the rest (peer, target, ...) as derivation finds them.
   */
  open(traceId: string, spanId: string, parentSpanId: string, identity: string, identityKind: IdentityKind, service: string, startMs: number, durationMs: number): number {
    const c = this.n++;
    if (c === this.flags.length) this.growCalls(2 * c);
    this.traceId[c] = traceId;
    this.spanId[c] = spanId;
    this.serverSpanId[c] = undefined;
    this.parentSpanId[c] = parentSpanId;
    this.identity[c] = identity;
    this.identityKind[c] = identityKind;
    this.service[c] = service;
    this.version[c] = undefined;
    this.peer[c] = '';
    this.peerKind[c] = 'virtual';
    this.operation[c] = '';
    this.target[c] = undefined;
    this.account[c] = undefined;
    this.protocol[c] = '';
    this.status[c] = 'unset';
    this.name[c] = '';
    this.source[c] = NO_SOURCE;
    this.errorCode[c] = undefined;
    this.auditId[c] = undefined;
    this.flags[c] = 0;
    this.startMs[c] = startMs;
    this.durationMs[c] = durationMs;
    this.httpStatus[c] = NaN;
    return c;
  }

  /** A row for `call` (the object API: chainsOf and orderCalls on calls made elsewhere). */
  push(call: Call): number {
    const c = this.open(call.traceId, call.spanId, call.parentSpanId, call.identity, call.identityKind, call.service, call.startMs, call.durationMs);
    this.serverSpanId[c] = call.serverSpanId;
    this.version[c] = call.version;
    this.peer[c] = call.peer;
    this.peerKind[c] = call.peerKind;
    this.operation[c] = call.operation;
    this.target[c] = call.target;
    this.account[c] = call.account;
    this.protocol[c] = call.protocol;
    this.status[c] = call.status;
    this.name[c] = call.name;
    this.source[c] = call.source;
    this.errorCode[c] = call.errorCode;
    this.auditId[c] = call.auditId;
    this.flags[c] = (call.external ? CALL_EXTERNAL : 0) | (call.pathOperation ? CALL_PATH_OPERATION : 0);
    this.httpStatus[c] = call.httpStatus === undefined ? NaN : call.httpStatus;
    return c;
  }

  /**
   * Call row c as an object. Every optional field is present (undefined when absent), in the
   * order derivation has always made them: all calls share one hidden class, and JSON (the store,
   * the API) sees the fields it saw before.
   */
  call(c: number): Call {
    const flags = this.flags[c]!;
    const httpStatus = this.httpStatus[c]!;
    return {
      traceId: this.traceId[c]!,
      spanId: this.spanId[c]!,
      parentSpanId: this.parentSpanId[c]!,
      identity: this.identity[c]!,
      identityKind: this.identityKind[c]!,
      service: this.service[c]!,
      peer: this.peer[c]!,
      peerKind: this.peerKind[c]!,
      external: (flags & CALL_EXTERNAL) !== 0,
      operation: this.operation[c]!,
      protocol: this.protocol[c]!,
      startMs: this.startMs[c]!,
      durationMs: this.durationMs[c]!,
      status: this.status[c]!,
      name: this.name[c]!,
      source: this.source[c]!,
      serverSpanId: this.serverSpanId[c],
      version: this.version[c],
      pathOperation: flags & CALL_PATH_OPERATION ? true : undefined,
      target: this.target[c],
      account: this.account[c],
      httpStatus: Number.isNaN(httpStatus) ? undefined : httpStatus,
      errorCode: this.errorCode[c],
      auditId: this.auditId[c],
    };
  }

  /** A chain row; its calls are order[from, from + count) (see `reserveOrder`). */
  openChain(traceId: string, identity: string, identityKind: IdentityKind, displayName: string | undefined, startMs: number, endMs: number, from: number, count: number): number {
    const h = this.chains++;
    if (h === this.chainFrom.length) this.growChains(2 * h);
    this.chainTraceId[h] = traceId;
    this.chainIdentity[h] = identity;
    this.chainIdentityKind[h] = identityKind;
    this.chainDisplayName[h] = displayName;
    this.chainStartMs[h] = startMs;
    this.chainEndMs[h] = endMs;
    this.chainFrom[h] = from;
    this.chainCalls[h] = count;
    return h;
  }

  /** Room for `count` more rows in `order`; returns where they start. */
  reserveOrder(count: number): number {
    const at = this.ordered;
    if (at + count > this.order.length) this.order = grown(this.order, new Int32Array(Math.max(2 * this.order.length, at + count)));
    this.ordered = at + count;
    return at;
  }

  /** Every call row as an object (see `call`). */
  callObjects(): Call[] {
    const calls = new Array<Call>(this.n);
    for (let c = 0; c < this.n; c++) calls[c] = this.call(c);
    return calls;
  }

  /** Every chain row as an object, its calls taken from `calls` by row (the objects of rows 0, 1, ...). */
  chainObjects(calls: readonly Call[]): Chain[] {
    const chains = new Array<Chain>(this.chains);
    for (let h = 0; h < this.chains; h++) {
      const from = this.chainFrom[h]!;
      const list = new Array<Call>(this.chainCalls[h]!);
      for (let k = 0; k < list.length; k++) list[k] = calls[this.order[from + k]!]!;
      // displayName present (undefined when absent) in every chain: one hidden class, no property added later.
      chains[h] = {
        traceId: this.chainTraceId[h]!,
        identity: this.chainIdentity[h]!,
        identityKind: this.chainIdentityKind[h]!,
        startMs: this.chainStartMs[h]!,
        endMs: this.chainEndMs[h]!,
        calls: list,
        displayName: this.chainDisplayName[h],
      };
    }
    return chains;
  }

  /**
   * A summary row; its services are the `count` strings of `names` from the first (the caller's
   * scratch: they are copied).
   */
  addSummary(traceId: string, late: TraceSummary['late'], startMs: number, endMs: number, spans: number, names: readonly string[], count: number): void {
    const s = this.summaries++;
    if (s + 1 === this.serviceFrom.length) {
      this.summaryStartMs = grown(this.summaryStartMs, new Float64Array(2 * s));
      this.summaryEndMs = grown(this.summaryEndMs, new Float64Array(2 * s));
      this.summarySpans = grown(this.summarySpans, new Float64Array(2 * s));
      this.serviceFrom = grown(this.serviceFrom, new Int32Array(2 * s + 1));
    }
    this.summaryTraceId[s] = traceId;
    this.summaryLate[s] = late;
    this.summaryStartMs[s] = startMs;
    this.summaryEndMs[s] = endMs;
    this.summarySpans[s] = spans;
    const from = this.serviceFrom[s]!;
    for (let k = 0; k < count; k++) this.services[from + k] = names[k]!;
    this.serviceFrom[s + 1] = from + count;
  }

  /** A summary row for `summary` (the object API). */
  pushSummary(summary: TraceSummary): void {
    this.addSummary(summary.traceId, summary.late, summary.startMs, summary.endMs, summary.spans, summary.services, summary.services.length);
  }

  /** Every summary row as an object (`late` only when set, as the pipeline has always made them). */
  summaryObjects(): TraceSummary[] {
    const summaries = new Array<TraceSummary>(this.summaries);
    for (let s = 0; s < this.summaries; s++) {
      const summary: TraceSummary = {
        traceId: this.summaryTraceId[s]!,
        startMs: this.summaryStartMs[s]!,
        endMs: this.summaryEndMs[s]!,
        spans: this.summarySpans[s]!,
        services: this.services.slice(this.serviceFrom[s], this.serviceFrom[s + 1]),
      };
      const late = this.summaryLate[s];
      if (late) summary.late = late;
      summaries[s] = summary;
    }
    return summaries;
  }

  /** Notes where the table is now, for `rollBack` (a trace whose derivation failed leaves nothing). */
  mark(): void {
    this.marked[0] = this.n;
    this.marked[1] = this.chains;
    this.marked[2] = this.ordered;
  }

  /** Drops the rows written since `mark`. */
  rollBack(): void {
    this.n = this.marked[0]!;
    this.chains = this.marked[1]!;
    this.ordered = this.marked[2]!;
  }

  private readonly marked = new Int32Array(3);

  /**
   * Empties the table, and lets go of the strings its rows held: the table lives long (in V8's
   * old generation), and strings it still pointed to after their batch was encoded would live
   * until the next batch overwrote them, copied by scavenges and promoted, where the call objects
   * they replace were garbage as soon as their batch was encoded. One grown past MAX_KEPT_CALLS
   * is let go whole (it starts small again).
   */
  clear(): void {
    const n = this.n;
    if (n > 0) {
      const columns = [this.traceId, this.spanId, this.serverSpanId, this.parentSpanId, this.identity, this.service, this.version, this.peer, this.operation, this.target, this.account, this.name, this.errorCode, this.auditId];
      for (let k = 0; k < columns.length; k++) (columns[k] as unknown[]).fill(undefined, 0, n);
      this.source.fill(NO_SOURCE, 0, n);
    }
    if (this.chains > 0) {
      this.chainTraceId.fill('', 0, this.chains);
      this.chainDisplayName.fill(undefined, 0, this.chains);
    }
    if (this.summaries > 0) {
      this.summaryTraceId.fill('', 0, this.summaries);
      this.services.fill('', 0, this.serviceFrom[this.summaries]);
    }
    if (this.flags.length > MAX_KEPT_CALLS || this.chainFrom.length > MAX_KEPT_CALLS || this.order.length > MAX_KEPT_CALLS || this.services.length > MAX_KEPT_CALLS) {
      Object.assign(this, new CallTable());
    }
    this.n = this.chains = this.ordered = this.summaries = 0;
  }

  private growCalls(size: number): void {
    this.flags = grown(this.flags, new Uint8Array(size));
    this.startMs = grown(this.startMs, new Float64Array(size));
    this.durationMs = grown(this.durationMs, new Float64Array(size));
    this.httpStatus = grown(this.httpStatus, new Float64Array(size));
  }

  private growChains(size: number): void {
    this.chainStartMs = grown(this.chainStartMs, new Float64Array(size));
    this.chainEndMs = grown(this.chainEndMs, new Float64Array(size));
    this.chainFrom = grown(this.chainFrom, new Int32Array(size));
    this.chainCalls = grown(this.chainCalls, new Int32Array(size));
  }
}

/** Stands for a row's source until derivation sets it. */
const NO_SOURCE: SourceContext = {};

function grown<T extends Uint8Array | Int32Array | Float64Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}
