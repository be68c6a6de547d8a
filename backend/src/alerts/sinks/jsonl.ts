import { createLineWriter } from './line-writer.js';
import { deliveryField } from './formats.js';
import type { Sink } from './types.js';
import { z } from 'zod';
import { sinkDeliveryFields } from './settings.js';

/** `alerts.sinks[]` entry of a `jsonl` sink. */
export const jsonlSinkSchema = z
  .object({
    type: z.literal('jsonl'),
    ...sinkDeliveryFields,
    /** File to append alert lines to; `-` (the default) for stdout. */
    path: z.string().min(1).optional(),
  })
  .strict();

/** `jsonl`: each event as one line: the alert object plus `"event": "alert" | "feedback"`. */
export function createJsonlSink(opts: { path: string }): Sink<string> {
  const writer = createLineWriter(opts.path);
  return {
    accepts: ['alert', 'feedback'],
    prepare: (event) => `${JSON.stringify({ event: event.kind, ...event.alert, ...deliveryField(event) })}\n`,
    send: (line) => writer.write(line),
  };
}
