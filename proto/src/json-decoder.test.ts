import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DecodeError, DEFAULT_DECODE_LIMITS } from './model.js';
import { decodeTracesRequestJson } from './json-decoder.js';
import { realisticRequest, toJson } from './testdata/requests.js';

const EXAMPLE = new URL('../../test/data/otlp-examples/trace.json', import.meta.url);
const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';

function body(span: Record<string, unknown>, resource: Record<string, unknown> = {}): string {
  return JSON.stringify({ resourceSpans: [{ resource, scopeSpans: [{ spans: [{ traceId: TRACE, spanId: SPAN, ...span }] }] }] });
}

function one(span: Record<string, unknown>) {
  const out = decodeTracesRequestJson(body(span));
  expect(out.spanCount).toBe(1);
  return out.resourceSpans[0].spans[0];
}

const attr = (key: string, value: unknown) => ({ key, value });

describe('decodeTracesRequestJson', () => {
  it('decodes the specification example: upper-case hex ids, string timestamps', () => {
    const out = decodeTracesRequestJson(readFileSync(EXAMPLE));
    expect(out.spanCount).toBe(1);
    expect(out.resourceSpans[0].resource['service.name']).toBe('my.service');
    expect(out.resourceSpans[0].spans[0]).toMatchObject({
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: 'eee19b7ec3c1b174',
      parentSpanId: 'eee19b7ec3c1b173',
      name: "I'm a server span",
      kind: 2,
      startMs: 1544712660000,
      endMs: 1544712661000,
      statusCode: 0,
    });
    expect(out.resourceSpans[0].spans[0].attributes['my.span.attr']).toBe('some value');
  });

  it('reads snake_case keys and upper-case ids exactly like lowerCamelCase', () => {
    const spec = realisticRequest(64, 11);
    const camel = decodeTracesRequestJson(JSON.stringify(toJson(spec)));
    expect(decodeTracesRequestJson(JSON.stringify(toJson(spec, 'snake', true)))).toStrictEqual(camel);
    expect(camel.spanCount).toBe(64);
  });

  it('accepts enum names, 64-bit integers as numbers and special doubles', () => {
    const s = one({
      kind: 'SPAN_KIND_CLIENT',
      status: { code: 'STATUS_CODE_ERROR' },
      startTimeUnixNano: 1544712660000000000,
      attributes: [attr('n', { intValue: 12 }), attr('s', { intValue: '-12' }), attr('nan', { doubleValue: 'NaN' }), attr('inf', { doubleValue: '-Infinity' })],
    });
    expect(s.kind).toBe(3);
    expect(s.statusCode).toBe(2);
    expect(s.startMs).toBe(1544712660000);
    expect(one({ startTimeUnixNano: '0001544712660000000000' }).startMs).toBe(1544712660000);
    expect(s.attributes.n).toBe(12);
    expect(s.attributes.s).toBe(-12);
    expect(s.attributes.nan).toBeNaN();
    expect(s.attributes.inf).toBe(-Infinity);
  });

  it('ignores unknown fields and null values', () => {
    const s = one({ kind: null, futureField: { a: [1, 2] }, attributes: [attr('k', { stringValue: 'v', futureValue: 1 })], status: null });
    expect(s.kind).toBe(0);
    expect(s.attributes.k).toBe('v');
  });

  it('succeeds on an empty request', () => {
    expect(decodeTracesRequestJson('{}')).toEqual({ resourceSpans: [], spanCount: 0, rejectedSpans: 0, rejectMessage: '' });
  });

  it('counts spans with unusable ids as rejected', () => {
    const out = decodeTracesRequestJson(
      JSON.stringify({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  { spanId: SPAN },
                  { traceId: '0'.repeat(32), spanId: SPAN },
                  { traceId: 'zz'.repeat(16), spanId: SPAN },
                  { traceId: TRACE, spanId: SPAN.slice(2) },
                  { traceId: TRACE, spanId: SPAN, parentSpanId: 'abc' },
                  { traceId: TRACE, spanId: SPAN },
                ],
              },
            ],
          },
        ],
      }),
    );
    expect(out.spanCount).toBe(1);
    expect(out.rejectedSpans).toBe(5);
    expect(out.rejectMessage).toMatch(/^rejected 5 spans: trace id .* \(3\), span id .* \(1\), parent span id .* \(1\)$/);
  });

  it('keeps a __proto__ key as a plain attribute', () => {
    const s = one({ attributes: [attr('__proto__', { stringValue: 'polluted' })] });
    expect(Object.getPrototypeOf(s.attributes)).toBeNull();
    expect(Object.getOwnPropertyDescriptor(s.attributes, '__proto__')?.value).toBe('polluted');
  });

  it('does not throw on invalid UTF-8 in a byte body', () => {
    const bytes = Buffer.concat([Buffer.from(body({ name: 'a' }).replace('"a"', '"a\u0001"')), Buffer.alloc(0)]);
    bytes[bytes.indexOf(1)] = 0xff;
    expect(one({ name: 'x' }).name).toBe('x');
    expect(decodeTracesRequestJson(bytes).resourceSpans[0].spans[0].name).toBe('a\ufffd');
  });

  describe('refuses bad bodies with DecodeError naming the path', () => {
    const cases: [string, string, RegExp][] = [
      ['invalid JSON', '{"resourceSpans": [', /invalid JSON/],
      ['a root that is not an object', '[1, 2]', /\$: expected an object, got array/],
      ['resourceSpans not an array', '{"resourceSpans": {}}', /resourceSpans: expected an array, got object/],
      ['a resource that is not an object', '{"resourceSpans": [{"resource": 5}]}', /resourceSpans\[0\]\.resource: expected an object/],
      ['startTimeUnixNano an object', body({ startTimeUnixNano: {} }), /resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.startTimeUnixNano: expected an integer/],
      ['startTimeUnixNano negative', body({ startTimeUnixNano: '-5' }), /startTimeUnixNano: "-5" is not an unsigned integer/],
      ['startTimeUnixNano beyond 64 bits', body({ startTimeUnixNano: '18446744073709551616' }), /startTimeUnixNano: out of the 64-bit range/],
      ['startTimeUnixNano a huge digit string', body({ startTimeUnixNano: '9'.repeat(1 << 20) }), /startTimeUnixNano: out of the 64-bit range/],
      ['traceId a number', body({ traceId: 5 }), /spans\[0\]\.traceId: expected a string, got number/],
      ['kind a fraction', body({ kind: 1.5 }), /kind: 1.5 is not a 32-bit integer/],
      ['kind an unknown name', body({ kind: 'SPAN_KIND_WHATEVER' }), /kind: unknown enum value/],
      ['attributes not an array', body({ attributes: 'x' }), /spans\[0\]\.attributes: expected an array/],
      ['an attribute key a number', body({ attributes: [attr(1 as never, { stringValue: 'x' })] }), /attributes\[0\]\.key: expected a string/],
      ['intValue not an integer', body({ attributes: [attr('k', { intValue: '1.5' })] }), /attributes\[0\]\.value\.intValue: "1.5" is not an integer/],
      ['boolValue a string', body({ attributes: [attr('k', { boolValue: 'true' })] }), /value\.boolValue: expected a boolean/],
      ['array values not an array', body({ attributes: [attr('k', { arrayValue: { values: 1 } })] }), /value\.arrayValue\.values: expected an array/],
    ];
    for (const [what, text, message] of cases) {
      it(what, () => {
        expect(() => decodeTracesRequestJson(text)).toThrow(DecodeError);
        expect(() => decodeTracesRequestJson(text)).toThrow(message);
      });
    }
  });

  describe('limits', () => {
    it('cuts a 1 MB string value', () => {
      const s = one({ attributes: [attr('big', { stringValue: 'y'.repeat(1 << 20) })] });
      expect(s.attributes.big).toBe('y'.repeat(DEFAULT_DECODE_LIMITS.maxAttributeValueLength));
    });

    it('caps 100k attributes', () => {
      const attributes = Array.from({ length: 100_000 }, (_, i) => attr(`k${i}`, { intValue: i }));
      const s = one({ attributes });
      expect(Object.keys(s.attributes)).toHaveLength(DEFAULT_DECODE_LIMITS.maxAttributesPerSpan);
    });

    it('refuses deeper nesting, even far beyond the limit', () => {
      let value: unknown = { intValue: 1 };
      for (let d = 0; d < DEFAULT_DECODE_LIMITS.maxValueDepth; d++) value = { arrayValue: { values: [value] } };
      expect(() => one({ attributes: [attr('deep', value)] })).toThrow(/nested deeper than 32/);
      const huge = `{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":${'{"arrayValue":{"values":['.repeat(100_000)}{}${']}}'.repeat(100_000)}}]}}]}`;
      expect(() => decodeTracesRequestJson(huge, { maxValueDepth: 10_000_000 })).toThrow(DecodeError);
    });
  });
});
