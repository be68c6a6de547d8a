import { describe, expect, it } from 'vitest';
import type { Call } from '@conduct/processor';
import { testCall } from './testdata/call.js';
import { decodeCalls, encodeCalls } from './call-codec.js';

const chain = { traceId: 'cd'.repeat(16), identity: 'svc:a', identityKind: 'workload', startMs: 1_795_778_004_547 };

const call = (extra: Record<string, unknown>): Call => testCall(chain, extra);

describe('call codec formats', () => {
  it('reads rows written before the version (times in ms, optional fields in the trailing object)', () => {
    const v1 = JSON.stringify([
      ['00000000000000a1', '', 'shop/api', 'db:5432', 'database', 0, 'SELECT orders', 'db', 2.5, 0.59130859375, 'ok', 'SELECT', { source: { region: 'eu' }, target: 'orders', httpStatus: 200 }],
      ['00000000000000a2', '00000000000000a1', 'shop/api', 'x.example:443', 'http', 1, 'POST /x', 'http', 3, 1, 'error', 'POST'],
    ]);
    const [a, b] = decodeCalls(v1, chain);
    expect(a).toMatchObject({ spanId: '00000000000000a1', startMs: chain.startMs + 2.5, durationMs: 0.59130859375, source: { region: 'eu' }, target: 'orders', httpStatus: 200 });
    expect(b).toMatchObject({ external: true, status: 'error', startMs: chain.startMs + 3, source: {} });
    expect(decodeCalls('[]', chain)).toEqual([]);
  });

  it('keeps nanosecond-derived times, times of any magnitude and non-finite times exactly', () => {
    const calls = [
      call({ startMs: chain.startMs + 0.211181640625, durationMs: 2.839599609375 }),
      call({ startMs: chain.startMs - 0.3, durationMs: 1e-9 }),
      call({ startMs: 1.5e-300, durationMs: Number.MAX_VALUE }),
      call({ startMs: Number.NaN, durationMs: Number.POSITIVE_INFINITY }),
    ];
    const decoded = decodeCalls(encodeCalls(calls, chain.startMs), chain);
    expect(decoded.map((c) => [c.startMs - chain.startMs, c.durationMs])).toEqual(calls.map((c) => [c.startMs - chain.startMs, c.durationMs]));
    expect(encodeCalls(calls.slice(0, 1), chain.startMs)).toContain(',865,11631,');
  });

  it('keeps known fields of unexpected types, unknown source fields and odd sources', () => {
    const calls = [
      call({ source: { region: 'eu', publicAddress: 'yes', zone: 'eu-1a', userAgent: 7 }, target: null, httpStatus: '200', serverSpanId: '' }),
      call({ source: null }),
      call({ source: 'host-1' }),
      call({ source: { clientAddress: '10.0.0.1', publicAddress: false, network: '10.0.0.0/24', userAgent: 'curl/8', host: 'h', cluster: 'c', account: '1' } }),
    ];
    expect(decodeCalls(encodeCalls(calls, chain.startMs), chain)).toEqual(calls);
    expect(decodeCalls(encodeCalls([], chain.startMs), chain)).toEqual([]);
  });

  it('never lets a stored __proto__ key set a prototype', () => {
    const text = encodeCalls([call({})], chain.startMs).replace('null]', 'null,{"__proto__":{"x":1},"source":{"__proto__":{"y":2}}}]');
    const [decoded] = decodeCalls(text, chain);
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(decoded!.source)).toBe(Object.prototype);
    expect((decoded as unknown as Record<string, unknown>).x).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(decoded!.source, '__proto__')).toBe(true);
  });
});
