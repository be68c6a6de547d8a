/**
 * Scenario traffic for the detection tests: official-SDK services (one tracer provider per
 * resource, so a pod restart is a new resource) sending spans with explicit event times to a
 * running conduct, one trace at a time.
 */
import { SpanKind, SpanStatusCode, type Attributes, type Span } from '@opentelemetry/api';
import { afterEach } from 'vitest';
import type { ConfigInput } from '@conduct/backend';
import { startTestConduct, type TestConduct } from './conduct.js';
import { exporterFor, TestService, type Transport } from './otel.js';

export { SpanKind };

/** The API's alert, as the tests read it. */
export interface ApiAlert {
  id: string;
  identity: string;
  detector: string;
  severity: 'info' | 'low' | 'medium' | 'high' | 'critical';
  score: number;
  title: string;
  explanation: string;
  traceId: string;
  spanIds: string[];
  eventTime: string;
  count: number;
  status: string;
  techniques: string[];
  links: { trace: string };
  evidence?: Record<string, unknown>;
  /** Every finding's detector, the leading one first. */
  detectors: string[];
  /** The incident's findings, worst first. */
  findings: ApiFinding[];
}

/** One finding inside an incident. */
export interface ApiFinding {
  detector: string;
  severity: 'info' | 'low' | 'medium' | 'high' | 'critical';
  score: number;
  title: string;
  explanation: string;
  spanIds: string[];
  techniques: string[];
  attack?: Array<{ id: string; name: string; tactic?: string }>;
  keys: string[];
  evidence?: Record<string, unknown>;
}

export const SEVERITY_RANK = { info: 0, low: 1, medium: 2, high: 3, critical: 4 } as const;

export const MINUTE = 60_000;
/** Spans ended before the test waits for their export (the SDK exporters refuse too many concurrent exports). */
const EXPORT_BATCH = 20;
export const HOUR = 60 * MINUTE;

/** Deterministic pseudo-random numbers (mulberry32), so traffic varies the same way every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SpanSpec {
  name: string;
  kind: SpanKind;
  attributes?: Attributes;
  /** Offset from the trace start, ms. */
  at: number;
  /** Duration, ms (default 5). */
  duration?: number;
  children?: SpanSpec[];
  /** Resource of the service emitting this span; the trace's default resource when absent. */
  resource?: Attributes;
  /** The span ended with an error (status ERROR). */
  failed?: boolean;
}

export interface SentTrace {
  traceId: string;
  /** Span ids by span name (the last one of a name wins). */
  spans: Map<string, string>;
  allSpanIds: string[];
}

/** Sends traces to one conduct through the official exporter of one transport. */
export class Traffic {
  private readonly services = new Map<string, TestService>();

  constructor(
    private readonly conduct: TestConduct,
    private readonly transport: Transport = 'http-proto',
  ) {}

  private service(resource: Attributes): TestService {
    const key = JSON.stringify(Object.entries(resource).sort(([a], [b]) => a.localeCompare(b)));
    let svc = this.services.get(key);
    if (!svc) {
      svc = new TestService(resource, exporterFor(this.transport, this.conduct));
      this.services.set(key, svc);
    }
    return svc;
  }

  /**
   * Sends one trace: a tree of spans starting at `startMs`, with `resource` for every span that
   * does not name its own. Waits until every span is exported, so traces arrive in order.
   */
  async trace(startMs: number, resource: Attributes, root: SpanSpec): Promise<SentTrace> {
    const spans = new Map<string, string>();
    const allSpanIds: string[] = [];
    const used = new Set<TestService>();
    let ended = 0;
    const emit = async (spec: SpanSpec, parent: Span | undefined): Promise<{ span: Span; endMs: number }> => {
      const svc = this.service(spec.resource ?? resource);
      used.add(svc);
      const begin = startMs + spec.at;
      const span = svc.start(spec.name, { kind: spec.kind, attributes: spec.attributes, parent, startMs: begin });
      spans.set(spec.name, span.spanContext().spanId);
      allSpanIds.push(span.spanContext().spanId);
      let end = begin + (spec.duration ?? 5);
      for (const child of spec.children ?? []) end = Math.max(end, (await emit(child, span)).endMs + 1);
      if (spec.failed) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end(end);
      // The exporters cap concurrent exports: let a large trace drain as it goes.
      if (++ended % EXPORT_BATCH === 0) await Promise.all([...used].map((s) => s.flush()));
      return { span, endMs: end };
    };
    const { span } = await emit(root, undefined);
    await Promise.all([...used].map((s) => s.flush()));
    return { traceId: span.spanContext().traceId, spans, allSpanIds };
  }

  async close(): Promise<void> {
    await Promise.all([...this.services.values()].map((s) => s.shutdown()));
    this.services.clear();
  }
}

/** Every alert of an identity (newest first). */
export async function alertsOf(conduct: TestConduct, identity: string): Promise<ApiAlert[]> {
  const res = await conduct.get<{ alerts: ApiAlert[] }>(`/api/v1/alerts?identity=${encodeURIComponent(identity)}&limit=1000`);
  if (res.status !== 200) throw new Error(`GET /api/v1/alerts answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.alerts;
}

/** Alerts of medium severity or above. */
export function serious(alerts: readonly ApiAlert[]): ApiAlert[] {
  return alerts.filter((a) => SEVERITY_RANK[a.severity] >= SEVERITY_RANK.medium);
}

/** A compact description of alerts, for failure messages. */
export function describeAlerts(alerts: readonly ApiAlert[]): string {
  return (
    alerts
      .map((a) => `${a.severity} ${(a.detectors ?? [a.detector]).join('+')} ${a.identity} ${a.traceId} x${a.count}: ${a.title}`)
      .join('\n') || '(none)'
  );
}

/** A conduct in this process and the Traffic that sends to it. */
export interface Sender {
  conduct: TestConduct;
  traffic: Traffic;
}

/**
 * Conducts with their Traffic for the tests of one file (call at the top level): a test starts
 * what it needs, and after it every one it started is closed, the newest first (the exporters,
 * then conduct, the directory removed when conduct made it). `stop` ends one early and keeps its
 * directory, for a restart on the same database.
 */
export function sendersPerTest(): { start(overrides?: ConfigInput, dir?: string): Promise<Sender>; stop(sender: Sender): Promise<void> } {
  const started: Sender[] = [];
  afterEach(async () => {
    for (const { traffic, conduct } of started.splice(0).reverse()) {
      await traffic.close();
      await conduct.dispose();
    }
  });
  return {
    async start(overrides = {}, dir) {
      const conduct = await startTestConduct(overrides, dir);
      const sender = { conduct, traffic: new Traffic(conduct) };
      started.push(sender);
      return sender;
    },
    async stop({ traffic, conduct }) {
      await traffic.close();
      await conduct.stop();
    },
  };
}
