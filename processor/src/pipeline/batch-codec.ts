import type { Call, Chain, ChainBatch, SourceContext, TraceSummary } from '../model.js';

/**
 * How a batch of chains crosses from the pipeline thread to the consumer's: numbers in one
 * Float64Array (moved, not copied) and strings by reference to a dictionary both sides keep.
 *
 * Written by hand because the general route is what the split would otherwise lose: a structured
 * clone copies every string of every call again (services, peers, operations repeat in every
 * batch) and the receiving side then hashes each fresh copy again in its maps. Here a repeated
 * string crosses once and is then the same string object on the consumer's side, its hash cached.
 * Span and trace ids are unique per call and go by value, in a per-batch list.
 *
 * A string reference is a number: d >= 0 is dictionary entry d, -1 is absent, -(i + 2) is entry i
 * of the batch's own list. The dictionary is bounded: when full it starts over (the message says
 * so), so hostile high-cardinality names cost a reset, never memory.
 */
export interface EncodedBatch {
  nums: Float64Array;
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
/** Slots per call, in this order. */
const CALL_SLOTS = 31;
/** Slots before a chain's calls: trace id, identity, kind, display name, start, end, call count. */
const CHAIN_SLOTS = 7;
/** Slots before a summary's services: trace id, start, end, spans, late part, service count. */
const SUMMARY_SLOTS = 6;
/** A summary's `late` as a number (its index here; -1 when absent). */
const LATE_CODES = ['joins', 'maybe', 'fragment'] as const;

export interface BatchEncoder {
  encode(batch: ChainBatch): EncodedBatch;
}

export function createBatchEncoder(maxStrings = MAX_DICTIONARY_STRINGS): BatchEncoder {
  let dict = new Map<string, number>();
  return {
    encode(batch) {
      let size = 4;
      for (const chain of batch.chains) size += CHAIN_SLOTS + CALL_SLOTS * chain.calls.length;
      const summaries = batch.traceSummaries ?? [];
      for (const s of summaries) size += SUMMARY_SLOTS + s.services.length;
      const nums = new Float64Array(size);
      const adds: string[] = [];
      const literals: string[] = [];
      let reset = false;
      // Started over before any reference of this batch is handed out, so they all share one dictionary.
      if (dict.size + size > maxStrings) {
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
      const flag = (b: boolean | undefined) => (b === undefined ? NaN : b ? 1 : 0);

      let p = 0;
      nums[p++] = batch.chains.length;
      nums[p++] = summaries.length;
      nums[p++] = batch.traces;
      nums[p++] = batch.spans;
      for (const chain of batch.chains) {
        const traceRef = literal(chain.traceId);
        nums[p++] = traceRef;
        nums[p++] = ref(chain.identity);
        nums[p++] = ref(chain.identityKind);
        nums[p++] = ref(chain.displayName);
        nums[p++] = chain.startMs;
        nums[p++] = chain.endMs;
        nums[p++] = chain.calls.length;
        for (const c of chain.calls) {
          const src = c.source;
          nums[p++] = c.traceId === chain.traceId ? traceRef : literal(c.traceId);
          nums[p++] = literal(c.spanId);
          nums[p++] = literal(c.serverSpanId);
          nums[p++] = literal(c.parentSpanId);
          nums[p++] = ref(c.identity);
          nums[p++] = ref(c.identityKind);
          nums[p++] = ref(c.service);
          nums[p++] = ref(c.peer);
          nums[p++] = ref(c.peerKind);
          nums[p++] = c.external ? 1 : 0;
          nums[p++] = ref(c.operation);
          nums[p++] = ref(c.target);
          nums[p++] = ref(c.account);
          nums[p++] = ref(c.protocol);
          nums[p++] = c.startMs;
          nums[p++] = c.durationMs;
          nums[p++] = ref(c.status);
          nums[p++] = c.httpStatus === undefined ? NaN : c.httpStatus;
          nums[p++] = ref(c.name);
          nums[p++] = ref(src.region);
          nums[p++] = ref(src.account);
          nums[p++] = ref(src.host);
          nums[p++] = ref(src.cluster);
          nums[p++] = ref(src.network);
          nums[p++] = ref(src.clientAddress);
          nums[p++] = ref(src.userAgent);
          nums[p++] = flag(src.publicAddress);
          nums[p++] = ref(c.errorCode);
          nums[p++] = literal(c.auditId);
          nums[p++] = ref(c.version);
          nums[p++] = c.pathOperation ? 1 : 0;
        }
      }
      for (const s of summaries) {
        nums[p++] = literal(s.traceId);
        nums[p++] = s.startMs;
        nums[p++] = s.endMs;
        nums[p++] = s.spans;
        nums[p++] = s.late === undefined ? ABSENT : LATE_CODES.indexOf(s.late);
        nums[p++] = s.services.length;
        for (const name of s.services) nums[p++] = ref(name);
      }
      return { nums, adds, literals, reset };
    },
  };
}

export interface BatchDecoder {
  decode(encoded: EncodedBatch): ChainBatch;
  /**
   * Reads a batch's counts and trace summaries now and leaves its chains encoded until `chains`
   * is called. Batches can wait a while for the consumer (a backlog of them under load): held as
   * one Float64Array each they stay out of the garbage collector's way, where their chain and call
   * objects would be copied into the old generation and marked there. Batches must still be
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

export function createBatchDecoder(): BatchDecoder {
  let table: string[] = [];
  const open = ({ nums, adds, literals, reset }: EncodedBatch): OpenedBatch => {
    // A reset starts a new array: a batch opened earlier keeps reading the one it was encoded against.
    if (reset) table = [];
    for (const s of adds) table.push(s);
    const strings = table;
    const str = (n: number): string | undefined => (n >= 0 ? strings[n] : n === ABSENT ? undefined : literals[-n - 2]);
    const req = (n: number): string => str(n) ?? '';

    const chainCount = nums[0]!;
    const summaryCount = nums[1]!;
    let p = 4;
    for (let i = 0; i < chainCount; i++) p += CHAIN_SLOTS + CALL_SLOTS * nums[p + CHAIN_SLOTS - 1]!;
    const traceSummaries: TraceSummary[] = new Array(summaryCount);
    for (let i = 0; i < summaryCount; i++) {
      const traceId = req(nums[p++]!);
      const startMs = nums[p++]!;
      const endMs = nums[p++]!;
      const spanCount = nums[p++]!;
      const late = LATE_CODES[nums[p++]!];
      const n = nums[p++]!;
      const services: string[] = new Array(n);
      for (let j = 0; j < n; j++) services[j] = req(nums[p++]!);
      const summary: TraceSummary = { traceId, startMs, endMs, spans: spanCount, services };
      if (late !== undefined) summary.late = late;
      traceSummaries[i] = summary;
    }
    const batch: ChainBatch = { chains: [], traceSummaries, traces: nums[2]!, spans: nums[3]! };
    let decoded = false;
    return {
      batch,
      chains() {
        if (!decoded) {
          decoded = true;
          batch.chains = decodeChains(nums, chainCount, str, req);
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
 * store and the API, sees the same fields in the same order as before. A call's source keeps only the fields it has (it is merged by spreading).
 * Measured with
 * bench/per-chain.mjs's stages and both codecs alternated (2026-12-06, load 27): batch decode 0.20x,
 * store 0.82x of before.
 */
function decodeChains(nums: Float64Array, chainCount: number, str: (n: number) => string | undefined, req: (n: number) => string): Chain[] {
  let p = 4;
  const chains: Chain[] = new Array(chainCount);
  for (let i = 0; i < chainCount; i++) {
    const traceId = req(nums[p++]!);
    const identity = req(nums[p++]!);
    const identityKind = req(nums[p++]!);
    const displayName = str(nums[p++]!);
    const startMs = nums[p++]!;
    const endMs = nums[p++]!;
    const callCount = nums[p++]!;
    const calls: Call[] = new Array(callCount);
    for (let j = 0; j < callCount; j++) {
      const httpStatus = nums[p + 17]!;
      // Every field is set, absent ones to undefined, in the order they were added one by one
      // before: one hidden class for every call (see the note at decodeChains).
      calls[j] = {
        traceId: req(nums[p]!),
        spanId: req(nums[p + 1]!),
        parentSpanId: req(nums[p + 3]!),
        identity: req(nums[p + 4]!),
        identityKind: req(nums[p + 5]!),
        service: req(nums[p + 6]!),
        peer: req(nums[p + 7]!),
        peerKind: req(nums[p + 8]!) as Call['peerKind'],
        external: nums[p + 9] === 1,
        operation: req(nums[p + 10]!),
        protocol: req(nums[p + 13]!),
        startMs: nums[p + 14]!,
        durationMs: nums[p + 15]!,
        status: req(nums[p + 16]!) as Call['status'],
        name: req(nums[p + 18]!),
        source: sourceAt(nums, p + 19, str),
        serverSpanId: str(nums[p + 2]!),
        target: str(nums[p + 11]!),
        account: str(nums[p + 12]!),
        httpStatus: Number.isNaN(httpStatus) ? undefined : httpStatus,
        errorCode: str(nums[p + 27]!),
        auditId: str(nums[p + 28]!),
        version: str(nums[p + 29]!),
        pathOperation: nums[p + 30] === 1 ? true : undefined,
      };
      p += CALL_SLOTS;
    }
    chains[i] = { traceId, identity, identityKind, startMs, endMs, calls, displayName };
  }
  return chains;
}

/** A call's source with the fields it has only: consumers merge sources by spreading them (engine/late.ts). */
function sourceAt(nums: Float64Array, p: number, str: (n: number) => string | undefined): SourceContext {
  const source: SourceContext = {};
  const region = str(nums[p]!);
  if (region !== undefined) source.region = region;
  const account = str(nums[p + 1]!);
  if (account !== undefined) source.account = account;
  const host = str(nums[p + 2]!);
  if (host !== undefined) source.host = host;
  const cluster = str(nums[p + 3]!);
  if (cluster !== undefined) source.cluster = cluster;
  const network = str(nums[p + 4]!);
  if (network !== undefined) source.network = network;
  const clientAddress = str(nums[p + 5]!);
  if (clientAddress !== undefined) source.clientAddress = clientAddress;
  const userAgent = str(nums[p + 6]!);
  if (userAgent !== undefined) source.userAgent = userAgent;
  const publicAddress = nums[p + 7]!;
  if (!Number.isNaN(publicAddress)) source.publicAddress = publicAddress === 1;
  return source;
}
