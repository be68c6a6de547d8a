import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../model.js';
import { Spool, spoolRecordBytes, type SpoolRecord } from './spool.js';

let dir: string;
let corrupt: string[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conduct-spool-'));
  corrupt = [];
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function open(maxBytes = 1 << 20, segmentBytes = 100): Spool {
  return Spool.open({ dir, maxBytes, segmentBytes, logger: silentLogger, onCorrupt: (r) => corrupt.push(r) });
}

function rec(n: number, extra: Partial<SpoolRecord> = {}): SpoolRecord {
  return { format: 'protobuf', gzip: false, spans: n, payload: Buffer.from(`payload-${n}`), ...extra };
}

function drain(spool: Spool): string[] {
  const out: string[] = [];
  for (let r = spool.shift(); r; r = spool.shift()) out.push(r.payload.toString());
  return out;
}

const segments = () => fs.readdirSync(dir).filter((f) => f.endsWith('.spool')).sort();

describe('Spool', () => {
  it('is a FIFO across segment files, keeping format, gzip flag and span count', () => {
    const spool = open();
    spool.append(rec(1, { format: 'json', gzip: true }));
    for (let n = 2; n <= 10; n++) spool.append(rec(n));
    expect(segments().length).toBeGreaterThan(1);
    expect(spool.records).toBe(10);
    const first = spool.shift()!;
    expect(first).toMatchObject({ format: 'json', gzip: true, spans: 1 });
    expect(drain(spool)).toEqual(Array.from({ length: 9 }, (_, i) => `payload-${i + 2}`));
    expect(spool.empty).toBe(true);
    expect(segments()).toEqual([]);
    spool.close();
  });

  it('refuses a record that would pass maxBytes, writing nothing', () => {
    const size = spoolRecordBytes(rec(1).payload.length);
    const spool = open(size * 2);
    expect(spool.append(rec(1))).toBe(true);
    expect(spool.append(rec(2))).toBe(true);
    expect(spool.append(rec(3))).toBe(false);
    expect(spool.bytes).toBe(size * 2);
    spool.close();
  });

  it('resumes after a restart at the cursor, without replaying what was already taken', () => {
    const a = open();
    for (let n = 1; n <= 6; n++) a.append(rec(n));
    expect(a.shift()!.payload.toString()).toBe('payload-1');
    expect(a.shift()!.payload.toString()).toBe('payload-2');
    a.close();
    const b = open();
    expect(b.records).toBe(4);
    b.append(rec(7));
    expect(drain(b)).toEqual(['payload-3', 'payload-4', 'payload-5', 'payload-6', 'payload-7']);
    b.close();
  });

  it('prepend puts records in front of a partly read spool, and that survives a restart', () => {
    const a = open(1 << 20, 1 << 20);
    for (let n = 1; n <= 4; n++) a.append(rec(n));
    a.shift();
    a.prepend([rec(100), rec(101)]);
    a.close();
    const b = open();
    expect(drain(b)).toEqual(['payload-100', 'payload-101', 'payload-2', 'payload-3', 'payload-4']);
    b.close();
  });

  it('cuts off a torn tail left by a crash and keeps the whole records before it', () => {
    const a = open(1 << 20, 1 << 20);
    a.append(rec(1));
    a.append(rec(2));
    a.close();
    const file = path.join(dir, segments()[0]!);
    fs.appendFileSync(file, Buffer.from([50, 0, 0, 0, 1, 2])); // a header announcing more than is there
    const b = open();
    expect(b.records).toBe(2);
    expect(corrupt).toHaveLength(1);
    b.append(rec(3));
    expect(drain(b)).toEqual(['payload-1', 'payload-2', 'payload-3']);
    b.close();
  });

  it('skips a record whose checksum does not match, reporting it', () => {
    const a = open(1 << 20, 1 << 20);
    a.append(rec(1));
    a.append(rec(2));
    a.close();
    const file = path.join(dir, segments()[0]!);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] ^= 0xff; // last payload byte of record 2
    fs.writeFileSync(file, bytes);
    const b = open();
    expect(drain(b)).toEqual(['payload-1']);
    expect(corrupt).toEqual([expect.stringMatching(/checksum/)]);
    b.close();
  });

  it('survives garbage in the cursor file by starting from the first segment', () => {
    const a = open();
    a.append(rec(1));
    a.close();
    fs.writeFileSync(path.join(dir, 'cursor.json'), '{not json');
    const b = open();
    expect(drain(b)).toEqual(['payload-1']);
    b.close();
  });
});
