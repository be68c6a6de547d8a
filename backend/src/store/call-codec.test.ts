import { describe, expect, it } from 'vitest';
import type { Call } from '@conduct/processor';
import { decodeCalls, encodeCalls } from './call-codec.js';

const chain = { traceId: 'ab'.repeat(16), identity: 'agent:x', identityKind: 'agent', startMs: 1_700_000_000_000 };

function call(extra: Partial<Call> & Record<string, unknown>): Call {
  return {
    traceId: chain.traceId,
    spanId: '00000000000000a1',
    parentSpanId: '',
    identity: chain.identity,
    identityKind: 'agent',
    service: 'shop/api',
    peer: 'db:5432',
    peerKind: 'database',
    external: false,
    operation: 'SELECT orders',
    protocol: 'db',
    startMs: chain.startMs + 5,
    durationMs: 3,
    status: 'ok',
    name: 'SELECT',
    source: {},
    ...extra,
  } as Call;
}

describe('call codec', () => {
  it('keeps every field, the optional and unknown ones in the trailing object', () => {
    const calls = [
      call({ source: { region: 'eu', clientAddress: '10.0.0.1', publicAddress: false }, httpStatus: 200, target: 'orders', account: '123', serverSpanId: '00000000000000b2' }),
      call({ spanId: '00000000000000a2', external: true, startMs: chain.startMs, futureField: { a: [1, 'two'] } }),
    ];
    const text = encodeCalls(calls, chain.startMs);
    expect(decodeCalls(text, chain)).toEqual(calls);
    // Fixed fields are positional: their names are not repeated per call.
    expect(text).not.toContain('"operation"');
    expect(JSON.parse(text)[1][8]).toBe(0);
  });

  it('drops undefined optional fields as JSON does, and keeps inherited fields out', () => {
    const proto = { inherited: 'no' };
    const c = Object.assign(Object.create(proto) as object, call({ httpStatus: undefined })) as Call;
    const [decoded] = decodeCalls(encodeCalls([c], chain.startMs), chain);
    expect(decoded).not.toHaveProperty('inherited');
    expect(decoded).not.toHaveProperty('httpStatus');
    expect(decoded!.source).toEqual({});
  });
});
