import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import type { AttributeKeep, Attributes } from './model.js';
import { decodeTracesRequest } from './wire-scanner.js';
import { decodeTracesRequestJson } from './json-decoder.js';
import { encodeTracesRequest } from './messages.js';
import { MAX_REMEMBERED_KEYS, KeyFilter } from './key-filter.js';
import { realisticRequest, toJson, toProto, type RequestSpec, type Value } from './testdata/requests.js';
import { kv, ld, request, span, tag, vi } from './testdata/wire.js';

const KEEP: AttributeKeep = {
  keys: new Set(['service.name', 'http.route', 'db.system.name', 'peer.service']),
  presencePrefixes: ['db.', 'rpc.'],
};

function spec(spanAttrs: Array<[string, Value]>, resourceAttrs: Array<[string, Value]> = [['service.name', { s: 'svc' }]]): RequestSpec {
  return {
    resources: [
      {
        attrs: resourceAttrs,
        spans: [{ traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'op', kind: 0, startNs: 1_000_000_000, endNs: 2_000_000_000, attrs: spanAttrs }],
      },
    ],
  };
}

/** Span and resource attributes of the only span, decoded from protobuf and from JSON with `keep` (null: none). */
function both(s: RequestSpec, keep: AttributeKeep | null = KEEP): Array<{ span: Attributes; resource: Attributes }> {
  const proto = decodeTracesRequest(encodeTracesRequest(toProto(s)), keep ? { keep } : undefined);
  const json = decodeTracesRequestJson(JSON.stringify(toJson(s)), keep ? { keep } : undefined);
  return [proto, json].map((d) => ({ span: { ...d.resourceSpans[0].spans[0].attributes }, resource: { ...d.resourceSpans[0].resource } }));
}

