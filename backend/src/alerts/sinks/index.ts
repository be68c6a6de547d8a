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
import { OutboxWorker } from './outbox-worker.js';
import { outboxMetrics } from './metrics.js';
import type { AlertOutbox } from '../../store/contracts.js';

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
/** Longest wait between two looks at the outbox when nothing is due. */
export const DEFAULT_OUTBOX_POLL_MS = 2_000;
/** A claimed delivery is left to its worker for the attempt's deadline plus this. */
const OUTBOX_LEASE_MARGIN_MS = 5_000;
/** Delivered entries are kept this long (for the API) by default (`alerts.deliveryRetention`). */
export const DEFAULT_DELIVERY_RETENTION_MS = 7 * 24 * 3600_000;
/** How often delivered entries past their retention are pruned, and how many per statement. */
const OUTBOX_PRUNE_EVERY_MS = 10 * 60_000;
const OUTBOX_PRUNE_ROWS = 1_000;

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
  /**
   * The store's outbox: deliveries are enqueued by detection checkpoints (see `route`) and the
   * sinks deliver from there (durable, retried, dead letters). Without it, alerts handed to
   * `deliver` wait in memory queues.
   */
  outbox?: AlertOutbox;
  /** Outbox only: longest wait between two looks at the outbox when nothing is due. */
  pollMs?: number;
  /** Outbox only: how long delivered entries are kept before they are pruned (ms). */
  deliveryRetentionMs?: number;
  /** Outbox only: how often delivered entries past their retention are pruned (ms; default 10 minutes). */
  pruneEveryMs?: number;
}

export interface Sinks {
  /**
   * Without an outbox: queues the alert for every sink that wants it. With one: the checkpoint
   * enqueued it already, the sinks look now. Never blocks, never throws.
   */
  deliver(alert: Alert, event?: SinkEventKind): void;
  /** The names of the sinks that want this event (severity and event kind): what a checkpoint enqueues. */
  route(alert: Alert, event: SinkEventKind): string[];
  /** Whether deliveries go through the store's outbox. */
  readonly durable: boolean;
  /** Resolves once every queued (or pending) event has been delivered or given up. */
  flush(): Promise<void>;
  /** Stops taking alerts, drains for up to `drainMs`, closes connections and files. Safe twice. */
  stop(): Promise<void>;
  /** The configured sinks' names (the `sink` label of their metrics). */
  readonly names: readonly string[];
  /** Outbox only: every sink looks at the outbox now (an operator made dead deliveries pending again). */
  wake(): void;
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
  const { registry = new Registry(), logger = silentLogger, version = '0.0.0', drainMs = DEFAULT_SINK_DRAIN_MS, outbox } = options;
  const names = sinkNames(configs);
  const metrics = sinkMetrics(registry, outbox && { store: outbox, sinks: names });
  const entries = configs.map((cfg, i) => {
    const sink = buildSink(cfg, `alerts.sinks[${i}]`, version, options.forwarder);
    const delivery = {
      name: names[i]!,
      retries: cfg.retries ?? DEFAULT_SINK_RETRIES,
      backoffMs: cfg.backoff ?? DEFAULT_SINK_BACKOFF_MS,
      maxBackoffMs: MAX_SINK_BACKOFF_MS,
      metrics,
      logger,
    };
    const worker = outbox
      ? new OutboxWorker(sink, {
          ...delivery,
          outbox,
          leaseMs: (cfg.timeout ?? DEFAULT_SINK_TIMEOUT_MS) + OUTBOX_LEASE_MARGIN_MS,
          pollMs: options.pollMs ?? DEFAULT_OUTBOX_POLL_MS,
        })
      : new SinkWorker(sink, { ...delivery, queueSize: cfg.queueSize ?? DEFAULT_SINK_QUEUE_SIZE });
    return { name: names[i]!, worker, accepts: sink.accepts, minRank: SEVERITY_RANK[cfg.minSeverity ?? 'info'] };
  });
  if (entries.length > 0) {
    logger.info({ sinks: configs.map((c, i) => ({ name: names[i], type: c.type, target: sinkTarget(c) })), durable: outbox !== undefined }, 'alert sinks ready');
  }
  if (outbox) outboxMetrics(registry, outbox, names);
  const pruning = outbox && entries.length > 0 ? startPruning(outbox, options.deliveryRetentionMs ?? DEFAULT_DELIVERY_RETENTION_MS, options.pruneEveryMs ?? OUTBOX_PRUNE_EVERY_MS, logger) : undefined;
  const wanting = (alert: Alert, event: SinkEventKind) => {
    const rank = SEVERITY_RANK[alert.severity as Severity] ?? 0;
    return entries.filter((entry) => rank >= entry.minRank && entry.accepts.includes(event));
  };
  let stopping: Promise<void> | undefined;

