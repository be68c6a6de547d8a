/**
 * Issue 8, hostile input: a running conduct is fed random and mutated protobuf and JSON, wrong
 * wire types, huge varints, deep nesting, invalid UTF-8, 1 MB values, 100k attributes, gzip bombs
 * and slowloris clients over OTLP/HTTP. Every request must get an expected answer, `/metrics`
 * must count each one by its status code, the process must keep serving, and a good trace sent
 * afterwards must come out as a chain.
 *
 * CI runs a fixed seed and CONDUCT_FUZZ_COUNT (default 240) generated cases; set a larger count
 * (and CONDUCT_FUZZ_SEED) for a longer local run.
 */
import net from 'node:net';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTracesRequest } from '@conduct/proto';
import { counterSum, startHarness, type Harness } from './support/harness.js';
import {
  keyValueBytes,
  lenField,
  post,
  randomBytes,
  randomHex,
  seededRandom,
  splitHostPort,
  tag,
  varint,
  varintField,
} from './support/wire.js';

const COUNT = Math.max(1, Number(process.env.CONDUCT_FUZZ_COUNT ?? 240) || 240);
const SEED = Number(process.env.CONDUCT_FUZZ_SEED ?? 0x5eed) || 0x5eed;
const PROTOBUF = { 'content-type': 'application/x-protobuf' };
const JSON_TYPE = { 'content-type': 'application/json' };
const T0_NS = 1_790_000_000_000_000_000n;

/** A valid request: one resource, `spans` client spans of one identity in one trace. */
function validRequest(rand: () => number, spans = 3, traceId = randomHex(rand, 16), identity = 'fuzz-bot') {
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'fuzz-svc' } }] },
        scopeSpans: [
          {
            spans: Array.from({ length: spans }, (_, i) => ({
              traceId: Buffer.from(traceId, 'hex'),
              spanId: Buffer.from(randomHex(rand, 8), 'hex'),
              name: `GET /items/${i}`,
              kind: 3,
              startTimeUnixNano: String(T0_NS + BigInt(i) * 1_000_000n),
              endTimeUnixNano: String(T0_NS + BigInt(i) * 1_000_000n + 500_000n),
              attributes: [
                { key: 'enduser.id', value: { stringValue: identity } },
                { key: 'http.request.method', value: { stringValue: 'GET' } },
                { key: 'server.address', value: { stringValue: 'inventory.internal' } },
              ],
            })),
          },
        ],
      },
    ],
  };
}

function validJson(rand: () => number): string {
  const traceId = randomHex(rand, 16);
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'fuzz-json' } }] },
        scopeSpans: [
          {
            spans: [0, 1].map((i) => ({
              traceId,
              spanId: randomHex(rand, 8),
              name: 'SELECT orders',
              kind: 3,
              startTimeUnixNano: String(T0_NS + BigInt(i) * 1_000_000n),
              endTimeUnixNano: String(T0_NS + BigInt(i) * 1_000_000n + 1000n),
              attributes: [
                { key: 'user.id', value: { stringValue: 'json-bot' } },
                { key: 'db.system.name', value: { stringValue: 'postgresql' } },
                { key: 'nested', value: { kvlistValue: { values: [{ key: 'a', value: { arrayValue: { values: [{ intValue: '7' }] } } }] } } },
              ],
            })),
          },
        ],
      },
    ],
  });
}

