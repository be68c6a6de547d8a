/**
 * A running conduct for the reliability tests. When the backend exports `startConduct`, this is
 * the whole product (receivers, pipeline, store, detection, API) through `startTestConduct`;
 * until then it is the processor's receivers and pipeline over a collecting consumer, with the
 * same metrics registry a `/metrics` scrape would read. Tests only use this narrow surface.
 */
import { Registry } from 'prom-client';
import * as backend from '@conduct/backend';
import {
  createCollectingConsumer,
  createHttpReceiver,
  createGrpcReceiver,
  createPipeline,
  silentLogger,
  type Pipeline,
  type Receiver,
} from '@conduct/processor';

export interface Harness {
  /** OTLP/HTTP HOST:PORT. */
  http: string;
  /** OTLP/gRPC HOST:PORT. */
  grpc: string;
  /** Whether this is the whole conduct (API, store) or receivers and pipeline only. */
  full: boolean;
  /** How long a client has to send its headers before the receiver drops it. */
  headersTimeoutMs: number;
  /** Prometheus text, as `/metrics` answers it. */
  metrics(): Promise<string>;
  /** Completes every pending trace (POST /api/v1/flush or pipeline.flush). */
  flush(): Promise<void>;
  /** Identities of the chains stored for a trace (empty when unknown). */
  traceIdentities(traceId: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** Receiver slow-client timeout used when the harness builds the receivers itself. */
const FALLBACK_HEADERS_TIMEOUT_MS = 1_000;

export async function startHarness(): Promise<Harness> {
  if (typeof (backend as Record<string, unknown>).startConduct === 'function') {
    const { startTestConduct } = await import('../../support/conduct.js');
    const c = await startTestConduct({});
    return {
      http: c.http.replace(/^http:\/\//, ''),
      grpc: c.grpc,
      full: true,
      headersTimeoutMs: 10_000,
      async metrics() {
        const res = await c.get<string>('/metrics');
        return String(res.body);
      },
      flush: () => c.flush(),
      async traceIdentities(traceId) {
        const res = await c.get<{ chains?: Array<{ identity: string }> }>(`/api/v1/traces/${traceId}`);
        return res.status === 200 ? (res.body.chains ?? []).map((ch) => ch.identity) : [];
      },
      stop: () => c.dispose(),
    };
  }
  const registry = new Registry();
  const consumer = createCollectingConsumer();
  const pipeline: Pipeline = createPipeline({
    stitching: { idleMs: 300, latenessMs: 30_000, maxPendingSpans: 500_000 },
    consumer,
    registry,
  });
  const deps = { registry, logger: silentLogger };
  const http: Receiver = createHttpReceiver(
    { endpoint: '127.0.0.1:0', maxRequestBytes: 64 << 20, headersTimeoutMs: FALLBACK_HEADERS_TIMEOUT_MS, requestTimeoutMs: 5_000 },
    pipeline,
    deps,
  );
  const grpc: Receiver = createGrpcReceiver({ endpoint: '127.0.0.1:0', maxRequestBytes: 64 << 20 }, pipeline, deps);
  const httpAddress = await http.start();
  const grpcAddress = await grpc.start();
  return {
    http: httpAddress,
    grpc: grpcAddress,
    full: false,
    headersTimeoutMs: FALLBACK_HEADERS_TIMEOUT_MS,
    metrics: () => registry.metrics(),
    flush: () => pipeline.flush(),
    async traceIdentities(traceId) {
      return consumer.chains().filter((c) => c.traceId === traceId).map((c) => c.identity);
    },
    async stop() {
      await Promise.all([http.stop(), grpc.stop()]);
      await pipeline.stop();
    },
  };
}

/** Sum of a counter's samples whose labels include every given label. */
export function counterSum(metricsText: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const part of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have.set(part[1]!, part[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[4]);
  }
  return sum;
}
