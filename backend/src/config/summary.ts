import { valuesFromEnvironment } from './load.js';
import type { Config } from './schema.js';

/**
 * What start-up logs of the configuration (at debug level): settings that shape behaviour, never
 * tokens, secrets, headers or sink and downstream URLs (which may carry credentials). A value
 * read from an environment variable is shown as the file wrote it (`${env:NAME}`), whatever its type.
 */
export function configSummary(config: Config): Record<string, unknown> {
  const fromEnv = new Map(valuesFromEnvironment(config).map((e) => [e.key, e.original]));
  const show = (key: string, value: unknown) => fromEnv.get(key) ?? value;
  const receiver = (name: 'grpc' | 'http') => {
    const r = config.receivers[name];
    return { endpoint: show(`receivers.${name}.endpoint`, r.endpoint || 'off'), auth: !!r.auth, tls: !!r.tls };
  };
  return {
    receivers: { grpc: receiver('grpc'), http: receiver('http') },
    api: { endpoint: show('api.endpoint', config.api.endpoint), token: !!config.api.token, tls: !!config.api.tls },
    storage: {
      path: show('storage.path', config.storage.path),
      retentionMs: show('storage.retention', config.storage.retention),
      alertRetentionMs: show('storage.alertRetention', config.storage.alertRetention),
    },
    stitching: {
      idleMs: show('stitching.idle', config.stitching.idle),
      latenessMs: show('stitching.lateness', config.stitching.lateness),
      maxPendingSpans: show('stitching.maxPendingSpans', config.stitching.maxPendingSpans),
    },
    learning: {
      minCalls: show('learning.minCalls', config.learning.minCalls),
      periodMs: show('learning.period', config.learning.period),
      forgetAfterMs: show('learning.forgetAfter', config.learning.forgetAfter),
    },
    identityRules: config.identity.rules.length,
    policies: config.policies.length,
    sinks: config.alerts.sinks.map((s, i) => show(`alerts.sinks.${i}.name`, s.name ?? s.type)),
    forward: config.forward.length,
    limits: Object.fromEntries(Object.entries(config.limits).map(([k, v]) => [k, show(`limits.${k}`, v)])),
    log: { level: show('log.level', config.log.level), format: show('log.format', config.log.format) },
  };
}
