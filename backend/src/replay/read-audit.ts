import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { auditRequest, cloudTrailRecordsOf, readCloudTrailRecord, readK8sAuditEvent, type AuditCall, type AuditRead } from '@conduct/processor';
import type { RequestItem } from './read-requests.js';

/** Audit log formats `conduct replay --format` reads. */
export type AuditFormat = 'cloudtrail' | 'k8s-audit';
export const AUDIT_FORMATS: readonly AuditFormat[] = ['cloudtrail', 'k8s-audit'];

export function isAuditFormat(format: string | undefined): format is AuditFormat {
  return format === 'cloudtrail' || format === 'k8s-audit';
}

/** Calls held and sorted by event time before they are handed on; beyond it they go in sorted runs of this size. */
export const MAX_SORTED_AUDIT_CALLS = 200_000;
/** Calls per request handed to the pipeline. */
export const AUDIT_CALLS_PER_REQUEST = 1_000;

/** One entry of an audit file: a call, a record skipped on purpose (other stage, no principal), or a bad record. */
type AuditEntry = { kind: 'call'; call: AuditCall } | { kind: 'skipped' } | { kind: 'bad'; error: string; where: string };

/** Counts of what the audit files held beyond the calls. */
export interface AuditCounts {
  records: number;
  calls: number;
  /** Records that are no calls: Kubernetes events at other stages, CloudTrail records naming no principal. */
  skipped: number;
}

function entryOf(read: AuditRead, where: string): AuditEntry {
  if (read.ok) return { kind: 'call', call: read.call };
  return read.skipped ? { kind: 'skipped' } : { kind: 'bad', error: read.reason, where };
}

/** The records of one JSON value: CloudTrail documents hold many (`Records`, arrays); Kubernetes lists hold `items`. */
function recordsOf(value: unknown, format: AuditFormat): unknown[] {
  if (format === 'cloudtrail') return cloudTrailRecordsOf(value) ?? [value];
  if (Array.isArray(value)) return value;
  if (typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'EventList') {
    const items = (value as { items?: unknown }).items;
    return Array.isArray(items) ? items : [];
  }
  return [value];
}

function* entriesOfValue(value: unknown, format: AuditFormat, where: string): Generator<AuditEntry> {
  const read = format === 'cloudtrail' ? readCloudTrailRecord : readK8sAuditEvent;
  const records = recordsOf(value, format);
  for (const [i, record] of records.entries()) yield entryOf(read(record), records.length > 1 ? `${where}[${i}]` : where);
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/**
 * The entries of one audit file, gzipped or not: one JSON document (a CloudTrail `{"Records":
 * [...]}` file, an array, a Kubernetes EventList), or JSON lines (one record a line, as the API
 * server's log backend and many exports write them). Lines are streamed; a document is held whole
 * up to `maxBytes`. A missing or unreadable file throws.
 */
export async function* readAuditFile(path: string, format: AuditFormat, maxBytes: number): AsyncGenerator<AuditEntry> {
  const gzip = await isGzip(path);
  const raw = createReadStream(path);
  const input = gzip ? raw.pipe(createGunzip()) : raw;
  raw.on('error', (err) => input.destroy(err));
  const lines = createInterface({ input, crlfDelay: Infinity });
  // Lines are read as records until one does not parse alone; then the file is one document.
  let lineNo = 0;
  let first = true;
  let held: string[] | undefined;
  let heldBytes = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      if (held) {
        heldBytes += line.length + 1;
        if (heldBytes > maxBytes) {
          yield { kind: 'bad', error: `document larger than ${maxBytes} bytes (use JSON lines for large inputs)`, where: path };
          return;
        }
        held.push(line);
        continue;
      }
      const trimmed = line.trim();
      if (trimmed === '') continue;
      if (trimmed.length > maxBytes) {
        yield { kind: 'bad', error: `line larger than ${maxBytes} bytes`, where: `${path}:${lineNo}` };
        continue;
      }
      const opening = first;
      first = false;
      if (opening && (trimmed[0] === '{' || trimmed[0] === '[') && !parses(trimmed)) {
        // A document over several lines (pretty-printed): held and parsed whole at the end.
        held = [line];
        heldBytes = line.length + 1;
        continue;
      }
      yield* entriesOfLine(trimmed, format, `${path}:${lineNo}`);
    }
  } catch (err) {
    yield { kind: 'bad', error: `cannot read: ${(err as Error).message}`, where: path };
    return;
  }
  if (!held) return;
  let document: unknown;
  try {
    document = JSON.parse(held.join('\n'));
  } catch {
    // Not one document either: JSON lines whose first line is bad. Each line on its own.
    for (const [i, line] of held.entries()) yield* entriesOfLine(line, format, `${path}:${i + 1}`);
    return;
  }
  yield* entriesOfValue(document, format, path);
}

function* entriesOfLine(line: string, format: AuditFormat, where: string): Generator<AuditEntry> {
  const trimmed = line.trim();
  if (trimmed === '') return;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (err) {
    yield { kind: 'bad', error: `not JSON: ${(err as Error).message}`, where };
    return;
  }
  yield* entriesOfValue(value, format, where);
}

/**
 * The calls of audit files as pipeline requests in event-time order: every file's calls are held
 * (up to MAX_SORTED_AUDIT_CALLS, then in sorted runs of that size), sorted by start time (records
 * of one time keep their file order) and handed on in requests of AUDIT_CALLS_PER_REQUEST calls.
 * Bad records come out as errors; `counts` is filled as the files are read.
 */
export async function* readAuditRequests(
  files: readonly string[],
  options: { format: AuditFormat; maxBytes: number; windowMs?: number; counts: AuditCounts; onFile?: (file: string, fileIndex: number) => void },
): AsyncGenerator<RequestItem> {
  const { counts } = options;
  let held: AuditCall[] = [];
  const release = function* (): Generator<RequestItem> {
    const calls = held.map((call, i) => ({ call, i })).sort((a, b) => a.call.startMs - b.call.startMs || a.i - b.i);
    held = [];
    for (let at = 0; at < calls.length; at += AUDIT_CALLS_PER_REQUEST) {
      const part = calls.slice(at, at + AUDIT_CALLS_PER_REQUEST).map((c) => c.call);
      yield { ok: true, data: auditRequest(part, options.windowMs), bytes: 0, where: 'audit' };
    }
  };
  for (const [i, file] of files.entries()) {
    options.onFile?.(file, i);
    for await (const entry of readAuditFile(file, options.format, options.maxBytes)) {
      if (entry.kind === 'bad') {
        counts.records++;
        yield { ok: false, error: entry.error, bytes: 0, where: entry.where };
        continue;
      }
      counts.records++;
      if (entry.kind === 'skipped') {
        counts.skipped++;
        continue;
      }
      counts.calls++;
      held.push(entry.call);
      if (held.length >= MAX_SORTED_AUDIT_CALLS) yield* release();
    }
  }
  yield* release();
}