/** Flips, inserts, deletes, truncates or duplicates bytes, biased towards varint edge cases. */
function mutate(input: Buffer, rand: () => number): Buffer {
  const bytes = Array.from(input);
  const edits = 1 + Math.floor(rand() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rand() * (bytes.length + 1));
    switch (Math.floor(rand() * 6)) {
      case 0:
        if (bytes.length) bytes[at % bytes.length]! ^= 1 << Math.floor(rand() * 8);
        break;
      case 1:
        if (bytes.length) bytes[at % bytes.length] = Math.floor(rand() * 256);
        break;
      case 2:
        bytes.splice(at, 0, ...[[0xff], [0x80, 0x80], [0x00], [0x0b], [0x0f], [0xff, 0xff, 0xff, 0xff, 0x0f]][Math.floor(rand() * 6)]!);
        break;
      case 3:
        bytes.splice(at, 1 + Math.floor(rand() * 8));
        break;
      case 4:
        bytes.length = Math.min(bytes.length, at);
        break;
      default: {
        const len = Math.floor(rand() * 32);
        bytes.splice(at, 0, ...bytes.slice(at, at + len));
      }
    }
  }
  return Buffer.from(bytes);
}

/** Wraps one span's bytes into a whole ExportTraceServiceRequest. */
function requestWithSpan(span: Buffer, resource: Buffer = lenField(1, Buffer.concat([lenField(1, 'service.name'), lenField(2, lenField(1, 'fuzz-raw'))]))): Buffer {
  return lenField(1, Buffer.concat([lenField(1, resource), lenField(2, lenField(2, span))]));
}

function spanBytes(rand: () => number, attributes: Buffer[] = []): Buffer {
  return Buffer.concat([
    lenField(1, Buffer.from(randomHex(rand, 16), 'hex')),
    lenField(2, Buffer.from(randomHex(rand, 8), 'hex')),
    lenField(5, 'op'),
    varintField(6, 3),
    ...attributes.map((a) => lenField(9, a)),
  ]);
}

/** An AnyValue nested `depth` arrays deep. */
function deepValue(depth: number): Buffer {
  let v = lenField(1, 'leaf');
  for (let i = 0; i < depth; i++) v = lenField(5, lenField(1, v));
  return v;
}

interface Case {
  name: string;
  headers: Record<string, string>;
  body: Buffer | string;
  /** Status codes that are correct for this input. */
  expect: number[];
}

