import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { AggregatorRegistry, Gauge, type Registry } from 'prom-client';
import type { Call, Chain, Logger, MetricsJson } from '@conduct/processor';
import { silentLogger } from '@conduct/processor';
import { ALERT_STATUSES, SEVERITIES, traceLink, type AlertStatus, type Severity, type Verdict } from '../alerts/model.js';
import type { ChainReader, EdgeRecord, IdentityRecord, StorageBackend } from '../store/index.js';
import { compareWithBaseline, windowGraph, type GraphJson, type Window } from './graph-compare.js';
import { parseDuration } from '../config/duration.js';
import { HttpError } from './http-error.js';
import { noAlerts, noInsights, type AlertsProvider, type DeadDeliveryAction, type IdentityInsights } from './providers.js';
import { requireToken, securityHeaders } from './security.js';
import { createUiHandler, DEFAULT_UI_DIR } from './static-ui.js';
import { evaluateReadiness, type ReadinessCheck } from './readiness.js';

/** Default listen address of the API and UI. */
export const DEFAULT_API_HOST = '127.0.0.1';
export const DEFAULT_API_PORT = 8080;
/** Largest `limit` any list endpoint accepts. */
export const MAX_LIMIT = 1000;
/** Chains answered by `GET /api/v1/identities/{id}/chains` without a limit. */
export const DEFAULT_CHAIN_LIMIT = 50;
/** Alerts answered by `GET /api/v1/alerts` without a limit. */
export const DEFAULT_ALERT_LIMIT = 100;
/** Identities answered by `GET /api/v1/identities` without a limit. */
export const DEFAULT_IDENTITY_LIMIT = 1000;
/** Longest identity id or alert id accepted in a path. */
export const MAX_ID_LENGTH = 2048;
/** Largest request body (feedback) accepted. */
export const MAX_BODY_BYTES = 64 * 1024;
/** Entries of each kind in the observed baseline summary. */
const SUMMARY_ITEMS = 200;
/** Chains of a window read for its graph or comparison, newest first; an answer says when there were more. */
export const MAX_WINDOW_CHAINS = 5000;

/** What the API reads from the store. */
export type ApiStorage = Pick<StorageBackend, 'chainReader' | 'identities' | 'sizeBytes'>;

export interface ApiOptions {
  store: ApiStorage;
  /** Prometheus registry served at /metrics; a store-size gauge is added to it. */
  registry: Registry;
  /**
   * Another thread's metrics (`Registry.getMetricsAsJSON`), served with the registry's: a family
   * both have (the receivers' counters, by protocol) is served once, its series merged.
   */
  moreMetrics?: () => Promise<MetricsJson>;
  /**
   * Completes every pending trace and waits for it to be stored and analysed; `timeoutMs` (the
   * request's `timeout`) bounds the wait of a cluster flush.
   */
  flush: (options: { timeoutMs?: number }) => Promise<void>;
  logger?: Logger;
  /** Bearer token for /api and /metrics; open when undefined. */
  token?: string;
  /** What `/readyz` checks (start-up finished, store reachable, journal open, pipeline alive, ...); none: always ready. */
  readiness?: readonly ReadinessCheck[];
  /** Why the process is no longer alive (a part failed for good and a restart is needed), or undefined; for `/healthz`. */
  failure?: () => string | undefined;
  alerts?: AlertsProvider;
  insights?: IdentityInsights;
  /** `GET /api/v1/cluster`: instances and partition ownership; 404 when absent. */
  cluster?: () => Promise<object>;
  /** Serve HTTPS with these PEM contents (not paths); mutual TLS when `clientAuth`. */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer; clientAuth?: boolean };
  /** `alerts.traceUrl`: the trace answer links to the trace in the tracing back end with it. */
  traceUrl?: string;
  /** Built UI served at `/`; DEFAULT_UI_DIR by default; nothing served when it has no index.html. */
  uiDir?: string;
}

