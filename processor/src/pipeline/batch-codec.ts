import type { Call, Chain, ChainBatch, SourceContext, TraceSummary } from '../model.js';

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
/** A summary's `late` as a number (its index here; -1 when absent). */
const LATE_CODES = ['joins', 'maybe', 'fragment'] as const;

export interface BatchEncoder {
  encode(batch: ChainBatch): EncodedBatch;
}

export function createBatchEncoder(maxStrings = MAX_DICTIONARY_STRINGS): BatchEncoder {
  let dict = new Map<string, number>();
  /** Open-addressing index of the batch's distinct sources (index + 1; 0 empty), reused from batch to batch. */
  let sourceSlots = new Int32Array(1024);
  /** The references of one call's source while it is looked up. */
  const scratch = new Int32Array(SOURCE_REFS);
  return {
    encode(batch) {
      let callCount = 0;
      for (const chain of batch.chains) callCount += chain.calls.length;
      const summaries = batch.traceSummaries ?? [];
      let summaryRefs = 0;
      for (const s of summaries) summaryRefs += SUMMARY_REFS + s.services.length;
      const adds: string[] = [];
      const literals: string[] = [];
      let reset = false;
      // Started over before any reference of this batch is handed out, so they all share one dictionary.
      const most = batch.chains.length * CHAIN_REFS + callCount * (CALL_REFS + SOURCE_REFS) + summaryRefs;
      if (dict.size + most > maxStrings) {
        dict = new Map();
        reset = true;
      }
      const ref = (s: string | undefined): number => {
        if (s === undefined) return ABSENT;
        let id = dict.get(s);
        if (id === undefined) {
          id = dict.size;
          dict.set(s, id);
          adds.push(s);
        }
        return id;
      };
      // Not looked up: ids are unique, apart from a chain's trace id, which its calls reuse below.
      const literal = (s: string | undefined): number => (s === undefined ? ABSENT : -(literals.push(s) + 1));

      // First the distinct sources, so that the arrays are allocated at their size.
      const sources: number[] = [];
      const sourceOf = new Int32Array(callCount);
      let slots = sourceSlots;
      if (slots.length < 2 * callCount) slots = sourceSlots = new Int32Array(1 << Math.ceil(Math.log2(2 * callCount)));
      else slots.fill(0);
      const mask = slots.length - 1;
      const one = scratch;
      let k = 0;
      for (const chain of batch.chains) {
        for (const c of chain.calls) {
          const src = c.source;
          one[0] = ref(src.region);
          one[1] = ref(src.account);
          one[2] = ref(src.host);
          one[3] = ref(src.cluster);
          one[4] = ref(src.network);
          one[5] = ref(src.clientAddress);
          one[6] = ref(src.userAgent);
          one[7] = src.publicAddress === undefined ? -1 : src.publicAddress ? 1 : 0;
          let h = 0;
          for (let i = 0; i < SOURCE_REFS; i++) h = Math.imul(h ^ one[i]!, 0x9e3779b1);
          for (let slot = (h ^ (h >>> 15)) & mask; ; slot = (slot + 1) & mask) {
            const found = slots[slot]! - 1;
            if (found < 0) {
              const index = sources.length / SOURCE_REFS;
              for (let i = 0; i < SOURCE_REFS; i++) sources.push(one[i]!);
              slots[slot] = index + 1;
              sourceOf[k] = index;
              break;
            }
            if (sameSource(sources, found * SOURCE_REFS, one)) {
              sourceOf[k] = found;
              break;
            }
          }
          k++;
        }
      }

      const refs = new Int32Array(HEAD_REFS + sources.length + batch.chains.length * CHAIN_REFS + callCount * CALL_REFS + summaryRefs);
      const nums = new Float64Array(HEAD_NUMS + batch.chains.length * CHAIN_NUMS + callCount * CALL_NUMS + summaries.length * SUMMARY_NUMS);
      refs[0] = batch.chains.length;
      refs[1] = summaries.length;
      refs[2] = sources.length / SOURCE_REFS;
      refs.set(sources, HEAD_REFS);
      nums[0] = batch.traces;
      nums[1] = batch.spans;
      let r = HEAD_REFS + sources.length;
      let n = HEAD_NUMS;
      k = 0;
      for (const chain of batch.chains) {
        const traceRef = literal(chain.traceId);
        refs[r++] = traceRef;
        refs[r++] = ref(chain.identity);
        refs[r++] = ref(chain.identityKind);
        refs[r++] = ref(chain.displayName);
        refs[r++] = chain.calls.length;
        nums[n++] = chain.startMs;
        nums[n++] = chain.endMs;
        for (const c of chain.calls) {
          refs[r++] = c.traceId === chain.traceId ? traceRef : literal(c.traceId);
          refs[r++] = literal(c.spanId);
          refs[r++] = literal(c.serverSpanId);
          refs[r++] = literal(c.parentSpanId);
          refs[r++] = ref(c.identity);
          refs[r++] = ref(c.identityKind);
          refs[r++] = ref(c.service);
          refs[r++] = ref(c.peer);
          refs[r++] = ref(c.peerKind);
          refs[r++] = ref(c.operation);
          refs[r++] = ref(c.target);
          refs[r++] = ref(c.account);
          refs[r++] = ref(c.protocol);
          refs[r++] = ref(c.status);
          refs[r++] = ref(c.name);
          refs[r++] = sourceOf[k++]!;
          refs[r++] = ref(c.errorCode);
          refs[r++] = literal(c.auditId);
          refs[r++] = ref(c.version);
          refs[r++] = (c.external ? FLAG_EXTERNAL : 0) | (c.pathOperation ? FLAG_PATH_OPERATION : 0);
          nums[n++] = c.startMs;
          nums[n++] = c.durationMs;
          nums[n++] = c.httpStatus === undefined ? NaN : c.httpStatus;
        }
      }
      for (const s of summaries) {
        refs[r++] = literal(s.traceId);
        refs[r++] = s.late === undefined ? ABSENT : LATE_CODES.indexOf(s.late);
        refs[r++] = s.services.length;
        for (const name of s.services) refs[r++] = ref(name);
        nums[n++] = s.startMs;
        nums[n++] = s.endMs;
        nums[n++] = s.spans;
      }
      return { nums, refs, adds, literals, reset };
    },
  };
}

