import type { Database, Statement } from 'better-sqlite3';
import { Gauge, type Registry } from 'prom-client';

/** `conduct_identities{state}`: identities with a baseline, learning or enforcing. */
export const METRIC_IDENTITIES = 'conduct_identities';
/** `conduct_alerts_open{detector,severity}`: alerts nobody has given a verdict on yet. */
export const METRIC_ALERTS_OPEN = 'conduct_alerts_open';

export interface StateMetricsOptions {
  registry: Registry;
  /** The database holding detection's tables (`baseline_identities`, `alerts`). */
  db: Database;
  /** `learning.minCalls` and `learning.period` (ms): when an identity counts as enforcing. */
  learning: { minCalls: number; period: number };
}

/**
 * Gauges of detection state, read from the database when `/metrics` is scraped (two grouped
 * queries over indexed, bounded tables): identities by learning state and open alerts by
 * detector and severity. A database that is closed or not yet migrated leaves the last values.
 */
export function registerStateMetrics({ registry, db, learning }: StateMetricsOptions): void {
  // Enforcing is sticky (enforcing_since_ms) or due: enough calls and enough event time, the same
  // rule as learn/baseline.ts applies, so a scrape between two analyses agrees with the API.
  const identitiesSql = `SELECT
      COALESCE(SUM(CASE WHEN enforcing_since_ms IS NOT NULL OR (calls > 0 AND calls >= @minCalls AND last_ms - first_ms >= @period) THEN 1 ELSE 0 END), 0) AS enforcing,
      COUNT(*) AS total
    FROM baseline_identities`;
  const openSql = `SELECT detector, severity, COUNT(*) AS n FROM alerts WHERE status = 'open' GROUP BY detector, severity`;
  // Prepared on the first scrape, once detection has created its tables.
  let identities: Statement | undefined;
  let open: Statement | undefined;

  new Gauge({
    name: METRIC_IDENTITIES,
    help: 'Identities with a baseline, by state (learning, enforcing).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      try {
        identities ??= db.prepare(identitiesSql);
        const row = identities.get({ minCalls: learning.minCalls, period: learning.period }) as { enforcing: number; total: number };
        this.set({ state: 'enforcing' }, row.enforcing);
        this.set({ state: 'learning' }, row.total - row.enforcing);
      } catch {
        // Closed or not migrated: keep the last values.
      }
    },
  });

  new Gauge({
    name: METRIC_ALERTS_OPEN,
    help: 'Open alerts (no verdict yet), by detector and severity.',
    labelNames: ['detector', 'severity'],
    registers: [registry],
    collect() {
      try {
        open ??= db.prepare(openSql);
        const rows = open.all() as Array<{ detector: string; severity: string; n: number }>;
        this.reset();
        for (const r of rows) this.set({ detector: r.detector, severity: r.severity }, r.n);
      } catch {
        // Closed or not migrated: keep the last values.
      }
    },
  });
}
