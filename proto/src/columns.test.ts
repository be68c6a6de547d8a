// The columnar decoder against the object decoders: for the same bytes, the same spans, fields,
// resources and attributes (after the same key filter), or the same refusal.
import { describe, expect, it } from 'vitest';
import { ColumnAttrs, columnsFromData, ObjectAttrs, type SpanColumns } from './columns.js';
import { decodeTracesRequestColumns } from './column-scanner.js';
import { decodeTracesRequest } from './wire-scanner.js';
import { decodeTracesRequestJson } from './json-decoder.js';
import { encodeTracesRequest } from './messages.js';
import { attributeKeyId, attributeKeyName, PREFIXED } from './key-ids.js';
import { DecodeError, type AttributeKeep, type TracesRequestData } from './model.js';
import { mutate, realisticRequest, seededRandom, toJson, toProto, type RequestSpec } from './testdata/requests.js';
import { kv, ld, request, span, tag, vi, varint } from './testdata/wire.js';

const KEEP: AttributeKeep = {
  keys: new Set(['service.name', 'service.namespace', 'cloud.region', 'host.name', 'http.route', 'http.request.method', 'url.path', 'http.response.status_code', 'server.port', 'enduser.id', 'peer.service', 'db.system.name', 'rpc.method']),
  presencePrefixes: ['http.', 'db.', 'rpc.', 'messaging.'],
};

/** Everything a reader can get out of columns, as plain data. */
function dump(cols: SpanColumns) {
  const owner = (view: ColumnAttrs) => {
    const out: Record<string, unknown> = {};
    for (const key of [...KEEP.keys].sort()) {
      const v = view.get(attributeKeyId(key));
      if (v !== undefined) out[key] = v;
    }
    return { attrs: out, prefixed: (view.letters & PREFIXED) !== 0, letters: view.letters & ~PREFIXED };
  };
  return {
    spanCount: cols.spanCount,
    rejectedSpans: cols.rejectedSpans,
    rejectMessage: cols.rejectMessage,
    spans: Array.from({ length: cols.spanCount }, (_, i) => ({ ...cols.span(i), attributes: owner(cols.spanAttrs(i)), resource: owner(cols.resourceAttrs(cols.resourceOf[i]!)) })),
  };
}

/** The same through the object decoder's output, read as it is (not through the columns). */
function dumpObjects(data: TracesRequestData) {
  const owner = (record: Record<string, unknown>) => {
    const view = new ObjectAttrs(record as never, KEEP.presencePrefixes);
    const out: Record<string, unknown> = {};
    for (const key of [...KEEP.keys].sort()) if (record[key] !== undefined) out[key] = record[key];
    return { attrs: out, prefixed: (view.letters & PREFIXED) !== 0, letters: view.letters & ~PREFIXED };
  };
  return {
    spanCount: data.spanCount,
    rejectedSpans: data.rejectedSpans,
    rejectMessage: data.rejectMessage,
    spans: data.resourceSpans.flatMap((rs) => rs.spans.map((s) => ({ ...s, attributes: owner(s.attributes), resource: owner(rs.resource) }))),
  };
}

function outcome(run: () => unknown): unknown {
  try {
    return run();
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    return 'refused';
  }
}

function compare(bytes: Uint8Array, limits: { maxValueDepth?: number; maxAttributesPerSpan?: number; maxAttributeValueLength?: number } = {}): 'ok' | 'refused' {
  const objects = outcome(() => dumpObjects(decodeTracesRequest(bytes, { ...limits, keep: KEEP })));
  const columns = outcome(() => dump(decodeTracesRequestColumns(bytes, { ...limits, keep: KEEP })));
  expect(columns).toEqual(objects);
  return objects === 'refused' ? 'refused' : 'ok';
}

