/*
 * Kubernetes audit webhook receiver: the API server's webhook audit backend posts batches of
 * audit events (`audit.k8s.io/v1` EventList, JSON) here. Each event at stage ResponseComplete
 * becomes a server span at the API server (processor/src/audit) and goes to the same ingest as
 * OTLP spans. Same steps as the OTLP/HTTP receiver: route, authenticate, check the headers, read
 * the body under a byte cap, parse, hand over, answer.
 */
import type http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { auditRequest, AUDIT_CHAIN_WINDOW_MS, k8sEventsOf, readK8sAuditEvent, type AuditCall } from '../audit/index.js';
import type { TraceIngest } from '../model.js';
import { createBearerCheck, UNAUTHENTICATED_MESSAGE } from './auth.js';
import { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_KEEP_ALIVE_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_SHUTDOWN_GRACE_MS, validateReceiverConfig, type HttpReceiverConfig } from './config.js';
import { parseEndpoint } from './endpoint.js';
import { closeHttp, listenHttp } from './http-server.js';
import { createReceiverMetrics, type RejectReason } from './metrics.js';
import type { Receiver, ReceiverDeps } from './model.js';
import { drain, takeBody } from './request-body.js';
import { onceEach } from './lifecycle.js';
import { loadTlsMaterial } from './tls.js';

/** The path the API server posts to (the one Falco's webhook uses too). */
export const K8S_AUDIT_PATH = '/k8s-audit';
/** Largest EventList body accepted when the config names none: 16 MiB (the API server's batches are far smaller). */
export const DEFAULT_K8S_AUDIT_MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** Most events of one body whose reasons are named in the answer (all are counted). */
const MAX_REPORTED_REASONS = 5;
/** Retry-After never says less than this many seconds. */
const MIN_RETRY_AFTER_S = 1;
const PROTOCOL = 'k8s-audit';

/** The receiver's configuration (config `receivers.k8sAudit`): the OTLP/HTTP receiver's fields plus the chain window. */
export interface K8sAuditReceiverConfig extends HttpReceiverConfig {
  /** Events of one user starting in the same window of this many ms make one chain. Default AUDIT_CHAIN_WINDOW_MS. */
  chainWindowMs?: number;
}

/** What became of one EventList: the calls read from it and the events left out. */
interface ReadEvents {
  calls: AuditCall[];
  skipped: number;
  invalid: number;
  reasons: string[];
}

function readEvents(events: readonly unknown[]): ReadEvents {
  const out: ReadEvents = { calls: [], skipped: 0, invalid: 0, reasons: [] };
  for (const [i, event] of events.entries()) {
    const read = readK8sAuditEvent(event);
    if (read.ok) {
      out.calls.push(read.call);
    } else if (read.skipped) {
      out.skipped++;
    } else {
      out.invalid++;
      if (out.reasons.length < MAX_REPORTED_REASONS) out.reasons.push(`items[${i}]: ${read.reason}`);
    }
  }
  return out;
}

function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || type === '';
}

