import { z } from 'zod';
import { durationSchema, sizeSchema } from './duration.js';
import { sinkSchema, type SinkSettings } from '../alerts/sinks/schema.js';
import { cardinalityLimitFields, detectionSchema, learningSchema, policySchema, type PolicyConfig } from '../detect/settings.js';
import {
  DEFAULT_IDENTITY_RULES,
  DEFAULT_IDLE_MS,
  DEFAULT_LATE_TRACE_WINDOW_MS,
  DEFAULT_LATENESS_MS,
  DEFAULT_MAX_PENDING_SPANS,
} from '@conduct/processor';
import { clusterSchema } from '../cluster/settings.js';
import { DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL, LOG_FORMATS, LOG_LEVELS } from '../log/index.js';

/**
 * The configuration file's schema: every key users and scripts rely on (see the README's config
 * table). Durations (`500ms`, `5s`, `1h`, `7d`) and sizes (`64MiB`, `1048576B`) need their unit
 * and are turned into milliseconds and bytes here. Unknown keys are refused, naming the key.
 * Components own their pieces and defaults: detection's `learning`, `detection`, `policies[]` and
 * caps (detect/settings.ts), each alert sink its `alerts.sinks[]` entry (alerts/sinks/schema.ts),
 * the stitcher its `stitching` defaults (@conduct/processor); this file puts them in place.
 */

const duration = durationSchema;
const size = sizeSchema;

/** Why `value` is not HOST:PORT (`[::1]:8080` for IPv6), or undefined when it is. */
function endpointProblem(value: string): string | undefined {
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]*):\d{1,5}$/.test(value)) return 'expected HOST:PORT, e.g. 127.0.0.1:4317';
  if (Number(value.slice(value.lastIndexOf(':') + 1)) > 65535) return 'the port must be from 0 to 65535';
  return undefined;
}

const endpointCheck = (value: string, ctx: z.RefinementCtx) => {
  const problem = endpointProblem(value);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
};

const endpoint = z.string().superRefine(endpointCheck);
/** An endpoint, or `""` for off. */
const endpointOrOff = z.string().superRefine((value, ctx) => (value === '' ? undefined : endpointCheck(value, ctx)));

const tls = z
  .object({
    /** PEM certificate file. */
    cert: z.string(),
    /** PEM private key file. */
    key: z.string(),
    /** PEM CA bundle used to verify client certificates (mutual TLS). */
    ca: z.string().optional(),
    /** Require a client certificate signed by `ca`. */
    clientAuth: z.boolean().default(false),
  })
  .strict()
  // Without a CA of its own, Node would verify client certificates against its public roots:
  // any certificate from a public CA would pass. Mutual TLS therefore needs `ca`.
  .refine((t) => !t.clientAuth || t.ca !== undefined, { path: ['ca'], message: 'is required when clientAuth is true' });

const auth = z
  .object({
    /** Bearer token the sender must present (`Authorization: Bearer ...`). */
    token: z.string().min(1),
  })
  .strict();

export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024;
/** Default of `limits.maxMemoryBytes`: heap in use above which ingest answers "overloaded". */
export const DEFAULT_MAX_MEMORY_BYTES = 1024 * 1024 * 1024;

const receiver = (defaultEndpoint: string) =>
  z
    .object({
      /** HOST:PORT to listen on; an empty string disables the receiver. */
      endpoint: endpointOrOff.default(defaultEndpoint),
      /** Largest request accepted, after decompression. */
      maxRequestBytes: size.default(`${DEFAULT_MAX_REQUEST_BYTES}B`),
      auth: auth.optional(),
      tls: tls.optional(),
    })
    .strict()
    .default({});

/** Default of `receivers.k8sAudit.maxRequestBytes`: the API server's batches are far smaller. */
export const DEFAULT_K8S_AUDIT_MAX_REQUEST_BYTES = 16 * 1024 * 1024;