describe('columnar decoder', () => {
  it('reads realistic requests as the object decoder does, from protobuf and through columnsFromData', () => {
    for (const seed of [1, 2, 3]) {
      const spec: RequestSpec = realisticRequest(64, seed);
      const bytes = encodeTracesRequest(toProto(spec));
      expect(compare(bytes)).toBe('ok');
      const cols = decodeTracesRequestColumns(bytes, { keep: KEEP });
      expect(cols.spanCount).toBe(64);
      expect(dump(columnsFromData(decodeTracesRequest(bytes), KEEP))).toEqual(dump(cols));
      expect(dump(columnsFromData(decodeTracesRequestJson(JSON.stringify(toJson(spec)), { keep: KEEP }), KEEP))).toEqual(dump(cols));
    }
  });

  it('holds a resource once for all its spans and copies a span out with its resource', () => {
    const cols = decodeTracesRequestColumns(encodeTracesRequest(toProto(realisticRequest(48, 5))), { keep: KEEP });
    expect(cols.resourceCount).toBe(6);
    const copy = cols.copySpans([17]);
    expect(copy.spanCount).toBe(1);
    expect(copy.resourceCount).toBe(1);
    expect(dump(copy).spans[0]).toEqual(dump(cols).spans[17]);
    expect(copy.attrRefs.length).toBeLessThan(cols.attrRefs.length / 10);
    // Every span's copy of its own reads as the span.
    const all = dump(cols).spans;
    for (let i = 0; i < cols.spanCount; i++) expect(dump(cols.copySpans([i])).spans[0]).toEqual(all[i]);
  });

  it('copies many spans out together, each resource once, reading as the spans do', () => {
    const cols = decodeTracesRequestColumns(encodeTracesRequest(toProto(realisticRequest(48, 5))), { keep: KEEP });
    const all = dump(cols).spans;
    const random = seededRandom(9);
    for (let round = 0; round < 20; round++) {
      const indices = Array.from({ length: 1 + Math.floor(random() * 30) }, () => Math.floor(random() * cols.spanCount));
      const copy = cols.copySpans(indices);
      expect(copy.spanCount).toBe(indices.length);
      expect(copy.resourceCount).toBe(new Set(indices.map((i) => cols.resourceOf[i])).size);
      const copied = dump(copy).spans;
      indices.forEach((i, k) => {
        expect(copied[k]).toEqual(all[i]);
        expect(copy.spanId(k)).toBe(cols.spanId(i));
        expect(copy.parentSpanId(k)).toBe(cols.parentSpanId(i));
        expect(copy.isRoot(k)).toBe(cols.isRoot(i));
        expect(copy.lettersOf(k)).toBe(cols.lettersOf(i));
      });
      // A copy of a copy reads the same.
      expect(dump(copy.copySpans([indices.length - 1])).spans[0]).toEqual(all[indices.at(-1)!]);
    }
    // Kinds and statuses outside 8 bits, and -0 beside 0, copy as sent.
    const wide = columnsFromData(
      {
        resourceSpans: [{ resource: { 'service.name': 'a' }, spans: [1, 2].map((n) => ({ traceId: 'ab'.repeat(16), spanId: `0${n}`.repeat(8), parentSpanId: '', name: `s${n}`, kind: 300 * n, statusCode: -200, startMs: 1, endMs: 2, attributes: { 'server.port': n === 1 ? -0 : 0 } }) as never) }],
        spanCount: 2,
        rejectedSpans: 0,
        rejectMessage: '',
      } as never,
      KEEP,
    );
    const both = wide.copySpans([1, 0]);
    expect([both.kind(0), both.status(0), both.kind(1)]).toEqual([600, -200, 300]);
    const port = attributeKeyId('server.port');
    expect(Object.is(both.spanAttrs(1).get(port), -0)).toBe(true);
    expect(Object.is(both.spanAttrs(0).get(port), 0)).toBe(true);
  });

  it('rejects, merges and limits as the object decoder does', () => {
    const TRACE2 = Buffer.from('5b8efff798038103d269b633813fc60c', 'hex');
    const cases = [
      // a missing trace id, a zero span id, a parent of the wrong size, a zero parent (a root)
      request(span(ld(1, Buffer.alloc(0)))),
      request(ld(1, TRACE2), ld(2, Buffer.alloc(8)), ld(5, 'x')),
      request(span(ld(4, Buffer.from('0102', 'hex')))),
      request(span(ld(4, Buffer.alloc(8)), vi(6, 2), ld(9, kv('http.route', ld(1, '/a'))))),
      // the same key twice (last wins), a presence key before a kept prefixed one, kinds out of range
      request(span(ld(9, kv('http.route', ld(1, '/a'))), ld(9, kv('http.flavor', ld(1, '1.1'))), ld(9, kv('http.route', ld(1, '/b'))), ld(9, kv('db.x', ld(1, 'y'))), vi(6, 0xffffffff), ld(15, vi(3, 9)))),
      // values of every kind
      request(span(ld(9, kv('enduser.id', vi(2, 1))), ld(9, kv('server.port', vi(3, -5))), ld(9, kv('host.name', Buffer.concat([tag(4, 1), Buffer.alloc(8, 1)]))), ld(9, kv('url.path', ld(5, ld(1, ld(1, 'a'))))))),
    ];
    for (const bytes of cases) compare(bytes);
    compare(cases[4]!, { maxAttributesPerSpan: 1 });
    // A resource given twice merges, and a resource after its spans counts.
    const res = (k: string, v: string) => ld(1, ld(1, kv(k, ld(1, v))));
    const spans = ld(2, ld(2, span()));
    compare(Buffer.concat([tag(1, 2), varint(0)]));
    const rs = Buffer.concat([spans, res('service.name', 'a'), res('host.name', 'h'), res('service.name', 'b')]);
    compare(ld(1, rs));
  });

  it('reads keys and values remembered from earlier spans only for the same bytes', () => {
    // The scanner's key cache (KeyBytes) predicts the next key and remembers each key's last value:
    // the same keys in changing orders, with values that change, share a prefix or a length, are
    // not ASCII, or are not a plain string, must read as the object decoder reads them.
    const str = (k: string, v: string | Buffer) => ld(9, kv(k, ld(1, v)));
    const spans = [
      span(str('http.route', '/a'), str('url.path', '/x/1'), str('host.name', 'h')),
      span(str('http.route', '/b'), str('url.path', '/x/12'), str('host.name', 'h')),
      span(str('url.path', '/x/1'), str('http.route', '/a/'), str('host.name', 'é')),
      span(str('http.route', Buffer.from([0xff])), str('url.path', Buffer.from([0xfe])), str('host.name', 'h')),
      span(str('http.route', Buffer.from([0xff])), str('url.path', '\u00e9'), str('host.name', 'hh')),
      // a string then an int in one AnyValue (the int wins), then the string alone again
      span(ld(9, kv('http.route', Buffer.concat([ld(1, '/a'), vi(3, 7)]))), str('url.path', '/x/1')),
      span(str('http.route', '/a'), ld(9, kv('url.path', Buffer.alloc(0))), str('ключ', 'v'), str(`db.${'x'.repeat(80)}`, 'y')),
      span(str('http.rout', '/a'), str('http.routf', '/a'), str('', 'empty key'), str('http.route', '/a')),
    ];
    for (let round = 0; round < 2; round++) {
      for (const s of spans) compare(request(s));
      compare(request(...spans));
      compare(request(...spans), { maxAttributeValueLength: 3 });
      compare(request(...spans), { maxValueDepth: 0 });
    }
  });

  it('reads values cycling over more than the four remembered per key, of one length and differing in one byte', () => {
    const str = (k: string, v: string) => ld(9, kv(k, ld(1, v)));
    const spans = Array.from({ length: 40 }, (_, i) => span(str('url.path', `/items/${'abcdef'[i % 6]}`), str('http.route', `/r/${'xy'[(i >> 2) % 2]}`), str('host.name', `h${'0123'[(i * 7) % 4]}`)));
    expect(compare(request(...spans))).toBe('ok');
    expect(compare(request(...spans.reverse()), { maxAttributeValueLength: 4 })).toBe('ok');
  });

  it('reads KeyValues of every layout beside the short one (key, then value, one-byte lengths) as the object decoder does', () => {
    // The scanner recognises the short layout from its bytes; everything near it takes the general
    // loop and must read (or be refused) the same.
    const str = (v: string | Buffer) => ld(1, v);
    // An array nested n deep (refused beyond maxValueDepth, read or not).
    const deep = (n: number): Buffer => (n === 0 ? str('x') : ld(5, ld(1, deep(n - 1))));
    const keyValues = [
      kv('http.route', str('/a')),
      // value before key, key twice, an unknown field after the value, a value given twice
      Buffer.concat([ld(2, str('/v')), ld(1, 'http.route')]),
      Buffer.concat([ld(1, 'host.name'), ld(1, 'http.route'), ld(2, str('/k'))]),
      Buffer.concat([kv('http.route', str('/u')), vi(7, 1)]),
      Buffer.concat([kv('http.route', str('/1')), ld(2, str('/2'))]),
      // keys and values of 127 and 128 bytes (one and two length bytes), a 126-byte string value
      kv(`db.${'k'.repeat(124)}`, str('v')),
      kv(`db.${'k'.repeat(125)}`, str('v')),
      kv('url.path', str('p'.repeat(124))),
      kv('url.path', str('p'.repeat(125))),
      kv('url.path', str('p'.repeat(126))),
      // an empty key, an empty value, a string value with a field after it, an int, a bool, a double
      kv('', str('e')),
      kv('url.path', Buffer.alloc(0)),
      kv('url.path', Buffer.concat([str('/s'), vi(3, 9)])),
      kv('server.port', vi(3, 443)),
      kv('enduser.id', vi(2, 1)),
      kv('server.port', Buffer.concat([tag(4, 1), Buffer.alloc(8, 7)])),
      // a dropped key with a nested value, and with a value of the wrong wire type inside
      kv('feature.flags', ld(5, ld(1, str('a')))),
      kv('feature.flags', Buffer.concat([tag(1, 0), varint(1)])),
      // a dropped key with a value of each scalar kind, two fields, a truncated int or double, a
      // varint that runs past its value, an empty value
      kv('url.scheme', str('https')),
      kv('url.scheme', ld(7, Buffer.from([1, 2, 3]))),
      kv('url.scheme', vi(2, 1)),
      kv('url.scheme', vi(3, 2n ** 63n)),
      kv('url.scheme', Buffer.concat([tag(4, 1), Buffer.alloc(8, 3)])),
      kv('url.scheme', Buffer.concat([vi(3, 5), vi(3, 6)])),
      kv('url.scheme', Buffer.concat([vi(3, 5), deep(5)])),
      kv('url.scheme', Buffer.concat([str('a'), deep(5)])),
      kv('url.scheme', Buffer.concat([tag(4, 1), Buffer.alloc(8, 3), deep(5)])),
      kv('url.scheme', Buffer.concat([str('a'), ld(5, ld(1, ld(5, ld(1, str('b')))))])),
      kv('url.scheme', Buffer.concat([tag(3, 0), Buffer.from([0x80, 0x80])])),
      kv('url.scheme', Buffer.concat([tag(4, 1), Buffer.alloc(4)])),
      kv('url.scheme', Buffer.concat([tag(3, 0), Buffer.alloc(11, 0x80)])),
      kv('url.scheme', Buffer.concat([tag(1, 2), varint(3), Buffer.from('ab')])),
      kv('url.scheme', Buffer.alloc(0)),
      // a key of the wrong wire type, a value of the wrong wire type, a string of the wrong wire type
      Buffer.concat([vi(1, 5), ld(2, str('x'))]),
      Buffer.concat([ld(1, 'http.route'), vi(2, 5)]),
      kv('http.route', vi(1, 5)),
      // a string value whose length runs past its AnyValue
      Buffer.concat([ld(1, 'http.route'), tag(2, 2), varint(3), tag(1, 2), varint(5), Buffer.from('/')]),
    ];
    for (const body of keyValues) {
      for (const limits of [{}, { maxAttributeValueLength: 2 }, { maxValueDepth: 0 }, { maxValueDepth: 3 }]) {
        compare(request(span(ld(9, body))), limits);
        // after the same key and before another, so that the key cache has it as a successor
        compare(request(span(ld(9, kv('http.route', str('/r'))), ld(9, body), ld(9, kv('host.name', str('h')))), span(ld(9, kv('http.route', str('/r'))), ld(9, body))), limits);
      }
    }
    // Runs of attributes (read in one loop) broken by other fields, by a KeyValue of two length
    // bytes, and ended by one whose length runs past the span; a resource's attributes likewise.
    const a = ld(9, kv('http.route', str('/a')));
    const long = ld(9, kv('url.path', str('p'.repeat(200))));
    const runs = [
      span(a, a, ld(5, 'renamed'), a, vi(6, 2), a),
      span(a, long, a, long),
      span(a, a, Buffer.concat([tag(9, 2), varint(9), Buffer.from('\n\x01h')])),
      span(a, Buffer.concat([tag(9, 0), varint(1)])),
    ];
    for (const s of runs) compare(request(s));
    // A length that runs past the span into well-formed bytes after it (the scope's schema_url).
    expect(compare(ld(1, ld(2, ld(2, runs[2]!), ld(3, 'xxxx'))))).toBe('refused');
    const resource = ld(1, ld(1, kv('service.name', str('s'))), ld(1, kv('host.name', str('h'))), vi(2, 1), ld(1, kv('service.name', str('t'))), ld(1, kv('cloud.region', str('r'.repeat(150)))));
    compare(ld(1, ld(1, resource), ld(2, ld(2, span(a)))));
    // Three kinds of span interleaved, each with its own order of the same keys: the cache keeps
    // two successors per key, so the third order is always found by hashing.
    const kinds = [
      ['http.route', 'url.path', 'host.name'],
      ['url.path', 'host.name', 'http.route'],
      ['host.name', 'http.route', 'url.path'],
    ];
    const spans = Array.from({ length: 30 }, (_, i) => span(...kinds[i % 3]!.map((k, j) => ld(9, kv(k, str(`${k}-${(i * (j + 1)) % 4}`)))), ld(9, kv('server.port', vi(3, i % 2)))));
    expect(compare(request(...spans))).toBe('ok');
  });

  it(`answers as the object decoder does for 3000 mutated requests`, () => {
    const random = seededRandom(4242);
    const seed = encodeTracesRequest(toProto(realisticRequest(8, 11)));
    const tally = { ok: 0, refused: 0 };
    for (let i = 0; i < 3000; i++) tally[compare(mutate(seed, random), { maxValueDepth: 4 })]++;
    expect(tally.ok).toBeGreaterThan(50);
    expect(tally.refused).toBeGreaterThan(50);
  });

  it('keeps the trace table in the order the spans first name their trace ids, rejected spans left out', () => {
    // The pipeline reads a request's trace ids off the table in that order (worker.ts tagOf).
    const random = seededRandom(77);
    const seed = encodeTracesRequest(toProto(realisticRequest(8, 11)));
    let checked = 0;
    let rejected = 0;
    for (let n = 0; n < 400; n++) {
      const bytes = n === 0 ? seed : mutate(seed, random);
      for (const cols of decodedBothWays(bytes)) {
        const firstSeen = [...new Set(Array.from({ length: cols.spanCount }, (_, i) => cols.traceId(i)))];
        expect(Array.from({ length: cols.traceIds.length / 16 }, (_, t) => cols.traceIdAt(t))).toEqual(firstSeen);
        checked++;
        if (cols.rejectedSpans > 0) rejected++;
      }
    }
    expect(checked).toBeGreaterThan(50);
    // Spans that name traces in an order of their own, one of them rejected (a 15-byte trace id)
    // before the first span of trace 3, which must not take its place.
    const id = (n: number, bytes: number) => Buffer.from(n.toString(16).padStart(2 * bytes, '0'), 'hex');
    const order = [5, 2, 5, 9, -1, 3, 2, 9, 1];
    const spans = order.map((t, i) => span(ld(1, t < 0 ? id(3, 15) : id(t, 16)), ld(2, id(i + 1, 8))));
    for (const cols of decodedBothWays(request(...spans))) {
      expect(cols.rejectedSpans).toBe(1);
      expect(Array.from({ length: cols.traceIds.length / 16 }, (_, t) => cols.traceIdAt(t))).toEqual([5, 2, 9, 3, 1].map((t) => id(t, 16).toString('hex')));
      rejected++;
    }
    expect(rejected).toBe(2);
  });

  it('holds each distinct trace id and attribute value of a request once', () => {
    // 600 spans of 300 traces, the spans of a trace apart (the table of trace ids grows and is
    // rehashed), values that repeat, one distinct per span, and -0 beside 0 (kept apart).
    const id = (n: number, bytes: number) => Buffer.from(n.toString(16).padStart(2 * bytes, '0'), 'hex');
    const spans = Array.from({ length: 600 }, (_, i) =>
      span(
        ld(1, id(0xabc00000 + (i % 300), 16)),
        ld(2, id(i + 1, 8)),
        ld(9, kv('server.port', vi(3, 8080))),
        ld(9, kv('url.path', ld(1, `/items/${i}`))),
        ld(9, kv('http.response.status_code', i === 7 ? Buffer.concat([tag(4, 1), Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x80])]) : vi(3, 0))),
      ),
    );
    const bytes = request(...spans);
    expect(compare(bytes)).toBe('ok');
    const cols = decodeTracesRequestColumns(bytes, { keep: KEEP });
    expect(cols.traceIds.length).toBe(300 * 16);
    for (const [i, j] of [[0, 300], [1, 301], [0, 1], [299, 599], [299, 300]] as const) {
      expect(cols.sameTrace(i, j)).toBe(cols.traceId(i) === cols.traceId(j));
      expect(cols.copySpans([i]).traceId(0)).toBe(cols.traceId(i));
    }
    expect(cols.traceId(300)).toBe(cols.traceId(0));
    expect(cols.attrRefs).toBeInstanceOf(Uint16Array);
    // 8080, 0, -0, 600 paths and the resource's service name.
    expect(cols.attrValues.length).toBe(604);
    const status = attributeKeyId('http.response.status_code');
    expect(Object.is(cols.spanAttrs(7).get(status), -0)).toBe(true);
    expect(Object.is(cols.spanAttrs(8).get(status), 0)).toBe(true);
    expect(Object.is(cols.copySpans([7]).spanAttrs(0).get(status), -0)).toBe(true);
  });

  it('reads a request of more distinct values than 16-bit references address', () => {
    const keys = [...KEEP.keys].filter((k) => !k.startsWith('service.') && k !== 'host.name' && k !== 'cloud.region');
    const spans = Array.from({ length: Math.ceil(70_000 / keys.length) }, (_, i) => span(...keys.map((k) => ld(9, kv(k, ld(1, `${k}=${i}`))))));
    const cols = decodeTracesRequestColumns(request(...spans), { keep: KEEP });
    expect(cols.attrValues.length).toBeGreaterThan(0x10000);
    expect(cols.attrRefs).toBeInstanceOf(Uint32Array);
    // Every value read back (a deep comparison with the object decoder took seconds here).
    const ids = keys.map((k) => attributeKeyId(k));
    let wrong = 0;
    for (let i = 0; i < cols.spanCount; i++) {
      const attrs = cols.spanAttrs(i);
      for (let k = 0; k < keys.length; k++) if (attrs.get(ids[k]!) !== `${keys[k]}=${i}`) wrong++;
    }
    expect(wrong).toBe(0);
    const last = cols.spanCount - 1;
    expect(dump(cols.copySpans([last])).spans[0]).toEqual(dump(cols).spans[last]);
  });

  it('holds trace, resource and attribute indexes in 16 bits when they fit, and reads a request where they do not', () => {
    const small = decodeTracesRequestColumns(encodeTracesRequest(toProto(realisticRequest(48, 5))), { keep: KEEP });
    for (const column of [small.traceOf, small.resourceOf, small.attrStart, small.attrRefs]) expect(column).toBeInstanceOf(Uint16Array);
    // 66,000 ResourceSpans of one span each, every span of its own trace.
    const n = 66_000;
    const id = (x: number, bytes: number) => Buffer.from(x.toString(16).padStart(2 * bytes, '0'), 'hex');
    const body = Buffer.concat(Array.from({ length: n }, (_, i) => ld(1, Buffer.concat([ld(1, ld(1, kv('host.name', ld(1, `h${i % 7}`)))), ld(2, ld(2, Buffer.concat([ld(1, id(0xabc00000 + i, 16)), ld(2, id(i + 1, 8))])))]))));
    const big = decodeTracesRequestColumns(body, { keep: KEEP });
    expect([big.spanCount, big.resourceCount, big.traceIds.length / 16]).toEqual([n, n, n]);
    for (const column of [big.traceOf, big.resourceOf]) expect(column).toBeInstanceOf(Uint32Array);
    let wrong = 0;
    const host = attributeKeyId('host.name');
    for (let i = 0; i < n; i++) {
      if (big.traceId(i) !== id(0xabc00000 + i, 16).toString('hex') || big.resourceOf[i] !== i) wrong++;
      if (big.resourceAttrs(big.resourceOf[i]!).get(host) !== `h${i % 7}`) wrong++;
    }
    expect(wrong).toBe(0);
    expect(big.sameTrace(0, n - 1)).toBe(false);
    const copy = big.copySpans([n - 1]);
    expect([copy.traceId(0), copy.spanId(0), copy.resourceAttrs(copy.resourceOf[0]!).get(host)]).toEqual([big.traceId(n - 1), big.spanId(n - 1), `h${(n - 1) % 7}`]);
  });

  it('holds each sequence of keys once per request, apart for owners of other letters', () => {
    const cols = decodeTracesRequestColumns(encodeTracesRequest(toProto(realisticRequest(64, 3))), { keep: KEEP });
    expect(compare(encodeTracesRequest(toProto(realisticRequest(64, 3))))).toBe('ok');
    expect(cols.shapeLetters.length).toBeLessThan((cols.spanCount + cols.resourceCount) / 2);
    expect(cols.shapeOf).toBeInstanceOf(Uint16Array);
    // The same keys in another order, and presence keys of other families (one shared id, other
    // letters), are other shapes; the same keys with other values share one.
    const str = (k: string, v: string) => ld(9, kv(k, ld(1, v)));
    const spans = [
      span(str('http.route', '/a'), str('url.path', '/x')),
      span(str('url.path', '/y'), str('http.route', '/b')),
      span(str('http.route', '/c'), str('url.path', '/z')),
      span(str('db.x', 'v')),
      span(str('http.flavor', 'v')),
      span(str('db.y', 'w')),
    ];
    const bytes = request(...spans);
    expect(compare(bytes)).toBe('ok');
    const few = decodeTracesRequestColumns(bytes, { keep: KEEP });
    expect([...few.shapeOf]).toEqual([0, 1, 0, 2, 3, 2, 4]);
    expect(few.spanAttrs(3).letters).not.toBe(few.spanAttrs(4).letters);
    const route = attributeKeyId('http.route');
    expect([0, 1, 2].map((i) => few.spanAttrs(i).get(route))).toEqual(['/a', '/b', '/c']);
    expect([0, 1, 2, 3, 4, 5, 6].map((o) => few.lettersOf(o))).toEqual([0, 1, 2, 3, 4, 5].map((i) => few.spanAttrs(i).letters).concat(few.resourceAttrs(0).letters));
  });

  it('tells apart many shapes (the table grows) and reads every key back', () => {
    // 3,000 spans, each with its own subset of 12 keys in one of two orders.
    const keys = [...KEEP.keys].slice(0, 12);
    const spans = Array.from({ length: 3000 }, (_, i) => {
      const mine = keys.filter((_, k) => ((i >> 1) & (1 << k)) !== 0);
      if (i & 1) mine.reverse();
      return span(...mine.map((k) => ld(9, kv(k, ld(1, `${k}${i}`)))));
    });
    const cols = decodeTracesRequestColumns(request(...spans), { keep: KEEP });
    expect(cols.shapeLetters.length).toBeGreaterThan(2000);
    let wrong = 0;
    for (let i = 0; i < 3000; i++) {
      const attrs = cols.spanAttrs(i);
      for (let k = 0; k < keys.length; k++) {
        const expected = ((i >> 1) & (1 << k)) !== 0 ? `${keys[k]}${i}` : undefined;
        if (attrs.get(attributeKeyId(keys[k]!)) !== expected) wrong++;
      }
    }
    expect(wrong).toBe(0);
  });

  it('keeps kinds and statuses outside 8 bits as sent, and reads them saturated from the columns', () => {
    const cols = decodeTracesRequestColumns(request(span(vi(6, 300), ld(15, vi(3, 2 ** 31 + 5))), span(vi(6, 2), ld(15, vi(3, 1)))), { keep: KEEP });
    expect([cols.kind(0), cols.status(0), cols.kinds[0], cols.statuses[0]]).toEqual([300, (2 ** 31 + 5) | 0, 127, -128]);
    expect([cols.kind(1), cols.status(1), cols.kinds[1], cols.statuses[1]]).toEqual([2, 1, 2, 1]);
    const copy = cols.copySpans([0]);
    expect([copy.kind(0), copy.status(0), copy.kinds[0], copy.statuses[0]]).toEqual([300, (2 ** 31 + 5) | 0, 127, -128]);
  });

  it('gives kept keys process-wide ids and presence keys one shared id', () => {
    const id = attributeKeyId('http.route');
    expect(attributeKeyId('http.route')).toBe(id);
    expect(attributeKeyName(id)).toBe('http.route');
    const cols = decodeTracesRequestColumns(request(span(ld(9, kv('db.x', ld(1, 'y'))), ld(9, kv('feature', ld(1, 'z'))))), { keep: KEEP });
    expect([cols.attrStart[0], cols.attrStart[1]]).toEqual([0, 1]);
    expect(cols.attrKey(0, 0)).toBe(0);
    expect(cols.spanAttrs(0).letters & PREFIXED).toBe(PREFIXED);
  });
});

/** A request's columns from the scanner and from the object decoder through columnsFromData; none for bytes either refuses. */
function decodedBothWays(bytes: Uint8Array): SpanColumns[] {
  const out: SpanColumns[] = [];
  try {
    out.push(decodeTracesRequestColumns(bytes, { keep: KEEP }));
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
  }
  try {
    out.push(columnsFromData(decodeTracesRequest(bytes, { keep: KEEP }), KEEP));
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
  }
  return out;
}
