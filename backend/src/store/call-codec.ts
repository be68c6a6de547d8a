import type { Call, SourceContext } from '@conduct/processor';

/**
 * Compact stored form of a chain's calls: one JSON array of tuples, then the format version. The
 * fields every call has go in a fixed order (no repeated key names); the chain row already holds
 * the trace id and identity. The optional fields conduct knows, the source's included, have their
 * own slots (null when absent), so key names are not repeated per call either. Anything else on a
 * call (a known field of an unexpected type, and fields a later Call adds) is kept in a trailing
 * object, so nothing is lost when the type grows.
 *
 * Times are ticks of 2^-12 ms relative to the chain's start: every millisecond time between 2004
 * and 2039 is a whole number of ticks, and whole numbers print several times faster than the
 * fractions that nanosecond timestamps give. A time that is no whole number of ticks is kept as
 * its decimal text.
 *
 * Rows written before the version (`[tuple, ...]`, no version at the end) keep every optional
 * field in the trailing object and times in ms; decodeCalls reads both.
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

export function encodeCalls(calls: readonly Call[], chainStartMs: number): string {
  const out = new Array<Tuple | number>(calls.length + 1);
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i]!;
    const c = call as unknown as Record<string, unknown>;
    const source = call.source as unknown;
    const s = isRecord(source) ? source : {};
    const t: Tuple = [
      call.spanId, call.parentSpanId, call.service, call.peer, call.peerKind, call.external ? 1 : 0, call.operation, call.protocol,
      ticks(call.startMs - chainStartMs), ticks(call.durationMs), call.status, call.name,
      text(call.serverSpanId), text(call.target), text(call.account), inSlot('httpStatus', call.httpStatus) ? call.httpStatus! : null,
      text(s.region), text(s.account), text(s.host), text(s.cluster), text(s.network), text(s.clientAddress), text(s.userAgent),
      typeof s.publicAddress === 'boolean' ? s.publicAddress : null,
    ];
    // The remaining own fields with a value, as JSON would keep them.
    let rest: Record<string, unknown> | undefined;
    for (const key in call) {
      const value = c[key];
      if (value === undefined || isFixedField(key) || inSlot(key, value) || !Object.prototype.hasOwnProperty.call(call, key)) continue;
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
    if (rest) t.push(rest);
    out[i] = t;
  }
  out[calls.length] = VERSION;
  return JSON.stringify(out);
}

type ChainOfCalls = { traceId: string; identity: string; identityKind: string; startMs: number };

export function decodeCalls(text: string, chain: ChainOfCalls): Call[] {
  const items = JSON.parse(text) as unknown[];
  if (items.at(-1) !== VERSION) return decodeV1(items as TupleV1[], chain);
  const calls = new Array<Call>(items.length - 1);
  for (let i = 0; i < calls.length; i++) calls[i] = decodeTuple(items[i] as Tuple, chain);
  return calls;
}

function decodeTuple(t: Tuple, chain: ChainOfCalls): Call {
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
