import { Counter, Histogram, type Registry } from 'prom-client';

/** `k8s-audit`: the Kubernetes audit webhook receiver (its records count as spans). */
export type ReceiverProtocol = 'grpc' | 'http' | 'k8s-audit';

/** Why a request (or its spans) was refused; the `reason` label of the rejection counters. */
export type RejectReason =
  | 'decode-error'
  | 'invalid-span'
  | 'too-large'
  | 'unauthenticated'
  | 'unsupported-media-type'
  | 'unsupported-encoding'
  | 'not-found'
  | 'method-not-allowed'
  | 'overloaded'
  | 'ingest-error'
  /** Audit events at a stage other than ResponseComplete, or without a principal: not calls, skipped. */
  | 'not-a-call'
  /** The forwarder's queue and spool are full (in-line mode): refused with a retryable answer. */
  | 'forward-full';

/** Counters both receivers write to; created once per registry and shared. */
export interface ReceiverMetrics {
  /** One finished request, labelled with its HTTP status code or gRPC status name. */
  request(protocol: ReceiverProtocol, code: string): void;
  /** One refused request. */
  requestRejected(protocol: ReceiverProtocol, reason: RejectReason): void;
  /** Spans acknowledged to the sender. */
  spansReceived(protocol: ReceiverProtocol, count: number): void;
  /** Spans refused whose number is known (invalid spans, overload). */
  spansRejected(protocol: ReceiverProtocol, reason: RejectReason, count: number): void;
  /** Request body bytes read, after decompression. */
  requestBytes(protocol: ReceiverProtocol, count: number): void;
  /** Seconds from an export request's body being read to its outcome (decoded, handed on and journaled, or refused). */
  requestDuration(protocol: ReceiverProtocol, seconds: number): void;
}

export const METRIC_REQUESTS = 'conduct_receiver_requests_total';
export const METRIC_REQUESTS_REJECTED = 'conduct_receiver_requests_rejected_total';
export const METRIC_SPANS_RECEIVED = 'conduct_receiver_spans_received_total';
export const METRIC_SPANS_REJECTED = 'conduct_receiver_spans_rejected_total';
export const METRIC_REQUEST_BYTES = 'conduct_receiver_request_bytes_total';
export const METRIC_REQUEST_DURATION = 'conduct_receiver_request_duration_seconds';
/**
 * Buckets of METRIC_REQUEST_DURATION, seconds: from a request answered at once (~1 ms) to one that
 * waited the pipeline's full second for room before it was refused.
 */
export const REQUEST_DURATION_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Both receivers share a registry: the second one reuses the metric the first created. */
function shared<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  return shared(registry, name, () => new Counter({ name, help, labelNames, registers: [registry] }));
}

function histogram<L extends string>(registry: Registry, name: string, help: string, labelNames: L[], buckets: readonly number[]): Histogram<L> {
  return shared(registry, name, () => new Histogram({ name, help, labelNames, buckets: [...buckets], registers: [registry] }));
}

export function createReceiverMetrics(registry: Registry): ReceiverMetrics {
  const requests = counter(registry, METRIC_REQUESTS, 'OTLP export requests answered, by protocol and status code', ['protocol', 'code']);
  const rejected = counter(registry, METRIC_REQUESTS_REJECTED, 'OTLP export requests refused, by protocol and reason', ['protocol', 'reason']);
  const received = counter(registry, METRIC_SPANS_RECEIVED, 'Spans acknowledged to senders, by protocol', ['protocol']);
  const spansRejected = counter(registry, METRIC_SPANS_REJECTED, 'Spans refused, by protocol and reason', ['protocol', 'reason']);
  const bytes = counter(registry, METRIC_REQUEST_BYTES, 'Request body bytes read after decompression, by protocol', ['protocol']);
  const duration = histogram(
    registry,
    METRIC_REQUEST_DURATION,
    'Seconds from an OTLP export request body being read to its outcome (decoded, handed on and journaled, or refused), by protocol',
    ['protocol'],
    REQUEST_DURATION_BUCKETS,
  );
  return {
    request: (protocol, code) => requests.inc({ protocol, code }),
    requestRejected: (protocol, reason) => rejected.inc({ protocol, reason }),
    spansReceived: (protocol, count) => {
      if (count > 0) received.inc({ protocol }, count);
    },
    spansRejected: (protocol, reason, count) => {
      if (count > 0) spansRejected.inc({ protocol, reason }, count);
    },
    requestBytes: (protocol, count) => {
      if (count > 0) bytes.inc({ protocol }, count);
    },
    requestDuration: (protocol, seconds) => duration.observe({ protocol }, seconds),
  };
}