  return {
    names,
    durable: outbox !== undefined,
    route: (alert, event) => wanting(alert, event).map((e) => e.name),
    deliver(alert, event = 'alert') {
      try {
        let copy: Alert | undefined;
        for (const { worker } of wanting(alert, event)) {
          if (worker instanceof OutboxWorker) {
            worker.wake();
            continue;
          }
          // One private copy, taken now: the caller may keep mutating its alert (counts, status).
          copy ??= structuredClone(alert);
          worker.offer({ kind: event, alert: copy });
        }
      } catch (err) {
        logger.warn({ err: String(err) }, 'alert could not be queued for the sinks');
      }
    },
    async flush() {
      await Promise.all(entries.map((e) => e.worker.idle()));
    },
    wake() {
      for (const { worker } of entries) if (worker instanceof OutboxWorker) worker.wake();
    },
    stop() {
      stopping ??= Promise.all(entries.map((e) => e.worker.stop(drainMs))).then(() => {
        pruning?.stop();
        if (entries.length > 0) logger.info({ sinks: names }, 'alert sinks stopped');
      });
      return stopping;
    },
  };
}

/** Prunes delivered outbox entries older than the retention, in bounded statements, every few minutes. */
function startPruning(outbox: AlertOutbox, retentionMs: number, everyMs: number, logger: Logger): { stop(): void } {
  let running = false;
  const step = async () => {
    if (running) return;
    running = true;
    try {
      const before = Date.now() - retentionMs;
      let pruned = OUTBOX_PRUNE_ROWS;
      while (pruned === OUTBOX_PRUNE_ROWS) pruned = await outbox.pruneDelivered(before, OUTBOX_PRUNE_ROWS);
    } catch (err) {
      logger.warn({ err: String(err) }, 'pruning delivered alert deliveries failed');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void step(), everyMs);
  timer.unref();
  void step();
  return { stop: () => clearInterval(timer) };
}

export { ATTR, CONDUCT_SERVICE_NAME } from './attributes.js';
export { TECHNIQUES, ocsfAttack } from './attack.js';
export { findingSpanName, findingSpanRequest, type FindingSpanForwarder } from './finding-span.js';
export { alertmanagerBody, jsonBody, slackBody } from './formats.js';
export { sinkMetrics, outboxMetrics, METRIC_OUTBOX_ENTRIES, type SinkMetrics, type DeliveryOutcome } from './metrics.js';
export { OutboxWorker, type OutboxWorkerOptions } from './outbox-worker.js';
export { OCSF, OCSF_SCHEMA_VERSION, OCSF_SEVERITY, OCSF_STATUS, ocsfFinding } from './ocsf.js';
export { LOG_SEVERITY } from './otlp.js';
export { alertLogsRequest, LOG_EVENT_NAMES } from './otlp-logs.js';
export { DeliveryError, deliveryId, type DeliveryRef, type Sink, type SinkEvent, type SinkEventKind } from './types.js';
export { sinkSchema, SINK_TYPES, type SinkSettings } from './schema.js';
export { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signBody, WEBHOOK_FORMATS, type WebhookFormat } from './webhook.js';