/** The Kubernetes audit webhook receiver (`POST /k8s-audit`): off unless an endpoint is set. */
const k8sAuditReceiver = z
  .object({
    /** HOST:PORT to listen on; empty (the default) leaves the receiver off. */
    endpoint: endpointOrOff.default(''),
    /** Largest EventList body accepted, after decompression. */
    maxRequestBytes: size.default(`${DEFAULT_K8S_AUDIT_MAX_REQUEST_BYTES}B`),
    auth: auth.optional(),
    tls: tls.optional(),
    /** Events of one user starting in the same window of this length make one chain. */
    chainWindow: duration.default('1m').refine((ms) => ms > 0, 'must be longer than 0'),
  })
  .strict()
  .default({});

const identityRule = z
  .object({
    from: z.enum(['span', 'resource']),
    attribute: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    pattern: z
      .string()
      .refine((p) => {
        try {
          new RegExp(p);
          return true;
        } catch {
          return false;
        }
      }, 'is not a valid regular expression')
      .optional(),
    kind: z.string().min(1),
    prefix: z.string().optional(),
    displayNameAttribute: z.string().optional(),
  })
  .strict();

const forward = z
  .object({
    endpoint: z.string().min(1),
    protocol: z.enum(['grpc', 'http']).default('grpc'),
    headers: z.record(z.string()).optional(),
    compression: z.enum(['none', 'gzip']).optional(),
    timeout: duration.default('10s'),
    /** Requests held in memory for this downstream. */
    queueSize: z.number().int().positive().default(1000),
    /** Directory for the on-disk spool used during outages; no spool when absent. */
    spoolPath: z.string().optional(),
    /** Largest spool size. */
    spoolMaxBytes: size.default('1GiB'),
    /** Bytes held in memory for this downstream (default 256MiB). */
    queueMaxBytes: size.optional(),
    /** Size at which the spool starts a new segment file (default 16MiB). */
    spoolSegmentBytes: size.optional(),
    /** How long stopping keeps sending the memory queue before spooling the rest (default 5s). */
    drainTimeout: duration.optional(),
    /** Backoff after retryable failures (defaults in processor/src/forward/README.md). */
    retry: z
      .object({
        /** First wait after a retryable failure (default 1s). */
        initialInterval: duration.optional(),
        /** Cap of the exponential backoff (default 30s). */
        maxInterval: duration.optional(),
        /** Give up on a request after retrying this long; 0 never gives up (default 0). */
        maxElapsed: duration.optional(),
        /** Cap on a downstream's Retry-After / RetryInfo (default 5m). */
        maxRetryAfter: duration.optional(),
      })
      .strict()
      .optional(),
    tls: z
      .object({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional(), insecure: z.boolean().default(false) })
      .strict()
      .optional(),
  })
  .strict()
  // Into the forwarder's own shape (ForwardTargetConfig): durations named in milliseconds.
  .transform(({ drainTimeout, retry, ...rest }) => ({
    ...rest,
    ...(drainTimeout !== undefined ? { drainTimeoutMs: drainTimeout } : {}),
    ...(retry
      ? {
          retry: {
            ...(retry.initialInterval !== undefined ? { initialIntervalMs: retry.initialInterval } : {}),
            ...(retry.maxInterval !== undefined ? { maxIntervalMs: retry.maxInterval } : {}),
            ...(retry.maxElapsed !== undefined ? { maxElapsedMs: retry.maxElapsed } : {}),
            ...(retry.maxRetryAfter !== undefined ? { maxRetryAfterMs: retry.maxRetryAfter } : {}),
          },
        }
      : {}),
  }));

/** Default identity rules, in order (processor/README.md, "Identity"): the processor's own list. */
export { DEFAULT_IDENTITY_RULES };

