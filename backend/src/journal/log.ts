import { closeSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, unlinkSync, writeSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { JOURNAL_BODY_FORMATS as FORMATS, type JournalBodyFormat } from './schema.js';

/**
 * The journal's on-disk form: an append-only log in numbered segment files
 * (`<dir>/000000000001.seg`, ...). A segment starts with SEGMENT_MAGIC, then holds records:
 *
 *   u32 length | u32 CRC-32 of the payload | payload (`length` bytes, first byte the record type)
 *
 * - request (1): f64 seq, f64 received ms, u32 spans, u8 format, u32 trace count, per trace
 *   u16 length + UTF-8 id, then the body (the rest). A later request record with the same seq
 *   (a request moved forward out of an old segment) replaces the earlier one, with the traces
 *   still open when it was written.
 * - request with id bytes (3): as a request, but each trace id is its 16 bytes (its text is their
 *   lower-case hex): what the pipeline thread writes, with no text made per id. Versions before it
 *   stop reading a segment at the first such record (as at a torn tail).
 * - settled (2): u32 request count, f64 seq per request, u32 trace count, per trace u16 length +
 *   UTF-8 id: those traces are stored, for each of those requests (a stored batch's traces and
 *   the requests it settles).
 *
 * Integers are little-endian; seq and times are whole numbers written as f64.
 */
export const SEGMENT_MAGIC = Buffer.from('CNDJRNL1', 'latin1');
const HEADER_BYTES = 8;
const TYPE_REQUEST = 1;
const TYPE_SETTLED = 2;
const TYPE_REQUEST_ID_BYTES = 3;
/** Bytes of a trace id in a request record with id bytes. */
export const TRACE_ID_BYTES = 16;
const SEGMENT_NAME = /^(\d{12})\.seg$/;

let crcTable: Uint32Array | undefined;

/** CRC-32 (as zlib's) computed a byte at a time: for Node before 20.15, which lacks `zlib.crc32`. */
export function tableCrc32(data: Uint8Array, value = 0): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = ~value;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const crc32: (data: Uint8Array, value?: number) => number = typeof zlib.crc32 === 'function' ? zlib.crc32 : tableCrc32;

export function segmentPath(dir: string, id: number): string {
  return join(dir, `${String(id).padStart(12, '0')}.seg`);
}

/** Segment ids found in `dir`, oldest first. */
export function listSegments(dir: string): number[] {
  const ids: number[] = [];
  for (const name of readdirSync(dir)) {
    const m = SEGMENT_NAME.exec(name);
    if (m) ids.push(Number(m[1]));
  }
  return ids.sort((a, b) => a - b);
}

export interface RequestMeta {
  seq: number;
  receivedMs: number;
  spans: number;
  format: JournalBodyFormat;
  /** The trace ids: texts, or TRACE_ID_BYTES bytes each, one after another. */
  traces: Iterable<string> | Uint8Array;
}

/** Room for `ids` after `fixed` bytes: a u16 length each, and at most 3 UTF-8 bytes per UTF-16 unit. */
function capacity(fixed: number, ids: Iterable<string>): number {
  let n = fixed;
  for (const t of ids) n += 2 + 3 * t.length;
  return n;
}

/** Writes `ids` at `at` as u16 length + UTF-8; returns the offset after them. */
function writeIds(buf: Buffer, at: number, ids: Iterable<string>): number {
  for (const t of ids) {
    const n = buf.write(t, at + 2, 'utf8');
    buf.writeUInt16LE(n, at);
    at += 2 + n;
  }
  return at;
}

/**
 * Memory the records of one append are encoded into, reused from append to append: a request's
 * header (its trace ids) is a few KB, so `Buffer.allocUnsafe` gave each its own ArrayBuffer, which
 * V8 counts against the main thread's old generation until a collection finds it dead (see
 * processor/src/release.ts). Views it hands out stay valid until `reset`; when it runs short it
 * starts a larger buffer (those handed out keep the old one).
 */
export class RecordScratch {
  private buf: Buffer;
  private used = 0;

  constructor(bytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(bytes);
  }

  /** `n` bytes, valid until `reset`. */
  take(n: number): Buffer {
    if (this.used + n > this.buf.length) {
      this.buf = Buffer.allocUnsafeSlow(Math.max(2 * this.buf.length, n));
      this.used = 0;
    }
    const taken = this.buf.subarray(this.used, this.used + n);
    this.used += n;
    return taken;
  }

  /** Keeps only the first `n` bytes of `taken`, the last view `take` handed out. */
  trim(taken: Buffer, n: number): Buffer {
    if (taken.buffer === this.buf.buffer && taken.byteOffset + taken.length === this.buf.byteOffset + this.used) this.used -= taken.length - n;
    return taken.subarray(0, n);
  }

  /** Every view handed out is out of use: their memory is taken again. */
  reset(): void {
    this.used = 0;
  }
}

/** `n` bytes from `scratch`, or a buffer of their own without one. */
const bytesFor = (n: number, scratch?: RecordScratch): Buffer => (scratch ? scratch.take(n) : Buffer.allocUnsafe(n));

/** The first `n` bytes of `buf` (given back to `scratch`, if it came from there). */
const trimmed = (buf: Buffer, n: number, scratch?: RecordScratch): Buffer => (scratch ? scratch.trim(buf, n) : buf.subarray(0, n));

/**
 * A request record as two buffers (header with the metadata, then the body as it is). With
 * `scratch`, the header is in its memory (valid until its `reset`).
 */
export function encodeRequest(meta: RequestMeta, body: Uint8Array, scratch?: RecordScratch): [Buffer, Uint8Array] {
  const { traces } = meta;
  const idBytes = traces instanceof Uint8Array;
  if (idBytes && traces.length % TRACE_ID_BYTES !== 0) throw new RangeError(`trace id bytes of length ${traces.length}`);
  const buf = bytesFor(idBytes ? HEADER_BYTES + 26 + traces.length : capacity(HEADER_BYTES + 26, traces), scratch);
  buf[8] = idBytes ? TYPE_REQUEST_ID_BYTES : TYPE_REQUEST;
  buf.writeDoubleLE(meta.seq, 9);
  buf.writeDoubleLE(meta.receivedMs, 17);
  buf.writeUInt32LE(meta.spans, 25);
  buf[29] = FORMATS.indexOf(meta.format);
  let head: Buffer;
  if (idBytes) {
    buf.writeUInt32LE(traces.length / TRACE_ID_BYTES, 30);
    buf.set(traces, 34);
    head = buf;
  } else {
    let count = 0;
    for (const _ of traces) count++;
    buf.writeUInt32LE(count, 30);
    head = trimmed(buf, writeIds(buf, 34, traces), scratch);
  }
  head.writeUInt32LE(head.length - HEADER_BYTES + body.length, 0);
  head.writeUInt32LE(crc32(body, crc32(head.subarray(HEADER_BYTES))), 4);
  return [head, body];
}

/** A settled record: `traces` are stored, for each of the requests `seqs`. With `scratch`, in its memory. */
export function encodeSettled(seqs: readonly number[], traces: Iterable<string>, scratch?: RecordScratch): Buffer {
  const buf = bytesFor(capacity(HEADER_BYTES + 9 + 8 * seqs.length, traces), scratch);
  buf[8] = TYPE_SETTLED;
  buf.writeUInt32LE(seqs.length, 9);
  let at = 13;
  for (const seq of seqs) at = buf.writeDoubleLE(seq, at);
  const countAt = at;
  let count = 0;
  for (const _ of traces) count++;
  buf.writeUInt32LE(count, countAt);
  const rec = trimmed(buf, writeIds(buf, countAt + 4, traces), scratch);
  rec.writeUInt32LE(rec.length - HEADER_BYTES, 0);
  rec.writeUInt32LE(crc32(rec.subarray(HEADER_BYTES)), 4);
  return rec;
}

export type LogRecord =
  | (Omit<RequestMeta, 'traces'> & { type: 'request'; traces: string[]; offset: number; length: number; body: Buffer })
  | { type: 'settled'; seqs: number[]; traces: string[] };

/** @throws for a payload that does not parse (its CRC matched, so a bug or a newer version). */
function decodePayload(p: Buffer, offset: number, length: number): LogRecord {
  const readIds = (count: number, at: number): [string[], number] => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const n = p.readUInt16LE(at);
      if (at + 2 + n > p.length) throw new RangeError('trace id past the end of the record');
      ids.push(p.toString('utf8', at + 2, at + 2 + n));
      at += 2 + n;
    }
    return [ids, at];
  };
  /** Ids of TRACE_ID_BYTES bytes each, as their texts. */
  const readIdBytes = (count: number, at: number): [string[], number] => {
    const end = at + count * TRACE_ID_BYTES;
    if (end > p.length) throw new RangeError('trace id past the end of the record');
    const ids = new Array<string>(count);
    for (let i = 0; i < count; i++) ids[i] = p.toString('hex', at + i * TRACE_ID_BYTES, at + (i + 1) * TRACE_ID_BYTES);
    return [ids, end];
  };
  switch (p[0]) {
    case TYPE_REQUEST:
    case TYPE_REQUEST_ID_BYTES: {
      const format = FORMATS[p[21]!];
      if (format === undefined) throw new RangeError(`unknown body format ${p[21]}`);
      const [traces, end] = (p[0] === TYPE_REQUEST ? readIds : readIdBytes)(p.readUInt32LE(22), 26);
      return { type: 'request', seq: p.readDoubleLE(1), receivedMs: p.readDoubleLE(9), spans: p.readUInt32LE(17), format, traces, offset, length, body: p.subarray(end) };
    }
    case TYPE_SETTLED: {
      const seqs: number[] = [];
      const n = p.readUInt32LE(1);
      for (let i = 0; i < n; i++) seqs.push(p.readDoubleLE(5 + 8 * i));
      return { type: 'settled', seqs, traces: readIds(p.readUInt32LE(5 + 8 * n), 9 + 8 * n)[0] };
    }
    default:
      throw new RangeError(`unknown record type ${p[0]}`);
  }
}

