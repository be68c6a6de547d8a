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

export function encodeCalls(calls: readonly Call[], chainStartMs: number): string {
  const tuples: Tuple[] = calls.map((call) => {
    const {
      traceId: _traceId, identity: _identity, identityKind: _kind,
      spanId, parentSpanId, service, peer, peerKind, external, operation, protocol, startMs, durationMs, status, name,
      ...rest
    } = call;
    const t: Tuple = [
      spanId, parentSpanId, service, peer, peerKind, external ? 1 : 0, operation, protocol,
      startMs - chainStartMs, durationMs, status, name,
    ];
    if (Object.keys(rest).length) t.push(rest);
    return t;
  });
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
