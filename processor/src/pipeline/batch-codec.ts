import type { Call, Chain, ChainBatch, SourceContext, TraceSummary } from '../model.js';
import { CALL_EXTERNAL, CALL_PATH_OPERATION, CallTable } from '../calls/call-table.js';

/**
 * How a batch of chains crosses from the pipeline thread to the consumer's: numbers in two typed
 * arrays (moved, not copied) and strings by reference to a dictionary both sides keep.
 *
 * Written by hand because the general route is what the split would otherwise lose: a structured
 * clone copies every string of every call again (services, peers, operations repeat in every
 * batch) and the receiving side then hashes each fresh copy again in its maps. Here a repeated
 * string crosses once and is then the same string object on the consumer's side, its hash cached.
 * Span and trace ids are unique per call and go by value, in a per-batch list.
 *
 * References, counts and flags are 32-bit integers (`refs`); times and HTTP statuses 64-bit
 * floats (`nums`): a call takes 20 integers and 3 floats (104 bytes) where 31 floats (248 bytes)
 * held it before, and a batch waits in the consumer's queue (a backlog under load) as those two
 * arrays. A call's source context (8 references) is sent once per distinct source in the batch
 * and referred to by its index: calls of one service share it, and the consumer makes one
 * source object for all of them.
 *
 * A string reference is a number: d >= 0 is dictionary entry d, -1 is absent, -(i + 2) is entry i
 * of the batch's own list. The dictionary is bounded: when full it starts over (the message says
 * so), so hostile high-cardinality names cost a reset, never memory.
 */
export interface EncodedBatch {
  /** Times, HTTP statuses and the batch's trace and span counts. */
  nums: Float64Array;
  /** String references, counts and flags. */
  refs: Int32Array;
  /** Strings appended to the dictionary by this batch, in id order. */
  adds: string[];
  /** Strings used by this batch only (ids). */
  literals: string[];
  /** The dictionary was emptied before `adds`. */
  reset: boolean;
}

/** Strings in the dictionary at most before it starts over. */
export const MAX_DICTIONARY_STRINGS = 100_000;

const ABSENT = -1;
/** `refs` before the sources: chain count, summary count, source count. */
const HEAD_REFS = 3;
/** `nums` before the chains: traces, spans. */
const HEAD_NUMS = 2;
/** `refs` per source: region, account, host, cluster, network, client address, user agent, public address (-1, 0, 1). */
const SOURCE_REFS = 8;
/** `refs` per chain before its calls: trace id, identity, kind, display name, call count. */
const CHAIN_REFS = 5;
/** `nums` per chain: start, end. */
const CHAIN_NUMS = 2;
/** `refs` per call, in this order (see the encoder). */
const CALL_REFS = 20;
/** `nums` per call: start, duration, HTTP status (NaN when absent). */
const CALL_NUMS = 3;
/** `refs` per summary before its services: trace id, late part, service count. */
const SUMMARY_REFS = 3;
/** `nums` per summary: start, end, spans. */
const SUMMARY_NUMS = 3;
/** A call's flags. */
const FLAG_EXTERNAL = 1;
const FLAG_PATH_OPERATION = 2;
/** The fields of a call whose last string the encoder remembers (refOf). */
const F_IDENTITY = 0;
const F_IDENTITY_KIND = 1;
const F_SERVICE = 2;
const F_PEER = 3;
const F_PEER_KIND = 4;
const F_OPERATION = 5;
const F_TARGET = 6;
const F_ACCOUNT = 7;
const F_PROTOCOL = 8;
const F_STATUS = 9;
const F_NAME = 10;
const F_ERROR_CODE = 11;
const F_VERSION = 12;
const FIELDS = 13;
/** Source objects the encoder remembers by identity (a power of two). */
const RECENT_SOURCES = 8;
/** A summary's `late` as a number (its index here; -1 when absent). */
const LATE_CODES = ['joins', 'maybe', 'fragment'] as const;

