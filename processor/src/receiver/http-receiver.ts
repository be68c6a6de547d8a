/*
 * OTLP/HTTP receiver, hand-written on node:http on purpose: this is the hot path of every span
 * conduct sees, and a framework would add routing, body parsing and buffering we would then have
 * to bound again. Here each step is explicit: route, authenticate, check the headers, stream the
 * body under a byte cap (inflating gzip as a stream), decode, hand over, answer.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { encodeExportTraceResponse, encodeRpcStatus, exportTraceResponseJson, rpcStatusJson } from '@conduct/proto';
import type { TraceIngest } from '../model.js';
import { createBearerCheck, UNAUTHENTICATED_MESSAGE } from './auth.js';
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_GRACE_MS,
  validateReceiverConfig,
  type HttpReceiverConfig,
} from './config.js';
import { formatEndpoint, parseEndpoint } from './endpoint.js';
import { createExportFlow, type BodyFormat, type ExportResult } from './export-flow.js';
import { createReceiverMetrics, type RejectReason } from './metrics.js';
import { RpcCode, type Receiver, type ReceiverDeps } from './model.js';
import { loadTlsMaterial } from './tls.js';

/** The one path this receiver serves. */
export const TRACES_PATH = '/v1/traces';
const CONTENT_TYPES: Record<BodyFormat, string> = { protobuf: 'application/x-protobuf', json: 'application/json' };
/** After refusing a request, at most this much of its remaining body is read and discarded (so the
 * answer reaches the client on a kept-alive connection); past it the connection is cut. */
const MAX_DRAIN_BYTES = 4 * 1024 * 1024;
/** How often node checks connections against headersTimeout/requestTimeout, at most. */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1_000;
/** Retry-After never says less than this many seconds. */
const MIN_RETRY_AFTER_S = 1;

/** A body read: `wire` holds the gzip bytes as received when they were asked for (in-line mode). */
export type BodyRead = { ok: true; body: Buffer; wire?: Buffer } | { ok: false; reason: 'too-large' | 'bad-gzip' | 'aborted' };

