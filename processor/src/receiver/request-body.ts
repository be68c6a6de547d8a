/*
 * The request body of the HTTP receivers (OTLP/HTTP and the Kubernetes audit webhook): the
 * Content-Encoding and Content-Length checked, then the body streamed under a byte cap, gzip
 * inflated as it arrives; every way it can fail named, so each receiver answers it in its own format.
 */
import type { IncomingMessage } from 'node:http';
import zlib from 'node:zlib';
import type { RejectReason } from './metrics.js';
import { ownsWholeBuffer, releaseBuffer } from '../release.js';

/** After refusing a request, at most this much of its remaining body is read and discarded (so the
 * answer reaches the client on a kept-alive connection); past it the connection is cut. */
const MAX_DRAIN_BYTES = 4 * 1024 * 1024;

/** A body read: `wire` holds the gzip bytes as received when they were asked for (in-line mode). */
export type BodyRead = { ok: true; body: Buffer; wire?: Buffer } | { ok: false; reason: 'too-large' | 'bad-gzip' | 'aborted' };

/** Why a body was refused: the HTTP status, the counted reason and a message for the sender. */
export interface BodyRefusal {
  status: 400 | 413 | 415;
  reason: Extract<RejectReason, 'unsupported-encoding' | 'too-large' | 'decode-error'>;
  message: string;
}

/** A request body taken, refused (answer it), or lost with its connection (`refusal` absent: nothing to answer). */
export type BodyOutcome = { ok: true; body: Buffer; wire?: Buffer } | { ok: false; refusal?: BodyRefusal };

export function tooLargeMessage(maxBytes: number): string {
  return `request body larger than the limit of ${maxBytes} bytes (after decompression)`;
}

/**
 * Takes a request's body: refuses an unknown Content-Encoding (415) and a Content-Length over
 * `maxBytes` (413) before reading, then reads it with `readBody` (413 past the cap, 400 for bad gzip).
 */
export async function takeBody(req: IncomingMessage, maxBytes: number, keepWire = false): Promise<BodyOutcome> {
  const encoding = contentEncoding(req.headers['content-encoding']);
  if (!encoding) return { ok: false, refusal: { status: 415, reason: 'unsupported-encoding', message: 'unsupported content encoding: send gzip or identity' } };
  if (Number(req.headers['content-length']) > maxBytes) return { ok: false, refusal: { status: 413, reason: 'too-large', message: tooLargeMessage(maxBytes) } };
  const read = await readBody(req, encoding === 'gzip', maxBytes, keepWire);
  if (read.ok) return read;
  if (read.reason === 'too-large') return { ok: false, refusal: { status: 413, reason: 'too-large', message: tooLargeMessage(maxBytes) } };
  if (read.reason === 'bad-gzip') return { ok: false, refusal: { status: 400, reason: 'decode-error', message: 'the body is not valid gzip' } };
  return { ok: false };
}

export function contentEncoding(header: string | undefined): 'gzip' | 'identity' | undefined {
  if (header === undefined) return 'identity';
  const value = header.trim().toLowerCase();
  if (value === '' || value === 'identity') return 'identity';
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  return undefined;
}

/**
 * Reads the request body, never holding more than `maxBytes` (plus one chunk). A gzip body is
 * inflated as a stream and counted as it inflates, so a gzip bomb stops at the cap; the bytes on the
 * wire are capped too. With `keepWire`, a gzip body's bytes as received are kept as well (under the
 * same cap) and returned as `wire`.
 */
export function readBody(req: IncomingMessage, gzip: boolean, maxBytes: number, keepWire = false): Promise<BodyRead> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const wireChunks: Buffer[] | undefined = gzip && keepWire ? [] : undefined;
    let size = 0;
    let wire = 0;
    let done = false;
    const inflater = gzip ? zlib.createGunzip() : undefined;

    const finish = (result: BodyRead): void => {
      if (done) return;
      done = true;
      req.off('data', onWire);
      req.off('end', onWireEnd);
      req.off('aborted', onAborted);
      req.off('error', onAborted);
      if (inflater) {
        inflater.off('data', onBody);
        inflater.destroy();
      }
      resolve(result);
    };
    const onBody = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        chunks.length = 0;
        finish({ ok: false, reason: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    const onWire = (chunk: Buffer): void => {
      wire += chunk.length;
      if (wire > maxBytes) {
        finish({ ok: false, reason: 'too-large' });
        return;
      }
      wireChunks?.push(chunk);
      if (!inflater) {
        onBody(chunk);
      } else if (!inflater.write(chunk)) {
        // Backpressure: stop reading the socket until the inflater catches up.
        req.pause();
        inflater.once('drain', () => {
          if (!done) req.resume();
        });
      }
    };
    const onWireEnd = (): void => {
      if (!inflater || wire === 0) {
        // Zero bytes is an empty request, whatever the Content-Encoding says.
        finish({ ok: true, body: chunks.length === 1 ? chunks[0]! : joinReleasing(chunks, size) });
      } else {
        inflater.end();
      }
    };
    const onAborted = (): void => finish({ ok: false, reason: 'aborted' });

    if (inflater) {
      inflater.on('data', onBody);
      inflater.once('end', () =>
        finish({ ok: true, body: Buffer.concat(chunks, size), ...(wireChunks ? { wire: Buffer.concat(wireChunks, wire) } : {}) }),
      );
      inflater.once('error', () => finish({ ok: false, reason: 'bad-gzip' }));
    }
    req.on('data', onWire);
    req.once('end', onWireEnd);
    req.once('aborted', onAborted);
    req.once('error', onAborted);
  });
}

/**
 * The chunks joined; each chunk that is a buffer of its own (node's HTTP parser copies each piece
 * of a body into a new one) is released once copied: nothing else holds the chunks of a body read
 * here, and V8 would count their bytes on this thread until a collection found them (release.ts).
 */
function joinReleasing(chunks: Buffer[], size: number): Buffer {
  const body = Buffer.concat(chunks, size);
  for (const chunk of chunks) if (ownsWholeBuffer(chunk)) releaseBuffer(chunk.buffer);
  return body;
}

/**
 * Discards what is left of a refused request's body so the answer can be read on a kept-alive
 * connection; a client that keeps sending past MAX_DRAIN_BYTES has its connection closed.
 */
export function drain(req: IncomingMessage): void {
  if (req.complete || req.destroyed) return;
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > MAX_DRAIN_BYTES) req.destroy();
  });
  req.on('error', () => undefined);
  req.resume();
}