export const configSchema = z
  .object({
    receivers: z
      .object({
        grpc: receiver('127.0.0.1:4317'),
        http: receiver('127.0.0.1:4318'),
        k8sAudit: k8sAuditReceiver,
      })
      .strict()
      .default({}),
    api: z
      .object({
        endpoint: endpoint.default('127.0.0.1:8080'),
        /** Bearer token required by the API and UI when set. */
        token: z.string().min(1).optional(),
        tls: tls.optional(),
      })
      .strict()
      .default({}),
    storage: z
      .object({
        /** SQLite database file; with `postgres`, the ingest journal's place (`<path>.journal/`). */
        path: z.string().min(1).default('./data/conduct.db'),
        /** PostgreSQL instead of SQLite for chains, identities and detection state. */
        postgres: z
          .object({
            /** `postgres://user:password@host:port/database`; the password may come from `${env:NAME}`. */
            url: z
              .string()
              .min(1)
              .refine((u) => /^postgres(ql)?:\/\//.test(u), 'must be a postgres:// or postgresql:// URL'),
          })
          .strict()
          .optional(),
        /** Calls and chains older than this (event time) are deleted in the background. */
        retention: duration.default('7d'),
        /**
         * Closed alerts (a verdict given, or superseded) last seen longer ago than this (event time)
         * are deleted in the background, with their held chains and delivered outbox entries; open
         * ones and those with deliveries not done are kept. Longer than `retention`: alerts are what
         * users come back to. `0` keeps every alert.
         */
        alertRetention: duration.default('90d'),
      })
      .strict()
      .default({}),
    /** Several instances on one PostgreSQL (backend/src/cluster/README.md); no effect on SQLite. */
    cluster: clusterSchema.default({}),
    stitching: z
      .object({
        /**
         * A trace is complete when no span arrived for it for this long (processing time). Above the
         * OpenTelemetry SDK's default export delay (5s), so that every service's spans of a trace
         * arrive before it completes.
         */
        idle: duration.default(`${DEFAULT_IDLE_MS}ms`),
        /** The event-time watermark trails the newest span by this much. */
        lateness: duration.default(`${DEFAULT_LATENESS_MS}ms`),
        /** Spans held in pending traces; when full, the oldest traces are completed early. */
        maxPendingSpans: z.number().int().positive().default(DEFAULT_MAX_PENDING_SPANS),
        /**
         * A later part of a completed trace that arrives within this long joins the stored trace;
         * later, it is stored as a fragment of its own (counted). Matches the Collector's default
         * retry limit (5m).
         */
        lateTraceWindow: duration.default(`${DEFAULT_LATE_TRACE_WINDOW_MS}ms`),
      })
      .strict()
      .default({}),
    learning: learningSchema.default({}),
    detection: detectionSchema.default({}),
    identity: z
      .object({
        rules: z.array(identityRule).default(() => DEFAULT_IDENTITY_RULES.map((r) => ({ ...r }))),
      })
      .strict()
      .default({}),
    policies: z.array(policySchema).default([]),
    alerts: z
      .object({
        /** Link to the trace; `{traceId}` and `{spanId}` are replaced. */
        traceUrl: z.string().default('http://localhost:16686/trace/{traceId}'),
        sinks: z.array(sinkSchema).default([]),
        /** Delivered entries of the alert outbox are kept this long (wall time; the API shows them), then pruned. Dead ones stay. */
        deliveryRetention: duration.default('7d'),
      })
      .strict()
      .default({}),
    forward: z.array(forward).default([]),
    /** Caps against cardinality attacks and overload (docs/reliability.md). */
    limits: z
      .object({
        ...cardinalityLimitFields,
        /** Heap in use above which the receivers answer "overloaded" (429/503, UNAVAILABLE); 0 turns the check off. */
        maxMemoryBytes: size.default(`${DEFAULT_MAX_MEMORY_BYTES}B`),
      })
      .strict()
      .default({}),
    log: z
      .object({
        /** Lowest level written (`--log-level` overrides it). */
        level: z.enum(LOG_LEVELS).default(DEFAULT_LOG_LEVEL),
        /** `json`, `console`, or `auto`: console when standard error is a terminal, JSON otherwise. */
        format: z.enum(LOG_FORMATS).default(DEFAULT_LOG_FORMAT),
      })
      .strict()
      .default({}),
  })
  .strict();

/** The configuration as the file gives it (durations as strings). */
export type ConfigInput = z.input<typeof configSchema>;
/** The validated configuration with defaults applied and durations in milliseconds. */
export type Config = z.output<typeof configSchema>;
export type SinkConfig = SinkSettings;
export type ForwardConfig = z.output<typeof forward>;
export type { PolicyConfig };

/** The schemas of a duration and of a size value (for tests that find every such key). */
export { durationSchema, sizeSchema };
