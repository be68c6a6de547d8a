import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DecodeError, DEFAULT_DECODE_LIMITS } from './model.js';
import { decodeTracesRequest } from './wire-scanner.js';
import { decodeTracesRequestJson } from './json-decoder.js';
import { encodeTracesRequest } from './messages.js';
import { realisticRequest, toJson, toProto, type RequestSpec } from './testdata/requests.js';
import { SPAN, TRACE, fixed64, kv, ld, request, span, tag, varint, vi } from './testdata/wire.js';

const EXAMPLE = new URL('../../test/data/otlp-examples/trace.json', import.meta.url);

function scanOne(...extra: Buffer[]) {
  const out = decodeTracesRequest(request(span(...extra)));
  expect(out.spanCount).toBe(1);
  return out.resourceSpans[0].spans[0];
}

describe('decodeTracesRequest', () => {
  it('reads ids, times, kind, status and every attribute type', () => {
    const spec: RequestSpec = {
      resources: [
        {
          attrs: [['service.name', { s: 'checkout' }]],
          spans: [
            {
              traceId: '5b8efff798038103d269b633813fc60c',
              spanId: 'eee19b7ec3c1b174',
              parentSpanId: 'eee19b7ec3c1b173',
              name: 'GET /cart',
              kind: 2,
              startNs: 1544712660000000000,
              endNs: 1544712661000000000,
              statusCode: 2,
              attrs: [
                ['s', { s: 'héllo' }],
                ['b', { b: true }],
                ['i', { i: -42 }],
                ['big', { i: 2 ** 40 }],
                ['d', { d: 1.5 }],
                ['bytes', { bytes: Uint8Array.from([0, 1, 2, 250]) }],
                ['arr', { arr: [{ s: 'a' }, { i: 7 }, { b: false }, { arr: [{ d: 0.25 }] }, { empty: true }] }],
                ['kv', { kv: [['x', { s: 'y' }], ['n', { i: 1 }]] }],
                ['none', { empty: true }],
              ],
            },
          ],
        },
      ],
    };
    const out = decodeTracesRequest(encodeTracesRequest(toProto(spec)));
    expect(out.spanCount).toBe(1);
    expect(out.rejectedSpans).toBe(0);
    expect(out.rejectMessage).toBe('');
    expect({ ...out.resourceSpans[0].resource }).toEqual({ 'service.name': 'checkout' });
    const s = out.resourceSpans[0].spans[0];
    expect(s).toMatchObject({
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: 'eee19b7ec3c1b174',
      parentSpanId: 'eee19b7ec3c1b173',
      name: 'GET /cart',
      kind: 2,
      startMs: 1544712660000,
      endMs: 1544712661000,
      statusCode: 2,
    });
    expect({ ...s.attributes }).toEqual({
      s: 'héllo',
      b: true,
      i: -42,
      big: 2 ** 40,
      d: 1.5,
      bytes: 'AAEC+g==',
      arr: '["a",7,false,[0.25],null]',
      kv: '{"x":"y","n":1}',
    });
    expect(Object.getPrototypeOf(s.attributes)).toBeNull();
  });

  it('gives the same spans as the JSON decoder for the same request', () => {
    const spec = realisticRequest(512, 7);
    const fromProto = decodeTracesRequest(encodeTracesRequest(toProto(spec)));
    const fromJson = decodeTracesRequestJson(JSON.stringify(toJson(spec)));
    expect(fromProto.spanCount).toBe(512);
    expect(fromProto).toStrictEqual(fromJson);
  });

  it('decodes the specification example, re-encoded as protobuf', () => {
    const example = JSON.parse(readFileSync(EXAMPLE, 'utf8'));
    const s = example.resourceSpans[0].scopeSpans[0].spans[0];
    const bytes = encodeTracesRequest({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'my.service' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: Buffer.from(s.traceId, 'hex'),
                  spanId: Buffer.from(s.spanId, 'hex'),
                  parentSpanId: Buffer.from(s.parentSpanId, 'hex'),
                  name: s.name,
                  kind: s.kind,
                  startTimeUnixNano: Number(s.startTimeUnixNano),
                  endTimeUnixNano: Number(s.endTimeUnixNano),
                  attributes: [{ key: 'my.span.attr', value: { stringValue: 'some value' } }],
                },
              ],
            },
          ],
        },
      ],
    });
    expect(decodeTracesRequest(bytes)).toStrictEqual(decodeTracesRequestJson(readFileSync(EXAMPLE)));
  });

  it('succeeds on an empty request', () => {
    expect(decodeTracesRequest(new Uint8Array(0))).toEqual({ resourceSpans: [], spanCount: 0, rejectedSpans: 0, rejectMessage: '' });
  });

  it('skips unknown fields of every wire type and the parts conduct does not keep', () => {
    const unknown = Buffer.concat([vi(99, 5), fixed64(98, 1n), ld(97, 'x'), tag(96, 5), Buffer.alloc(4)]);
    const plain = decodeTracesRequest(request(span(vi(6, 3))));
    const noisy = Buffer.concat([
      unknown,
      ld(1, unknown, ld(1, unknown, ld(1, kv('service.name', ld(1, 'svc')))), ld(2, unknown, ld(1, 'scope'), ld(2, unknown, span(vi(6, 3), ld(3, 'ts=1'), ld(11, 'event'), ld(13, 'link'), vi(10, 2))))),
    ]);
    expect(decodeTracesRequest(noisy)).toStrictEqual(plain);
  });

  it('counts spans with unusable ids as rejected and keeps the rest', () => {
    const bytes = request(
      Buffer.concat([ld(1, TRACE.subarray(0, 15)), ld(2, SPAN)]),
      Buffer.concat([ld(1, Buffer.alloc(16)), ld(2, SPAN)]),
      Buffer.concat([ld(2, SPAN)]),
      Buffer.concat([ld(1, TRACE), ld(2, Buffer.alloc(8))]),
      Buffer.concat([ld(1, TRACE), ld(2, SPAN), ld(4, Buffer.alloc(3))]),
      span(ld(4, Buffer.alloc(8))),
    );
    const out = decodeTracesRequest(bytes);
    expect(out.spanCount).toBe(1);
    expect(out.rejectedSpans).toBe(5);
    expect(out.rejectMessage).toMatch(/^rejected 5 spans: trace id .* \(3\), span id .* \(1\), parent span id .* \(1\)$/);
    // An all-zero parent id means no parent.
    expect(out.resourceSpans[0].spans[0].parentSpanId).toBe('');
  });

  it('turns invalid UTF-8 into replacement characters', () => {
    const s = scanOne();
    expect(s.name).toBe('op');
    const bad = decodeTracesRequest(request(Buffer.concat([ld(1, TRACE), ld(2, SPAN), ld(5, Buffer.from([0x61, 0xff, 0xc3]))])));
    expect(bad.resourceSpans[0].spans[0].name).toBe('a\ufffd\ufffd');
  });

  it('keeps a __proto__ key as a plain attribute', () => {
    const s = scanOne(ld(9, kv('__proto__', ld(1, 'polluted'))), ld(9, kv('constructor', vi(3, 1))));
    expect(Object.getOwnPropertyDescriptor(s.attributes, '__proto__')?.value).toBe('polluted');
    expect(s.attributes.constructor).toBe(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('reads negative int64 values and large fixed64 times', () => {
    const s = scanOne(ld(9, kv('neg', vi(3, -1n))), ld(9, kv('min', vi(3, -(2n ** 63n)))), fixed64(7, 2n ** 64n - 1n));
    expect(s.attributes.neg).toBe(-1);
    expect(s.attributes.min).toBe(-(2 ** 63));
    expect(s.startMs).toBe(Number(2n ** 64n - 1n) / 1e6);
  });

  describe('refuses malformed input with DecodeError', () => {
    const valid = request(span(vi(6, 2), ld(9, kv('k', ld(1, 'v')))));
    const cases: [string, Buffer][] = [
      ['truncated in a length-delimited field', valid.subarray(0, valid.length - 3)],
      ['truncated inside a varint', Buffer.from([0x0a, 0x80])],
      ['wrong wire type for trace_id', request(Buffer.concat([vi(1, 5), ld(2, SPAN)]))],
      ['wrong wire type for kind', request(span(ld(6, 'x')))],
      ['wrong wire type for start time', request(span(vi(7, 5)))],
      ['wrong wire type for resource_spans', vi(1, 1)],
      ['overlong varint', Buffer.concat([tag(1, 0), Buffer.alloc(10, 0xff), Buffer.from([0x01])])],
      ['length beyond the buffer', Buffer.concat([tag(1, 2), varint(1000), Buffer.alloc(10)])],
      ['length past its parent message', ld(1, Buffer.concat([tag(2, 2), varint(50)]))],
      ['field number 0', Buffer.from([0x02, 0x00])],
      ['start group wire type', Buffer.concat([tag(5, 3), tag(5, 4)])],
      ['end group wire type', tag(5, 4)],
      ['wire type 6', tag(5, 6)],
      ['wire type 7', tag(5, 7)],
      ['truncated fixed64', Buffer.concat([tag(9, 1), Buffer.alloc(3)])],
      ['truncated fixed32', Buffer.concat([tag(9, 5), Buffer.alloc(3)])],
      ['tag wider than 32 bits', varint(2n ** 40n)],
    ];
    for (const [what, bytes] of cases) {
      it(what, () => {
        expect(() => decodeTracesRequest(bytes)).toThrow(DecodeError);
      });
    }

    it('every truncation of a valid request', () => {
      const full = encodeTracesRequest(toProto(realisticRequest(4, 3)));
      let refused = 0;
      for (let n = 0; n < full.length; n++) {
        try {
          decodeTracesRequest(full.subarray(0, n));
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
          refused++;
        }
      }
      // Cutting at a top-level field boundary leaves a valid (shorter) request; nearly all cuts do not.
      expect(refused).toBeGreaterThan(full.length * 0.9);
    });
  });

  describe('limits', () => {
    it('cuts a 1 MB string value to maxAttributeValueLength', () => {
      const big = 'x'.repeat(1 << 20);
      const s = scanOne(ld(9, kv('big', ld(1, big))), ld(5, big));
      expect(s.attributes.big).toBe('x'.repeat(DEFAULT_DECODE_LIMITS.maxAttributeValueLength));
      expect(s.name).toHaveLength(DEFAULT_DECODE_LIMITS.maxAttributeValueLength);
      const custom = decodeTracesRequest(request(span(ld(9, kv('big', ld(1, big))))), { maxAttributeValueLength: 10 });
      expect(custom.resourceSpans[0].spans[0].attributes.big).toBe('xxxxxxxxxx');
    });

    it('never splits a surrogate pair or keeps a partial character when cutting', () => {
      const s = decodeTracesRequest(request(span(ld(9, kv('e', ld(1, '😀😀😀'))))), { maxAttributeValueLength: 3 });
      expect(s.resourceSpans[0].spans[0].attributes.e).toBe('😀');
    });

    it('caps 100k attributes at maxAttributesPerSpan', () => {
      const attrs = Array.from({ length: 100_000 }, (_, i) => ld(9, kv(`k${i}`, vi(3, i))));
      const s = scanOne(Buffer.concat(attrs));
      const keys = Object.keys(s.attributes);
      expect(keys).toHaveLength(DEFAULT_DECODE_LIMITS.maxAttributesPerSpan);
      expect(keys[0]).toBe('k0');
      expect(s.attributes.k255).toBe(255);
    });

    it('keeps array text valid JSON within the length limit', () => {
      const values = Array.from({ length: 5000 }, (_, i) => ld(1, ld(1, `item-${i}`)));
      const s = decodeTracesRequest(request(span(ld(9, kv('arr', ld(5, ...values))))), { maxAttributeValueLength: 100 });
      const text = s.resourceSpans[0].spans[0].attributes.arr as string;
      expect(text.length).toBeLessThanOrEqual(100);
      expect(JSON.parse(text)).toEqual(['item-0', 'item-1', 'item-2', 'item-3', 'item-4', 'item-5', 'item-6', 'item-7', 'item-8', 'item-9']);
    });

    function nestedArrays(depth: number): Buffer {
      // AnyValue{array_value: ArrayValue{values: [AnyValue{...}]}}, built from the inside out.
      const headers: Buffer[] = [];
      let size = 2; // innermost AnyValue: int_value 1
      for (let d = 0; d < depth; d++) {
        const arrayHeader = Buffer.concat([tag(1, 2), varint(size)]);
        const arraySize = arrayHeader.length + size;
        const anyHeader = Buffer.concat([tag(5, 2), varint(arraySize)]);
        headers.push(arrayHeader, anyHeader);
        size = anyHeader.length + arraySize;
      }
      return Buffer.concat([...headers.reverse(), vi(3, 1)]);
    }

    it('refuses values nested deeper than maxValueDepth', () => {
      expect(scanOne(ld(9, kv('ok', nestedArrays(DEFAULT_DECODE_LIMITS.maxValueDepth - 1)))).attributes.ok).toBe(
        '['.repeat(DEFAULT_DECODE_LIMITS.maxValueDepth - 1) + '1' + ']'.repeat(DEFAULT_DECODE_LIMITS.maxValueDepth - 1),
      );
      expect(() => decodeTracesRequest(request(span(ld(9, kv('deep', nestedArrays(DEFAULT_DECODE_LIMITS.maxValueDepth))))))).toThrow(/nested deeper/);
    });

    it('answers DecodeError, not a stack overflow, when the depth limit is set absurdly high', () => {
      const bytes = request(span(ld(9, kv('deep', nestedArrays(200_000)))));
      expect(() => decodeTracesRequest(bytes, { maxValueDepth: 10_000_000 })).toThrow(DecodeError);
    });
  });
});
