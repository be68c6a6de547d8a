import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { AttrValue } from './model.js';
import { AttributeCollector, SHAPE_FACTORY_AFTER, SIZED_MAX } from './values.js';

describe('AttributeCollector', () => {
  const collect = (max: number, entries: [string, AttrValue][]) => {
    const c = new AttributeCollector(max);
    c.begin();
    for (const [k, v] of entries) c.put(k, v);
    return c.finish();
  };

  it('keeps keys in first-seen order, a duplicate overwriting the value, with a null prototype', () => {
    const attrs = collect(10, [['a', 1], ['b', 2], ['a', 3], ['__proto__', 'x']]);
    expect(Object.entries(attrs)).toEqual([['a', 3], ['b', 2], ['__proto__', 'x']]);
    expect(Object.getPrototypeOf(attrs)).toBeNull();
  });

  for (const n of [0, 1, SIZED_MAX - 1, SIZED_MAX, SIZED_MAX + 1, 3 * SIZED_MAX]) {
    it(`makes an object of ${n} keys, at most max of them, duplicates overwriting on either side of ${SIZED_MAX}`, () => {
      const entries: [string, number][] = Array.from({ length: n }, (_, i) => [`k${i}`, i]);
      const attrs = collect(256, [...entries, ...entries.map(([k, v]): [string, number] => [k, v + 100])]);
      expect(Object.entries(attrs)).toEqual(entries.map(([k, v]) => [k, v + 100]));
      expect(Object.getPrototypeOf(attrs)).toBeNull();
      const capped = collect(n - 1, entries);
      expect(Object.keys(capped)).toEqual(entries.slice(0, Math.max(0, n - 1)).map(([k]) => k));
    });
  }

  it('makes the same objects once a key set is common enough to get a factory', () => {
    const sets: [string, AttrValue][][] = [
      [['shape.a', 1], ['shape.b', 'x'], ['shape.c', 2.5]],
      [['shape.a', 1], ['__proto__', 'p']],
      [['shape.a', 1], ['0', 'zero'], ['shape.d', true]],
      Array.from({ length: SIZED_MAX + 1 }, (_, i): [string, AttrValue] => [`shape.many${i}`, i]),
    ];
    for (const entries of sets) {
      const made = Array.from({ length: SHAPE_FACTORY_AFTER + 3 }, (_, i) =>
        collect(256, entries.map(([k, v]): [string, AttrValue] => [k, typeof v === 'number' ? v + i : v])),
      );
      made.forEach((attrs, i) => {
        expect(Object.entries(attrs)).toEqual(Object.entries(Object.fromEntries(entries.map(([k, v]) => [k, typeof v === 'number' ? v + i : v]))));
        expect(Object.getPrototypeOf(attrs)).toBeNull();
      });
      expect(new Set(made).size).toBe(made.length);
    }
  });

  it('builds every object itself where code generation from strings is turned off', () => {
    // The built module in a node that refuses `new Function`: a factory would throw there.
    const script = `
      const { AttributeCollector, SHAPE_FACTORY_AFTER } = await import(${JSON.stringify(new URL('../dist/values.js', import.meta.url).href)});
      const c = new AttributeCollector(16);
      const out = [];
      for (let i = 0; i < SHAPE_FACTORY_AFTER * 3; i++) {
        c.begin();
        c.put('http.method', 'GET');
        c.put('http.status_code', i);
        out.push(c.finish());
      }
      console.log(JSON.stringify(out.map((o) => [Object.getPrototypeOf(o), Object.entries(o)])));
    `;
    const run = spawnSync(process.execPath, ['--disallow-code-generation-from-strings', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const made = JSON.parse(run.stdout) as [unknown, [string, AttrValue][]][];
    expect(made).toEqual(Array.from({ length: SHAPE_FACTORY_AFTER * 3 }, (_, i) => [null, [['http.method', 'GET'], ['http.status_code', i]]]));
  });

  it('answers has() before and beyond SIZED_MAX keys, and merges from an existing object', () => {
    const c = new AttributeCollector(256);
    c.begin({ a: 1, b: 2 });
    expect(c.has('a')).toBe(true);
    for (let i = 0; i < SIZED_MAX; i++) c.put(`k${i}`, i);
    expect(c.has('b') && c.has(`k${SIZED_MAX - 1}`)).toBe(true);
    expect(c.has('z')).toBe(false);
    expect(c.count).toBe(SIZED_MAX + 2);
    expect(Object.keys(c.finish())).toHaveLength(SIZED_MAX + 2);
    c.begin();
    expect(c.has('a')).toBe(false);
    expect(c.finish()).toEqual({});
  });
});
