import { loggableTarget } from './redact.js';
import { silentLogger, type Logger } from '@conduct/processor';
import { Registry } from 'prom-client';
import { SEVERITY_RANK, type Alert, type Severity } from '../model.js';
import { createFindingSpanSink, createForwardedFindingSpanSink, type FindingSpanForwarder } from './finding-span.js';
import { createJsonlSink } from './jsonl.js';
import { sinkMetrics } from './metrics.js';
import { createOcsfSink } from './ocsf.js';
import { createOtlpLogsSink } from './otlp-logs.js';
import type { Sink, SinkEventKind } from './types.js';
import { createWebhookSink, WEBHOOK_FORMATS, type WebhookFormat } from './webhook.js';
import { SinkWorker } from './worker.js';
import type { SinkSettings } from './schema.js';

/** Deadline of one delivery attempt. */
export const DEFAULT_SINK_TIMEOUT_MS = 10_000;
/** Attempts after the first failed one. */
export const DEFAULT_SINK_RETRIES = 5;
/** Events held per sink before new ones are dropped. */
export const DEFAULT_SINK_QUEUE_SIZE = 1000;
/** Delay before the first retry (doubled per retry, with jitter). */
export const DEFAULT_SINK_BACKOFF_MS = 500;
/** Longest delay between two attempts (before jitter). */
export const MAX_SINK_BACKOFF_MS = 30_000;
/** How long `stop()` lets queues drain before abandoning what is left. */
export const DEFAULT_SINK_DRAIN_MS = 5_000;

export interface SinksOptions {
  /** Where `conduct_sink_*` metrics are registered. A private registry when absent. */
  registry?: Registry;
  logger?: Logger;
  /** conduct's version: OTLP resource, User-Agent, OCSF product version. */
  version?: string;
  /** How long `stop()` waits for queues to drain. */
  drainMs?: number;
  /** The forwarder of `forward[]`, for `finding-span` sinks with `via: forward`. */
  forwarder?: FindingSpanForwarder;
}

export interface Sinks {
  /** Queues the alert for every sink that wants it. Never blocks, never throws. */
  deliver(alert: Alert, event?: SinkEventKind): void;
  /** Resolves once every queued event has been delivered or given up. */
  flush(): Promise<void>;
  /** Stops taking alerts, drains for up to `drainMs`, closes connections and files. Safe twice. */
  stop(): Promise<void>;
  /** The configured sinks' names (the `sink` label of their metrics). */
  readonly names: readonly string[];
}

/** A sink configuration that cannot work; the message names the key. */
export class SinkConfigError extends Error {
  override readonly name = 'SinkConfigError';
}

/**
 * One sink from its settings. The schema (schema.ts) has checked each type's own fields; what it
 * cannot see (a forwarder to send through, settings built in code rather than parsed) is
 * checked here, naming the key.
 */