export interface BatchEncoder {
  encode(batch: ChainBatch): EncodedBatch;
  /**
   * Encodes a batch whose chains and trace summaries are the rows of `rows` (derivation and the
   * pipeline write them there: no call, chain or summary object on the pipeline thread); the same
   * bytes `encode` makes of them as objects, with `traces` and `spans` as the batch's.
   */
  encodeRows(rows: CallTable, traces: number, spans: number): EncodedBatch;
}

export function createBatchEncoder(maxStrings = MAX_DICTIONARY_STRINGS): BatchEncoder {
  return new Encoder(maxStrings);
}

/**
 * One pass over the calls: each call's source is looked up where the call is written, into a
 * scratch array of the batch's chains and calls that is copied after the sources once their number
 * is known. Two passes (the sources first, so that the arrays were made at their size) read every
 * call object twice, and a batch's calls (a few hundred KB) do not stay in the cache between them:
 * the second pass's first read of each call was the encoder's costliest line.
 */
class Encoder implements BatchEncoder {
  private dict = new Map<string, number>();
  /** Open-addressing index of the batch's distinct sources (index + 1; 0 empty), reused from batch to batch. */
  private sourceSlots = new Int32Array(1024);
  /** The batch's distinct sources, SOURCE_REFS each (reused; grown when short: an array grown by push was 4% of the bytes derive and encode allocate). */
  private sources = new Int32Array(64 * SOURCE_REFS);
  /** Refs in `sources` of the batch being encoded. */
  private sourceLength = 0;
  /** The references of one call's source while it is looked up. */
  private readonly one = new Int32Array(SOURCE_REFS);
  /** The chains' and calls' references of the batch being encoded (reused; grown when short). */
  private body = new Int32Array(4096);
  /** The last string of each field and its reference (see refOf). */
  private readonly lastText: (string | undefined)[] = new Array<string | undefined>(FIELDS).fill(undefined);
  private readonly lastRef = new Int32Array(FIELDS);
  private adds: string[] = [];
  /**
   * The batch's literals (ids), copied out at their number when it is encoded: a list grown by
   * push from empty for each batch (thousands of ids) was 6% of the bytes the pipeline thread
   * allocated (`gc-serve.mjs --alloc`, 2026-12-07).
   */
  private literals: (string | undefined)[] = [];
  private literalCount = 0;
  /** Source objects met lately in the batch being encoded and their indexes (see recentSourceIndex). */
  private readonly recentSources: (SourceContext | undefined)[] = new Array<SourceContext | undefined>(RECENT_SOURCES).fill(undefined);
  private readonly recentIndex = new Int32Array(RECENT_SOURCES);
  private nextRecent = 0;
  /** The batch's chains' distinct trace ids in order, and the literal of each (reused). */
  private readonly traceTexts: (string | undefined)[] = [];
  private traceRefs = new Int32Array(1024);

  constructor(private readonly maxStrings: number) {}

  /** The rows `encode` loads a batch's chains into. */
  private readonly objectRows = new CallTable();

  encode(batch: ChainBatch): EncodedBatch {
    const rows = this.objectRows;
    rows.clear();
    const chains = batch.chains;
    for (let i = 0; i < chains.length; i++) {
      const chain = chains[i]!;
      const calls = chain.calls;
      const from = rows.reserveOrder(calls.length);
      for (let j = 0; j < calls.length; j++) rows.order[from + j] = rows.push(calls[j]!);
      rows.openChain(chain.traceId, chain.identity, chain.identityKind, chain.displayName, chain.startMs, chain.endMs, from, calls.length);
    }
    const summaries = batch.traceSummaries ?? [];
    for (let i = 0; i < summaries.length; i++) rows.pushSummary(summaries[i]!);
    const encoded = this.encodeRows(rows, batch.traces, batch.spans);
    rows.clear();
    return encoded;
  }

