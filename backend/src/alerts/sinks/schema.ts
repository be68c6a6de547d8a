import { z } from 'zod';
import { findingSpanSinkSchema } from './finding-span.js';
import { jsonlSinkSchema } from './jsonl.js';
import { ocsfSinkSchema } from './ocsf.js';
import { otlpLogsSinkSchema } from './otlp-logs.js';
import { webhookSinkSchema } from './webhook.js';

/**
 * One `alerts.sinks[]` entry: a union on `type` of the pieces each sink file owns, so a key of
 * one type (`secret` on `otlp-logs`) is refused by name and a missing required key (`endpoint`
 * of a webhook) is reported under its sink's index.
 */
export const sinkSchema = z.discriminatedUnion('type', [otlpLogsSinkSchema, findingSpanSinkSchema, webhookSinkSchema, ocsfSinkSchema, jsonlSinkSchema]);

/** The sink types, in the order the config table lists them. */
export const SINK_TYPES = sinkSchema.options.map((o) => o.shape.type.value);

/** A sink's settings as the config gives them to `createSinks` (durations in milliseconds). */
export type SinkSettings = z.output<typeof sinkSchema>;
