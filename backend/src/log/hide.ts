import type { DestinationStream } from 'pino';

/** A text a log line must not show, and what to show in its place. */
export interface HiddenText {
  text: string;
  as: string;
}

/**
 * A destination that replaces each hidden text in every string of a JSON log line (message and
 * fields) before passing the line on. Used for configuration values read from environment
 * variables, which may be secrets; log lines are few (start, stop, failures), so each is parsed.
 */
export function createHidingStream(next: DestinationStream, hidden: readonly HiddenText[]): DestinationStream {
  if (hidden.length === 0) return next;
  const hideIn = (s: string) => hidden.reduce((acc, h) => (acc.includes(h.text) ? acc.split(h.text).join(h.as) : acc), s);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return hideIn(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return {
    write(line: string) {
      let entry: unknown;
      try {
        entry = JSON.parse(line);
      } catch {
        return next.write(hideIn(line));
      }
      return next.write(`${JSON.stringify(walk(entry))}\n`);
    },
  };
}
