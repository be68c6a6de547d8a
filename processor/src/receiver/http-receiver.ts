/*
 * OTLP/HTTP receiver, hand-written on node:http on purpose: this is the hot path of every span
 * conduct sees, and a framework would add routing, body parsing and buffering we would then have
 * to bound again. Here each step is explicit: route, authenticate, check the headers, stream the
 * body under a byte cap (inflating gzip as a stream), decode, hand over, answer.
 */
import type http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
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
import { parseEndpoint } from './endpoint.js';
import { closeHttp, listenHttp } from './http-server.js';
import { createExportFlow, type BodyFormat, type ExportResult } from './export-flow.js';
import { createReceiverMetrics, type RejectReason } from './metrics.js';
import { RpcCode, type Receiver, type ReceiverDeps } from './model.js';
import { drain, takeBody, type BodyRefusal } from './request-body.js';
import { onceEach } from './lifecycle.js';
import { ownsWholeBuffer } from '../release.js';
import { loadTlsMaterial } from './tls.js';

/** The one path this receiver serves. */
export const TRACES_PATH = '/v1/traces';
const CONTENT_TYPES: Record<BodyFormat, string> = { protobuf: 'application/x-protobuf', json: 'application/json' };
/** How often node checks connections against headersTimeout/requestTimeout, at most. */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1_000;
/** Retry-After never says less than this many seconds. */
const MIN_RETRY_AFTER_S = 1;
/** The google.rpc code answered with each refused body's HTTP status. */
const RPC_CODE_OF: Record<BodyRefusal['status'], number> = { 400: RpcCode.INVALID_ARGUMENT, 413: RpcCode.RESOURCE_EXHAUSTED, 415: RpcCode.INVALID_ARGUMENT };

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
    void takeBody(req, maxBytes, keepWire).then(async (read) => {
      if (!read.ok) {
        if (read.refusal) refuse(req, res, read.refusal.status, format, read.refusal.reason, { code: RPC_CODE_OF[read.refusal.status], message: read.refusal.message });
        else req.destroy();
        return;
      }
      // A body of its own buffer (not the pool's) is the request's alone (RawRequest.ownsBuffer).
      const result = await exportFlow('http', format, read.body, read.wire, ownsWholeBuffer(read.body));
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
    const listening = await listenHttp(options, tls, address, handle, logger, 'OTLP/HTTP receiver');
    server = listening.server;
    const endpoint = listening.endpoint;
    logger.info({ protocol: 'http', endpoint, tls: Boolean(tls), mutualTls: Boolean(tls?.clientAuth), auth: Boolean(checkToken), maxRequestBytes: maxBytes }, 'OTLP/HTTP receiver listening');
    return endpoint;
  }

  async function stop(): Promise<void> {
    await closeHttp(server, graceMs);
    logger.info({ protocol: 'http' }, 'OTLP/HTTP receiver stopped');
  }

  return onceEach(start, stop);
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
