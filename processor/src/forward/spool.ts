import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../model.js';

/**
 * An append-only, on-disk FIFO of forward requests, used while a downstream is away.
 *
 * Layout: one directory per downstream holding segment files `segment-<16 digits>.spool` (read in
 * the order of their number) and `cursor.json` (the segment and byte offset of the next record to
 * send). A record is a 13-byte header followed by the payload:
 *
 *   u32 LE payload length | u32 LE CRC-32 of the rest | u8 flags (1 = JSON, 2 = gzip) | u32 LE spans
 *
 * Durability (the fsync policy): records are written with one `write` each, so a crash of the
 * process loses nothing that was spooled; the segment is `fdatasync`ed when it is closed, on
 * `sync()` (the forwarder calls it every {@link SPOOL_SYNC_INTERVAL_MS}) and on `close()`, so a
 * crash of the machine loses at most the last interval. The cursor is written on the same
 * occasions: after a crash, records sent since the last cursor write are sent again
 * (at-least-once). A torn or corrupt record is skipped and reported, never fatal.
 */

export const SPOOL_SYNC_INTERVAL_MS = 1_000;
const HEADER_BYTES = 13;
const FLAG_JSON = 1;
const FLAG_GZIP = 2;
/** Segment numbers start here so that `prepend` can always go lower. */
const FIRST_SEGMENT = 1_000_000_000;
/** A header announcing more than this is treated as corrupt. */
const MAX_RECORD_BYTES = 1024 * 1024 * 1024;
const SEGMENT_RE = /^segment-(\d{16})\.spool$/;
const CURSOR_FILE = 'cursor.json';

export interface SpoolRecord {
  format: 'protobuf' | 'json';
  /** True when the payload is gzip-compressed. */
  gzip: boolean;
  spans: number;
  payload: Buffer;
}

export interface SpoolOptions {
  dir: string;
  /** Bound on the bytes of all segment files together. */
  maxBytes: number;
  /** A new segment starts once the current one has reached this size. */
  segmentBytes: number;
  logger: Logger;
  /** Called for each record lost to corruption, with the reason. */
  onCorrupt?: (reason: string) => void;
}

interface Segment {
  seq: number;
  size: number;
  /** Records in this segment after the cursor (for the head) or in all of it. */
  records: number;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE) over several buffers. */
export function crc32(...parts: Uint8Array[]): number {
  let crc = 0xffffffff;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) crc = CRC_TABLE[(crc ^ part[i]!) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function encodeRecord(record: SpoolRecord): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(record.payload.length, 0);
  header.writeUInt8((record.format === 'json' ? FLAG_JSON : 0) | (record.gzip ? FLAG_GZIP : 0), 8);
  header.writeUInt32LE(Math.max(0, Math.min(record.spans, 0xffffffff)) >>> 0, 9);
  header.writeUInt32LE(crc32(header.subarray(8), record.payload), 4);
  return Buffer.concat([header, record.payload]);
}

/** Size a record takes on disk. */
export function spoolRecordBytes(payloadLength: number): number {
  return HEADER_BYTES + payloadLength;
}

export class Spool {
  private readonly segments: Segment[] = [];
  /** Byte offset of the next record in the head segment. */
  private headOffset = 0;
  private readFd: number | undefined;
  private readFdSeq = -1;
  private writeFd: number | undefined;
  private writeFdSeq = -1;
  private dirty = false;
  private diskBytes = 0;
  private recordCount = 0;
  private closed = false;

  private constructor(private readonly options: SpoolOptions) {}

  /** Opens (creating if needed) the spool directory and scans what an earlier run left. */
  static open(options: SpoolOptions): Spool {
    const spool = new Spool(options);
    spool.load();
    return spool;
  }

  /** Records waiting. */
  get records(): number {
    return this.recordCount;
  }

  /** Bytes of all segment files on disk (consumed parts of the head segment included). */
  get bytes(): number {
    return this.diskBytes;
  }

  get empty(): boolean {
    return this.recordCount === 0;
  }

  hasRoom(payloadLength: number): boolean {
    return !this.closed && this.diskBytes + spoolRecordBytes(payloadLength) <= this.options.maxBytes;
  }

  /** Appends at the tail. Returns false, writing nothing, when the bound would be passed. */
  append(record: SpoolRecord): boolean {
    if (!this.hasRoom(record.payload.length)) return false;
    const bytes = encodeRecord(record);
    let tail = this.segments[this.segments.length - 1];
    if (!tail || (tail.size > 0 && tail.size + bytes.length > this.options.segmentBytes)) {
      tail = { seq: tail ? tail.seq + 1 : this.nextFreshSeq(), size: 0, records: 0 };
      this.segments.push(tail);
    }
    const fd = this.writeFdFor(tail.seq);
    fs.writeSync(fd, bytes, 0, bytes.length);
    tail.size += bytes.length;
    tail.records += 1;
    this.diskBytes += bytes.length;
    this.recordCount += 1;
    this.dirty = true;
    return true;
  }