/** The fixed hostile cases, each with the answer the OTLP specification asks for. */
function fixedCases(rand: () => number): Case[] {
  const oneMb = Buffer.alloc(1 << 20, 'x');
  const manyAttrs = Array.from({ length: 100_000 }, (_, i) => keyValueBytes(`k${i}`, Buffer.from('v')));
  const invalidUtf8 = Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80]);
  const bomb = zlib.gzipSync(Buffer.alloc(200 << 20), { level: 9 });
  return [
    { name: 'empty body', headers: PROTOBUF, body: Buffer.alloc(0), expect: [200] },
    { name: 'huge varint length', headers: PROTOBUF, body: Buffer.concat([tag(1, 2), Buffer.alloc(10, 0xff), Buffer.from([0x01])]), expect: [400] },
    { name: 'varint longer than 10 bytes', headers: PROTOBUF, body: Buffer.concat([tag(1, 0), Buffer.alloc(12, 0x80), Buffer.from([0x01])]), expect: [400] },
    { name: 'length beyond the body', headers: PROTOBUF, body: Buffer.concat([tag(1, 2), varint(1_000_000), Buffer.from('abc')]), expect: [400] },
    { name: 'resource_spans as a varint (wrong wire type)', headers: PROTOBUF, body: varintField(1, 5), expect: [400, 200] },
    { name: 'span as fixed32 (wrong wire type)', headers: PROTOBUF, body: lenField(1, lenField(2, Buffer.concat([tag(2, 5), Buffer.alloc(4)]))), expect: [400, 200] },
    { name: 'group wire type', headers: PROTOBUF, body: Buffer.concat([tag(1, 3), tag(1, 4)]), expect: [400, 200] },
    { name: 'deeply nested AnyValue', headers: PROTOBUF, body: requestWithSpan(spanBytes(rand, [Buffer.concat([lenField(1, 'deep'), lenField(2, deepValue(200))])])), expect: [400] },
    { name: 'invalid UTF-8 in attributes and name', headers: PROTOBUF, body: requestWithSpan(Buffer.concat([spanBytes(rand, [keyValueBytes('enduser.id', invalidUtf8)]), lenField(5, invalidUtf8)])), expect: [200, 400] },
    { name: '1 MB attribute value', headers: PROTOBUF, body: requestWithSpan(spanBytes(rand, [keyValueBytes('enduser.id', oneMb)])), expect: [200] },
    { name: '100k attributes on one span', headers: PROTOBUF, body: requestWithSpan(spanBytes(rand, manyAttrs)), expect: [200] },
    { name: '100k resource attributes', headers: PROTOBUF, body: requestWithSpan(spanBytes(rand), Buffer.concat(manyAttrs.map((a) => lenField(1, a)))), expect: [200] },
    { name: 'gzip bomb (200 MiB inflated)', headers: { ...PROTOBUF, 'content-encoding': 'gzip' }, body: bomb, expect: [413] },
    { name: 'not gzip under gzip encoding', headers: { ...PROTOBUF, 'content-encoding': 'gzip' }, body: Buffer.from('plainly not gzip'), expect: [400] },
    { name: 'unknown content encoding', headers: { ...PROTOBUF, 'content-encoding': 'br' }, body: Buffer.from('x'), expect: [415] },
    { name: 'unknown content type', headers: { 'content-type': 'text/plain' }, body: 'hello', expect: [415] },
    { name: 'JSON: not JSON', headers: JSON_TYPE, body: '{"resourceSpans": [', expect: [400] },
    { name: 'JSON: wrong types', headers: JSON_TYPE, body: '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":[],"spanId":{}}]}]}]}', expect: [400] },
    { name: 'JSON: deep nesting', headers: JSON_TYPE, body: '['.repeat(100_000) + ']'.repeat(100_000), expect: [400] },
    { name: 'JSON: deep AnyValue', headers: JSON_TYPE, body: deepJson(), expect: [400] },
    { name: 'JSON: 1 MB value', headers: JSON_TYPE, body: jsonWithValue('x'.repeat(1 << 20)), expect: [200] },
    { name: 'JSON: lone surrogates', headers: JSON_TYPE, body: jsonWithValue('\ud800\udfff\udc00'), expect: [200, 400] },
    { name: 'JSON: invalid UTF-8 bytes', headers: JSON_TYPE, body: Buffer.concat([Buffer.from(jsonWithValue('A').replace('"A"', '"')), invalidUtf8, Buffer.from('"}}]}]}]}]}')]), expect: [200, 400] },
  ];
}

function jsonWithValue(value: string): string {
  return JSON.stringify({
    resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', name: 'x', attributes: [{ key: 'enduser.id', value: { stringValue: value } }] }] }] }],
  });
}

function deepJson(): string {
  let v = '{"stringValue":"leaf"}';
  for (let i = 0; i < 200; i++) v = `{"arrayValue":{"values":[${v}]}}`;
  return `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"x","attributes":[{"key":"k","value":${v}}]}]}]}]}`;
}

/** Generated cases: mutated valid protobuf, random bytes, mutated JSON. Any of 200/400 is right. */
function* generatedCases(rand: () => number, count: number): Generator<Case> {
  const seedProto = Buffer.from(encodeTracesRequest(validRequest(rand, 4) as never));
  const seedJson = Buffer.from(validJson(rand));
  const punctuation = Buffer.from('{}[]":,0-e.1tnfx\\');
  for (let i = 0; i < count; i++) {
    const pick = i % 4;
    if (pick === 0 || pick === 1) yield { name: `mutated protobuf #${i}`, headers: PROTOBUF, body: mutate(seedProto, rand), expect: [200, 400] };
    else if (pick === 2) yield { name: `random bytes #${i}`, headers: PROTOBUF, body: randomBytes(rand, Math.floor(rand() * 512)), expect: [200, 400] };
    else {
      const body = mutate(seedJson, rand);
      for (let k = 0; k < 2 && body.length; k++) body[Math.floor(rand() * body.length)] = punctuation[Math.floor(rand() * punctuation.length)]!;
      yield { name: `mutated JSON #${i}`, headers: JSON_TYPE, body, expect: [200, 400] };
    }
  }
}

