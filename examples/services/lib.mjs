// Small helpers shared by the demo services: a router that names the server span after its
// route, bearer-token authentication that records the principal the way real auth middleware
// does (`enduser.id` on the server span), and a JSON client over the instrumented http/https.
import { activeSpan, nodeHttp, nodeHttps } from './telemetry.mjs';

/** Largest request or response body read, in bytes; the rest is refused. */
export const MAX_BODY_BYTES = 256 * 1024;
/**
 * Client timeout for one call (how long its socket may stay silent). A call waits for the calls
 * its server makes in turn, and on a machine loaded by other work a checkout went silent for over
 * 10 s: generous, as it only ends calls that hang.
 */
export const CALL_TIMEOUT_MS = 60_000;
/** The account every demo workload lives in (`cloud.account.id` of their resources). */
export const HOME_ACCOUNT = '111111111111';
/** The region every demo workload runs in. */
export const HOME_REGION = 'eu-west-1';

/** Attribute keys the services set themselves (the HTTP instrumentation sets the rest). */
export const ATTR = {
  route: 'http.route',
  enduser: 'enduser.id',
  tlsSubject: 'tls.client.subject',
  account: 'cloud.account.id',
  bucket: 'aws.s3.bucket',
};

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Throws an error answered with this status. */
export function fail(status, message) {
  throw new HttpError(status, message);
}

function compile(pattern) {
  const names = [];
  const source = pattern.replace(/\{(\w+)\}/g, (_, name) => {
    names.push(name);
    return '([^/]+)';
  });
  return { regex: new RegExp(`^${source}$`), names };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text) return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new HttpError(400, 'body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

/**
 * A request handler with routes such as `GET /accounts/{account}/buckets`. Each route names the
 * server span (`http.route`, span name `METHOD route`). `authenticate(req, span)` runs first when
 * given; it returns the principal or throws.
 */
export function createRouter({ authenticate } = {}) {
  const routes = [];
  const handler = async (req, res) => {
    const span = activeSpan();
    const url = new URL(req.url ?? '/', 'http://service');
    let status = 200;
    let body;
    try {
      const match = routes
        .filter((r) => r.method === req.method)
        .map((r) => ({ r, m: r.regex.exec(url.pathname) }))
        .find((x) => x.m);
      if (!match) fail(404, 'no such route');
      const { r, m } = match;
      span?.setAttribute(ATTR.route, r.pattern);
      span?.updateName(`${r.method} ${r.pattern}`);
      const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
      const principal = authenticate ? await authenticate(req, span) : undefined;
      const input = req.method === 'GET' ? undefined : await readBody(req);
      body = await r.fn({ req, params, query: url.searchParams, body: input, principal, span });
    } catch (err) {
      status = err instanceof HttpError ? err.status : 500;
      body = { error: err instanceof HttpError ? err.message : 'internal error' };
    }
    const text = JSON.stringify(body ?? {});
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  return {
    handler,
    route(method, pattern, fn) {
      routes.push({ method, pattern, fn, ...compile(pattern) });
      return this;
    },
  };
}

/**
 * Bearer-token authentication: `tokens` maps a token to the principal it stands for. The principal
 * goes on the server span as `enduser.id`, which is how conduct learns who made the call.
 */
export function bearerAuth(tokens) {
  return (req, span) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const principal = m ? tokens.get(m[1]) : undefined;
    if (!principal) fail(401, 'unauthenticated');
    span?.setAttribute(ATTR.enduser, principal);
    return principal;
  };
}

/** Listens on 127.0.0.1 on a free port; resolves with the port. */
export function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

/**
 * Calls a JSON endpoint. `url` may name any host: `lookup` (a map host -> address) resolves names
 * that exist only in the demo. `tls` holds `{ca, cert, key}` for https. Resolves with
 * `{status, body}`; never rejects on an HTTP status.
 */
export function callJson(method, url, { body, headers = {}, tls, hosts, localAddress, userAgent } = {}) {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? nodeHttps() : nodeHttp();
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const options = {
    method,
    hostname: u.hostname,
    port: u.port,
    path: `${u.pathname}${u.search}`,
    headers: {
      ...(userAgent ? { 'user-agent': userAgent } : {}),
      ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
      ...headers,
    },
    timeout: CALL_TIMEOUT_MS,
    agent: false,
    ...(localAddress ? { localAddress } : {}),
    ...(tls ? { ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.servername ?? u.hostname } : {}),
  };
  const address = hosts?.get(u.hostname);
  if (address) {
    options.lookup = (_host, opts, cb) => (opts?.all ? cb(null, [{ address, family: 4 }]) : cb(null, address, 4));
  }
  return new Promise((resolve, reject) => {
    const req = mod.request(options, (res) => {
      const chunks = [];
      let size = 0;
      res.on('data', (c) => {
        size += c.length;
        if (size <= MAX_BODY_BYTES) chunks.push(c);
      });
      res.on('end', () => {
        let parsed;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
