// OpenTelemetry set-up shared by every demo service: the Node SDK with the official HTTP and gRPC
// instrumentations, exporting spans over OTLP/gRPC to conduct. Import this module before anything
// that uses `http`/`https`/`@grpc/grpc-js`, and take those modules from `nodeHttp()`/`nodeHttps()`/
// `nodeGrpc()`: the instrumentations patch them through `require`, which a plain ESM `import`
// bypasses.
import { createRequire } from 'node:module';
import { NodeSDK, resources, tracing } from '@opentelemetry/sdk-node';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { trace, context, SpanKind, SpanStatusCode } from '@opentelemetry/api';

const require = createRequire(import.meta.url);

/** Spans held before the batch processor exports them; the demo flushes after every round. */
export const EXPORT_BATCH_SIZE = 512;
/** Longest time a span waits in the batch processor. */
export const EXPORT_DELAY_MS = 200;

/**
 * The demo clock. conduct learns from span (event) time, and rate baselines need minutes of it.
 * The demo replays many minutes of normal operation in seconds by moving each span's timestamps
 * by an offset that the demo sets between rounds. A span keeps the offset in force when it
 * started, so every span of one request moves together. With offset 0 the timestamps are real.
 */
let clockOffsetMs = 0;
const offsets = new WeakMap();

/** Sets the demo clock's offset (ms added to every span started from now on). */
export function setClockOffset(ms) {
  clockOffsetMs = Number.isFinite(ms) ? ms : 0;
}

function shift(hr, ms) {
  const total = hr[1] + Math.round((ms % 1000) * 1e6);
  let sec = hr[0] + Math.trunc(ms / 1000) + Math.floor(total / 1e9);
  const nanos = ((total % 1e9) + 1e9) % 1e9;
  return [sec, nanos];
}

/** Span processor applying the demo clock: runs before the exporting processor. */
class DemoClockProcessor {
  onStart(span) {
    if (clockOffsetMs !== 0) offsets.set(span, clockOffsetMs);
  }
  onEnding() {}
  onEnd(span) {
    const ms = offsets.get(span);
    if (!ms) return;
    span.startTime = shift(span.startTime, ms);
    span.endTime = shift(span.endTime, ms);
    for (const event of span.events ?? []) event.time = shift(event.time, ms);
  }
  forceFlush() {
    return Promise.resolve();
  }
  shutdown() {
    return Promise.resolve();
  }
}

let sdk;
let batch;
let exporter;

/**
 * Starts the SDK for one service. `otlpEndpoint` is conduct's OTLP/gRPC receiver
 * (`http://127.0.0.1:4317`); `resource` holds `service.name` and friends.
 */
export function startTelemetry({ otlpEndpoint, resource }) {
  if (sdk) return;
  exporter = new OTLPTraceExporter({ url: otlpEndpoint });
  batch = new tracing.BatchSpanProcessor(exporter, {
    maxExportBatchSize: EXPORT_BATCH_SIZE,
    scheduledDelayMillis: EXPORT_DELAY_MS,
  });
  sdk = new NodeSDK({
    resource: resources.resourceFromAttributes(resource),
    autoDetectResources: false,
    spanProcessors: [new DemoClockProcessor(), batch],
    instrumentations: [new HttpInstrumentation(), new GrpcInstrumentation()],
  });
  sdk.start();
}

/**
 * Exports every ended span now and waits until conduct has answered every export, including one
 * the batch processor's timer started before this call: its forceFlush only exports what is still
 * buffered and returns while such an export is in flight, so the exporter is flushed as well.
 */
export async function flushTelemetry() {
  await batch?.forceFlush();
  await exporter?.forceFlush();
}

export async function stopTelemetry() {
  const s = sdk;
  sdk = undefined;
  await s?.shutdown();
}

/** The instrumented `node:http`. */
export function nodeHttp() {
  return require('node:http');
}

/** The instrumented `node:https`. */
export function nodeHttps() {
  return require('node:https');
}

/** The instrumented `@grpc/grpc-js`. */
export function nodeGrpc() {
  return require('@grpc/grpc-js');
}

/** This service's tracer. */
export function tracer(name = 'conduct-demo') {
  return trace.getTracer(name);
}

/** Runs `fn` inside a new span, ending it (with an error status on a throw) when `fn` settles. */
export async function inSpan(name, options, fn) {
  return tracer().startActiveSpan(name, options, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(err?.message ?? err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** The server span of the request being handled (the HTTP instrumentation's), if any. */
export function activeSpan() {
  return trace.getSpan(context.active());
}

export { SpanKind, SpanStatusCode };