export interface ApiServer {
  /** The Hono app (usable with `app.request()` without listening). */
  readonly app: Hono;
  /** Listens on host:port (port 0 picks one); resolves with the bound `host:port`. */
  start(host?: string, port?: number): Promise<string>;
  /** Closes the listener and open connections. Safe twice and without start. */
  stop(): Promise<void>;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function createApi(options: ApiOptions): ApiServer {
  const { store, registry, flush, token } = options;
  const logger = options.logger ?? silentLogger;
  const readiness = options.readiness ?? [];
  const failure = options.failure ?? (() => undefined);
  const alerts = options.alerts ?? noAlerts;
  const insights = options.insights ?? noInsights;
  if (options.tls?.clientAuth && !options.tls.ca) {
    // Node would otherwise accept any client certificate signed by a public root.
    throw new Error('api.tls.ca is required when api.tls.clientAuth is true');
  }

  new Gauge({
    name: 'conduct_store_bytes',
    help: 'Size of the SQLite database (pages in use and free).',
    registers: [registry],
    async collect() {
      try {
        this.set(await store.sizeBytes());
      } catch {
        // A closed store has no size; leave the last value.
      }
    },
  });

  const app = new Hono();
  app.use('*', securityHeaders());
  app.onError((err, c) => {
    if (err instanceof HttpError) return c.json({ error: err.message }, err.status);
    logger.error({ err: String(err), path: c.req.path }, 'API request failed');
    return c.json({ error: 'internal error' }, 500);
  });
  app.notFound((c) => c.json({ error: 'not found' }, 404));

  // Liveness: the process serves, and nothing failed that only a restart mends.
  app.get('/healthz', (c) => {
    const reason = failure();
    return reason === undefined ? c.json({ status: 'ok' }) : c.json({ status: 'failed', reason }, 503);
  });
  // Readiness: every condition for taking traffic holds.
  app.get('/readyz', async (c) => {
    const report = await evaluateReadiness(readiness);
    if (report.ready) return c.json({ status: 'ready', checks: report.checks });
    const reason = Object.entries(report.checks)
      .filter(([, v]) => v !== 'ok')
      .map(([name, why]) => `${name}: ${why}`)
      .join('; ');
    return c.json({ status: 'not ready', reason, checks: report.checks }, 503);
  });

  if (token) {
    app.use('/api/*', requireToken(token));
    app.use('/metrics', requireToken(token));
  }
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      // The rest of the body is not read: close the connection so it cannot be reused mid-body.
      onError: (c) => c.json({ error: 'request body too large' }, 413, { Connection: 'close' }),
    }),
  );

  app.get('/metrics', async (c) => {
    let text: string | undefined;
    if (options.moreMetrics) {
      try {
        const more = await options.moreMetrics();
        text = await AggregatorRegistry.aggregate([await registry.getMetricsAsJSON(), more]).metrics();
      } catch (err) {
        logger.warn({ err: String(err) }, 'metrics of the pipeline thread unavailable');
      }
    }
    text ??= await registry.metrics();
    return c.body(text, 200, { 'Content-Type': registry.contentType });
  });

  const identityJson = (r: IdentityRecord, open: Map<string, number> | undefined) => ({
    id: r.id,
    kind: r.kind,
    displayName: r.displayName ?? r.id,
    status: insights.status(r.id) ?? 'learning',
    ...(insights.learning?.(r.id) ?? {}),
    firstSeen: iso(r.firstSeenMs),
    lastSeen: iso(r.lastSeenMs),
    calls: r.calls,
    chains: r.chains,
    peers: r.peers,
    openAlerts: open?.get(r.id) ?? 0,
  });

  const knownIdentity = async (raw: string): Promise<IdentityRecord> => {
    const id = idParam(raw, 'identity id');
    const found = await store.identities.getIdentity(id);
    if (!found) throw new HttpError(404, 'unknown identity');
    return found;
  };

  app.get('/api/v1/identities', async (c) => {
    const limit = limitParam(c.req.query('limit'), DEFAULT_IDENTITY_LIMIT);
    const open = await alerts.openCounts?.();
    const records = await store.identities.listIdentities(limit);
    await insights.prepare?.(records.map((r) => r.id));
    return c.json({ identities: records.map((r) => identityJson(r, open)) });
  });

  app.get('/api/v1/identities/:id', async (c) => {
    const identity = await knownIdentity(c.req.param('id'));
    await insights.prepare?.([identity.id]);
    const baseline = insights.baseline?.(identity.id) ?? observedBaseline(await store.identities.identityEdges(identity.id));
    return c.json({ ...identityJson(identity, await alerts.openCounts?.()), baseline });
  });

  const baselineGraph = async (identity: IdentityRecord) => {
    const learned = await insights.graph?.(identity.id);
    return learned
      ? { graph: learned as GraphJson, source: 'learned' }
      : { graph: observedGraph(identity, await store.identities.identityEdges(identity.id)), source: 'observed' };
  };

  app.get('/api/v1/identities/:id/graph', async (c) => {
    const identity = await knownIdentity(c.req.param('id'));
    const q = c.req.query();
    const compare = q['compare'] || undefined;
    if (compare !== undefined && compare !== 'baseline') throw new HttpError(400, 'compare must be "baseline"');
    if (compare === undefined && !q['since'] && !q['until']) return c.json((await baselineGraph(identity)).graph);
    const win = windowParams(q['since'], q['until'], Date.now());
    const read = await windowChains(store.chainReader, identity.id, win, MAX_WINDOW_CHAINS);
    const who = { id: identity.id, label: identity.displayName ?? identity.id };
    const windowJson = { since: iso(win.sinceMs), until: iso(win.untilMs) };
    if (compare === undefined) {
      const g = windowGraph(who, read.chains, win);
      return c.json({ ...g, truncated: read.truncated || g.truncated, chains: read.chains.length, window: windowJson });
    }
    const base = await baselineGraph(identity);
    const raised = await alerts.list({ identity: identity.id, sinceMs: win.sinceMs, limit: MAX_LIMIT });
    const result = compareWithBaseline(who, base.graph, read.chains, win, raised);
    return c.json({
      identity: identity.id,
      window: windowJson,
      baseline: {
        source: base.source,
        ...(result.baselineSpan && { since: iso(result.baselineSpan.sinceMs), until: iso(result.baselineSpan.untilMs) }),
      },
      chains: read.chains.length,
      truncated: read.truncated || result.truncated,
      nodes: result.nodes,
      edges: result.edges,
    });
  });

  app.get('/api/v1/identities/:id/chains', async (c) => {
    const identity = await knownIdentity(c.req.param('id'));
    const q = c.req.query();
    const limit = limitParam(q['limit'], DEFAULT_CHAIN_LIMIT);
    const filter = chainFilter(q);
    if (!filter && !q['since'] && !q['until']) return c.json({ chains: (await store.chainReader.recentChains(identity.id, { limit })).map(chainJson) });
    // A window or filter reads the window's chains (bounded) and keeps those with a matching call in the window.
    const win = windowParams(q['since'] || '0', q['until'], Date.now());
    const read = await windowChains(store.chainReader, identity.id, win, MAX_WINDOW_CHAINS);
    const matches = (call: Call) => call.startMs >= win.sinceMs && call.startMs <= win.untilMs && (!filter || filter(call));
    const chains = read.chains.filter((ch) => ch.calls.some(matches)).slice(0, limit);
    return c.json({ chains: chains.map(chainJson), ...(read.truncated && { truncated: true }) });
  });

  app.get('/api/v1/traces/:traceId', async (c) => {
    const traceId = c.req.param('traceId');
    if (!/^[0-9a-fA-F]{32}$/.test(traceId) || /^0+$/.test(traceId)) {
      throw new HttpError(400, 'trace id must be 32 hexadecimal digits, not all zero');
    }
    const [chains, summary] = await Promise.all([store.chainReader.traceChains(traceId), store.chainReader.traceSummary(traceId)]);
    if (chains.length === 0 && !summary) throw new HttpError(404, 'unknown trace');
    return c.json({
      traceId: traceId.toLowerCase(),
      ...(summary && { startMs: summary.startMs, endMs: summary.endMs, spans: summary.spans, services: summary.services }),
      ...(options.traceUrl && { links: { trace: traceLink(options.traceUrl, traceId.toLowerCase()) } }),
      chains: chains.map(chainJson),
    });
  });

  app.post('/api/v1/flush', async (c) => {
    const timeout = c.req.query('timeout');
    const timeoutMs = timeout === undefined ? undefined : parseDuration(timeout);
    if (timeoutMs === undefined && timeout !== undefined) throw new HttpError(400, 'timeout must be a duration such as 500ms, 10s or 2m');
    await flush(timeoutMs === undefined ? {} : { timeoutMs });
    return c.json({ ok: true });
  });

  app.get('/api/v1/cluster', async (c) => {
    if (!options.cluster) throw new HttpError(404, 'not found');
    return c.json(await options.cluster());
  });

  app.get('/api/v1/alerts', async (c) => {
    const q = c.req.query();
    const status = q['status'] || undefined;
    if (status !== undefined && !(ALERT_STATUSES as readonly string[]).includes(status)) {
      throw new HttpError(400, `status must be one of ${ALERT_STATUSES.join(', ')}`);
    }
    const list = await alerts.list({
      identity: optionalText(q['identity'], 'identity'),
      detector: optionalText(q['detector'], 'detector'),
      status: status as AlertStatus | undefined,
      sinceMs: sinceParam(q['since']),
      untilMs: timeParam(q['until'], 'until'),
      traceId: traceIdParam(q['traceId']),
      severities: severityParam(q['severity']),
      text: optionalText(q['q'], 'q'),
      sort: sortParam(q['sort']),
      limit: limitParam(q['limit'], DEFAULT_ALERT_LIMIT),
    });
    return c.json({ alerts: list });
  });

  app.get('/api/v1/alerts/:id', async (c) => {
    const alert = await alerts.get(idParam(c.req.param('id'), 'alert id'));
    if (!alert) throw new HttpError(404, 'unknown alert');
    if (!alerts.deliveries) return c.json(alert);
    return c.json({ ...alert, deliveries: await alerts.deliveries(alert.id) });
  });

  app.post('/api/v1/alerts/:id/feedback', async (c) => {
    const id = idParam(c.req.param('id'), 'alert id');
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new HttpError(400, 'body must be JSON: {"verdict": "expected" | "malicious" | "acknowledged"}');
    }
    const verdict = (body as { verdict?: unknown } | null)?.verdict;
    if (verdict !== 'expected' && verdict !== 'malicious' && verdict !== 'acknowledged') {
      throw new HttpError(400, 'verdict must be "expected", "malicious" or "acknowledged"');
    }
    const alert = await alerts.feedback(id, verdict satisfies Verdict);
    if (!alert) throw new HttpError(404, 'unknown alert');
    return c.json(alert);
  });

  app.post('/api/v1/alerts/:id/deliveries/:action{retry|discard}', async (c) => {
    const id = idParam(c.req.param('id'), 'alert id');
    const action = c.req.param('action') as DeadDeliveryAction;
    if (!alerts.deadDeliveries) throw new HttpError(404, 'alert deliveries are not kept here');
    const answer = await alerts.deadDeliveries(id, action, await deliveryChoice(c.req.raw));
    if (!answer) throw new HttpError(404, 'unknown alert');
    return c.json(answer);
  });

  app.all('/api/*', (c) => c.json({ error: 'not found' }, 404));

  const ui = createUiHandler(options.uiDir ?? DEFAULT_UI_DIR);
  if (ui) {
    app.get('*', (c) => ui(c));
  }

  let server: ServerType | undefined;
  let stopping: Promise<void> | undefined;
  return {
    app,
    start(host = DEFAULT_API_HOST, port = DEFAULT_API_PORT) {
      return new Promise((resolvePromise, reject) => {
        const tls = options.tls;
        const secure = tls
          ? {
              createServer: createHttpsServer,
              serverOptions: {
                cert: tls.cert,
                key: tls.key,
                ...(tls.ca ? { ca: tls.ca } : {}),
                requestCert: tls.clientAuth === true,
                rejectUnauthorized: tls.clientAuth === true,
              },
            }
          : {};
        const s = serve({ fetch: app.fetch, hostname: host, port, ...secure }, (info: AddressInfo) => {
          s.off('error', reject);
          const address = info.family === 'IPv6' ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
          resolvePromise(address);
        });
        s.once('error', reject);
        server = s;
      });
    },
    stop() {
      stopping ??= new Promise<void>((done) => {
        if (!server) return done();
        const s = server as ServerType & { closeAllConnections?: () => void };
        s.close(() => done());
        s.closeAllConnections?.();
      });
      return stopping;
    },
  };
}