/** Creates the OTLP/HTTP receiver (`POST /v1/traces`, protobuf and JSON, gzip). */
export function createHttpReceiver(config: HttpReceiverConfig, ingest: TraceIngest, deps: ReceiverDeps): Receiver {
  validateReceiverConfig(config, 'receivers.http');
  const address = parseEndpoint(config.endpoint, 'receivers.http.endpoint');
  const { logger } = deps;
  const metrics = createReceiverMetrics(deps.registry);
  const exportFlow = createExportFlow(ingest, metrics, logger, config.decodeLimits, deps.forwarder);
  // In-line mode keeps a gzip request's bytes as received, so a gzip downstream gets them unchanged.
  const keepWire = deps.forwarder?.enabled === true;
  const checkToken = config.auth ? createBearerCheck(config.auth.token) : undefined;
  const maxBytes = config.maxRequestBytes;
  const headersTimeout = config.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const requestTimeout = Math.max(config.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, headersTimeout);
  const graceMs = config.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;

  let server: http.Server | undefined;
  let starting: Promise<string> | undefined;
  let stopping: Promise<void> | undefined;

  function reply(res: ServerResponse, status: number, format: BodyFormat, body: Uint8Array | string, headers: Record<string, string> = {}): void {
    metrics.request('http', String(status));
    const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    res.writeHead(status, { ...headers, 'Content-Type': CONTENT_TYPES[format], 'Content-Length': String(payload.byteLength) });
    res.end(payload);
  }

  /** Answers with a google.rpc.Status in `format`, and discards what is left of the request body. */
  function refuse(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    format: BodyFormat,
    reason: RejectReason | undefined,
    rpc: { code: number; message: string; retryDelayMs?: number },
    headers?: Record<string, string>,
  ): void {
    if (reason) metrics.requestRejected('http', reason);
    const body = format === 'protobuf' ? encodeRpcStatus(rpc) : JSON.stringify(rpcStatusJson(rpc));
    reply(res, status, format, body, headers);
    drain(req);
  }

  function answer(req: IncomingMessage, res: ServerResponse, format: BodyFormat, result: ExportResult): void {
    switch (result.kind) {
      case 'ok': {
        const partial = { rejectedSpans: result.rejectedSpans, errorMessage: result.errorMessage };
        const body = format === 'protobuf' ? encodeExportTraceResponse(partial) : JSON.stringify(exportTraceResponseJson(partial));
        reply(res, 200, format, body);
        return;
      }
      case 'invalid':
        refuse(req, res, 400, format, undefined, { code: RpcCode.INVALID_ARGUMENT, message: result.message });
        return;
      case 'overloaded': {
        const seconds = Math.max(MIN_RETRY_AFTER_S, Math.ceil(result.retryAfterMs / 1000));
        refuse(req, res, 503, format, undefined, { code: RpcCode.UNAVAILABLE, message: result.message, retryDelayMs: seconds * 1000 }, {
          'Retry-After': String(seconds),
        });
        return;
      }
    }
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const format = bodyFormat(req.headers['content-type']);
    const replyFormat = format ?? 'json';
    const url = req.url ?? '';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);

    if (path !== TRACES_PATH) {
      refuse(req, res, 404, replyFormat, 'not-found', { code: RpcCode.NOT_FOUND, message: `not found: this receiver serves POST ${TRACES_PATH}` });
      return;
    }
    if (req.method !== 'POST') {
      refuse(req, res, 405, replyFormat, 'method-not-allowed', { code: RpcCode.UNIMPLEMENTED, message: `method not allowed: ${TRACES_PATH} takes POST` }, { Allow: 'POST' });
      return;
    }
    if (checkToken && !checkToken(req.headers.authorization)) {
      refuse(req, res, 401, replyFormat, 'unauthenticated', { code: RpcCode.UNAUTHENTICATED, message: UNAUTHENTICATED_MESSAGE }, {
        'WWW-Authenticate': 'Bearer',
      });
      return;
    }
    if (!format) {
      refuse(req, res, 415, replyFormat, 'unsupported-media-type', {
        code: RpcCode.INVALID_ARGUMENT,
        message: 'unsupported content type: send application/x-protobuf or application/json',
      });
      return;
    }
    const encoding = contentEncoding(req.headers['content-encoding']);
    if (!encoding) {
      refuse(req, res, 415, format, 'unsupported-encoding', { code: RpcCode.INVALID_ARGUMENT, message: 'unsupported content encoding: send gzip or identity' });
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (declared > maxBytes) {
      refuse(req, res, 413, format, 'too-large', { code: RpcCode.RESOURCE_EXHAUSTED, message: tooLargeMessage(maxBytes) });
      return;
    }

    void readBody(req, encoding === 'gzip', maxBytes, keepWire).then(async (read) => {
      if (!read.ok) {
        if (read.reason === 'too-large') {
          refuse(req, res, 413, format, 'too-large', { code: RpcCode.RESOURCE_EXHAUSTED, message: tooLargeMessage(maxBytes) });
        } else if (read.reason === 'bad-gzip') {
          refuse(req, res, 400, format, 'decode-error', { code: RpcCode.INVALID_ARGUMENT, message: 'the body is not valid gzip' });
        } else {
          req.destroy();
        }
        return;
      }
      const result = await exportFlow('http', format, read.body, read.wire);
      if (!res.destroyed) answer(req, res, format, result);
    }).catch((error: unknown) => {
      // Not expected (the export flow answers every outcome as data); never let it crash the process.
      logger.error({ err: error instanceof Error ? error.message : String(error) }, 'OTLP/HTTP receiver failed to answer a request');
      if (!res.headersSent) refuse(req, res, 500, format, undefined, { code: RpcCode.INTERNAL, message: 'internal error' });
      else res.destroy();
    });
  }

  async function start(): Promise<string> {
    const tls = config.tls ? await loadTlsMaterial(config.tls, 'receivers.http') : undefined;
    const options: http.ServerOptions = {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout: config.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: Math.max(50, Math.min(MAX_TIMEOUT_CHECK_INTERVAL_MS, Math.floor(headersTimeout / 2))),
    };
    const created = tls
      ? https.createServer(
          { ...options, cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}), requestCert: tls.clientAuth, rejectUnauthorized: tls.clientAuth },
          handle,
        )
      : http.createServer(options, handle);
    server = created;
    await new Promise<void>((resolve, reject) => {
      created.once('error', reject);
      created.listen(address.port, address.host || undefined, () => {
        created.off('error', reject);
        resolve();
      });
    });
    // Errors on the listening socket after start (rare) are logged, never thrown.
    created.on('error', (error) => logger.error({ err: error.message }, 'OTLP/HTTP receiver server error'));
    const bound = created.address() as AddressInfo;
    const endpoint = formatEndpoint(bound.address, bound.port);
    logger.info({ protocol: 'http', endpoint, tls: Boolean(tls), mutualTls: Boolean(tls?.clientAuth), auth: Boolean(checkToken), maxRequestBytes: maxBytes }, 'OTLP/HTTP receiver listening');
    return endpoint;
  }

  async function stop(): Promise<void> {
    if (starting) await starting.catch(() => undefined);
    const current = server;
    if (!current || !current.listening) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => current.closeAllConnections(), graceMs);
      timer.unref();
      current.close(() => {
        clearTimeout(timer);
        resolve();
      });
      current.closeIdleConnections();
    });
    logger.info({ protocol: 'http' }, 'OTLP/HTTP receiver stopped');
  }

  return {
    start() {
      starting ??= start();
      return starting;
    },
    stop() {
      stopping ??= stop();
      return stopping;
    },
  };
}

function tooLargeMessage(maxBytes: number): string {
  return `request body larger than the limit of ${maxBytes} bytes (after decompression)`;
}

/** `application/x-protobuf` or `application/json`, parameters such as charset ignored. */
function bodyFormat(contentType: string | undefined): BodyFormat | undefined {
  if (!contentType) return undefined;
  const semicolon = contentType.indexOf(';');
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  if (type === 'application/x-protobuf') return 'protobuf';
  if (type === 'application/json') return 'json';
  return undefined;
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
        finish({ ok: true, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
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
