import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { silentLogger, type TraceIngest } from '../model.js';
import { createCollectingIngest, createHttpReceiver, type Receiver } from './index.js';
import {
  hexId,
  lenField,
  rawHttp,
  readExportResponse,
  readRpcStatus,
  traceRequest,
  traceRequestJson,
  varintField,
  type RawResponse,
} from './testdata/otlp-wire.js';

/** Bad and hostile input over raw HTTP: each gets the right status and body, and the server keeps serving. */

const MAX_BYTES = 1024 * 1024;
const PROTOBUF = { 'Content-Type': 'application/x-protobuf' };
const JSON_TYPE = { 'Content-Type': 'application/json' };

const ingest = createCollectingIngest();
const registry = new Registry();
let receiver: Receiver;
let endpoint: string;

beforeAll(async () => {
  receiver = createHttpReceiver(
    { endpoint: '127.0.0.1:0', maxRequestBytes: MAX_BYTES, headersTimeoutMs: 500, requestTimeoutMs: 2_000 },
    ingest,
    { registry, logger: silentLogger },
  );
  endpoint = await receiver.start();
});

afterAll(async () => {
  await receiver.stop();
});

afterEach(() => {
  ingest.setOverloaded(false);
});

const span = (name = 'op') => ({ traceId: hexId(16), spanId: hexId(8), name, attributes: { 'enduser.id': 'bob' } });

/** A good request right after a bad one must still be served. */
async function expectStillServes(): Promise<void> {
  const s = span('still-serving');
  const res = await rawHttp(endpoint, { headers: PROTOBUF, body: traceRequest('checker', [s]) });
  expect(res.status).toBe(200);
  expect(ingest.spans().some((x) => x.spanId === s.spanId)).toBe(true);
}

function jsonBody(res: RawResponse): Record<string, unknown> {
  expect(res.headers['content-type']).toBe('application/json');
  return JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
}

function protobufStatus(res: RawResponse) {
  expect(res.headers['content-type']).toBe('application/x-protobuf');
  return readRpcStatus(res.body);
}

describe('OTLP/HTTP receiver: good requests', () => {
  it('accepts protobuf and answers an empty protobuf ExportTraceServiceResponse', async () => {
    const s = span('proto-op');
    const res = await rawHttp(endpoint, { headers: PROTOBUF, body: traceRequest('orders', [s]) });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-protobuf');
    expect(readExportResponse(res.body)).toEqual({ rejectedSpans: 0, errorMessage: '' });
    const got = ingest.spans().find((x) => x.spanId === s.spanId);
    expect(got?.traceId).toBe(s.traceId);
    expect(got?.name).toBe('proto-op');
    expect(got?.attributes['enduser.id']).toBe('bob');
    expect(got?.resource['service.name']).toBe('orders');
  });

  it('accepts JSON (charset parameter ignored) and answers JSON', async () => {
    const s = span('json-op');
    const res = await rawHttp(endpoint, { headers: { 'Content-Type': 'Application/JSON; charset=utf-8' }, body: traceRequestJson('orders', [s]) });
    expect(res.status).toBe(200);
    expect(jsonBody(res)).toEqual({});
    expect(ingest.spans().find((x) => x.spanId === s.spanId)?.name).toBe('json-op');
  });

  it('accepts a gzip body', async () => {
    const s = span('gzip-op');
    const res = await rawHttp(endpoint, {
      headers: { ...PROTOBUF, 'Content-Encoding': 'gzip' },
      body: zlib.gzipSync(traceRequest('orders', [s])),
    });
    expect(res.status).toBe(200);
    expect(ingest.spans().find((x) => x.spanId === s.spanId)?.name).toBe('gzip-op');
  });

  it('answers an empty request (zero bytes) with success, in both encodings and with gzip', async () => {
    for (const headers of [PROTOBUF, JSON_TYPE, { ...PROTOBUF, 'Content-Encoding': 'gzip' }]) {
      const res = await rawHttp(endpoint, { headers, body: Buffer.alloc(0) });
      expect(res.status).toBe(200);
    }
  });

  it('reports partial success for spans without a valid trace id, in the request content type', async () => {
    const good = span('kept');
    const bad = { ...span('no-trace-id'), traceId: '' };
    const proto = await rawHttp(endpoint, { headers: PROTOBUF, body: traceRequest('orders', [good, bad]) });
    expect(proto.status).toBe(200);
    const partial = readExportResponse(proto.body);
    expect(partial.rejectedSpans).toBe(1);
    expect(partial.errorMessage).toMatch(/trace id/);
    expect(ingest.spans().some((x) => x.spanId === good.spanId)).toBe(true);

    const json = await rawHttp(endpoint, { headers: JSON_TYPE, body: traceRequestJson('orders', [{ ...span(), traceId: '' }]) });
    expect(json.status).toBe(200);
    const body = jsonBody(json) as { partialSuccess?: { rejectedSpans?: string; errorMessage?: string } };
    expect(body.partialSuccess?.rejectedSpans).toBe('1');
    expect(body.partialSuccess?.errorMessage).toMatch(/trace id/);
  });
});

