import { describe, expect, it } from 'vitest';
import { fromColumn, toColumn } from './text.js';

describe('texts in PostgreSQL text columns', () => {
  it('keeps ordinary texts as they are', () => {
    for (const t of ['', 'svc:shop/frontend', 'GET /x\u0001y', 'é\n"\'']) expect(toColumn(t)).toBe(t);
  });

  it('stores no NUL and reads every text back exactly', () => {
    for (const t of ['\u0000', 'a\u0000b', '\u0001', '\u0001\u0000\u00010', 'x\u00011\u0000', '\u0001\u0001']) {
      const stored = toColumn(t);
      expect(stored.includes('\u0000')).toBe(false);
      expect(fromColumn(stored)).toBe(t);
    }
  });

  it('tells an escaped text from an ordinary one that looks like it', () => {
    const ordinary = 'x\u00010';
    expect(fromColumn(toColumn(ordinary))).toBe(ordinary);
    expect(toColumn('a\u0000')).not.toBe(toColumn('a\u00010'));
  });
});
