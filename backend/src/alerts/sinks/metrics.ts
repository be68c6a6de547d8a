import { Counter, Gauge, type Registry } from 'prom-client';

/** Outcomes counted in `conduct_sink_deliveries_total`. */
export type DeliveryOutcome = 'delivered' | 'failed' | 'dropped';

export interface SinkMetrics {
  /** `conduct_sink_deliveries_total{sink,outcome}`: delivered, failed (retries used up or permanent error), dropped (queue full or stopped). */
  deliveries: Counter<'sink' | 'outcome'>;
  /** `conduct_sink_retries_total{sink}`: attempts after the first. */
  retries: Counter<'sink'>;
  /** `conduct_sink_queue_depth{sink}`: events waiting or in flight. */
  queueDepth: Gauge<'sink'>;
}

/** Registers the sink metrics in `registry`, or returns the ones already registered there. */
export function sinkMetrics(registry: Registry): SinkMetrics {
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  return {
    deliveries:
      existing<Counter<'sink' | 'outcome'>>('conduct_sink_deliveries_total') ??
      new Counter({
        name: 'conduct_sink_deliveries_total',
        help: 'Alert deliveries per sink by outcome (delivered, failed, dropped).',
        labelNames: ['sink', 'outcome'],
        registers: [registry],
      }),
    retries:
      existing<Counter<'sink'>>('conduct_sink_retries_total') ??
      new Counter({
        name: 'conduct_sink_retries_total',
        help: 'Delivery attempts after the first, per sink.',
        labelNames: ['sink'],
        registers: [registry],
      }),
    queueDepth:
      existing<Gauge<'sink'>>('conduct_sink_queue_depth') ??
      new Gauge({
        name: 'conduct_sink_queue_depth',
        help: 'Alert events waiting or in flight, per sink.',
        labelNames: ['sink'],
        registers: [registry],
      }),
  };
}