describe('OTLP/HTTP receiver: bad input', () => {
  it('400 for a truncated protobuf body, with a protobuf google.rpc.Status', async () => {
    const full = traceRequest('orders', [span()]);
    const res = await rawHttp(endpoint, { headers: PROTOBUF, body: full.subarray(0, full.length - 7) });
    expect(res.status).toBe(400);
    const status = protobufStatus(res);
    expect(status.code).toBe(3);
    expect(status.message).toMatch(/decode/);
    await expectStillServes();
  });

  it('400 for random bytes', async () => {
    let seed = 20240601;
    const random = Buffer.from(Array.from({ length: 8192 }, () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff));
    const res = await rawHttp(endpoint, { headers: PROTOBUF, body: random });
    expect(res.status).toBe(400);
    expect(protobufStatus(res).code).toBe(3);
    await expectStillServes();
  });

  it('400 for wrong wire types (a varint where a message belongs)', async () => {
    for (const body of [varintField(1, 5), lenField(1, lenField(2, varintField(2, 7)))]) {
      const res = await rawHttp(endpoint, { headers: PROTOBUF, body });
      expect(res.status).toBe(400);
      expect(protobufStatus(res).message).toMatch(/wire type/);
    }
    await expectStillServes();
  });

  it('400 for invalid JSON and for JSON with wrong types, with a JSON google.rpc.Status', async () => {
    for (const body of ['{"resourceSpans":[', '{"resourceSpans":"many"}', '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5}]}]}]}']) {
      const res = await rawHttp(endpoint, { headers: JSON_TYPE, body });
      expect(res.status).toBe(400);
      const status = jsonBody(res);
      expect(status.code).toBe(3);
      expect(typeof status.message).toBe('string');
    }
    await expectStillServes();
  });

  it('400 for a body that is not gzip although it says so', async () => {
    const res = await rawHttp(endpoint, { headers: { ...PROTOBUF, 'Content-Encoding': 'gzip' }, body: Buffer.from('plainly not gzip') });
    expect(res.status).toBe(400);
    await expectStillServes();
  });

  it('415 for an unknown content type or content encoding', async () => {
    const type = await rawHttp(endpoint, { headers: { 'Content-Type': 'text/plain' }, body: 'hello' });
    expect(type.status).toBe(415);
    expect(jsonBody(type).message).toMatch(/content type/);
    const none = await rawHttp(endpoint, { body: 'hello' });
    expect(none.status).toBe(415);
    const encoding = await rawHttp(endpoint, { headers: { ...PROTOBUF, 'Content-Encoding': 'br' }, body: 'hello' });
    expect(encoding.status).toBe(415);
    expect(protobufStatus(encoding).message).toMatch(/encoding/);
    await expectStillServes();
  });

  it('405 with Allow for other methods, 404 for other paths', async () => {
    const get = await rawHttp(endpoint, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    const put = await rawHttp(endpoint, { method: 'PUT', headers: PROTOBUF, body: traceRequest('x', [span()]) });
    expect(put.status).toBe(405);
    const other = await rawHttp(endpoint, { path: '/v1/logs', headers: PROTOBUF, body: Buffer.alloc(0) });
    expect(other.status).toBe(404);
    expect(protobufStatus(other).code).toBe(5);
    await expectStillServes();
  });

  it('413 for a body over the limit announced by Content-Length, and the kept-alive connection still works', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const res = await rawHttp(endpoint, { headers: PROTOBUF, body: Buffer.alloc(MAX_BYTES + 1), agent });
      expect(res.status).toBe(413);
      expect(protobufStatus(res).code).toBe(8);
      const s = span('after-413');
      const next = await rawHttp(endpoint, { headers: PROTOBUF, body: traceRequest('orders', [s]), agent });
      expect(next.status).toBe(200);
    } finally {
      agent.destroy();
    }
  });

  it('413 for a chunked body that grows past the limit while streaming', async () => {
    const res = await new Promise<RawResponse>((resolve, reject) => {
      const [host, port] = endpoint.split(':');
      const req = http.request({ host, port: Number(port), method: 'POST', path: '/v1/traces', headers: PROTOBUF }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      // No Content-Length: the size is only known by counting.
      for (let i = 0; i < 24; i++) req.write(Buffer.alloc(64 * 1024, 0x0a));
      req.end();
    });
    expect(res.status).toBe(413);
    await expectStillServes();
  });

  it('413 for a gzip bomb, stopping at the cap without inflating it all', async () => {
    const inflatedSize = 256 * 1024 * 1024;
    const bomb = await gzipZeros(inflatedSize);
    expect(bomb.length).toBeLessThan(MAX_BYTES);

    const before = process.memoryUsage();
    let peakRss = before.rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 2);
    try {
      const res = await rawHttp(endpoint, { headers: { ...PROTOBUF, 'Content-Encoding': 'gzip' }, body: bomb });
      expect(res.status).toBe(413);
      expect(protobufStatus(res).message).toMatch(/after decompression/);
    } finally {
      clearInterval(sampler);
    }
    // Inflating it all would need 256 MiB; stopping at the 1 MiB cap keeps growth far below that.
    expect(peakRss - before.rss).toBeLessThan(128 * 1024 * 1024);
    await expectStillServes();
  });

  it('503 with Retry-After and a RetryInfo status when the ingest is overloaded, in both encodings', async () => {
    ingest.setOverloaded(true, 2_000);
    const proto = await rawHttp(endpoint, { headers: PROTOBUF, body: traceRequest('orders', [span()]) });
    expect(proto.status).toBe(503);
    expect(proto.headers['retry-after']).toBe('2');
    const status = protobufStatus(proto);
    expect(status.code).toBe(14);
    expect(status.retryDelayMs).toBe(2_000);

    const json = await rawHttp(endpoint, { headers: JSON_TYPE, body: traceRequestJson('orders', [span()]) });
    expect(json.status).toBe(503);
    expect(json.headers['retry-after']).toBe('2');
    const body = jsonBody(json) as { code: number; details?: Array<{ '@type': string; retryDelay: string }> };
    expect(body.code).toBe(14);
    expect(body.details?.[0]?.retryDelay).toBe('2s');

    ingest.setOverloaded(false);
    await expectStillServes();
  });

  it('closes a slowloris connection that never finishes its headers', async () => {
    const [host, port] = endpoint.split(':');
    const socket = net.connect(Number(port), host);
    const closed = new Promise<string>((resolve) => {
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
      socket.on('close', () => resolve(answer));
    });
    socket.on('error', () => undefined);
    socket.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\n');
    // Trickle a header byte now and then, never ending the header block.
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write('X');
    }, 100);
    try {
      const answer = await closed;
      // The server gave up on the request (node answers 408) and closed the connection.
      expect(answer === '' || answer.startsWith('HTTP/1.1 408')).toBe(true);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
    await expectStillServes();
  });

  it('counts rejections by reason in the registry', async () => {
    const text = await registry.metrics();
    for (const reason of ['decode-error', 'too-large', 'unsupported-media-type', 'unsupported-encoding', 'method-not-allowed', 'not-found', 'overloaded']) {
      expect(text).toMatch(new RegExp(`conduct_receiver_requests_rejected_total\\{protocol="http",reason="${reason}"\\} [1-9]`));
    }
    expect(text).toMatch(/conduct_receiver_spans_rejected_total\{protocol="http",reason="invalid-span"\} 2/);
    expect(text).toMatch(/conduct_receiver_requests_total\{protocol="http",code="413"\} [1-9]/);
    expect(text).toMatch(/conduct_receiver_request_bytes_total\{protocol="http"\} [1-9]/);
  });
});

