import { context, trace, type Attributes, type Span, type SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';

export type Transport = 'grpc' | 'http-json' | 'http-proto';

/** An official OpenTelemetry exporter pointed at a conduct started by startTestConduct. */
export function exporterFor(
  transport: Transport,
  target: { grpc: string; http: string },
  headers?: Record<string, string>,
  /** How long one export may take, retries included (the exporters' default is 10 s). */
  options: { timeoutMillis?: number } = {},
): SpanExporter {
  switch (transport) {
    case 'grpc':
      return new GrpcExporter({ url: `http://${target.grpc}`, ...options });
    case 'http-json':
      return new JsonExporter({ url: `${target.http}/v1/traces`, headers, ...options });
    case 'http-proto':
      return new ProtoExporter({ url: `${target.http}/v1/traces`, headers, ...options });
  }
}

/**
 * One instrumented "service": a tracer provider with its own resource, exporting through the
 * official SDK. Spans get explicit times so tests control event time.
 */
export class TestService {
  readonly provider: BasicTracerProvider;
  private readonly tracer;

  constructor(resource: Attributes, exporter: SpanExporter) {
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes(resource),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    this.tracer = this.provider.getTracer('conduct-test');
  }

  /** Starts a span, optionally as the child of a span of another (or the same) service. */
  start(name: string, opts: { kind: SpanKind; attributes?: Attributes; parent?: Span; startMs: number }): Span {
    const ctx = opts.parent ? trace.setSpan(context.active(), opts.parent) : context.active();
    return this.tracer.startSpan(name, { kind: opts.kind, attributes: opts.attributes, startTime: opts.startMs }, ctx);
  }

  async flush(): Promise<void> {
    await this.provider.forceFlush();
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}
