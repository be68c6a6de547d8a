/**
 * Byte-level helpers for hostile-input tests: a seeded random source, a minimal protobuf writer
 * (so malformed messages can be built on purpose) and a raw HTTP client that reports what the
 * server did, including closing the connection without an answer.
 */
import http from 'node:http';
import { lenField, tag, varint, varintField } from '../../../processor/src/receiver/testdata/otlp-wire.js';

/** Deterministic PRNG (mulberry32): the same seed gives the same cases on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

export function randomHex(rand: () => number, bytes: number): string {
  return randomBytes(rand, bytes).toString('hex');
}

// The minimal protobuf writer the receiver tests already use (written independently of the code under test).
export { lenField, tag, varint, varintField };

/** A KeyValue whose AnyValue is a string given as raw bytes (which need not be UTF-8). */
export const keyValueBytes = (key: string, value: Buffer): Buffer => Buffer.concat([lenField(1, key), lenField(2, lenField(1, value))]);

export interface RawAnswer {
  /** HTTP status, or 0 when the server closed the connection without one. */
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** POSTs `body` to `path` on HOST:PORT; never rejects on a reset, reports status 0 instead. */
export function post(endpoint: string, path: string, headers: Record<string, string>, body: Buffer | string): Promise<RawAnswer> {
  const [host, port] = splitHostPort(endpoint);
  return new Promise((resolve) => {
    const req = http.request({ host, port, path, method: 'POST', headers: { ...headers, connection: 'close' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', () => resolve({ status: 0, headers: {}, body: Buffer.alloc(0) }));
    req.end(body);
  });
}

export function splitHostPort(endpoint: string): [string, number] {
  const i = endpoint.lastIndexOf(':');
  return [endpoint.slice(0, i).replace(/^\[|\]$/g, ''), Number(endpoint.slice(i + 1))];
}