/** Where reading a segment stopped before its end, and why. */
export interface TornTail {
  offset: number;
  bytes: number;
  reason: string;
}

/**
 * Reads a whole segment, calling `onRecord` for every intact record in order. Reading stops at
 * the first record that is cut short or fails its CRC (a write cut by a crash): that tail is
 * returned, not thrown. A request record's `body` is a view of the file read, valid during the
 * call only.
 */
export function readSegment(path: string, onRecord: (r: LogRecord) => void): TornTail | undefined {
  const file = readFileSync(path);
  if (file.length < SEGMENT_MAGIC.length || !file.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) {
    return { offset: 0, bytes: file.length, reason: 'no segment header' };
  }
  let at = SEGMENT_MAGIC.length;
  while (at < file.length) {
    const torn = (reason: string): TornTail => ({ offset: at, bytes: file.length - at, reason });
    if (file.length - at < HEADER_BYTES) return torn('record header cut short');
    const length = file.readUInt32LE(at);
    if (length < 9 || file.length - at - HEADER_BYTES < length) return torn('record cut short');
    const payload = file.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length);
    if (crc32(payload) !== file.readUInt32LE(at + 4)) return torn('checksum mismatch');
    let record: LogRecord;
    try {
      record = decodePayload(payload, at, HEADER_BYTES + length);
    } catch (err) {
      return torn(String(err));
    }
    onRecord(record);
    at += HEADER_BYTES + length;
  }
  return undefined;
}

