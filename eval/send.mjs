// Sends the world's traces as real OTLP: spans are made by the official OpenTelemetry SDK (one
// tracer provider per resource, so a new pod or release is a new resource) with explicit event
// times and seeded ids, collected as they end, and exported in batches through the official OTLP
// exporter (HTTP/protobuf by default, or gRPC).
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';

export { SpanKind };

/** Spans per export request. */
const EXPORT_BATCH = 512;
/** Export requests in flight at once (the exporters refuse more than their concurrency limit). */
const IN_FLIGHT = 4;

/** Trace and span ids from a seeded generator, so a seed gives the same ids every run. */
class SeededIds {
  constructor(rng) {
    this.rng = rng;
  }
  hex(n) {
    let s = '';
    while (s.length < n) s += Math.floor(this.rng() * 0x100000000).toString(16).padStart(8, '0');
    return s.slice(0, n);
  }
  generateTraceId() {
    return this.hex(32);
  }
  generateSpanId() {
    return this.hex(16);
  }
}

/** Keeps every ended span until the sender exports it. */
class Collector {
  constructor(into) {
    this.into = into;
  }
  onStart() {}
  onEnding() {}
  onEnd(span) {
    this.into.push(span);
  }
  forceFlush() {
    return Promise.resolve();
  }
  shutdown() {
    return Promise.resolve();
  }
}

export class Sender {
  /** `target`: {otlpHttp, otlpGrpc}; `transport`: 'http-proto' | 'grpc'; `rng`: ids. */
  constructor(target, transport, rng) {
    this.exporter =
      transport === 'grpc' ? new GrpcExporter({ url: target.otlpGrpc, timeoutMillis: 60_000 }) : new ProtoExporter({ url: `${target.otlpHttp}/v1/traces`, timeoutMillis: 60_000 });
    this.ids = new SeededIds(rng);
    this.providers = new Map();
    this.ended = [];
    this.spansSent = 0;
    this.requests = 0;
  }

  tracer(resource) {
    const key = JSON.stringify(Object.entries(resource).sort(([a], [b]) => (a < b ? -1 : 1)));
    let t = this.providers.get(key);
    if (!t) {
      const provider = new BasicTracerProvider({
        resource: resourceFromAttributes(resource),
        idGenerator: this.ids,
        spanProcessors: [new Collector(this.ended)],
      });
      t = provider.getTracer('conduct-eval');
      this.providers.set(key, t);
    }
    return t;
  }

  /**
   * Makes the spans of one trace: `root` is a span spec {name, kind, resource, attrs, at, dur,
   * error, children}, `at` an offset (ms) from `startMs`. Answers the trace id.
   */
  trace(startMs, root) {
    let traceId;
    const emit = (spec, parent) => {
      const ctx = parent ? trace.setSpan(context.active(), parent) : context.active();
      const begin = startMs + (spec.at ?? 0);
      const span = this.tracer(spec.resource).startSpan(spec.name, { kind: spec.kind, attributes: spec.attrs, startTime: begin }, ctx);
      traceId ??= span.spanContext().traceId;
      let end = begin + (spec.dur ?? 4);
      for (const child of spec.children ?? []) end = Math.max(end, emit(child, span) + 1);
      if (spec.error) span.setStatus({ code: SpanStatusCode.ERROR, message: spec.error });
      span.end(end);
      return end;
    };
    emit(root, undefined);
    return traceId;
  }

  /** Exports every span made so far; throws when the receiver refuses a request. */
  async drain() {
    const spans = this.ended.splice(0);
    const batches = [];
    for (let i = 0; i < spans.length; i += EXPORT_BATCH) batches.push(spans.slice(i, i + EXPORT_BATCH));
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const batch = batches[next++];
        await this.exportOne(batch);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  }

  async exportOne(batch) {
    for (let attempt = 0; ; attempt++) {
      const result = await new Promise((resolve) => this.exporter.export(batch, resolve));
      if (result.code === 0) {
        this.spansSent += batch.length;
        this.requests++;
        return;
      }
      if (attempt >= 5) throw new Error(`OTLP export failed: ${result.error?.message ?? 'unknown error'}`);
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }

  async close() {
    await this.exporter.shutdown();
  }
}
