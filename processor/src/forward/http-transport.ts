import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { ResolvedForwardTarget } from './config.js';
import { parseRetryAfter, type SendOutcome, type Transport, type WirePayload } from './transport.js';

/** Sockets kept per downstream. One request is in flight at a time; the spare covers reconnects. */
const HTTP_MAX_SOCKETS = 2;
/** Response bodies are read up to this size and then ignored (OTLP answers are small). */
const MAX_RESPONSE_BYTES = 64 * 1024;
const TRACES_PATH = '/v1/traces';

/** The full URL requests are posted to: the base endpoint with `/v1/traces` appended. */
export function tracesUrl(endpoint: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `http://${endpoint}`;
  const url = new URL(withScheme);
  if (!url.pathname.endsWith(TRACES_PATH)) url.pathname = url.pathname.replace(/\/+$/, '') + TRACES_PATH;
  return url;
}

/** Statuses worth another attempt (the OTLP/HTTP specification's list, plus 408 and other 5xx). */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** OTLP/HTTP `POST {endpoint}/v1/traces` over keep-alive node:http(s). */
export function createHttpTransport(target: ResolvedForwardTarget): Transport {
  const url = tracesUrl(target.endpoint);
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') throw new Error(`forward endpoint ${target.endpoint}: expected http or https`);
  const tls = target.tls;
  const agent = secure
    ? new https.Agent({
        keepAlive: true,
        maxSockets: HTTP_MAX_SOCKETS,
        ca: tls?.ca ? fs.readFileSync(tls.ca) : undefined,
        cert: tls?.cert ? fs.readFileSync(tls.cert) : undefined,
        key: tls?.key ? fs.readFileSync(tls.key) : undefined,
        rejectUnauthorized: !tls?.insecure,
      })
    : new http.Agent({ keepAlive: true, maxSockets: HTTP_MAX_SOCKETS });
  const request = secure ? https.request : http.request;

  function send(payload: WirePayload, signal: AbortSignal): Promise<SendOutcome> {
    return new Promise<SendOutcome>((resolve) => {
      let settled = false;
      const finish = (outcome: SendOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const headers: Record<string, string | number> = {
        ...target.headers,
        'content-type': payload.contentType,
        'content-length': payload.bytes.length,
      };
      if (payload.gzip) headers['content-encoding'] = 'gzip';
      const req = request(url, { method: 'POST', agent, headers }, (res) => {
        const status = res.statusCode ?? 0;
        let seen = 0;
        res.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > MAX_RESPONSE_BYTES) res.destroy();
        });
        const done = () => {
          if (status >= 200 && status < 300) return finish({ kind: 'ok' });
          if (retryableStatus(status)) {
            const header = res.headers['retry-after'];
            return finish({ kind: 'retry', reason: `http-${status}`, retryAfterMs: parseRetryAfter(Array.isArray(header) ? header[0] : header) });
          }
          finish({ kind: 'permanent', reason: `http-${status}` });
        };
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      });
      const timer = setTimeout(() => {
        req.destroy();
        finish({ kind: 'retry', reason: 'timeout' });
      }, target.timeoutMs);
      const onAbort = () => {
        req.destroy();
        finish({ kind: 'retry', reason: 'aborted' });
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort);
      req.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'retry', reason: err.code ? `network-${err.code}` : 'network' }));
      req.end(payload.bytes);
    });
  }

  let closed = false;
  return {
    send,
    close() {
      if (closed) return;
      closed = true;
      agent.destroy();
    },
  };
}
