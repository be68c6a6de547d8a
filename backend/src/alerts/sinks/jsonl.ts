import { createLineWriter } from './line-writer.js';
import type { Sink } from './types.js';

/** `jsonl`: each event as one line: the alert object plus `"event": "alert" | "feedback"`. */
export function createJsonlSink(opts: { path: string }): Sink<string> {
  const writer = createLineWriter(opts.path);
  return {
    accepts: ['alert', 'feedback'],
    prepare: (event) => `${JSON.stringify({ event: event.kind, ...event.alert })}\n`,
    send: (line) => writer.write(line),
  };
}
