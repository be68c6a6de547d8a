import type { Call } from '@conduct/processor';

/**
 * Compact stored form of a chain's calls: one JSON array of tuples. The fields every call has go
 * in a fixed order (no repeated key names); the start time is relative to the chain's start; the
 * chain row already holds the trace id and identity. Anything else on a call (optional fields, and
 * fields a later Call adds) is kept in a trailing object, so nothing is lost when the type grows.
 */
type Tuple = [
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

/** Call fields that the tuple holds or the chain row already has; anything else goes in `rest`. */
function isTupleField(key: string): boolean {
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
      return true;
    default:
      return false;
  }
}

export function encodeCalls(calls: readonly Call[], chainStartMs: number): string {
  const tuples = new Array<Tuple>(calls.length);
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i]!;
    const t: Tuple = [
      call.spanId, call.parentSpanId, call.service, call.peer, call.peerKind, call.external ? 1 : 0, call.operation, call.protocol,
      call.startMs - chainStartMs, call.durationMs, call.status, call.name,
    ];
    // The remaining own fields, as an object spread would copy them (undefined ones included).
    let rest: Record<string, unknown> | undefined;
    for (const key in call) {
      if (isTupleField(key) || !Object.prototype.hasOwnProperty.call(call, key)) continue;
      (rest ??= {})[key] = (call as unknown as Record<string, unknown>)[key];
    }
    if (rest) t.push(rest);
    tuples[i] = t;
  }
  return JSON.stringify(tuples);
}

export function decodeCalls(text: string, chain: { traceId: string; identity: string; identityKind: string; startMs: number }): Call[] {
  const tuples = JSON.parse(text) as Tuple[];
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