/** Longest sink name taken in a delivery choice (names are config keys, short). */
const MAX_SINK_NAME_CHARS = 200;

/**
 * Which dead deliveries an operator's retry or discard is for: an empty body (all of the alert's),
 * or `{"sink"?: string, "seq"?: positive integer}`.
 */
async function deliveryChoice(request: Request): Promise<{ sink?: string; seq?: number }> {
  const text = await request.text();
  if (text.trim() === '') return {};
  const usage = 'body must be empty or JSON: {"sink"?: "<sink name>", "seq"?: <event number>}';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, usage);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, usage);
  const { sink, seq } = body as { sink?: unknown; seq?: unknown };
  if (sink !== undefined && (typeof sink !== 'string' || sink === '' || sink.length > MAX_SINK_NAME_CHARS)) {
    throw new HttpError(400, `sink must be a sink's name (1 to ${MAX_SINK_NAME_CHARS} characters)`);
  }
  if (seq !== undefined && (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)) {
    throw new HttpError(400, 'seq must be a positive integer (the event number shown in deliveries)');
  }
  return { ...(sink !== undefined ? { sink } : {}), ...(seq !== undefined ? { seq } : {}) };
}

function idParam(raw: string, what: string): string {
  if (raw.length === 0 || raw.length > MAX_ID_LENGTH) throw new HttpError(400, `${what} must be 1 to ${MAX_ID_LENGTH} characters`);
  return raw;
}