  encodeRows(rows: CallTable, traces: number, spans: number): EncodedBatch {
    const chainCount = rows.chains;
    const chainFrom = rows.chainFrom;
    const chainCalls = rows.chainCalls;
    const order = rows.order;
    let callCount = 0;
    for (let i = 0; i < chainCount; i++) callCount += chainCalls[i]!;
    const summaryCount = rows.summaries;
    const serviceFrom = rows.serviceFrom;
    const summaryRefs = summaryCount * SUMMARY_REFS + serviceFrom[summaryCount]!;
    const adds: string[] = (this.adds = []);
    this.literalCount = 0;
    let reset = false;
    // Started over before any reference of this batch is handed out, so they all share one dictionary.
    const most = chainCount * CHAIN_REFS + callCount * (CALL_REFS + SOURCE_REFS) + summaryRefs;
    if (this.dict.size + most > this.maxStrings) {
      this.dict = new Map();
      reset = true;
    }
    this.lastText.fill(undefined);
    this.lastRef.fill(ABSENT);
    this.sourceLength = 0;
    this.recentSources.fill(undefined);
    let slots = this.sourceSlots;
    if (slots.length < 2 * callCount) slots = this.sourceSlots = new Int32Array(1 << Math.ceil(Math.log2(2 * callCount)));
    else slots.fill(0);
    const bodyLength = chainCount * CHAIN_REFS + callCount * CALL_REFS;
    if (this.body.length < bodyLength) this.body = new Int32Array(2 * bodyLength);
    const body = this.body;
    const nums = new Float64Array(HEAD_NUMS + chainCount * CHAIN_NUMS + callCount * CALL_NUMS + summaryCount * SUMMARY_NUMS);
    nums[0] = traces;
    nums[1] = spans;
    let r = 0;
    let n = HEAD_NUMS;
    // Calls share source objects (derive makes one per resource and client): the last one's index
    // is reused without looking its strings up.
    let lastSource: SourceContext | undefined;
    let lastSourceIndex = 0;
    const { traceId, spanId, serverSpanId, parentSpanId, identity, identityKind, service, peer, peerKind, operation, target, account, protocol, status, name } = rows;
    const { source, errorCode, auditId, version, flags, startMs, durationMs, httpStatus } = rows;
    // A trace's chains are consecutive rows and share one literal of its id, which its summary
    // then reuses (the traces' order, see below): the id crosses once per trace, not once per
    // chain and again in the summary.
    let chainTraces = 0;
    if (this.traceRefs.length < chainCount) this.traceRefs = new Int32Array(2 * chainCount);
    let lastTrace: string | undefined;
    let traceRef = ABSENT;
    for (let i = 0; i < chainCount; i++) {
      const chainTrace = rows.chainTraceId[i]!;
      if (chainTrace !== lastTrace) {
        lastTrace = chainTrace;
        traceRef = this.literal(chainTrace);
        this.traceTexts[chainTraces] = chainTrace;
        this.traceRefs[chainTraces++] = traceRef;
      }
      const from = chainFrom[i]!;
      const count = chainCalls[i]!;
      body[r++] = traceRef;
      // A chain's identity and kind are its calls' (the chain groups them by identity): the
      // fields' last strings serve both.
      body[r++] = this.refOf(F_IDENTITY, rows.chainIdentity[i]);
      body[r++] = this.refOf(F_IDENTITY_KIND, rows.chainIdentityKind[i]);
      body[r++] = this.ref(rows.chainDisplayName[i]);
      body[r++] = count;
      nums[n++] = rows.chainStartMs[i]!;
      nums[n++] = rows.chainEndMs[i]!;
      for (let j = from; j < from + count; j++) {
        const c = order[j]!;
        const src = source[c]!;
        if (src !== lastSource) {
          lastSource = src;
          lastSourceIndex = this.recentSourceIndex(src);
        }
        body[r++] = traceId[c] === chainTrace ? traceRef : this.literal(traceId[c]);
        body[r++] = this.literal(spanId[c]);
        body[r++] = this.literal(serverSpanId[c]);
        body[r++] = this.literal(parentSpanId[c]);
        body[r++] = this.refOf(F_IDENTITY, identity[c]);
        body[r++] = this.refOf(F_IDENTITY_KIND, identityKind[c]);
        body[r++] = this.refOf(F_SERVICE, service[c]);
        body[r++] = this.refOf(F_PEER, peer[c]);
        body[r++] = this.refOf(F_PEER_KIND, peerKind[c]);
        body[r++] = this.refOf(F_OPERATION, operation[c]);
        body[r++] = this.refOf(F_TARGET, target[c]);
        body[r++] = this.refOf(F_ACCOUNT, account[c]);
        body[r++] = this.refOf(F_PROTOCOL, protocol[c]);
        body[r++] = this.refOf(F_STATUS, status[c]);
        body[r++] = this.refOf(F_NAME, name[c]);
        body[r++] = lastSourceIndex;
        body[r++] = this.refOf(F_ERROR_CODE, errorCode[c]);
        body[r++] = this.literal(auditId[c]);
        body[r++] = this.refOf(F_VERSION, version[c]);
        const f = flags[c]!;
        body[r++] = (f & CALL_EXTERNAL ? FLAG_EXTERNAL : 0) | (f & CALL_PATH_OPERATION ? FLAG_PATH_OPERATION : 0);
        nums[n++] = startMs[c]!;
        nums[n++] = durationMs[c]!;
        nums[n++] = httpStatus[c]!;
      }
    }
    const sourceLength = this.sourceLength;
    const refs = new Int32Array(HEAD_REFS + sourceLength + bodyLength + summaryRefs);
    refs[0] = chainCount;
    refs[1] = summaryCount;
    refs[2] = sourceLength / SOURCE_REFS;
    refs.set(this.sources.subarray(0, sourceLength), HEAD_REFS);
    r = HEAD_REFS + sourceLength;
    refs.set(body.subarray(0, bodyLength), r);
    r += bodyLength;
    const services = rows.services;
    // Summaries come in the order of their traces, as the chains do (the pipeline summarises and
    // derives each trace in turn); a trace without chains has its id as a literal of its own.
    const traceTexts = this.traceTexts;
    const traceRefs = this.traceRefs;
    let nextTrace = 0;
    for (let i = 0; i < summaryCount; i++) {
      const late = rows.summaryLate[i];
      const id = rows.summaryTraceId[i]!;
      if (nextTrace < chainTraces && traceTexts[nextTrace] === id) refs[r++] = traceRefs[nextTrace++]!;
      else refs[r++] = this.literal(id);
      refs[r++] = late === undefined ? ABSENT : LATE_CODES.indexOf(late);
      refs[r++] = serviceFrom[i + 1]! - serviceFrom[i]!;
      for (let j = serviceFrom[i]!; j < serviceFrom[i + 1]!; j++) refs[r++] = this.ref(services[j]);
      nums[n++] = rows.summaryStartMs[i]!;
      nums[n++] = rows.summaryEndMs[i]!;
      nums[n++] = rows.summarySpans[i]!;
    }
    this.adds = NO_STRINGS;
    traceTexts.fill(undefined, 0, chainTraces);
    const literals = this.literals.slice(0, this.literalCount) as string[];
    // The scratch keeps no ids between batches.
    this.literals.fill(undefined, 0, this.literalCount);
    return { nums, refs, adds, literals, reset };
  }

