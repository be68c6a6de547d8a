import { Counter, Gauge, type Registry } from 'prom-client';

/** Live figures of one downstream, read when /metrics is scraped. */
export interface DownstreamGauges {
  label: string;
  queueRequests(): number;
  queueBytes(): number;
  spoolRecords(): number;
  spoolBytes(): number;
}

/** The `conduct_forward_*` metrics. Every series carries the downstream's endpoint as `downstream`. */
export interface ForwardMetrics {
  sentRequests: Counter<'downstream'>;
  sentSpans: Counter<'downstream'>;
  retries: Counter<'downstream' | 'reason'>;
  droppedRequests: Counter<'downstream' | 'reason'>;
  droppedSpans: Counter<'downstream' | 'reason'>;
  spooledRequests: Counter<'downstream'>;
  refused: Counter<never>;
}

export function createForwardMetrics(registry: Registry, downstreams: () => DownstreamGauges[]): ForwardMetrics {
  const registers = [registry];
  const gauge = (name: string, help: string, read: (d: DownstreamGauges) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['downstream'],
      registers,
      collect() {
        for (const d of downstreams()) this.set({ downstream: d.label }, read(d));
      },
    });
  gauge('conduct_forward_queue_requests', 'Requests waiting in memory (including the one in flight), per downstream.', (d) => d.queueRequests());
  gauge('conduct_forward_queue_bytes', 'Bytes of the requests waiting in memory, per downstream.', (d) => d.queueBytes());
  gauge('conduct_forward_spool_records', 'Requests waiting in the on-disk spool, per downstream.', (d) => d.spoolRecords());
  gauge('conduct_forward_spool_bytes', 'Bytes of the spool segment files on disk, per downstream.', (d) => d.spoolBytes());
  return {
    sentRequests: new Counter({
      name: 'conduct_forward_requests_total',
      help: 'Requests the downstream accepted.',
      labelNames: ['downstream'],
      registers,
    }),
    sentSpans: new Counter({
      name: 'conduct_forward_spans_total',
      help: 'Spans in the requests the downstream accepted.',
      labelNames: ['downstream'],
      registers,
    }),
    retries: new Counter({
      name: 'conduct_forward_retries_total',
      help: 'Attempts that failed in a retryable way and were tried again, by reason.',
      labelNames: ['downstream', 'reason'],
      registers,
    }),
    droppedRequests: new Counter({
      name: 'conduct_forward_dropped_requests_total',
      help: 'Requests given up on, by reason (http-400, grpc-INVALID_ARGUMENT, convert, retries-exhausted, shutdown, spool-corrupt, spool-error).',
      labelNames: ['downstream', 'reason'],
      registers,
    }),
    droppedSpans: new Counter({
      name: 'conduct_forward_dropped_spans_total',
      help: 'Spans in the requests given up on, by reason.',
      labelNames: ['downstream', 'reason'],
      registers,
    }),
    spooledRequests: new Counter({
      name: 'conduct_forward_spooled_requests_total',
      help: 'Requests written to the on-disk spool because the memory queue was full.',
      labelNames: ['downstream'],
      registers,
    }),
    refused: new Counter({
      name: 'conduct_forward_refused_requests_total',
      help: 'Requests refused because a downstream had both its queue and its spool full (answered with a retryable code).',
      registers,
    }),
  };
}
