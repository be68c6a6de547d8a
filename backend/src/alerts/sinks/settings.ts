import { z } from 'zod';
import { durationSchema } from '../../config/duration.js';
import { SEVERITIES } from '../model.js';

/**
 * The parts of an `alerts.sinks[]` entry every sink type shares: its name and how its worker
 * delivers (deadline, retries, queue, lowest severity). Each sink file adds its own fields to
 * these and owns that schema piece; `schema.ts` joins the pieces into one union on `type`.
 */
export const sinkDeliveryFields = {
  /** Name of the sink in metrics (`sink` label) and logs; defaults to the type (`webhook`, `webhook-2`, ...). */
  name: z.string().min(1).max(64).optional(),
  /** Deadline of one delivery attempt (default 10s). */
  timeout: durationSchema.optional(),
  /** Further attempts after a failed delivery before the alert is given up (and counted); default 5. */
  retries: z.number().int().nonnegative().optional(),
  /** Delay before the first retry, doubled per retry with jitter (capped at 30s); default 500ms. */
  backoff: durationSchema.optional(),
  /** Alerts held for this sink before new ones are dropped (and counted). */
  queueSize: z.number().int().positive().optional(),
  /** Lowest severity delivered. */
  minSeverity: z.enum(SEVERITIES).optional(),
};

/** Extra HTTP headers or gRPC metadata sent with every delivery. */
export const sinkHeaders = z.record(z.string()).optional();

/** OTLP over gRPC or HTTP (default: from the endpoint, see otlp-transport.ts). */
export const otlpProtocolField = z.enum(['grpc', 'http']).optional();

/** An http:// or https:// URL. */
export const httpUrl = z.string().regex(/^https?:\/\//, 'must be an http:// or https:// URL');