  /**
   * Puts records in front of everything spooled (used at shutdown for what was still queued in
   * memory). The bound is not checked: losing the queue at shutdown would be worse than a spool
   * slightly over its size.
   */
  prepend(records: SpoolRecord[]): void {
    if (records.length === 0 || this.closed) return;
    // The head segment keeps its cursor; a new, lower-numbered segment goes in front of it.
    this.dropConsumedHead();
    const seq = this.segments.length > 0 ? this.segments[0]!.seq - 1 : this.nextFreshSeq();
    const data = Buffer.concat(records.map(encodeRecord));
    const file = this.segmentPath(seq);
    const fd = fs.openSync(file, 'w');
    try {
      fs.writeSync(fd, data, 0, data.length);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (this.segments.length > 0 && this.headOffset > 0) {
      // Keep the old head's position: it is no longer the head, so it is rewritten without the
      // consumed part.
      this.compactHead();
    }
    this.segments.unshift({ seq, size: data.length, records: records.length });
    this.headOffset = 0;
    this.diskBytes += data.length;
    this.recordCount += records.length;
    this.writeCursor();
  }

  /** Takes the oldest record, or undefined when the spool is empty. */
  shift(): SpoolRecord | undefined {
    while (this.segments.length > 0 && !this.closed) {
      const head = this.segments[0]!;
      if (this.headOffset >= head.size || head.records === 0) {
        if (!this.advanceHead()) return undefined;
        continue;
      }
      const fd = this.readFdFor(head.seq);
      const header = Buffer.alloc(HEADER_BYTES);
      const got = fs.readSync(fd, header, 0, HEADER_BYTES, this.headOffset);
      const length = got === HEADER_BYTES ? header.readUInt32LE(0) : -1;
      if (length < 0 || length > MAX_RECORD_BYTES || this.headOffset + HEADER_BYTES + length > head.size) {
        this.corrupt(`truncated record in segment ${head.seq}`, head.records);
        head.records = 0;
        continue;
      }
      const payload = Buffer.alloc(length);
      const read = length === 0 ? 0 : fs.readSync(fd, payload, 0, length, this.headOffset + HEADER_BYTES);
      this.headOffset += HEADER_BYTES + length;
      head.records -= 1;
      this.recordCount -= 1;
      this.dirty = true;
      if (read !== length || crc32(header.subarray(8), payload) !== header.readUInt32LE(4)) {
        this.corrupt(`checksum mismatch in segment ${head.seq}`, 0);
        continue;
      }
      const flags = header.readUInt8(8);
      return {
        format: flags & FLAG_JSON ? 'json' : 'protobuf',
        gzip: (flags & FLAG_GZIP) !== 0,
        spans: header.readUInt32LE(9),
        payload,
      };
    }
    return undefined;
  }

  /** Makes written records and the cursor durable. */
  sync(): void {
    if (this.closed || !this.dirty) return;
    if (this.writeFd !== undefined) fs.fdatasyncSync(this.writeFd);
    this.writeCursor();
    this.dirty = false;
  }

  close(): void {
    if (this.closed) return;
    this.sync();
    this.closed = true;
    this.closeRead();
    this.closeWrite();
  }

  private load(): void {
    const { dir } = this.options;
    fs.mkdirSync(dir, { recursive: true });
    const seqs = fs
      .readdirSync(dir)
      .map((name) => SEGMENT_RE.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const cursor = this.readCursor();
    for (const seq of seqs) {
      const file = this.segmentPath(seq);
      if (cursor && seq < cursor.segment) {
        fs.rmSync(file, { force: true });
        continue;
      }
      const start = cursor && seq === cursor.segment ? cursor.offset : 0;
      const { size, records } = this.scan(file, start);
      if (this.segments.length === 0) this.headOffset = Math.min(start, size);
      this.segments.push({ seq, size, records });
      this.diskBytes += size;
      this.recordCount += records;
    }
    if (this.recordCount > 0) {
      this.options.logger.info({ dir, records: this.recordCount, bytes: this.diskBytes }, 'forward spool has records to replay');
    }
  }

  /** Counts whole records from `start`; a torn tail is cut off. */
  private scan(file: string, start: number): { size: number; records: number } {
    const fd = fs.openSync(file, 'r+');
    try {
      const size = fs.fstatSync(fd).size;
      const header = Buffer.alloc(HEADER_BYTES);
      let offset = start;
      let records = 0;
      while (offset < size) {
        const got = fs.readSync(fd, header, 0, HEADER_BYTES, offset);
        const length = got === HEADER_BYTES ? header.readUInt32LE(0) : -1;
        if (length < 0 || length > MAX_RECORD_BYTES || offset + HEADER_BYTES + length > size) break;
        offset += HEADER_BYTES + length;
        records += 1;
      }
      if (offset < size) {
        this.corrupt(`torn tail cut off ${path.basename(file)} at ${offset}`, 0);
        fs.ftruncateSync(fd, offset);
      }
      return { size: Math.max(offset, Math.min(start, size)), records };
    } finally {
      fs.closeSync(fd);
    }
  }

  private corrupt(reason: string, lost: number): void {
    this.options.logger.warn({ dir: this.options.dir, reason }, 'forward spool record lost');
    if (lost > 0) this.recordCount = Math.max(0, this.recordCount - lost);
    this.options.onCorrupt?.(reason);
  }

  /** Moves past a fully read head segment. False when there is nothing after it. */
  private advanceHead(): boolean {
    const head = this.segments[0]!;
    const isTail = this.segments.length === 1;
    this.closeRead();
    if (isTail) this.closeWrite();
    fs.rmSync(this.segmentPath(head.seq), { force: true });
    this.diskBytes -= head.size;
    this.segments.shift();
    this.headOffset = 0;
    this.dirty = true;
    if (isTail) {
      // Empty now: remember where numbering goes on, so a fresh segment never sorts before the cursor.
      this.freshSeq = head.seq + 1;
      this.writeCursor();
      return false;
    }
    return true;
  }

  private dropConsumedHead(): void {
    const head = this.segments[0];
    if (head && head.records === 0 && this.headOffset > 0) this.advanceHead();
  }

  /** Rewrites the head segment without its consumed prefix (so it can stop being the head). */
  private compactHead(): void {
    const head = this.segments[0]!;
    const file = this.segmentPath(head.seq);
    const rest = Buffer.alloc(head.size - this.headOffset);
    const fd = fs.openSync(file, 'r');
    try {
      if (rest.length > 0) fs.readSync(fd, rest, 0, rest.length, this.headOffset);
    } finally {
      fs.closeSync(fd);
    }
    this.closeRead();
    if (this.writeFdSeq === head.seq) this.closeWrite();
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, rest);
    const tfd = fs.openSync(tmp, 'r');
    fs.fdatasyncSync(tfd);
    fs.closeSync(tfd);
    fs.renameSync(tmp, file);
    this.diskBytes -= this.headOffset;
    head.size = rest.length;
    this.headOffset = 0;
  }

  private freshSeq = FIRST_SEGMENT;

  private nextFreshSeq(): number {
    const last = this.segments[this.segments.length - 1];
    return last ? last.seq + 1 : this.freshSeq;
  }

  private segmentPath(seq: number): string {
    return path.join(this.options.dir, `segment-${String(seq).padStart(16, '0')}.spool`);
  }

  private readFdFor(seq: number): number {
    if (this.readFd !== undefined && this.readFdSeq === seq) return this.readFd;
    this.closeRead();
    this.readFd = fs.openSync(this.segmentPath(seq), 'r');
    this.readFdSeq = seq;
    return this.readFd;
  }

  private writeFdFor(seq: number): number {
    if (this.writeFd !== undefined && this.writeFdSeq === seq) return this.writeFd;
    this.closeWrite();
    this.writeFd = fs.openSync(this.segmentPath(seq), 'a');
    this.writeFdSeq = seq;
    return this.writeFd;
  }

  private closeRead(): void {
    if (this.readFd !== undefined) fs.closeSync(this.readFd);
    this.readFd = undefined;
    this.readFdSeq = -1;
  }

  private closeWrite(): void {
    if (this.writeFd !== undefined) {
      fs.fdatasyncSync(this.writeFd);
      fs.closeSync(this.writeFd);
    }
    this.writeFd = undefined;
    this.writeFdSeq = -1;
  }

  private readCursor(): { segment: number; offset: number } | undefined {
    try {
      const parsed = JSON.parse(fs.readFileSync(path.join(this.options.dir, CURSOR_FILE), 'utf8')) as unknown;
      if (parsed && typeof parsed === 'object') {
        const { segment, offset } = parsed as { segment?: unknown; offset?: unknown };
        if (Number.isSafeInteger(segment) && Number.isSafeInteger(offset) && (offset as number) >= 0) {
          this.freshSeq = Math.max(this.freshSeq, segment as number);
          return { segment: segment as number, offset: offset as number };
        }
      }
    } catch {
      // No cursor (a new spool) or an unreadable one: start from the first segment.
    }
    return undefined;
  }

  private writeCursor(): void {
    const head = this.segments[0];
    const cursor = head ? { segment: head.seq, offset: this.headOffset } : { segment: this.freshSeq, offset: 0 };
    const file = path.join(this.options.dir, CURSOR_FILE);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(cursor));
    fs.renameSync(tmp, file);
  }
}
