import { describe, expect, it } from 'vitest';
import type { Call } from '@conduct/processor';
import { testCall } from './testdata/call.js';
import { decodeCalls, encodeCalls, encodeCallsBinary, startCallsRun, type TextTable } from './call-codec.js';

const chain = { traceId: 'ef'.repeat(16), identity: 'svc:a', identityKind: 'workload', startMs: 1_795_778_004_547 };

const call = (extra: Record<string, unknown>): Call => testCall(chain, extra);

/** A table in memory that numbers every text except those it is told to keep inline. */
function table(inline: (text: string) => boolean = () => false): TextTable & { size(): number } {
  const ids = new Map<string, number>();
  const texts: string[] = [];
  return {
    idOf(text) {
      if (inline(text)) return -1;
      let id = ids.get(text);
      if (id === undefined) ids.set(text, (id = texts.push(text) - 1));
      return id;
    },
    textOf: (id) => texts[id]!,
    size: () => texts.length,
  };
}

/** Encodes, copies out of the reused buffer (as SQLite does) and decodes. */
function roundTrip(calls: Call[], texts: TextTable): Call[] {
  const bytes = encodeCallsBinary(calls, chain.startMs, texts);
  expect(bytes).toBeInstanceOf(Uint8Array);
  return decodeCalls(Buffer.from(bytes!), chain, texts);
}

const varied = [
  call({ source: { region: 'eu', clientAddress: '10.0.0.1', publicAddress: false }, httpStatus: 200, target: 'orders', account: '123', serverSpanId: '00000000000000b2' }),
  call({ spanId: '00000000000000A2', parentSpanId: '', external: true, source: { publicAddress: true, userAgent: 'curl/8 ✓ 😀' }, futureField: { a: [1, 'two'] } }),
  call({ spanId: 'not-hex-at-all!!', serverSpanId: 'short', name: 'x'.repeat(5000), httpStatus: 200.5 }),
  call({ startMs: chain.startMs + 0.211181640625, durationMs: 2.839599609375 }),
  call({ startMs: chain.startMs - 0.3, durationMs: 1e-9 }),
  call({ startMs: 1.5e-300, durationMs: Number.MAX_VALUE, httpStatus: -404 }),
  call({ startMs: Number.NaN, durationMs: Number.POSITIVE_INFINITY, httpStatus: 2 ** 60 }),
  call({ source: { region: 'eu', publicAddress: 'yes', zone: 'eu-1a', userAgent: 7 }, target: null, httpStatus: '200', serverSpanId: '' }),
  call({ source: null }),
  call({ source: 'host-1' }),
  call({ source: { clientAddress: '10.0.0.1', publicAddress: false, network: '10.0.0.0/24', userAgent: 'curl/8', host: 'h', cluster: 'c', account: '1' } }),
];