  /** The dictionary entry of `s` (added when new), ABSENT for none. */
  private ref(s: string | undefined): number {
    if (s === undefined) return ABSENT;
    let id = this.dict.get(s);
    if (id === undefined) {
      id = this.dict.size;
      this.dict.set(s, id);
      this.adds.push(s);
    }
    return id;
  }

  /**
   * ref for a call's field: consecutive calls mostly repeat a field's value (one identity, service,
   * status, protocol in a row), and a comparison with the field's last string is cheaper than a
   * dictionary lookup.
   */
  private refOf(field: number, s: string | undefined): number {
    if (s === this.lastText[field]) return this.lastRef[field]!;
    this.lastText[field] = s;
    return (this.lastRef[field] = this.ref(s));
  }

  /** Not looked up: ids are unique, apart from a chain's trace id, which its calls reuse. */
  private literal(s: string | undefined): number {
    if (s === undefined) return ABSENT;
    this.literals[this.literalCount] = s;
    return -(++this.literalCount + 1);
  }

  /**
   * sourceIndex for a source object met lately in the batch, found by identity: a chain's calls
   * are of different services (a source each, shared by the calls of its resource), so the source
   * changes from call to call while the same few objects recur; looking one up again took its
   * eight references through the dictionary.
   */
  private recentSourceIndex(src: SourceContext): number {
    const recent = this.recentSources;
    for (let i = 0; i < RECENT_SOURCES; i++) if (recent[i] === src) return this.recentIndex[i]!;
    const index = this.sourceIndex(src);
    const at = this.nextRecent;
    this.nextRecent = (at + 1) & (RECENT_SOURCES - 1);
    recent[at] = src;
    this.recentIndex[at] = index;
    return index;
  }

