import type { Config } from './schema.js';

/**
 * What start-up logs of the configuration (at debug level): settings that shape behaviour, never
 * tokens, secrets, headers or sink and downstream URLs (which may carry credentials).
 */
export function configSummary(config: Config): Record<string, unknown> {
  return {
    receivers: {
      grpc: { endpoint: config.receivers.grpc.endpoint || 'off', auth: !!config.receivers.grpc.auth, tls: !!config.receivers.grpc.tls },
      http: { endpoint: config.receivers.http.endpoint || 'off', auth: !!config.receivers.http.auth, tls: !!config.receivers.http.tls },
    },
    api: { endpoint: config.api.endpoint, token: !!config.api.token, tls: !!config.api.tls },
    storage: { path: config.storage.path, retentionMs: config.storage.retention },
    stitching: { idleMs: config.stitching.idle, latenessMs: config.stitching.lateness, maxPendingSpans: config.stitching.maxPendingSpans },
    learning: { minCalls: config.learning.minCalls, periodMs: config.learning.period, forgetAfterMs: config.learning.forgetAfter },
    identityRules: config.identity.rules.length,
    policies: config.policies.length,
    sinks: config.alerts.sinks.map((s) => s.name ?? s.type),
    forward: config.forward.length,
    limits: config.limits,
    log: config.log,
  };
}