/** Whether the source at `at` of `sources` is `one`. */
function sameSource(sources: readonly number[], at: number, one: Int32Array): boolean {
  for (let i = 0; i < SOURCE_REFS; i++) if (sources[at + i] !== one[i]) return false;
  return true;
}

export interface BatchDecoder {
  decode(encoded: EncodedBatch): ChainBatch;
  /**
   * Reads a batch's counts and trace summaries now and leaves its chains encoded until `chains`
   * is called. Batches can wait a while for the consumer (a backlog of them under load): held as
   * two typed arrays each they stay out of the garbage collector's way, where their chain and
   * call objects would be copied into the old generation and marked there. Batches must still be
   * opened in the order they were encoded; their chains may then be read at any later time.
   */
  open(encoded: EncodedBatch): OpenedBatch;
}

export interface OpenedBatch {
  /** The batch, with `chains` empty until {@link OpenedBatch.chains} fills it. */
  batch: ChainBatch;
  /** Decodes the chains into `batch.chains` (once) and returns them. */
  chains(): Chain[];
}

type Str = (n: number) => string | undefined;

export function createBatchDecoder(): BatchDecoder {
  let table: string[] = [];
  const open = (encoded: EncodedBatch): OpenedBatch => {
    const { nums, refs, adds, literals, reset } = encoded;
    // A reset starts a new array: a batch opened earlier keeps reading the one it was encoded against.
    if (reset) table = [];
    for (const s of adds) table.push(s);
    const strings = table;
    const str: Str = (n) => (n >= 0 ? strings[n] : n === ABSENT ? undefined : literals[-n - 2]);
    const req = (n: number): string => str(n) ?? '';

    const chainCount = refs[0]!;
    const summaryCount = refs[1]!;
    let r = HEAD_REFS + refs[2]! * SOURCE_REFS;
    let n = HEAD_NUMS;
    for (let i = 0; i < chainCount; i++) {
      const calls = refs[r + CHAIN_REFS - 1]!;
      r += CHAIN_REFS + CALL_REFS * calls;
      n += CHAIN_NUMS + CALL_NUMS * calls;
    }
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
    const batch: ChainBatch = { chains: [], traceSummaries, traces: nums[0]!, spans: nums[1]! };
    let decoded = false;
    return {
      batch,
      chains() {
        if (!decoded) {
          decoded = true;
          batch.chains = decodeChains(encoded, str, req);
        }
        return batch.chains;
      },
    };
  };
  return {
    open,
    decode(encoded) {
      const opened = open(encoded);
      opened.chains();
      return opened.batch;
    },
  };
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
    chains[i] = { traceId, identity, identityKind, startMs, endMs, calls, displayName };
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