  /** The index of `src` among the batch's distinct sources (added when new). */
  private sourceIndex(src: SourceContext): number {
    const one = this.one;
    one[0] = this.ref(src.region);
    one[1] = this.ref(src.account);
    one[2] = this.ref(src.host);
    one[3] = this.ref(src.cluster);
    one[4] = this.ref(src.network);
    one[5] = this.ref(src.clientAddress);
    one[6] = this.ref(src.userAgent);
    one[7] = src.publicAddress === undefined ? -1 : src.publicAddress ? 1 : 0;
    let h = 0;
    for (let i = 0; i < SOURCE_REFS; i++) h = Math.imul(h ^ one[i]!, 0x9e3779b1);
    const slots = this.sourceSlots;
    const mask = slots.length - 1;
    for (let slot = (h ^ (h >>> 15)) & mask; ; slot = (slot + 1) & mask) {
      const found = slots[slot]! - 1;
      if (found < 0) {
        const at = this.sourceLength;
        if (at + SOURCE_REFS > this.sources.length) {
          const grown = new Int32Array(2 * this.sources.length);
          grown.set(this.sources);
          this.sources = grown;
        }
        this.sources.set(one, at);
        this.sourceLength = at + SOURCE_REFS;
        slots[slot] = at / SOURCE_REFS + 1;
        return at / SOURCE_REFS;
      }
      if (sameSource(this.sources, found * SOURCE_REFS, one)) return found;
    }
  }
}

/** Stands for the string lists between batches (an encoder keeps none of a batch's). */
const NO_STRINGS: string[] = [];

/** Whether the source at `at` of `sources` is `one`. */
function sameSource(sources: Int32Array, at: number, one: Int32Array): boolean {
  for (let i = 0; i < SOURCE_REFS; i++) if (sources[at + i] !== one[i]) return false;
  return true;
}

export interface BatchDecoder {
  decode(encoded: EncodedBatch): ChainBatch;
  /**
   * Reads a batch's counts now and leaves its chains encoded until `chains` is called. Batches can
   * wait a while for the consumer (a backlog of them under load): held as two typed arrays each
   * they stay out of the garbage collector's way, where their chain and call objects would be
   * copied into the old generation and marked there. Batches must still be opened in the order
   * they were encoded; their chains may then be read at any later time.
   *
   * Its trace summaries are read now, unless `later` is given: then `encoded.literals` is not
   * read here, and `chains` first takes the batch's literals from `later()` and reads the
   * summaries with the chains (see thread.ts: a batch's literals wait outside the heap until it
   * is consumed).
   */
  open(encoded: EncodedBatch, later?: () => string[]): OpenedBatch;
  /**
   * Takes in a batch's strings as `open` does (every batch must be opened or read this way, in
   * order) and reads only its trace ids, in the order of its summaries: for a reader that needs
   * nothing else (the journal on the pipeline thread).
   */
  traceIds(encoded: EncodedBatch): string[];
}

export interface OpenedBatch {
  /** The batch, with `chains` empty until {@link OpenedBatch.chains} fills it (and `traceSummaries` unset, when opened with `later`). */
  batch: ChainBatch;
  /** Decodes the chains into `batch.chains` (once) and returns them. */
  chains(): Chain[];
}

type Str = (n: number) => string | undefined;

