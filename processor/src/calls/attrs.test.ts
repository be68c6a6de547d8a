import { describe, expect, it } from 'vitest';
import { attributeKeyId, ObjectAttrs } from '@conduct/proto';
import { clean, firstOf, text } from './attrs.js';

/** The slow path alone: what clean must always equal. */
function reference(value: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  return value.slice(0, max * 2).replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, max);
}

describe('clean', () => {
  const samples = [
    '', 'a', ' ', 'GET /orders', ' padded ', 'tab\tinside', 'nul\u0000end', 'del\u007f', '\u00a0nbsp\u00a0',
    '\u2003em space\u2003', 'ünïcode', 'line\nbreak', '\r\n', 'x'.repeat(300), ` ${'y'.repeat(600)} `, '\u0001', 'a\u0085',
    '\ufeffbom', 'trailing\u3000', 'emoji 🙂', '\ud800 lone',
  ];
  it.each(samples.map((s) => [JSON.stringify(s).slice(0, 40), s]))('equals the full trim and strip for %s', (_, s) => {
    for (const max of [1, 8, 256, 512]) expect(clean(s, max)).toBe(reference(s, max));
  });

  it('returns a clean short value as it is', () => {
    const v = 'svc:payments/ledger';
    expect(clean(v)).toBe(v);
  });
});

describe('attribute reads', () => {
  it('text and firstOf skip absent and blank values and stringify others', () => {
    const attrs = new ObjectAttrs({ a: '  ', b: 42, c: ' x\u0000 ', d: null as unknown as string });
    const [a, b, c, d, missing] = ['a', 'b', 'c', 'd', 'missing'].map(attributeKeyId) as [number, number, number, number, number];
    expect(text(attrs, a)).toBeUndefined();
    expect(text(attrs, d)).toBeUndefined();
    expect(text(attrs, b)).toBe('42');
    expect(text(attrs, c)).toBe('x');
    expect(firstOf(attrs, [missing, a, b])).toBe('42');
  });
});