function optionalText(raw: string | undefined, what: string): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  return idParam(raw, what);
}

function limitParam(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < 1) throw new HttpError(400, `limit must be an integer from 1 to ${MAX_LIMIT}`);
  return Math.min(Number(raw), MAX_LIMIT);
}

/** A time as ISO 8601 or ms since the epoch. */
function timeParam(raw: string | undefined, what: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const ms = /^\d{1,15}$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(ms)) throw new HttpError(400, `${what} must be an ISO 8601 time or milliseconds since the epoch`);
  return ms;
}

const sinceParam = (raw: string | undefined) => timeParam(raw, 'since');

/** `severity` as one severity or a comma-separated list of them. */
function severityParam(raw: string | undefined): Severity[] | undefined {
  if (raw === undefined || raw === '') return undefined;
  const list = raw.split(',').map((s) => s.trim());
  for (const s of list) {
    if (!(SEVERITIES as readonly string[]).includes(s)) throw new HttpError(400, `severity must be one or more (comma-separated) of ${SEVERITIES.join(', ')}`);
  }
  return list as Severity[];
}

function traceIdParam(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^[0-9a-fA-F]{32}$/.test(raw)) throw new HttpError(400, 'traceId must be 32 hexadecimal digits');
  return raw.toLowerCase();
}