export function createBatchDecoder(): BatchDecoder {
  let table: string[] = [];
  /** Takes in the batch's dictionary strings: the dictionary it reads against. */
  const dictionary = ({ adds, reset }: EncodedBatch): string[] => {
    // A reset starts a new array: a batch opened earlier keeps reading the one it was encoded against.
    if (reset) table = [];
    for (const s of adds) table.push(s);
    return table;
  };
  /** The reader of references of a batch encoded against `current`, with its `literals`. */
  const reader =
    (current: string[], literals: string[]): Str =>
    (n) =>
      n >= 0 ? current[n] : n === ABSENT ? undefined : literals[-n - 2];
  const open = (encoded: EncodedBatch, later?: () => string[]): OpenedBatch => {
    const { nums } = encoded;
    const current = dictionary(encoded);
    let str: Str | undefined;
    let req: ((n: number) => string) | undefined;
    const read = (literals: string[]) => {
      const s = reader(current, literals);
      str = s;
      req = (n) => s(n) ?? '';
    };
    if (!later) read(encoded.literals);
    // Every batch has the same fields in one order (one hidden class), summaries read or not.
    const batch: ChainBatch = { chains: [], traceSummaries: req ? summariesOf(encoded, req) : undefined, traces: nums[0]!, spans: nums[1]! };
    let decoded = false;
    return {
      batch,
      chains() {
        if (!decoded) {
          decoded = true;
          if (later) {
            read(later());
            batch.traceSummaries = summariesOf(encoded, req!);
          }
          batch.chains = decodeChains(encoded, str!, req!);
        }
        return batch.chains;
      },
    };
  };
  return {
    open,
    traceIds(encoded) {
      const str = reader(dictionary(encoded), encoded.literals);
      return traceIdsOf(encoded, (n) => str(n) ?? '');
    },
    decode(encoded) {
      const opened = open(encoded);
      opened.chains();
      return opened.batch;
    },
  };
}

/** Where a batch's trace summaries start in its refs and nums (they follow its chains). */
function summariesStart(refs: Int32Array): { r: number; n: number } {
  const chainCount = refs[0]!;
  let r = HEAD_REFS + refs[2]! * SOURCE_REFS;
  let n = HEAD_NUMS;
  for (let i = 0; i < chainCount; i++) {
    const calls = refs[r + CHAIN_REFS - 1]!;
    r += CHAIN_REFS + CALL_REFS * calls;
    n += CHAIN_NUMS + CALL_NUMS * calls;
  }
  return { r, n };
}

/** The trace ids of a batch's summaries, in order. */
function traceIdsOf({ refs }: EncodedBatch, req: (n: number) => string): string[] {
  const summaryCount = refs[1]!;
  let { r } = summariesStart(refs);
  const ids: string[] = new Array(summaryCount);
  for (let i = 0; i < summaryCount; i++) {
    ids[i] = req(refs[r]!);
    r += 3 + refs[r + 2]!;
  }
  return ids;
}

/** The trace summaries of a batch. */
function summariesOf({ nums, refs }: EncodedBatch, req: (n: number) => string): TraceSummary[] {
  const summaryCount = refs[1]!;
  let { r, n } = summariesStart(refs);
  const traceSummaries: TraceSummary[] = new Array(summaryCount);
  for (let i = 0; i < summaryCount; i++) {
    const traceId = req(refs[r++]!);
    const late = LATE_CODES[refs[r++]!];
    const count = refs[r++]!;
    const services: string[] = new Array(count);
    for (let j = 0; j < count; j++) services[j] = req(refs[r++]!);
    const summary: TraceSummary = { traceId, startMs: nums[n++]!, endMs: nums[n++]!, spans: nums[n++]!, services };
    if (late !== undefined) summary.late = late;
    traceSummaries[i] = summary;
  }
  return traceSummaries;
}

/**
 * Chains and calls are made with every field present (undefined when absent), in one order, so
 * that they all share one hidden class: the consumer's code (store, detection) then reads
 * them through monomorphic property loads, where calls with optional fields added one by one had
 * a handful of shapes (megamorphic loads) and an extra properties array each. JSON, and so the
 * store and the API, sees the same fields in the same order as before. A call's source keeps only
 * the fields it has (it is merged by spreading), and calls with the same source share one object
 * (nothing changes a call's source in place: the engine merges sources into new objects).
 * Measured with bench/per-chain.mjs's stages and both codecs alternated (2026-12-06, load 27):
 * batch decode 0.20x, store 0.82x of before (fields in one order).
 */
