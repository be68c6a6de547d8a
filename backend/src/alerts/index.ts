export * from './model.js';
export * from './sinks/index.js';
export { registerStateMetrics, METRIC_ALERTS_OPEN, METRIC_IDENTITIES, type StateMetricsOptions } from './state-metrics.js';
