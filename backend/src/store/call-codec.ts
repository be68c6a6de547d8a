import type { Call, SourceContext } from '@conduct/processor';

/**
 * Stored forms of a chain's calls. Each call is a tuple: the fields every call has in a fixed
 * order (no repeated key names); the chain row already holds the trace id and identity. The
 * optional fields conduct knows, the source's included, have their own slots (null when absent),
 * so key names are not repeated per call either. Anything else on a
 * call (a known field of an unexpected type, and fields a later Call adds) is kept in a trailing
 * object, so nothing is lost when the type grows.
 *
 * Times are ticks of 2^-12 ms relative to the chain's start: every millisecond time between 2004
 * and 2039 is a whole number of ticks, and whole numbers print several times faster than the
 * fractions that nanosecond timestamps give. A time that is no whole number of ticks is kept as
 * its decimal text.
 *
 * The store writes the tuples in a binary form (format 4, `encodeCallsBinary`, below) with
 * repeated texts as numbers; calls it cannot hold exactly take the JSON form (format 2: one JSON
 * array of the tuples, then the version). Rows written before the version (`[tuple, ...]`) keep
 * every optional field in the trailing object and times in ms; decodeCalls reads all three.
 */
const VERSION = 2;
const TICKS_PER_MS = 4096;

type Time = number | string;
type Tuple = [
  spanId: string,
  parentSpanId: string,
  service: string,
  peer: string,
  peerKind: string,
  external: 0 | 1,
  operation: string,
  protocol: string,
  startOffset: Time,
  duration: Time,
  status: string,
  name: string,
  serverSpanId: string | null,
  target: string | null,
  account: string | null,
  httpStatus: number | null,
  region: string | null,
  sourceAccount: string | null,
  host: string | null,
  cluster: string | null,
  network: string | null,
  clientAddress: string | null,
  userAgent: string | null,
  publicAddress: boolean | null,
  rest?: Record<string, unknown>,
];

/** A tuple of the rows written before the version: ms times and every optional field in `rest`. */
type TupleV1 = [
  spanId: string,
  parentSpanId: string,
  service: string,
  peer: string,
  peerKind: string,
  external: 0 | 1,
  operation: string,
  protocol: string,
  startOffsetMs: number,
  durationMs: number,
  status: string,
  name: string,
  rest?: Record<string, unknown>,
];

/** Call fields that always have a slot or that the chain row already has. */
function isFixedField(key: string): boolean {
  switch (key) {
    case 'traceId':
    case 'identity':
    case 'identityKind':
    case 'spanId':
    case 'parentSpanId':
    case 'service':
    case 'peer':
    case 'peerKind':
    case 'external':
    case 'operation':
    case 'protocol':
    case 'startMs':
    case 'durationMs':
    case 'status':
    case 'name':
    case 'source':
      return true;
    default:
      return false;
  }
}

/** Whether an optional call field's value fits its slot (else it goes in `rest`). */
function inSlot(key: string, value: unknown): boolean {
  switch (key) {
    case 'serverSpanId':
    case 'target':
    case 'account':
      return typeof value === 'string';
    case 'httpStatus':
      return typeof value === 'number' && Number.isFinite(value);
    default:
      return false;
  }
}

/** Whether an optional call field's value fits a slot only the binary form has (format 4). */
function inBinarySlot(key: string, value: unknown): boolean {
  switch (key) {
    case 'errorCode':
    case 'auditId':
    case 'version':
      return typeof value === 'string';
    case 'pathOperation':
      return value === true;
    default:
      return false;
  }
}

/** Whether a source field's value fits its slot. */
function inSourceSlot(key: string, value: unknown): boolean {
  switch (key) {
    case 'region':
    case 'account':
    case 'host':
    case 'cluster':
    case 'network':
    case 'clientAddress':
    case 'userAgent':
      return typeof value === 'string';
    case 'publicAddress':
      return typeof value === 'boolean';
    default:
      return false;
  }
}

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function ticks(ms: number): Time {
  const t = ms * TICKS_PER_MS;
  return Number.isInteger(t) ? t : String(ms);
}