const SORTS = ['time', 'score', 'severity'] as const;
function sortParam(raw: string | undefined): (typeof SORTS)[number] | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!(SORTS as readonly string[]).includes(raw)) throw new HttpError(400, `sort must be one of ${SORTS.join(', ')}`);
  return raw as (typeof SORTS)[number];
}

/** `since` and `until` of a window (ISO 8601 or ms since the epoch); `until` defaults to now. */
function windowParams(rawSince: string | undefined, rawUntil: string | undefined, nowMs: number): Window {
  const sinceMs = timeParam(rawSince, 'since');
  const untilMs = timeParam(rawUntil, 'until') ?? nowMs;
  if (sinceMs === undefined) throw new HttpError(400, 'since is required with until or compare');
  if (untilMs <= sinceMs) throw new HttpError(400, 'until must be after since');
  return { sinceMs, untilMs };
}

/** A call filter from `peer`, `service` and `operation`, or undefined when none is given. */
function chainFilter(q: Record<string, string>): ((call: Call) => boolean) | undefined {
  const peer = optionalText(q['peer'], 'peer');
  const service = optionalText(q['service'], 'service');
  const operation = optionalText(q['operation'], 'operation');
  if (peer === undefined && service === undefined && operation === undefined) return undefined;
  return (call) =>
    (peer === undefined || call.peer === peer) && (service === undefined || call.service === service) && (operation === undefined || call.operation === operation);
}