describe('call codec, binary form', () => {
  it('reads back what the JSON form reads back, texts numbered or inline', () => {
    const expected = decodeCalls(encodeCalls(varied, chain.startMs), chain);
    expect(roundTrip(varied, table())).toEqual(expected);
    expect(roundTrip(varied, table(() => true))).toEqual(expected);
    expect(roundTrip(varied, table((t) => t.length % 2 === 0))).toEqual(expected);
    expect(roundTrip([], table())).toEqual([]);
    expect(expected[3]!.startMs - chain.startMs).toBe(0.211181640625);
  });

  it('numbers each repeated text once and keeps span ids in 8 bytes', () => {
    const texts = table();
    const calls = Array.from({ length: 10 }, (_, i) => call({ spanId: `00000000000000${(i + 16).toString(16)}`, source: { region: 'eu', host: 'h-1' } }));
    const bytes = encodeCallsBinary(calls, chain.startMs, texts)!;
    expect(texts.size()).toBe(9); // service, peer, peerKind, operation, protocol, status, name, region, host
    expect(bytes.length).toBeLessThan(encodeCalls(calls, chain.startMs).length / 4);
    expect(decodeCalls(Buffer.from(bytes), chain, texts)).toEqual(calls);
  });

  it('writes the same bytes whatever the calls before (fields in other orders, a shared source changed between runs)', () => {
    // What one chain's calls encode to on their own, copied out of the reused buffer.
    const alone = (calls: Call[], texts: TextTable): Buffer => Buffer.from(encodeCallsBinary(calls, chain.startMs, texts)!);
    const texts = table();
    const shared: Record<string, unknown> = { region: 'eu', zone: 'eu-1a' };
    const a = call({ source: shared, httpStatus: 200 });
    // The same fields in another order, a slot's name where another field was, an unknown field.
    const b = { futureField: 1, ...call({ source: shared, target: 'orders' }), httpStatus: 'teapot' } as unknown as Call;
    const expected = [alone([a], texts), alone([b], texts), alone([a, b, a], texts)];
    startCallsRun();
    const run = [encodeCallsBinary([a], chain.startMs, texts, true)!, encodeCallsBinary([b], chain.startMs, texts, true)!, encodeCallsBinary([a, b, a], chain.startMs, texts, true)!];
    expect(run.map((bytes) => Buffer.from(bytes))).toEqual(expected);
    expect(decodeCalls(Buffer.from(run[1]!), chain, texts)).toEqual(decodeCalls(encodeCalls([b], chain.startMs), chain));
    // A new run forgets the source it saw: its field without a slot changed in place.
    shared.zone = 'eu-1b';
    startCallsRun();
    const changed = Buffer.from(encodeCallsBinary([a], chain.startMs, texts, true)!);
    expect(changed).not.toEqual(expected[0]);
    expect(decodeCalls(changed, chain, texts)[0]!.source).toEqual({ region: 'eu', zone: 'eu-1b' });
  });

  it('leaves calls it cannot hold exactly to the JSON form', () => {
    expect(encodeCallsBinary([call({ service: 7 })], chain.startMs, table())).toBeUndefined();
    expect(encodeCallsBinary([call({ operation: undefined })], chain.startMs, table())).toBeUndefined();
    // A lone surrogate has no UTF-8 form; JSON escapes it.
    expect(encodeCallsBinary([call({ name: 'a\ud800b' })], chain.startMs, table(() => true))).toBeUndefined();
    // The trailing object is JSON, which escapes it.
    const odd = call({ futureField: '\udc00' });
    expect(roundTrip([odd], table())).toEqual([odd]);
  });

  it('never lets a stored __proto__ key set a prototype', () => {
    const hostile = JSON.parse('{"__proto__":{"x":1},"source":{"__proto__":{"y":2}}}') as Record<string, unknown>;
    const [decoded] = roundTrip([call(hostile)], table());
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(decoded!.source)).toBe(Object.prototype);
    expect((decoded as unknown as Record<string, unknown>).x).toBeUndefined();
  });

  it('keeps error code, version, audit id and pathOperation in slots of their own (format 4), odd values in the trailing object', () => {
    const texts = table();
    const calls = [
      call({ errorCode: 'AccessDenied', auditId: 'e-1', version: '1.2.3', pathOperation: true }),
      call({ spanId: '00000000000000a2', version: '1.2.3' }),
      call({ spanId: '00000000000000a3', errorCode: 7, auditId: null, version: '', pathOperation: false }),
    ];
    const bytes = encodeCallsBinary(calls, chain.startMs, texts)!;
    expect(bytes[0]).toBe(4);
    // Version and error code are numbered texts; the audit id (one per call) is not.
    expect(texts.size()).toBe(10);
    expect(Buffer.from(bytes).includes('e-1')).toBe(true);
    // Only the third call, whose odd values have no slot, has a trailing object.
    expect(Buffer.from(bytes).includes('"version"')).toBe(false);
    expect(Buffer.from(bytes).includes('"pathOperation":false')).toBe(true);
    const decoded = decodeCalls(Buffer.from(bytes), chain, texts);
    expect(decoded).toEqual(calls);
    expect(decoded).toEqual(decodeCalls(encodeCalls(calls, chain.startMs), chain));
    // Fields come back in the order a call from the pipeline has them.
    expect(Object.keys(decoded[0]!).slice(-4)).toEqual(['errorCode', 'auditId', 'version', 'pathOperation']);
  });

  it('reads format 3, where those fields were in the trailing object', () => {
    // Written by the format-3 encoder, texts numbered in this order.
    const texts = table();
    for (const text of ['shop/api', 'shop/orders', 'service', 'GET /orders/{id}', 'http', 'ok', 'GET']) texts.idOf(text);
    const v3 = Buffer.from(
      '0302020100000000000000a10100000000000000a00001030507090b0d0000000000000000000181800100a8017b226572726f72436f6465223a2241636365737344656e696564222c' +
        '2261756469744964223a22652d31222c2276657273696f6e223a22312e322e33222c22706174684f7065726174696f6e223a747275657d020100000000000000a20100000000000000a0' +
        '0001030507090b0d0000000000000000000181800100287b2276657273696f6e223a22312e322e33227d',
      'hex',
    );
    expect(decodeCalls(v3, chain, texts)).toEqual([
      call({ errorCode: 'AccessDenied', auditId: 'e-1', version: '1.2.3', pathOperation: true }),
      call({ spanId: '00000000000000a2', version: '1.2.3' }),
    ]);
  });

  it('refuses a blob of an unknown format or without a table', () => {
    expect(() => decodeCalls(Buffer.from([9, 0]), chain, table())).toThrow(/unknown format/);
    expect(() => decodeCalls(Buffer.from(encodeCallsBinary([call({})], chain.startMs, table())!), chain)).toThrow(/no table/);
  });
});