function fromTicks(t: Time): number {
  return typeof t === 'number' ? t / TICKS_PER_MS : Number(t);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The tuple of one call: fixed and known optional fields in their slots, the rest in a trailing object. */
function toTuple(call: Call, chainStartMs: number): Tuple {
  const source = call.source as unknown;
  const s = isRecord(source) ? source : {};
  const t: Tuple = [
    call.spanId, call.parentSpanId, call.service, call.peer, call.peerKind, call.external ? 1 : 0, call.operation, call.protocol,
    ticks(call.startMs - chainStartMs), ticks(call.durationMs), call.status, call.name,
    text(call.serverSpanId), text(call.target), text(call.account), inSlot('httpStatus', call.httpStatus) ? call.httpStatus! : null,
    text(s.region), text(s.account), text(s.host), text(s.cluster), text(s.network), text(s.clientAddress), text(s.userAgent),
    typeof s.publicAddress === 'boolean' ? s.publicAddress : null,
  ];
  const rest = restOf(call, source, false);
  if (rest) t.push(rest);
  return t;
}

/**
 * The remaining own fields of a call with a value, as JSON would keep them; undefined when none.
 * `binary`: the fields with a slot of the binary form only (format 4) are not among them.
 */
function restOf(call: Call, source: unknown, binary: boolean): Record<string, unknown> | undefined {
  const c = call as unknown as Record<string, unknown>;
  let rest: Record<string, unknown> | undefined;
  for (const key in call) {
    const value = c[key];
    if (value === undefined || isFixedField(key) || inSlot(key, value) || (binary && inBinarySlot(key, value))) continue;
    if (!Object.prototype.hasOwnProperty.call(call, key)) continue;
    (rest ??= {})[key] = value;
  }
  if (isRecord(source)) {
    let extra: Record<string, unknown> | undefined;
    for (const key in source) {
      const value = source[key];
      if (value === undefined || inSourceSlot(key, value) || !Object.prototype.hasOwnProperty.call(source, key)) continue;
      (extra ??= {})[key] = value;
    }
    if (extra) (rest ??= {}).source = extra;
  } else if (source !== undefined) {
    (rest ??= {}).source = source;
  }
  return rest;
}

/** The JSON form (format 2): the fallback of `encodeCallsBinary` for calls it cannot hold exactly. */
export function encodeCalls(calls: readonly Call[], chainStartMs: number): string {
  const out = new Array<Tuple | number>(calls.length + 1);
  for (let i = 0; i < calls.length; i++) out[i] = toTuple(calls[i]!, chainStartMs);
  out[calls.length] = VERSION;
  return JSON.stringify(out);
}

type ChainOfCalls = { traceId: string; identity: string; identityKind: string; startMs: number };

/** Calls of a stored row: the binary form (a blob, texts by id from `texts`) or either JSON form. */
export function decodeCalls(stored: string | Uint8Array, chain: ChainOfCalls, texts?: TextTable): Call[] {
  if (typeof stored !== 'string') return decodeBinary(stored, chain, texts);
  const items = JSON.parse(stored) as unknown[];
  if (items.at(-1) !== VERSION) return decodeV1(items as TupleV1[], chain);
  const calls = new Array<Call>(items.length - 1);
  for (let i = 0; i < calls.length; i++) calls[i] = decodeTuple(items[i] as Tuple, chain);
  return calls;
}

/** The slots of the binary form alone (format 4). */
interface BinaryOnlySlots {
  errorCode: string | null;
  version: string | null;
  auditId: string | null;
  pathOperation: boolean;
}

function decodeTuple(t: Tuple, chain: ChainOfCalls, binaryOnly?: BinaryOnlySlots): Call {
  const source: SourceContext = {};
  if (t[16] !== null) source.region = t[16];
  if (t[17] !== null) source.account = t[17];
  if (t[18] !== null) source.host = t[18];
  if (t[19] !== null) source.cluster = t[19];
  if (t[20] !== null) source.network = t[20];
  if (t[21] !== null) source.clientAddress = t[21];
  if (t[22] !== null) source.userAgent = t[22];
  if (t[23] !== null) source.publicAddress = t[23];
  const call: Call = {
    traceId: chain.traceId,
    spanId: t[0],
    parentSpanId: t[1],
    identity: chain.identity,
    identityKind: chain.identityKind,
    service: t[2],
    peer: t[3],
    peerKind: t[4] as Call['peerKind'],
    external: t[5] === 1,
    operation: t[6],
    protocol: t[7],
    startMs: chain.startMs + fromTicks(t[8]),
    durationMs: fromTicks(t[9]),
    status: t[10] as Call['status'],
    name: t[11],
    source,
  };
  if (t[12] !== null) call.serverSpanId = t[12];
  if (t[13] !== null) call.target = t[13];
  if (t[14] !== null) call.account = t[14];
  if (t[15] !== null) call.httpStatus = t[15];
  // In the order a call from the pipeline has them, which is also the order they had in `rest`.
  if (binaryOnly) {
    if (binaryOnly.errorCode !== null) call.errorCode = binaryOnly.errorCode;
    if (binaryOnly.auditId !== null) call.auditId = binaryOnly.auditId;
    if (binaryOnly.version !== null) call.version = binaryOnly.version;
    if (binaryOnly.pathOperation) call.pathOperation = true;
  }
  const rest = t[24];
  if (!rest) return call;
  // Spread, not assignment: a `__proto__` key stays a plain field.
  if (!Object.prototype.hasOwnProperty.call(rest, 'source')) return { ...call, ...rest };
  const extra = rest.source;
  return { ...call, ...rest, source: (isRecord(extra) ? { ...source, ...extra } : extra) as SourceContext };
}

function decodeV1(tuples: TupleV1[], chain: ChainOfCalls): Call[] {
  return tuples.map((t) => ({
    traceId: chain.traceId,
    spanId: t[0],
    parentSpanId: t[1],
    identity: chain.identity,
    identityKind: chain.identityKind,
    service: t[2],
    peer: t[3],
    peerKind: t[4] as Call['peerKind'],
    external: t[5] === 1,
    operation: t[6],
    protocol: t[7],
    startMs: chain.startMs + t[8],
    durationMs: t[9],
    status: t[10] as Call['status'],
    name: t[11],
    source: {},
    ...(t[12] ?? {}),
  }));
}

/**
 * The binary form (format 4), a blob: the tuple of each call with every text that repeats from
 * call to call (services, peers, operations, source context) as the number of its row in the
 * store's `strings` table, so a call takes tens of bytes instead of hundreds, and writing it is
 * a few map lookups instead of escaping and copying every text. Layout: the version byte, the
 * number of calls, then per call a flags varint (external, trailing object, publicAddress,
 * pathOperation), the slots in tuple order (span ids as 8 bytes when they are 16 lower-case hex
 * digits, texts as an id or inline UTF-8, numbers as varints or decimal text), then the slots of
 * the binary form alone: errorCode and version (texts of the table) and auditId (inline, one per
 * call), and the trailing object as JSON text.
 *
 * Format 3 (read, no longer written) is the same without those three slots and the pathOperation
 * flag: the fields went in the trailing object, a JSON text per call for every call with a version.
 */
const BINARY_VERSION = 4;
const BINARY_VERSION_3 = 3;
/** Flags of a call in the binary form. */
const FLAG_EXTERNAL = 1;
const FLAG_REST = 2;
const FLAG_PRIVATE_ADDRESS = 4;
const FLAG_PUBLIC_ADDRESS = 8;
const FLAG_PATH_OPERATION = 16;

/** Numbers for texts (the store's `strings` table). */
export interface TextTable {
  /** The text's id, or -1 to keep it inline. */
  idOf(text: string): number;
  textOf(id: number): string;
}

/** Tuple slots holding a span id: 8 bytes when hex. */
const ID_SLOTS = [0, 1, 12] as const;
/** Tuple slots holding a text (or null) looked up in the table. */
const TEXT_SLOTS = [2, 3, 4, 6, 7, 10, 11, 13, 14, 16, 17, 18, 19, 20, 21, 22] as const;
/** Largest magnitude of an integer stored as a varint (with two tag bits it stays a safe integer). */
const MAX_VARINT_INT = 2 ** 50;
const LONE_SURROGATE = /\p{Cs}/u;
/** Bytes kept free after every write but of the texts themselves: more than one call's ids and numbers take. */
const RESERVE = 256;
const NO_SOURCE: Record<string, unknown> = {};

/** Value of each lower-case hex digit by char code, -1 for every other code unit. */
const HEX = new Int8Array(65536).fill(-1);
for (let i = 0; i < 16; i++) HEX['0123456789abcdef'.charCodeAt(i)] = i;

/** Reused output buffer; a result is valid until the next call (SQLite copies a bound blob). */
let out = Buffer.allocUnsafe(64 * 1024);
let pos = 0;

function room(bytes: number): void {
  if (pos + bytes <= out.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, pos + bytes));
  out.copy(bigger, 0, 0, pos);
  out = bigger;
}