describe('attribute key filter', () => {
  it('keeps only the listed keys, on spans and resources, in both encodings', () => {
    const s = spec(
      [
        ['http.route', { s: '/cart' }],
        ['http.request.body.size', { i: 120 }],
        ['feature.flags', { arr: [{ s: 'a' }] }],
        ['peer.service', { s: 'ledger' }],
      ],
      [
        ['service.name', { s: 'checkout' }],
        ['telemetry.sdk.language', { s: 'nodejs' }],
      ],
    );
    for (const out of both(s)) {
      expect(out.span).toEqual({ 'http.route': '/cart', 'peer.service': 'ledger' });
      expect(out.resource).toEqual({ 'service.name': 'checkout' });
    }
  });

  it('without keep, every attribute is kept as before', () => {
    const s = spec([
      ['http.route', { s: '/cart' }],
      ['other', { b: true }],
    ]);
    for (const out of both(s, null)) expect(out.span).toEqual({ 'http.route': '/cart', other: true });
  });

  it('keeps one key with a presence prefix when no listed key has one', () => {
    const s = spec([
      ['db.user', { s: 'app' }],
      ['db.response.returned_rows', { i: 3 }],
      ['rpc.message.id', { i: 1 }],
    ]);
    for (const out of both(s)) expect(out.span).toEqual({ 'db.user': 'app' });
  });

  it('keeps no presence key when a listed key with a presence prefix is there', () => {
    for (const order of [0, 1]) {
      const attrs: Array<[string, Value]> = [
        ['db.user', { s: 'app' }],
        ['db.system.name', { s: 'postgresql' }],
      ];
      if (order === 1) attrs.reverse();
      const s = spec(attrs);
      for (const out of both(s)) {
        expect(out.span['db.system.name']).toBe('postgresql');
        // Whichever came first: a presence key is there at most once, and only before the listed one.
        expect(Object.keys(out.span).filter((k) => k.startsWith('db.')).length).toBe(order === 0 ? 2 : 1);
      }
    }
  });

  it('an empty value does not count as presence', () => {
    const s = spec([
      ['db.first', { empty: true }],
      ['db.second', { s: 'x' }],
    ]);
    for (const out of both(s)) expect(out.span).toEqual({ 'db.second': 'x' });
  });

  it('steps over left-out values without decoding them (protobuf)', () => {
    // A string_value with the wrong wire type (varint): refused when read, ignored when left out.
    const badValue = vi(1, 5);
    const body = request(span(ld(9, kv('not.read', badValue)), ld(9, kv('http.route', ld(1, '/x')))));
    expect(() => decodeTracesRequest(body)).toThrow(/wrong wire type/);
    const out = decodeTracesRequest(body, { keep: KEEP });
    expect({ ...out.resourceSpans[0].spans[0].attributes }).toEqual({ 'http.route': '/x' });
  });

  it('decodes a value that comes before its key, then applies the decision (protobuf)', () => {
    const valueFirst = Buffer.concat([ld(2, ld(1, 'v')), ld(1, 'not.read')]);
    const keptValueFirst = Buffer.concat([ld(2, ld(1, '/y')), ld(1, 'http.route')]);
    const out = decodeTracesRequest(request(span(ld(9, valueFirst), ld(9, keptValueFirst))), { keep: KEEP });
    expect({ ...out.resourceSpans[0].spans[0].attributes }).toEqual({ 'http.route': '/y' });
  });

  it('steps over left-out values without decoding them (JSON)', () => {
    const s = toJson(spec([['http.route', { s: '/x' }]])) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ attributes: unknown[] }> }> }> };
    s.resourceSpans[0].scopeSpans[0].spans[0].attributes.push({ key: 'not.read', value: { intValue: 'not a number' } });
    const text = JSON.stringify(s);
    expect(() => decodeTracesRequestJson(text)).toThrow(/not an integer/);
    const out = decodeTracesRequestJson(text, { keep: KEEP });
    expect({ ...out.resourceSpans[0].spans[0].attributes }).toEqual({ 'http.route': '/x' });
  });

  it('still refuses a left-out value nested deeper than maxValueDepth, in both encodings', () => {
    let deep: Value = { s: 'leaf' };
    for (let i = 0; i < 10; i++) deep = i % 2 ? { arr: [{ i: 1 }, deep] } : { kv: [['k', deep]] };
    const s = spec([['not.read', deep], ['http.route', { s: '/d' }]]);
    const pb = encodeTracesRequest(toProto(s));
    const json = JSON.stringify(toJson(s));
    expect(() => decodeTracesRequest(pb, { keep: KEEP, maxValueDepth: 8 })).toThrow(/nested deeper than 8/);
    expect(() => decodeTracesRequestJson(json, { keep: KEEP, maxValueDepth: 8 })).toThrow(/nested deeper than 8/);
    // Within the limit the left-out value is stepped over.
    expect({ ...decodeTracesRequest(pb, { keep: KEEP, maxValueDepth: 11 }).resourceSpans[0].spans[0].attributes }).toEqual({ 'http.route': '/d' });
    expect({ ...decodeTracesRequestJson(json, { keep: KEEP, maxValueDepth: 11 }).resourceSpans[0].spans[0].attributes }).toEqual({ 'http.route': '/d' });
    // The same depths as for a value that is read.
    expect(() => decodeTracesRequest(pb, { maxValueDepth: 10 })).toThrow(/nested deeper than 10/);
    expect(() => decodeTracesRequest(pb, { keep: KEEP, maxValueDepth: 10 })).toThrow(/nested deeper than 10/);
    expect(() => decodeTracesRequestJson(json, { keep: KEEP, maxValueDepth: 10 })).toThrow(/nested deeper than 10/);
  });

  it('left-out attributes do not count towards maxAttributesPerSpan', () => {
    const attrs: Array<[string, Value]> = Array.from({ length: 5 }, (_, i) => [`x${i}`, { i }] as [string, Value]);
    attrs.push(['http.route', { s: '/z' }]);
    const body = encodeTracesRequest(toProto(spec(attrs)));
    expect(decodeTracesRequest(body, { maxAttributesPerSpan: 2 }).resourceSpans[0].spans[0].attributes['http.route']).toBeUndefined();
    expect(decodeTracesRequest(body, { maxAttributesPerSpan: 2, keep: KEEP }).resourceSpans[0].spans[0].attributes['http.route']).toBe('/z');
  });

  it('gives both encodings the same result on a realistic request', () => {
    const s = realisticRequest(200, 3);
    const keep: AttributeKeep = { keys: new Set(['service.name', 'http.request.method', 'http.route', 'db.system.name', 'rpc.method']), presencePrefixes: ['db.', 'messaging.'] };
    const proto = decodeTracesRequest(encodeTracesRequest(toProto(s)), { keep });
    const json = decodeTracesRequestJson(JSON.stringify(toJson(s)), { keep });
    expect(proto).toEqual(json);
    expect(proto.spanCount).toBe(200);
    const keys = new Set(proto.resourceSpans.flatMap((rs) => rs.spans.flatMap((sp) => Object.keys(sp.attributes))));
    for (const k of keys) expect(keep.keys.has(k) || k.startsWith('db.') || k.startsWith('messaging.')).toBe(true);
  });

  it('remembers a bounded number of decisions for unknown keys', () => {
    const filter = new KeyFilter(KEEP);
    for (let i = 0; i < MAX_REMEMBERED_KEYS * 2; i++) expect(filter.decide(`k${i}`)).toBe(0);
    expect((filter as unknown as { decisions: Map<string, number> }).decisions.size).toBe(MAX_REMEMBERED_KEYS);
    expect(filter.decide('http.route')).toBe(1);
    expect(filter.decide('db.system.name')).toBe(2);
    expect(filter.decide('rpc.anything')).toBe(3);
  });

  it('ignores a tag that is not a key or value inside a KeyValue', () => {
    const extra = Buffer.concat([tag(3, 0), Buffer.from([1]), ld(1, 'http.route'), ld(2, ld(1, '/w'))]);
    const out = decodeTracesRequest(request(span(ld(9, extra))), { keep: KEEP });
    expect({ ...out.resourceSpans[0].spans[0].attributes }).toEqual({ 'http.route': '/w' });
  });
});