/** Chains ending this long after a window are read too: their first calls may lie inside it. */
const WINDOW_SLACK_MS = 60 * 60_000;

/**
 * An identity's chains that end in the window (or up to WINDOW_SLACK_MS after it), newest first,
 * at most `max`; `truncated` says the window held more. Callers keep the calls inside the window.
 */
async function windowChains(chains: ChainReader, identity: string, win: Window, max: number): Promise<{ chains: Chain[]; truncated: boolean }> {
  const read = await chains.recentChains(identity, { limit: max + 1, sinceMs: win.sinceMs, untilMs: win.untilMs + WINDOW_SLACK_MS });
  return { chains: read.slice(0, max), truncated: read.length > max };
}

function chainJson(chain: Chain) {
  return {
    traceId: chain.traceId,
    identity: chain.identity,
    identityKind: chain.identityKind,
    displayName: chain.displayName ?? chain.identity,
    startMs: chain.startMs,
    endMs: chain.endMs,
    ...(chain.receivedMs !== undefined && { receivedMs: chain.receivedMs }),
    calls: chain.calls,
  };
}

interface SummaryItem {
  key: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
}

/** Peers and operations seen so far, with counts (what the store knows without detection). */
function observedBaseline(edges: readonly EdgeRecord[]) {
  const fold = (keyOf: (e: EdgeRecord) => string) => {
    const items = new Map<string, { key: string; count: number; first: number; last: number }>();
    for (const e of edges) {
      const key = keyOf(e);
      const item = items.get(key);
      if (item) {
        item.count += e.count;
        item.first = Math.min(item.first, e.firstSeenMs);
        item.last = Math.max(item.last, e.lastSeenMs);
      } else items.set(key, { key, count: e.count, first: e.firstSeenMs, last: e.lastSeenMs });
    }
    return [...items.values()]
      .sort((a, b) => b.count - a.count || a.key.localeCompare(b.key))
      .slice(0, SUMMARY_ITEMS)
      .map((i): SummaryItem => ({ key: i.key, count: i.count, firstSeen: iso(i.first), lastSeen: iso(i.last) }));
  };
  return { status: 'learning', observed: true, peers: fold((e) => e.peer), operations: fold((e) => e.operation) };
}

/** identity -> caller service -> peer, from the observed edge aggregates. */
function observedGraph(identity: IdentityRecord, edges: readonly EdgeRecord[]) {
  const nodes = new Map<string, { id: string; label: string; kind: string; peerKind?: string; external?: boolean }>();
  const links = new Map<string, { from: string; to: string; operation: string; count: number; first: number; last: number }>();
  const idNode = `identity:${identity.id}`;
  nodes.set(idNode, { id: idNode, label: identity.displayName ?? identity.id, kind: 'identity' });
  const link = (from: string, to: string, operation: string, e: EdgeRecord) => {
    const key = JSON.stringify([from, to, operation]);
    const l = links.get(key);
    if (l) {
      l.count += e.count;
      l.first = Math.min(l.first, e.firstSeenMs);
      l.last = Math.max(l.last, e.lastSeenMs);
    } else links.set(key, { from, to, operation, count: e.count, first: e.firstSeenMs, last: e.lastSeenMs });
  };
  for (const e of edges) {
    const serviceNode = `service:${e.service}`;
    const peerNode = `peer:${e.peer}`;
    if (!nodes.has(serviceNode)) nodes.set(serviceNode, { id: serviceNode, label: e.service, kind: 'service' });
    if (!nodes.has(peerNode)) nodes.set(peerNode, { id: peerNode, label: e.peer, kind: 'peer', peerKind: e.peerKind, external: e.external });
    link(idNode, serviceNode, '(acts through)', e);
    link(serviceNode, peerNode, e.operation, e);
  }
  return {
    nodes: [...nodes.values()],
    edges: [...links.values()].map((l) => ({
      from: l.from,
      to: l.to,
      operation: l.operation,
      count: l.count,
      firstSeen: iso(l.first),
      lastSeen: iso(l.last),
    })),
  };
}