function buildSink(cfg: SinkSettings, key: string, version: string, forwarder: FindingSpanForwarder | undefined): Sink {
  const need = (value: string | undefined, field: string): string => {
    if (!value) throw new SinkConfigError(`${key}.${field} is required for a ${cfg.type} sink`);
    return value;
  };
  const httpUrl = (value: string): string => {
    if (!/^https?:\/\//.test(value)) throw new SinkConfigError(`${key}.endpoint must be an http:// or https:// URL`);
    return value;
  };
  const timeoutMs = cfg.timeout ?? DEFAULT_SINK_TIMEOUT_MS;
  // The schema refuses `via` on other types; settings built in code are checked here.
  if ((cfg as { via?: unknown }).via === 'forward' && cfg.type !== 'finding-span') throw new SinkConfigError(`${key}.via: only a finding-span sink can send via forward`);
  switch (cfg.type) {
    case 'otlp-logs':
      return createOtlpLogsSink({ endpoint: need(cfg.endpoint, 'endpoint'), protocol: cfg.protocol, headers: cfg.headers ?? {}, timeoutMs, version });
    case 'finding-span':
      if (cfg.via === 'forward') {
        if (!forwarder?.enabled) throw new SinkConfigError(`${key}.via: forward needs at least one forward[] downstream`);
        return createForwardedFindingSpanSink(forwarder, version);
      }
      return createFindingSpanSink({ endpoint: need(cfg.endpoint, 'endpoint'), protocol: cfg.protocol, headers: cfg.headers ?? {}, timeoutMs, version });
    case 'webhook': {
      const format = (cfg.format ?? 'json') as WebhookFormat;
      if (!WEBHOOK_FORMATS.includes(format)) throw new SinkConfigError(`${key}.format must be one of ${WEBHOOK_FORMATS.join(', ')}`);
      const url = httpUrl(need(cfg.endpoint, 'endpoint'));
      return createWebhookSink({ url, format, headers: cfg.headers ?? {}, secret: cfg.secret, timeoutMs, version });
    }
    case 'ocsf': {
      if (!cfg.path && !cfg.endpoint) throw new SinkConfigError(`${key}.path or ${key}.endpoint is required for an ocsf sink`);
      const url = cfg.path || !cfg.endpoint ? undefined : httpUrl(cfg.endpoint);
      return createOcsfSink({ path: cfg.path, url, headers: cfg.headers ?? {}, secret: cfg.secret, timeoutMs, version });
    }
    case 'jsonl':
      return createJsonlSink({ path: cfg.path ?? '-' });
    default:
      throw new SinkConfigError(`${key}.type: unknown sink type "${(cfg as { type: unknown }).type}"`);
  }
}

/** Where a sink sends, for the start-up log line (credentials in URLs hidden). */
function sinkTarget(cfg: SinkSettings): string | undefined {
  if ('via' in cfg && cfg.via === 'forward') return 'forward';
  return loggableTarget(('endpoint' in cfg ? cfg.endpoint : undefined) ?? ('path' in cfg ? cfg.path : undefined));
}

/** Unique names: the configured `name`, else the type (`webhook`, `webhook-2`, ...). */
function sinkNames(configs: readonly SinkSettings[]): string[] {
  const used = new Set<string>();
  return configs.map((cfg, i) => {
    const base = cfg.name ?? cfg.type;
    if (cfg.name && used.has(base)) throw new SinkConfigError(`alerts.sinks[${i}].name "${base}" is used twice`);
    let name = base;
    for (let n = 2; used.has(name); n++) name = `${base}-${n}`;
    used.add(name);
    return name;
  });
}

/**
 * Builds the configured alert sinks, each with its own bounded queue and delivery loop. Throws a
 * {@link SinkConfigError} naming the key when a sink is misconfigured.
 */
export function createSinks(configs: readonly SinkSettings[], options: SinksOptions = {}): Sinks {
  const { registry = new Registry(), logger = silentLogger, version = '0.0.0', drainMs = DEFAULT_SINK_DRAIN_MS } = options;
  const metrics = sinkMetrics(registry);
  const names = sinkNames(configs);
  const entries = configs.map((cfg, i) => {
    const sink = buildSink(cfg, `alerts.sinks[${i}]`, version, options.forwarder);
    const worker = new SinkWorker(sink, {
      name: names[i]!,
      queueSize: cfg.queueSize ?? DEFAULT_SINK_QUEUE_SIZE,
      retries: cfg.retries ?? DEFAULT_SINK_RETRIES,
      backoffMs: cfg.backoff ?? DEFAULT_SINK_BACKOFF_MS,
      maxBackoffMs: MAX_SINK_BACKOFF_MS,
      metrics,
      logger,
    });
    return { worker, accepts: sink.accepts, minRank: SEVERITY_RANK[cfg.minSeverity ?? 'info'] };
  });
  if (entries.length > 0) {
    logger.info({ sinks: configs.map((c, i) => ({ name: names[i], type: c.type, target: sinkTarget(c) })) }, 'alert sinks ready');
  }
  let stopping: Promise<void> | undefined;

  return {
    names,
    deliver(alert, event = 'alert') {
      try {
        const rank = SEVERITY_RANK[alert.severity as Severity] ?? 0;
        let copy: Alert | undefined;
        for (const entry of entries) {
          if (rank < entry.minRank || !entry.accepts.includes(event)) continue;
          // One private copy, taken now: the caller may keep mutating its alert (counts, status).
          copy ??= structuredClone(alert);
          entry.worker.offer({ kind: event, alert: copy });
        }
      } catch (err) {
        logger.warn({ err: String(err) }, 'alert could not be queued for the sinks');
      }
    },
    async flush() {
      await Promise.all(entries.map((e) => e.worker.idle()));
    },
    stop() {
      stopping ??= Promise.all(entries.map((e) => e.worker.stop(drainMs))).then(() => {
        if (entries.length > 0) logger.info({ sinks: names }, 'alert sinks stopped');
      });
      return stopping;
    },
  };
}

export { ATTR, CONDUCT_SERVICE_NAME } from './attributes.js';
export { TECHNIQUES, ocsfAttack } from './attack.js';
export { findingSpanName, findingSpanRequest, type FindingSpanForwarder } from './finding-span.js';
export { alertmanagerBody, jsonBody, slackBody } from './formats.js';
export { sinkMetrics, type SinkMetrics, type DeliveryOutcome } from './metrics.js';
export { OCSF, OCSF_SCHEMA_VERSION, OCSF_SEVERITY, OCSF_STATUS, ocsfFinding } from './ocsf.js';
export { LOG_SEVERITY } from './otlp.js';
export { alertLogsRequest, LOG_EVENT_NAMES } from './otlp-logs.js';
export { DeliveryError, type Sink, type SinkEvent, type SinkEventKind } from './types.js';
export { sinkSchema, SINK_TYPES, type SinkSettings } from './schema.js';
export { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signBody, WEBHOOK_FORMATS, type WebhookFormat } from './webhook.js';