function varint(v: number): void {
  while (v >= 0x80000000) {
    out[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  while (v > 0x7f) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[pos++] = v;
}

/** Inline UTF-8 under the varint `2 * (bytes + 1)`; false for a text UTF-8 cannot hold (a lone surrogate). */
function inline(s: string): boolean {
  if (LONE_SURROGATE.test(s)) return false;
  const bytes = Buffer.byteLength(s);
  room(bytes + RESERVE);
  varint(2 * (bytes + 1));
  pos += out.write(s, pos);
  return true;
}

/** 0 for null, `2 * id + 1` for a text of the table, else inline. */
function writeText(s: string | null, texts: TextTable): boolean {
  if (s === null) {
    out[pos++] = 0;
    return true;
  }
  const id = texts.idOf(s);
  if (id < 0) return inline(s);
  varint(2 * id + 1);
  return true;
}

/** 0 for null, else inline (a text unique to its call, not worth a row of the table). */
function writeInline(s: string | null): boolean {
  if (s === null) {
    out[pos++] = 0;
    return true;
  }
  return inline(s);
}

/** 0 for null, 1 and 8 bytes for 16 lower-case hex digits, else inline. */
function writeSpanId(s: string | null): boolean {
  if (s === null) {
    out[pos++] = 0;
    return true;
  }
  if (s.length === 16) {
    const start = pos;
    out[pos++] = 1;
    let i = 0;
    for (; i < 16; i += 2) {
      const hi = HEX[s.charCodeAt(i)]!;
      const lo = HEX[s.charCodeAt(i + 1)]!;
      if ((hi | lo) < 0) break;
      out[pos++] = (hi << 4) | lo;
    }
    if (i === 16) return true;
    pos = start;
  }
  return inline(s);
}

/**
 * 0 for null; `4n + 1` / `4n + 2` for the integer n / -n; `4 * bytes + 3` and the decimal text
 * otherwise, of the value divided by `perUnit` (times are ticks as numbers, ms as text).
 */
function writeNumber(v: number | string | null, perUnit = 1): void {
  if (v === null) {
    out[pos++] = 0;
  } else if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < MAX_VARINT_INT) {
    varint(v >= 0 ? 4 * v + 1 : -4 * v + 2);
  } else {
    const s = typeof v === 'number' ? String(v / perUnit) : v;
    room(s.length + RESERVE);
    varint(4 * s.length + 3);
    pos += out.write(s, pos, 'latin1');
  }
}

/**
 * Starts a run of `encodeCallsBinary(..., true)`: their results all stay valid until the next run
 * starts (or the next call without `append`), so a writer can bind a whole multi-row statement's
 * blobs at once without copying each (a grown buffer leaves the earlier views on the old one).
 */
export function startCallsRun(): void {
  pos = 0;
}

/**
 * The binary form of a chain's calls, a view of a reused buffer valid until the next call (with
 * `append`, until the next `startCallsRun`); undefined when a call needs the JSON form (a fixed
 * field that is no text, a lone surrogate).
 */
export function encodeCallsBinary(calls: readonly Call[], chainStartMs: number, texts: TextTable, append = false): Uint8Array | undefined {
  const start = append ? pos : 0;
  pos = start;
  if (writeCalls(calls, chainStartMs, texts)) return out.subarray(start, pos);
  pos = start;
  return undefined;
}

/** The binary form of the calls at `pos`; false when a call needs the JSON form. */
function writeCalls(calls: readonly Call[], chainStartMs: number, texts: TextTable): boolean {
  room(RESERVE);
  out[pos++] = BINARY_VERSION;
  varint(calls.length);
  // The slots of the tuple (see toTuple) in the order decodeBinary reads them, without the tuple.
  for (const call of calls) {
    const { spanId, parentSpanId, service, peer, peerKind, operation, protocol, status, name } = call;
    if (
      typeof spanId !== 'string' || typeof parentSpanId !== 'string' || typeof service !== 'string' || typeof peer !== 'string' ||
      typeof peerKind !== 'string' || typeof operation !== 'string' || typeof protocol !== 'string' || typeof status !== 'string' ||
      typeof name !== 'string'
    ) {
      return false;
    }
    const source = call.source as unknown;
    const s = isRecord(source) ? source : NO_SOURCE;
    const rest = restOf(call, source, true);
    const publicAddress = s.publicAddress;
    room(RESERVE);
    varint(
      (call.external ? FLAG_EXTERNAL : 0) | (rest ? FLAG_REST : 0) |
        (publicAddress === true ? FLAG_PUBLIC_ADDRESS : publicAddress === false ? FLAG_PRIVATE_ADDRESS : 0) |
        (call.pathOperation === true ? FLAG_PATH_OPERATION : 0),
    );
    if (!writeSpanId(spanId) || !writeSpanId(parentSpanId) || !writeSpanId(text(call.serverSpanId))) return false;
    if (
      !writeText(service, texts) || !writeText(peer, texts) || !writeText(peerKind, texts) || !writeText(operation, texts) ||
      !writeText(protocol, texts) || !writeText(status, texts) || !writeText(name, texts) ||
      !writeText(text(call.target), texts) || !writeText(text(call.account), texts) ||
      !writeText(text(s.region), texts) || !writeText(text(s.account), texts) || !writeText(text(s.host), texts) ||
      !writeText(text(s.cluster), texts) || !writeText(text(s.network), texts) || !writeText(text(s.clientAddress), texts) ||
      !writeText(text(s.userAgent), texts)
    ) {
      return false;
    }
    writeNumber(ticks(call.startMs - chainStartMs), TICKS_PER_MS);
    writeNumber(ticks(call.durationMs), TICKS_PER_MS);
    writeNumber(inSlot('httpStatus', call.httpStatus) ? call.httpStatus! : null);
    if (!writeText(text(call.errorCode), texts) || !writeText(text(call.version), texts) || !writeInline(text(call.auditId))) return false;
    if (rest && !inline(JSON.stringify(rest))) return false;
  }
  return true;
}

function decodeBinary(bytes: Uint8Array, chain: ChainOfCalls, texts: TextTable | undefined): Call[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = buf[0];
  if (format !== BINARY_VERSION && format !== BINARY_VERSION_3) throw new Error(`stored calls in an unknown format ${format}`);
  if (!texts) throw new Error('stored calls refer to texts and no table was given');
  let at = 1;
  const uint = (): number => {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = buf[at++]!;
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 128;
    }
  };
  const utf8 = (v: number): string => {
    const end = at + v / 2 - 1;
    const s = buf.toString('utf8', at, end);
    at = end;
    return s;
  };
  const text = (): string | null => {
    const v = uint();
    return v === 0 ? null : v % 2 === 1 ? texts.textOf((v - 1) / 2) : utf8(v);
  };
  const spanId = (): string | null => {
    const v = uint();
    if (v === 0) return null;
    if (v > 1) return utf8(v);
    at += 8;
    return buf.toString('hex', at - 8, at);
  };
  const number = (): number | string | null => {
    const v = uint();
    const n = Math.floor(v / 4);
    switch (v % 4) {
      case 1:
        return n;
      case 2:
        return -n;
      case 3:
        at += n;
        return buf.toString('latin1', at - n, at);
      default:
        return null;
    }
  };
  const calls = new Array<Call>(uint());
  for (let c = 0; c < calls.length; c++) {
    const flags = uint();
    const t = new Array(24) as unknown as Tuple;
    t[5] = (flags & FLAG_EXTERNAL) as 0 | 1;
    t[23] = flags & (FLAG_PRIVATE_ADDRESS | FLAG_PUBLIC_ADDRESS) ? (flags & FLAG_PUBLIC_ADDRESS) !== 0 : null;
    for (const i of ID_SLOTS) t[i] = spanId() as string;
    for (const i of TEXT_SLOTS) t[i] = text() as string;
    t[8] = number()!;
    t[9] = number()!;
    const httpStatus = number();
    t[15] = typeof httpStatus === 'string' ? Number(httpStatus) : httpStatus;
    let binaryOnly: BinaryOnlySlots | undefined;
    if (format === BINARY_VERSION) binaryOnly = { errorCode: text(), version: text(), auditId: text(), pathOperation: (flags & FLAG_PATH_OPERATION) !== 0 };
    if (flags & FLAG_REST) t[24] = JSON.parse(utf8(uint())) as Record<string, unknown>;
    calls[c] = decodeTuple(t, chain, binaryOnly);
  }
  return calls;
}