/** Opens a connection and dribbles header bytes; resolves with how the server ended it. */
function slowloris(endpoint: string, giveUpMs: number): Promise<{ closedByServer: boolean; answered: string }> {
  const [host, port] = splitHostPort(endpoint);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let answered = '';
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearInterval(drip);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ closedByServer, answered });
    };
    let drip: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      socket.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\n');
      let n = 0;
      drip = setInterval(() => {
        if (!socket.destroyed) socket.write(`X-Drip-${n++}: a\r\n`);
      }, 200);
    });
    socket.on('data', (d: Buffer) => (answered += d.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    const giveUp = setTimeout(() => finish(false), giveUpMs);
  });
}

describe('hostile input over OTLP/HTTP', () => {
  let conduct: Harness;

  beforeAll(async () => {
    conduct = await startHarness();
  });

  afterAll(async () => {
    await conduct?.stop();
  });

  it(`answers every hostile request correctly, counts it, and keeps working (seed ${SEED}, ${COUNT} generated)`, async () => {
    const rand = seededRandom(SEED);
    const before = await conduct.metrics();
    const codesBefore = (code: number) => counterSum(before, 'conduct_receiver_requests_total', { protocol: 'http', code: String(code) });

    // Slow clients run alongside everything else and must not hold the server up.
    const slow = Array.from({ length: 5 }, () => slowloris(conduct.http, conduct.headersTimeoutMs * 3 + 5_000));

    const seen = new Map<number, number>();
    const wrong: string[] = [];
    const run = async (c: Case) => {
      const res = await post(conduct.http, '/v1/traces', c.headers, c.body);
      seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
      if (!c.expect.includes(res.status)) wrong.push(`${c.name}: ${res.status} (expected ${c.expect.join('/')})`);
    };
    for (const c of fixedCases(rand)) await run(c);
    // A few at a time, as concurrent senders would.
    const gen = [...generatedCases(rand, COUNT)];
    for (let i = 0; i < gen.length; i += 8) await Promise.all(gen.slice(i, i + 8).map(run));

    expect(wrong).toEqual([]);
    expect(seen.get(0) ?? 0).toBe(0); // no connection was cut without an answer
    expect(seen.get(400) ?? 0).toBeGreaterThan(10);
    expect(seen.get(200) ?? 0).toBeGreaterThan(10);

    // /metrics counts each answer under its status code.
    const after = await conduct.metrics();
    for (const [code, n] of seen) {
      const counted = counterSum(after, 'conduct_receiver_requests_total', { protocol: 'http', code: String(code) }) - codesBefore(code);
      expect(counted, `requests counted with code ${code}`).toBe(n);
    }
    expect(counterSum(after, 'conduct_receiver_requests_rejected_total', { protocol: 'http', reason: 'too-large' })).toBeGreaterThanOrEqual(1);

    // The slow clients were cut off by the server.
    const slowResults = await Promise.all(slow);
    for (const s of slowResults) {
      expect(s.closedByServer).toBe(true);
      // Cut off for taking too long (408), or closed without an answer.
      expect(s.answered === '' || s.answered.startsWith('HTTP/1.1 408')).toBe(true);
    }

    // A good request still works and its chain shows up.
    const traceId = randomHex(rand, 16);
    const good = Buffer.from(encodeTracesRequest(validRequest(rand, 3, traceId, 'after-the-storm') as never));
    const res = await post(conduct.http, '/v1/traces', PROTOBUF, good);
    expect(res.status).toBe(200);
    await conduct.flush();
    expect(await conduct.traceIdentities(traceId)).toContain('after-the-storm');
  });
});