/** The request record at `offset` of a segment, read again (its CRC checked). @throws when it is not intact. */
export function readRequest(path: string, offset: number, length: number): LogRecord & { type: 'request' } {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    if (readSync(fd, buf, 0, length, offset) !== length) throw new Error('journal record cut short');
    const payload = buf.subarray(HEADER_BYTES);
    if (buf.readUInt32LE(0) !== payload.length || crc32(payload) !== buf.readUInt32LE(4)) throw new Error('journal record checksum mismatch');
    const record = decodePayload(payload, offset, length);
    if (record.type !== 'request') throw new Error(`journal record at ${offset} is not a request`);
    return record;
  } finally {
    closeSync(fd);
  }
}

/** An open segment that records are appended to. */
export class SegmentWriter {
  readonly fd: number;
  size: number;

  /** Creates the segment (it must not exist) and writes its header. */
  constructor(readonly path: string) {
    this.fd = openSync(path, 'wx');
    try {
      writeSync(this.fd, SEGMENT_MAGIC);
    } catch (err) {
      closeSync(this.fd);
      unlinkSync(path);
      throw err;
    }
    this.size = SEGMENT_MAGIC.length;
  }

  /**
   * Appends `buffers` with one write(2) (more only if the kernel takes part of them). Into the
   * page cache, no fsync: a crash of the process keeps it, as SQLite's WAL with
   * `synchronous = NORMAL` did. @throws after trying to cut the file back to its size before
   * the call; the caller appends nothing more to this segment (if the cut failed, its tail is
   * torn, and readers stop there).
   */
  append(buffers: Uint8Array[]): void {
    const start = this.size;
    try {
      let total = 0;
      for (const b of buffers) total += b.length;
      let written = writevSync(this.fd, buffers);
      while (written < total) {
        // Rare: a short write. The rest goes buffer by buffer.
        let skip = written;
        const rest: Uint8Array[] = [];
        for (const b of buffers) {
          if (skip >= b.length) skip -= b.length;
          else {
            rest.push(skip > 0 ? b.subarray(skip) : b);
            skip = 0;
          }
        }
        written += writevSync(this.fd, rest);
      }
      this.size += total;
    } catch (err) {
      try {
        ftruncateSync(this.fd, start);
      } catch {
        // The torn tail stays; the segment gets no more records.
      }
      throw err;
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}
