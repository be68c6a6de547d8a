import type { Call } from '@conduct/processor';

/** The chain fields a test call is built from. */
export interface TestChain {
  traceId: string;
  identity: string;
  startMs: number;
}

/** A plain HTTP call of `chain`, with `extra` fields on top (odd values included: codec tests). */
export function testCall(chain: TestChain, extra: Record<string, unknown>): Call {
  return {
    traceId: chain.traceId,
    spanId: '00000000000000a1',
    parentSpanId: '00000000000000a0',
    identity: chain.identity,
    identityKind: 'workload',
    service: 'shop/api',
    peer: 'shop/orders',
    peerKind: 'service',
    external: false,
    operation: 'GET /orders/{id}',
    protocol: 'http',
    startMs: chain.startMs,
    durationMs: 1,
    status: 'ok',
    name: 'GET',
    source: {},
    ...extra,
  } as Call;
}
