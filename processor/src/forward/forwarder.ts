import { Registry } from 'prom-client';
import { silentLogger, type Logger } from '../model.js';
import { resolveForwardTarget, type ForwardTargetConfig, type ResolvedForwardTarget } from './config.js';
import { Downstream, type ForwardRequest } from './downstream.js';
import { createGrpcTransport } from './grpc-transport.js';
import { createHttpTransport } from './http-transport.js';
import { createForwardMetrics } from './metrics.js';
import type { Transport } from './transport.js';

/** How long `flush()` waits by default. */
export const DEFAULT_FLUSH_TIMEOUT_MS = 30_000;

export type SubmitResult = 'accepted' | 'full';

/**
 * Passes the requests conduct receives on to downstream OTLP endpoints, unchanged.
 *
 * `submit` is synchronous and cheap: it only queues (or spools) the bytes; delivery happens in the
 * background, one request in flight per downstream, in submission order. It never waits for
 * stitching or detection.
 */
export interface Forwarder {
  /**
   * Hands one accepted request on. 'full' when some downstream has both its memory queue and its
   * spool full: then no downstream took it, and the receiver should answer with a retryable code
   * (HTTP 503 + Retry-After, gRPC UNAVAILABLE) so the sender keeps the data.
   */
  submit(req: ForwardRequest): SubmitResult;
  /**
   * Sends conduct's own spans (the `finding-span` alert sink) through the same downstreams: `body`
   * is a protobuf-encoded `ExportTraceServiceRequest`.
   */
  submitSpans(body: Buffer, spans?: number): SubmitResult;
  /** True when at least one downstream is configured. */
  readonly enabled: boolean;
  /** Starts the delivery loops; spooled requests from an earlier run are sent first. */
  start(): void;
  /**
   * Sends what is queued in memory for up to each downstream's `drainTimeoutMs`, then writes what
   * is left to the spool (or drops and counts it when there is none). Safe twice and without start.
   */
  stop(): Promise<void>;
  /** Resolves true once nothing is queued, spooled or in flight; false after `timeoutMs`. */
  flush(timeoutMs?: number): Promise<boolean>;
}

export interface ForwarderDeps {
  /** Where the `conduct_forward_*` metrics are registered; a private registry when absent. */
  registry?: Registry;
  logger?: Logger;
  /** Replaces the network transport (for tests of the queueing alone). */
  createTransport?: (target: ResolvedForwardTarget) => Transport;
}

function defaultTransport(target: ResolvedForwardTarget): Transport {
  return target.protocol === 'http' ? createHttpTransport(target) : createGrpcTransport(target);
}

/** Builds the forwarder for `forward[]`. Throws a {@link ForwardConfigError} naming the bad key. */
export function createForwarder(configs: readonly ForwardTargetConfig[], deps: ForwarderDeps = {}): Forwarder {
  const logger = deps.logger ?? silentLogger;
  const registry = deps.registry ?? new Registry();
  const targets = configs.map((c, i) => resolveForwardTarget(c, i));
  const downstreams: Downstream[] = [];
  const metrics = createForwardMetrics(registry, () => downstreams.map((d) => d.gauges));
  const labels = new Set<string>();
  try {
    targets.forEach((target, i) => {
      // Credentials in a URL stay out of the metrics and logs.
      let label = target.endpoint.replace(/\/\/[^/@]*@/, '//');
      if (labels.has(label)) label = `${label}#${i}`;
      labels.add(label);
      const makeTransport = deps.createTransport ?? defaultTransport;
      downstreams.push(new Downstream(label, target, makeTransport(target), metrics, logger));
    });
  } catch (err) {
    for (const d of downstreams) void d.stop();
    throw err;
  }
  let started = false;
  let stopped: Promise<void> | undefined;

  function submit(req: ForwardRequest): SubmitResult {
    if (downstreams.length === 0) return 'accepted';
    // All or none: a request taken by some downstreams and refused by others would be sent twice
    // to the first ones when the sender retries.
    for (const d of downstreams) {
      if (!d.canAccept(req)) {
        metrics.refused.inc();
        return 'full';
      }
    }
    for (const d of downstreams) d.enqueue(req);
    return 'accepted';
  }

  return {
    enabled: downstreams.length > 0,
    submit,
    submitSpans(body, spans = 1) {
      return submit({ body, format: 'protobuf', spans });
    },
    start() {
      if (started || stopped) return;
      started = true;
      for (const d of downstreams) d.start();
      if (downstreams.length > 0) {
        logger.info(
          { downstreams: downstreams.map((d, i) => ({ endpoint: d.label, protocol: targets[i]!.protocol, spool: targets[i]!.spoolPath ?? null })) },
          'forwarder started',
        );
      }
    },
    stop() {
      stopped ??= Promise.all(downstreams.map((d) => d.stop())).then(() => undefined);
      return stopped;
    },
    async flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS) {
      const results = await Promise.all(downstreams.map((d) => d.whenIdle(timeoutMs)));
      return results.every(Boolean);
    },
  };
}
