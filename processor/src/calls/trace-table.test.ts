import { describe, expect, it } from 'vitest';
import type { SpanColumns } from '@conduct/proto';
import { resource, span } from './testdata/trace-builder.js';
import { dropDuplicateSpans, itemsOfSpans, SpanIndex, TraceTable } from './trace-table.js';

/** `count` spans, span s a child of span floor(s / 3) (span 0 a root), each sent twice when `twice`. */
function trace(count: number, twice: boolean) {
  const res = resource('svc');
  const spans = [];
  for (let s = 0; s < count; s++) {
    const one = span(res, { id: `s${s}`, parent: s === 0 ? undefined : `s${Math.floor(s / 3)}` });
    spans.push(one);
    if (twice) spans.push(span(res, { id: `s${s}`, name: 'resent copy' }));
  }
  return spans;
}

describe('trace table', () => {
  // 10 spans find ids by scanning, 100 and 1000 through the hash index.
  for (const count of [10, 100, 1000]) {
    it(`keeps the first span of each id and links parents by id bytes (${count} spans)`, () => {
      const { traceId, items } = itemsOfSpans(trace(count, true));
      expect(dropDuplicateSpans(items, new SpanIndex())).toBe(count);
      expect(items).toHaveLength(2 * count);
      for (let k = 0; k < items.length; k += 2) expect((items[k] as SpanColumns).names[items[k + 1] as number]).not.toBe('resent copy');

      const table = new TraceTable().load(traceId, items);
      expect(table.n).toBe(count);
      for (let k = 0; k < count; k++) {
        expect(table.spanIdOf(k)).toBe(span(resource('x'), { id: `s${k}` }).span.spanId);
        expect(table.parent[k]).toBe(k === 0 ? -1 : Math.floor(k / 3));
      }
    });
  }

  it('loads duplicates itself, and a parent outside the trace is -1 but still named', () => {
    const res = resource('svc');
    const { traceId, items } = itemsOfSpans([...trace(40, true), span(res, { id: 'orphan', parent: 'elsewhere' })]);
    const table = new TraceTable().load(traceId, items);
    expect(table.n).toBe(41);
    expect(table.parent[40]).toBe(-1);
    expect(table.hasParent(40)).toBe(true);
    expect(table.parentSpanIdOf(40)).toBe(span(res, { id: 'elsewhere' }).span.spanId);
    expect(table.hasParent(0)).toBe(false);
  });
});
