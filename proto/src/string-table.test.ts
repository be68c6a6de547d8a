import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { HexTable, StringTable } from './string-table.js';

describe('HexTable', () => {
  it('gives the lower-case hex of ids, also when ids share a slot', () => {
    // Two slots: nearly every id collides with another.
    const table = new HexTable(1);
    let seed = 7;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) & 0xff;
    const ids = Array.from({ length: 200 }, (_, i) => Buffer.from(Array.from({ length: i % 2 ? 16 : 8 }, next)));
    for (let round = 0; round < 3; round++) {
      for (const id of ids) expect(table.get(id, 0, id.length)).toBe(id.toString('hex'));
    }
  });

  it('reads ids inside a larger buffer, and tells apart ids that differ in one byte', () => {
    const table = new HexTable(4);
    const buf = Buffer.from('00ff0af7651916cd43dd8448eb211c80319c00', 'hex');
    expect(table.get(buf, 2, 18)).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(table.get(buf, 2, 18)).toBe('0af7651916cd43dd8448eb211c80319c');
    buf[17] = 0x9d;
    expect(table.get(buf, 2, 18)).toBe('0af7651916cd43dd8448eb211c80319d');
    expect(table.get(buf, 2, 10)).toBe('0af7651916cd43dd');
  });

  it('reads a plain Uint8Array (the columns hold ids in one), and ids of other lengths', () => {
    const table = new HexTable(1);
    const bytes = new Uint8Array(40).map((_, i) => (i * 37 + 11) & 0xff);
    for (let round = 0; round < 2; round++) {
      for (const [start, end] of [[0, 16], [0, 8], [3, 11], [8, 24], [1, 6], [0, 20], [5, 5], [2, 40]] as const) {
        expect(table.get(bytes, start, end)).toBe(Buffer.from(bytes.subarray(start, end)).toString('hex'));
      }
    }
  });
});

describe('StringTable', () => {
  it('gives the text of bytes read four at a time from inside a larger buffer, when texts share a slot and differ in one byte', () => {
    // Four slots: most texts collide. Lengths around multiples of four, and a buffer at an odd offset
    // of its ArrayBuffer (the DataView reads must follow the Buffer, not its ArrayBuffer).
    const table = new StringTable(2);
    const texts = ['', 'a', 'abc', 'abcd', 'abcde', 'abcdefgh', 'abcdefgi', 'bbcdefgh', 'server.address', 'server.addresS', 'é-not-ascii', 'x'.repeat(64), 'x'.repeat(65)];
    for (let round = 0; round < 3; round++) {
      for (const text of texts) {
        const backing = Buffer.alloc(200);
        const buf = backing.subarray(3, 150);
        const at = 1 + (round % 3);
        const len = buf.write(text, at);
        const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
        const got = table.get(buf, view, at, at + len);
        expect(got).toBe(len > 64 ? undefined : text);
      }
    }
  });
});