describe('OTLP/HTTP receiver: lifecycle', () => {
  it('stop is safe without start and twice', async () => {
    const unstarted = createHttpReceiver({ endpoint: '127.0.0.1:0', maxRequestBytes: MAX_BYTES }, ingest, { registry, logger: silentLogger });
    await unstarted.stop();
    await unstarted.stop();
  });

  it('stop lets an in-flight request finish, then refuses new connections', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const accepted = new Promise<void>((resolve) => (arrived = resolve));
    const slowIngest: TraceIngest = {
      async accept() {
        arrived();
        await gate;
        return { ok: true };
      },
    };
    const slow = createHttpReceiver({ endpoint: '127.0.0.1:0', maxRequestBytes: MAX_BYTES }, slowIngest, { registry, logger: silentLogger });
    const slowEndpoint = await slow.start();
    const inFlight = rawHttp(slowEndpoint, { headers: PROTOBUF, body: traceRequest('orders', [span()]) });
    await accepted;
    const stopped = slow.stop();
    release();
    expect((await inFlight).status).toBe(200);
    await stopped;
    await expect(rawHttp(slowEndpoint, { headers: PROTOBUF, body: Buffer.alloc(0) })).rejects.toThrow(/ECONNREFUSED/);
  });
});

/** gzip of `size` zero bytes, produced as a stream so the test never holds the inflated bytes. */
async function gzipZeros(size: number): Promise<Buffer> {
  const gzip = zlib.createGzip({ level: 9 });
  const out: Buffer[] = [];
  gzip.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve) => gzip.on('end', resolve));
  const chunk = Buffer.alloc(1024 * 1024);
  for (let written = 0; written < size; written += chunk.length) {
    if (!gzip.write(chunk)) await new Promise((resolve) => gzip.once('drain', resolve));
  }
  gzip.end();
  await done;
  return Buffer.concat(out);
}
