import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { gunzipSync } from 'node:zlib';
import { decodeTracesRequest, decodeTracesRequestJson, type TracesRequestData } from '@conduct/proto';

/** How a request file is laid out. */
export type RequestFormat = 'json' | 'jsonl' | 'protobuf';

/** Largest request (one protobuf file, one JSON document, one JSON line) read; larger ones are skipped and counted. */
export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024;

/** Bytes read from the start of a file to guess its format when the extension does not say. */
const SNIFF_BYTES = 64;

const JSON_LINES_EXTENSIONS = new Set(['.jsonl', '.ndjson']);
const JSON_EXTENSIONS = new Set(['.json']);
const PROTOBUF_EXTENSIONS = new Set(['.pb', '.bin', '.binpb', '.protobuf', '.otlp']);

/** One item of a request file: a decoded request, or why an entry could not be used. */
export type RequestItem =
  | { ok: true; data: TracesRequestData; bytes: number; where: string }
  | { ok: false; error: string; bytes: number; where: string };

/**
 * Guesses a file's format: by extension (`.jsonl`/`.ndjson`, `.json`, `.pb`/`.bin`/`.binpb`/
 * `.protobuf`/`.otlp`, each optionally `.gz`), else by content (a `{` first means JSON; JSON that
 * is not one document is read as JSON lines; anything else is protobuf).
 */
export async function detectFormat(path: string): Promise<{ format: RequestFormat; gzip: boolean }> {
  let name = path.toLowerCase();
  let gzip = false;
  if (name.endsWith('.gz')) {
    gzip = true;
    name = name.slice(0, -3);
  }
  const ext = extname(name);
  if (JSON_LINES_EXTENSIONS.has(ext)) return { format: 'jsonl', gzip };
  if (JSON_EXTENSIONS.has(ext)) return { format: 'json', gzip };
  if (PROTOBUF_EXTENSIONS.has(ext)) return { format: 'protobuf', gzip };
  const head = await readHead(path, SNIFF_BYTES);
  if (head[0] === 0x1f && head[1] === 0x8b) gzip = true;
  if (gzip) return { format: 'json', gzip }; // decided again on the inflated content below
  const first = head.toString('utf8').trimStart()[0];
  return { format: first === '{' ? 'json' : 'protobuf', gzip };
}

async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function decodeJson(text: string, bytes: number, where: string): RequestItem {
  try {
    return { ok: true, data: decodeTracesRequestJson(text), bytes, where };
  } catch (err) {
    return { ok: false, error: (err as Error).message, bytes, where };
  }
}

function decodeProtobuf(buf: Uint8Array, where: string): RequestItem {
  try {
    return { ok: true, data: decodeTracesRequest(buf), bytes: buf.byteLength, where };
  } catch (err) {
    return { ok: false, error: (err as Error).message, bytes: buf.byteLength, where };
  }
}

/** JSON text that is one document gives one request; otherwise every non-empty line is one. */
function* fromJsonText(text: string, path: string, maxBytes: number): Generator<RequestItem> {
  const whole = text.trim();
  let single = false;
  if (whole.startsWith('{')) {
    try {
      JSON.parse(whole);
      single = true;
    } catch {
      // not one document: JSON lines
    }
  }
  if (single) {
    yield decodeJson(whole, Buffer.byteLength(whole), path);
    return;
  }
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    yield* fromJsonLine(line, `${path}:${lineNo}`, maxBytes);
  }
}

function* fromJsonLine(line: string, where: string, maxBytes: number): Generator<RequestItem> {
  const trimmed = line.trim();
  if (trimmed === '') return;
  const bytes = Buffer.byteLength(trimmed);
  if (bytes > maxBytes) {
    yield { ok: false, error: `request larger than ${maxBytes} bytes`, bytes, where };
    return;
  }
  yield decodeJson(trimmed, bytes, where);
}

/**
 * Reads the OTLP trace export requests of one file, in file order. JSON lines files are streamed
 * line by line; a JSON document or a protobuf request is read whole, up to `maxBytes`. Bad entries
 * are yielded as errors (the caller counts them); a missing or unreadable file throws.
 */
export async function* readRequests(
  path: string,
  options: { maxBytes?: number; format?: RequestFormat } = {},
): AsyncGenerator<RequestItem> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const detected = await detectFormat(path);
  const format = options.format ?? detected.format;
  const size = (await stat(path)).size;

  if (format === 'jsonl' && !detected.gzip) {
    const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      yield* fromJsonLine(line, `${path}:${lineNo}`, maxBytes);
    }
    return;
  }

  if (!detected.gzip && size > maxBytes) {
    yield { ok: false, error: `file larger than ${maxBytes} bytes (use JSON lines for large inputs)`, bytes: size, where: path };
    return;
  }
  let buf: Buffer = await readFile(path);
  if (detected.gzip) {
    try {
      buf = gunzipSync(buf, { maxOutputLength: maxBytes });
    } catch (err) {
      yield { ok: false, error: `cannot inflate: ${(err as Error).message}`, bytes: size, where: path };
      return;
    }
  }
  const looksJson = buf.subarray(0, SNIFF_BYTES).toString('utf8').trimStart().startsWith('{');
  if (format === 'protobuf' || (detected.gzip && !options.format && !looksJson)) {
    yield decodeProtobuf(buf, path);
    return;
  }
  yield* fromJsonText(buf.toString('utf8'), path, maxBytes);
}