function decodeChains({ nums, refs }: EncodedBatch, str: Str, req: (n: number) => string): Chain[] {
  const sourceCount = refs[2]!;
  const sources: SourceContext[] = new Array(sourceCount);
  for (let i = 0; i < sourceCount; i++) sources[i] = sourceAt(refs, HEAD_REFS + i * SOURCE_REFS, str);
  const chainCount = refs[0]!;
  let r = HEAD_REFS + sourceCount * SOURCE_REFS;
  let n = HEAD_NUMS;
  const chains: Chain[] = new Array(chainCount);
  for (let i = 0; i < chainCount; i++) {
    const traceId = req(refs[r]!);
    const identity = req(refs[r + 1]!);
    const identityKind = req(refs[r + 2]!);
    const displayName = str(refs[r + 3]!);
    const callCount = refs[r + 4]!;
    const startMs = nums[n]!;
    const endMs = nums[n + 1]!;
    r += CHAIN_REFS;
    n += CHAIN_NUMS;
    const calls: Call[] = new Array(callCount);
    for (let j = 0; j < callCount; j++) {
      const httpStatus = nums[n + 2]!;
      const flags = refs[r + 19]!;
      // Every field is set, absent ones to undefined, in the order they were added one by one
      // before: one hidden class for every call (see the note at decodeChains).
      calls[j] = {
        traceId: req(refs[r]!),
        spanId: req(refs[r + 1]!),
        parentSpanId: req(refs[r + 3]!),
        identity: req(refs[r + 4]!),
        identityKind: req(refs[r + 5]!),
        service: req(refs[r + 6]!),
        peer: req(refs[r + 7]!),
        peerKind: req(refs[r + 8]!) as Call['peerKind'],
        external: (flags & FLAG_EXTERNAL) !== 0,
        operation: req(refs[r + 9]!),
        protocol: req(refs[r + 12]!),
        startMs: nums[n]!,
        durationMs: nums[n + 1]!,
        status: req(refs[r + 13]!) as Call['status'],
        name: req(refs[r + 14]!),
        source: sources[refs[r + 15]!]!,
        serverSpanId: str(refs[r + 2]!),
        target: str(refs[r + 10]!),
        account: str(refs[r + 11]!),
        httpStatus: Number.isNaN(httpStatus) ? undefined : httpStatus,
        errorCode: str(refs[r + 16]!),
        auditId: str(refs[r + 17]!),
        version: str(refs[r + 18]!),
        pathOperation: (flags & FLAG_PATH_OPERATION) !== 0 ? true : undefined,
      };
      r += CALL_REFS;
      n += CALL_NUMS;
    }
    // receivedMs is the backend's (the engine stamps it on every chain it stores): its slot is
    // made here, so that the stamp is a store into the chain instead of a new hidden class and
    // a properties array per chain.
    chains[i] = { traceId, identity, identityKind, startMs, endMs, calls, displayName, receivedMs: undefined };
  }
  return chains;
}

/** A call's source with the fields it has only: consumers merge sources by spreading them (engine/late.ts). */
function sourceAt(refs: Int32Array, p: number, str: Str): SourceContext {
  const source: SourceContext = {};
  const region = str(refs[p]!);
  if (region !== undefined) source.region = region;
  const account = str(refs[p + 1]!);
  if (account !== undefined) source.account = account;
  const host = str(refs[p + 2]!);
  if (host !== undefined) source.host = host;
  const cluster = str(refs[p + 3]!);
  if (cluster !== undefined) source.cluster = cluster;
  const network = str(refs[p + 4]!);
  if (network !== undefined) source.network = network;
  const clientAddress = str(refs[p + 5]!);
  if (clientAddress !== undefined) source.clientAddress = clientAddress;
  const userAgent = str(refs[p + 6]!);
  if (userAgent !== undefined) source.userAgent = userAgent;
  const publicAddress = refs[p + 7]!;
  if (publicAddress >= 0) source.publicAddress = publicAddress === 1;
  return source;
}
