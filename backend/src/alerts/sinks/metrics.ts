import { Counter, Gauge, type Registry } from 'prom-client';
import type { AlertOutbox } from '../../store/contracts.js';

/**
 * Outcomes counted in `conduct_sink_deliveries_total`: from the outbox `delivered` or `dead`;
 * without one (in-memory queues) `delivered`, `failed` or `dropped`.
 */
export type DeliveryOutcome = 'delivered' | 'dead' | 'failed' | 'dropped';

export interface SinkMetrics {
  /** `conduct_sink_deliveries_total{sink,outcome}`: delivered, failed (retries used up or permanent error), dropped (queue full or stopped). */
  deliveries: Counter<'sink' | 'outcome'>;
  /** `conduct_sink_retries_total{sink}`: attempts after the first. */
  retries: Counter<'sink'>;
  /** `conduct_sink_queue_depth{sink}`: events waiting or in flight. */
  queueDepth: Gauge<'sink'>;
}

/**
 * Registers the sink metrics in `registry`, or returns the ones already registered there. With an
 * outbox, `conduct_sink_queue_depth` is read from it at scrape time (pending deliveries of each of
 * `sinks`); without one the in-memory workers set it.
 */
export function sinkMetrics(registry: Registry, outbox?: { store: Pick<AlertOutbox, 'counts'>; sinks: readonly string[] }): SinkMetrics {
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  return {
    deliveries:
      existing<Counter<'sink' | 'outcome'>>('conduct_sink_deliveries_total') ??
      new Counter({
        name: 'conduct_sink_deliveries_total',
        help: 'Alert deliveries per sink by outcome (delivered, dead; without an outbox failed, dropped).',
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
        ...(outbox ? { collect: pendingCollector(outbox.store, outbox.sinks) } : {}),
      }),
  };
}

/** Sets a gauge to the pending deliveries per sink, read from the outbox (the last values when it fails). */
function pendingCollector(outbox: Pick<AlertOutbox, 'counts'>, sinks: readonly string[]) {
  return async function (this: Gauge<'sink'>): Promise<void> {
    try {
      const rows = await outbox.counts();
      for (const sink of sinks) this.set({ sink }, 0);
      for (const r of rows) if (r.state === 'pending' && sinks.includes(r.sink)) this.set({ sink: r.sink }, r.count);
    } catch {
      // Closed or unreachable: keep the last values.
    }
  };
}

/** `conduct_sink_outbox_entries{sink,state}`: deliveries in the outbox (pending, delivered and kept, dead, discarded). */
export const METRIC_OUTBOX_ENTRIES = 'conduct_sink_outbox_entries';

/**
 * Registers the outbox gauge, read from the store when `/metrics` is scraped (one grouped query
 * over an indexed table). A store that is closed or not reachable leaves the last values.
 */
export function outboxMetrics(registry: Registry, outbox: Pick<AlertOutbox, 'counts'>, sinks: readonly string[]): void {
  if (registry.getSingleMetric(METRIC_OUTBOX_ENTRIES)) return;
  new Gauge({
    name: METRIC_OUTBOX_ENTRIES,
    help: 'Alert deliveries in the outbox per sink, by state (pending, delivered and kept, dead, discarded by an operator).',
    labelNames: ['sink', 'state'],
    registers: [registry],
    async collect() {
      try {
        const rows = await outbox.counts();
        this.reset();
        // Every configured sink shows every state, 0 included (an empty outbox is news too).
        for (const sink of sinks) for (const state of ['pending', 'delivered', 'dead', 'discarded']) this.set({ sink, state }, 0);
        for (const r of rows) this.set({ sink: r.sink, state: r.state }, r.count);
      } catch {
        // Closed or unreachable: keep the last values.
      }
    },
  });
}
