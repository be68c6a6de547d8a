/**
 * Traffic for the SRE views of the UI, sent through the official OpenTelemetry SDK and exporter:
 * an identity with a wide graph (many peers and operations), and an identity with a learned day
 * followed by an hour that differs from it.
 */
import { context, SpanKind, trace, type Attributes, type Span } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { exporterFor } from './otel.js';

type Target = { grpc: string; http: string };

/** A service that exports in batches (hundreds of spans per request), with explicit span times. */
export class BatchService {
  private readonly provider: BasicTracerProvider;
  private readonly tracer;

  constructor(resource: Attributes, target: Target) {
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes(resource),
      spanProcessors: [new BatchSpanProcessor(exporterFor('http-proto', target), { maxExportBatchSize: 512, maxQueueSize: 8192, scheduledDelayMillis: 50 })],
    });
    this.tracer = this.provider.getTracer('conduct-test');
  }

  /** Starts a span at `startMs`; the caller ends it (`span.end(ms)`). */
  span(name: string, kind: SpanKind, startMs: number, attributes: Attributes, parent?: Span): Span {
    const ctx = parent ? trace.setSpan(context.active(), parent) : context.active();
    return this.tracer.startSpan(name, { kind, attributes, startTime: startMs }, ctx);
  }

  async shutdown(): Promise<void> {
    await this.provider.forceFlush();
    await this.provider.shutdown();
  }
}

/** Words for peer names and operations: no digits, so no id templating folds them together. */
const WORDS = ['amber', 'birch', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'heron', 'iris', 'juniper', 'kelp', 'lotus', 'maple', 'nectar', 'onyx', 'pebble', 'quartz', 'raven', 'sage', 'tundra', 'umber', 'violet', 'willow', 'xenon', 'yarrow', 'zephyr', 'alder', 'basalt', 'cobalt', 'dune', 'elm', 'flint', 'garnet', 'hazel', 'indigo', 'jade', 'krill', 'linden', 'marble', 'nimbus'];
const VERBS = ['Get', 'List', 'Put', 'Delete', 'Watch'];

/** Peer i of the wide identity: long, dotted host names; every sixth one outside the private zone. */
export function widePeer(i: number): string {
  const w = WORDS[i % WORDS.length]!;
  return i % 6 === 5 ? `api.${w}-partner.example.com` : `${w}-store.replica.eu-west-1.internal`;
}

/** Operation j of the wide identity as `Service/Method`, spread over the peers round robin. */
export function wideOperation(j: number): { peer: number; service: string; method: string } {
  const peer = j % 30;
  const verb = VERBS[j % VERBS.length]!;
  const noun = WORDS[Math.floor(j / VERBS.length) % WORDS.length]!;
  return { peer, service: `${WORDS[peer]!}.v1.Records`, method: `${verb}${noun[0]!.toUpperCase()}${noun.slice(1)}Records` };
}

/**
 * `traces` traces of `svc:load/fanout`, each one request that calls 30 peers with 200 distinct
 * gRPC operations between them.
 */
export async function sendWideIdentity(target: Target, t0: number, traces = 2): Promise<void> {
  const svc = new BatchService({ 'service.name': 'fanout', 'service.namespace': 'load' }, target);
  for (let n = 0; n < traces; n++) {
    const t = t0 + n * 60_000;
    const root = svc.span('GET /sync', SpanKind.SERVER, t, { 'http.request.method': 'GET', 'http.route': '/sync' });
    for (let j = 0; j < 200; j++) {
      const op = wideOperation(j);
      const s = svc.span(`${op.service}/${op.method}`, SpanKind.CLIENT, t + 1 + j, {
        'rpc.system': 'grpc',
        'rpc.service': op.service,
        'rpc.method': op.method,
        'server.address': widePeer(op.peer),
      }, root);
      s.end(t + 2 + j);
    }
    root.end(t + 400);
  }
  await svc.shutdown();
}

export const REPORTER = 'svc:ops/reporter';
export const NEW_EXTERNAL_PEER = 'paste.example.com';

/** One reporter trace at `t`: `dbReads` reads of its database, a billing call, optionally an archive write and an upload. */
function reporterTrace(svc: BatchService, t: number, opts: { dbReads: number; archive: boolean; upload?: boolean }): string {
  const root = svc.span('POST /reports/run', SpanKind.SERVER, t, { 'http.request.method': 'POST', 'http.route': '/reports/run' });
  let at = t + 1;
  for (let i = 0; i < opts.dbReads; i++, at += 2) {
    svc.span('SELECT reports', SpanKind.CLIENT, at, { 'db.system.name': 'postgresql', 'db.namespace': 'reports', 'db.operation.name': 'SELECT', 'db.collection.name': 'reports' }, root).end(at + 1);
  }
  svc.span('billing.v1.Invoices/GetInvoice', SpanKind.CLIENT, at, { 'rpc.system': 'grpc', 'rpc.service': 'billing.v1.Invoices', 'rpc.method': 'GetInvoice', 'server.address': 'billing.ops.svc' }, root).end(at + 5);
  at += 6;
  if (opts.archive) {
    svc.span('archive.v1.Store/Put', SpanKind.CLIENT, at, { 'rpc.system': 'grpc', 'rpc.service': 'archive.v1.Store', 'rpc.method': 'Put', 'server.address': 'archive.ops.svc' }, root).end(at + 5);
    at += 6;
  }
  if (opts.upload) {
    svc.span('PUT', SpanKind.CLIENT, at, { 'http.request.method': 'PUT', 'url.full': `https://${NEW_EXTERNAL_PEER}/api/paste`, 'server.address': NEW_EXTERNAL_PEER }, root).end(at + 30);
  }
  root.end(t + 200);
  return root.spanContext().traceId;
}

/**
 * The reporter's learned hours: from `t0`, 10 hours of 6 runs an hour, each reading its database
 * once, calling billing and writing to the archive.
 */
export async function sendReporterBaseline(target: Target, t0: number): Promise<void> {
  const svc = new BatchService({ 'service.name': 'reporter', 'service.namespace': 'ops' }, target);
  for (let i = 0; i < 60; i++) reporterTrace(svc, t0 + i * 10 * 60_000, { dbReads: 1, archive: true });
  await svc.shutdown();
}

/**
 * The hour after: 6 runs that read the database six times each, never write the archive, and one
 * that uploads to a paste site. Answers the upload's trace id.
 */
export async function sendReporterChangedHour(target: Target, t0: number): Promise<string> {
  const svc = new BatchService({ 'service.name': 'reporter', 'service.namespace': 'ops' }, target);
  const start = t0 + 60 * 10 * 60_000;
  let upload = '';
  for (let i = 0; i < 6; i++) {
    const id = reporterTrace(svc, start + i * 10 * 60_000, { dbReads: 6, archive: false, upload: i === 3 });
    if (i === 3) upload = id;
  }
  await svc.shutdown();
  return upload;
}
