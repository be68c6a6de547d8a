/**
 * The request body both HTTP receivers read, on a real node:http server: each outcome of
 * `takeBody` is answered as JSON (the refusal's status, or the body's size and a digest).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drain, takeBody } from './request-body.js';
import { rawHttp } from './testdata/otlp-wire.js';

const MAX_BYTES = 64 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let server: http.Server;
let endpoint: string;
/** Outcomes without an answer (the connection was lost): counted here. */
let lost = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const keepWire = req.url === '/wire';
    // `/chunks`: a larger cap, and what became of the pieces node's parser handed over.
    const pieces: Buffer[] = [];
    if (req.url === '/chunks') req.on('data', (chunk: Buffer) => pieces.push(chunk));
    void takeBody(req, req.url === '/chunks' ? 16 * MAX_BYTES : MAX_BYTES, keepWire).then((read) => {
      if (!read.ok && !read.refusal) {
        lost++;
        req.destroy();
        return;
      }
      const [status, body] = read.ok
        ? [200, { size: read.body.byteLength, sha: sha(read.body), ...(read.wire ? { wire: sha(read.wire) } : {}), ...(pieces.length ? { pieces: pieces.length, detached: pieces.filter((p) => p.buffer.byteLength === 0).length } : {}) }]
        : [read.refusal!.status, read.refusal];
      if (!read.ok) drain(req);
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const post = (headers: Record<string, string | number>, body?: Buffer, path = '/') => rawHttp(endpoint, { path, headers, body });
const json = (res: { body: Buffer }) => JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;

describe('takeBody', () => {
  it('reads a plain body and a gzip body (gzip and x-gzip, any case) to the same bytes', async () => {
    const body = Buffer.from('a plain body '.repeat(500));
    const plain = await post({}, body);
    expect(plain.status).toBe(200);
    expect(json(plain)).toEqual({ size: body.byteLength, sha: sha(body) });
    for (const encoding of ['gzip', 'X-GZIP', ' identity ']) {
      const sent = encoding.trim() === 'identity' ? body : zlib.gzipSync(body);
      const res = await post({ 'Content-Encoding': encoding }, sent);
      expect(json(res), encoding).toEqual({ size: body.byteLength, sha: sha(body) });
    }
  });

  it('releases the pieces of a body once they are joined (each its own buffer), the body intact', async () => {
    const body = Buffer.alloc(12 * MAX_BYTES);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const answer = json(await post({}, body, '/chunks'));
    expect(answer).toMatchObject({ size: body.byteLength, sha: sha(body) });
    // 768 KB arrives in several socket reads; every piece is detached once copied into the body.
    expect(answer.pieces).toBeGreaterThan(1);
    expect(answer.detached).toBe(answer.pieces);
  });

  it('keeps the gzip bytes as received when asked (in-line forwarding), and an empty body is empty whatever its encoding', async () => {
    const gz = zlib.gzipSync(Buffer.from('forward me as I came'));
    expect(json(await post({ 'Content-Encoding': 'gzip' }, gz, '/wire'))).toMatchObject({ wire: sha(gz) });
    expect(json(await post({ 'Content-Encoding': 'gzip' }, Buffer.alloc(0)))).toEqual({ size: 0, sha: sha(Buffer.alloc(0)) });
  });

  it('refuses an unknown encoding 415 and a declared length over the cap 413, before reading', async () => {
    const br = await post({ 'Content-Encoding': 'br' }, Buffer.from('x'));
    expect([br.status, json(br).reason]).toEqual([415, 'unsupported-encoding']);
    const big = await post({}, Buffer.alloc(MAX_BYTES + 1));
    expect([big.status, json(big).reason]).toEqual([413, 'too-large']);
    expect(json(big).message).toMatch(`limit of ${MAX_BYTES} bytes`);
  });

  it('refuses 413 a chunked body that grows past the cap, and a gzip bomb once its inflated bytes pass the cap', async () => {
    const chunked = await new Promise<number>((resolve, reject) => {
      const [host, port] = endpoint.split(':');
      const req = http.request({ host, port: Number(port), method: 'POST', path: '/' }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 4; i++) req.write(Buffer.alloc(32 * 1024));
      req.end();
    });
    expect(chunked).toBe(413);
    // 16 MiB of zeros packs into far less than the cap; inflated, it passes it.
    const bomb = zlib.gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 });
    expect(bomb.byteLength).toBeLessThan(MAX_BYTES);
    const res = await post({ 'Content-Encoding': 'gzip' }, bomb);
    expect([res.status, json(res).reason]).toEqual([413, 'too-large']);
  });

  it('refuses 400 a body that says gzip and is not', async () => {
    const res = await post({ 'Content-Encoding': 'gzip' }, Buffer.from('not gzip at all'));
    expect([res.status, json(res)]).toEqual([400, { status: 400, reason: 'decode-error', message: 'the body is not valid gzip' }]);
  });

  it('answers nothing for a request whose connection is cut mid-body', async () => {
    const before = lost;
    const [host, port] = endpoint.split(':');
    const req = http.request({ host, port: Number(port), method: 'POST', path: '/', headers: { 'Content-Length': 1000 } });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(10));
    await new Promise((resolve) => setImmediate(resolve));
    req.destroy();
    await expect.poll(() => lost).toBe(before + 1);
  });
});
