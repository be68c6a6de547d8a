import { Gauge, type Registry } from 'prom-client';
import type { DetectionStateReader } from '../store/index.js';

/** `conduct_identities{state}`: identities with a baseline, learning or enforcing. */
export const METRIC_IDENTITIES = 'conduct_identities';
/** `conduct_alerts_open{detector,severity}`: alerts nobody has given a verdict on yet. */
export const METRIC_ALERTS_OPEN = 'conduct_alerts_open';

export interface StateMetricsOptions {
  registry: Registry;
  /** The store's detection state (baselines and alerts). */
  state: Pick<DetectionStateReader, 'baselineCounts' | 'openAlertCounts'>;
  /** `learning.minCalls` and `learning.period` (ms): when an identity counts as enforcing. */
  learning: { minCalls: number; period: number };
}

/**
 * Gauges of detection state, read from the store when `/metrics` is scraped (two grouped
 * queries over indexed, bounded tables): identities by learning state and open alerts by
 * detector and severity. A store that is closed or not reachable leaves the last values.
 */
export function registerStateMetrics({ registry, state, learning }: StateMetricsOptions): void {
  new Gauge({
    name: METRIC_IDENTITIES,
    help: 'Identities with a baseline, by state (learning, enforcing).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      try {
        // Enforcing is sticky or due by learn/baseline.ts's rule, so a scrape agrees with the API.
        const counts = await state.baselineCounts({ minCalls: learning.minCalls, periodMs: learning.period });
        this.set({ state: 'enforcing' }, counts.enforcing);
        this.set({ state: 'learning' }, counts.total - counts.enforcing);
      } catch {
        // Closed or unreachable: keep the last values.
      }
    },
  });

  new Gauge({
    name: METRIC_ALERTS_OPEN,
    help: 'Open alerts (no verdict yet), by detector and severity.',
    labelNames: ['detector', 'severity'],
    registers: [registry],
    async collect() {
      try {
        const rows = await state.openAlertCounts();
        this.reset();
        for (const r of rows) this.set({ detector: r.detector, severity: r.severity }, r.count);
      } catch {
        // Closed or unreachable: keep the last values.
      }
    },
  });
}