/** Creates the Kubernetes audit webhook receiver (`POST /k8s-audit`, EventList JSON, gzip). */
export function createK8sAuditReceiver(config: K8sAuditReceiverConfig, ingest: TraceIngest, deps: ReceiverDeps): Receiver {
  validateReceiverConfig(config, 'receivers.k8sAudit');
  const address = parseEndpoint(config.endpoint, 'receivers.k8sAudit.endpoint');
  const { logger } = deps;
  const metrics = createReceiverMetrics(deps.registry);
  const checkToken = config.auth ? createBearerCheck(config.auth.token) : undefined;
  const maxBytes = config.maxRequestBytes;
  const windowMs = config.chainWindowMs ?? AUDIT_CHAIN_WINDOW_MS;
  const headersTimeout = config.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const requestTimeout = Math.max(config.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, headersTimeout);
  const graceMs = config.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  let server: http.Server | undefined;

  function reply(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
    metrics.request(PROTOCOL, String(status));
    const payload = Buffer.from(JSON.stringify(body), 'utf8');
    res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': String(payload.byteLength) });
    res.end(payload);
  }

  function refuse(req: IncomingMessage, res: ServerResponse, status: number, reason: RejectReason | undefined, message: string, headers?: Record<string, string>): void {
    if (reason) metrics.requestRejected(PROTOCOL, reason);
    reply(res, status, { error: message }, headers);
    drain(req);
  }

  /** Parses, maps and hands on one body; answers every outcome. */
  async function take(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    let document: unknown;
    try {
      document = JSON.parse(body.toString('utf8'));
    } catch (error) {
      refuse(req, res, 400, 'decode-error', `the body is not JSON: ${(error as Error).message}`);
      return;
    }
    const list = k8sEventsOf(document);
    if (!list.ok) {
      refuse(req, res, 400, 'decode-error', list.message);
      return;
    }
    const read = readEvents(list.events);
    metrics.spansRejected(PROTOCOL, 'invalid-span', read.invalid);
    metrics.spansRejected(PROTOCOL, 'not-a-call', read.skipped);
    if (read.calls.length > 0) {
      let outcome;
      try {
        outcome = await ingest.accept(auditRequest(read.calls, windowMs));
      } catch (error) {
        logger.error({ err: (error as Error).message }, 'Kubernetes audit receiver: ingest failed');
        metrics.spansRejected(PROTOCOL, 'ingest-error', read.calls.length);
        refuse(req, res, 503, 'ingest-error', 'the events could not be taken; retry', { 'Retry-After': String(MIN_RETRY_AFTER_S) });
        return;
      }
      if (!outcome.ok) {
        const seconds = Math.max(MIN_RETRY_AFTER_S, Math.ceil(outcome.retryAfterMs / 1000));
        metrics.spansRejected(PROTOCOL, 'overloaded', read.calls.length);
        refuse(req, res, 503, 'overloaded', `overloaded (${outcome.reason}); retry`, { 'Retry-After': String(seconds) });
        return;
      }
      metrics.spansReceived(PROTOCOL, read.calls.length);
    }
    // Events that can never be read are answered 200 with their reasons: a retry would not help.
    reply(res, 200, { accepted: read.calls.length, skipped: read.skipped, rejected: read.invalid, ...(read.reasons.length ? { errors: read.reasons } : {}) });
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    if (path !== K8S_AUDIT_PATH) {
      refuse(req, res, 404, 'not-found', `not found: this receiver serves POST ${K8S_AUDIT_PATH}`);
      return;
    }
    if (req.method !== 'POST') {
      refuse(req, res, 405, 'method-not-allowed', `method not allowed: ${K8S_AUDIT_PATH} takes POST`, { Allow: 'POST' });
      return;
    }
    if (checkToken && !checkToken(req.headers.authorization)) {
      refuse(req, res, 401, 'unauthenticated', UNAUTHENTICATED_MESSAGE, { 'WWW-Authenticate': 'Bearer' });
      return;
    }
    if (!isJson(req.headers['content-type'])) {
      refuse(req, res, 415, 'unsupported-media-type', 'unsupported content type: send application/json');
      return;
    }
    void takeBody(req, maxBytes)
      .then(async (read) => {
        if (!read.ok) {
          if (read.refusal) refuse(req, res, read.refusal.status, read.refusal.reason, read.refusal.message);
          else req.destroy();
          return;
        }
        metrics.requestBytes(PROTOCOL, read.body.byteLength);
        await take(req, res, read.body);
      })
      .catch((error: unknown) => {
        logger.error({ err: error instanceof Error ? error.message : String(error) }, 'Kubernetes audit receiver failed to answer a request');
        if (!res.headersSent) refuse(req, res, 500, undefined, 'internal error');
        else res.destroy();
      });
  }

  async function start(): Promise<string> {
    const tls = config.tls ? await loadTlsMaterial(config.tls, 'receivers.k8sAudit') : undefined;
    const options: http.ServerOptions = { headersTimeout, requestTimeout, keepAliveTimeout: config.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS };
    const listening = await listenHttp(options, tls, address, handle, logger, 'Kubernetes audit receiver');
    server = listening.server;
    const endpoint = listening.endpoint;
    logger.info({ protocol: PROTOCOL, endpoint, tls: Boolean(tls), mutualTls: Boolean(tls?.clientAuth), auth: Boolean(checkToken), maxRequestBytes: maxBytes, chainWindowMs: windowMs }, 'Kubernetes audit receiver listening');
    return endpoint;
  }

  async function stop(): Promise<void> {
    await closeHttp(server, graceMs);
    logger.info({ protocol: PROTOCOL }, 'Kubernetes audit receiver stopped');
  }

  return onceEach(start, stop);
}
