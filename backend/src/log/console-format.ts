import type { DestinationStream } from 'pino';

/** Keys every JSON line has, shown in the line's fixed part rather than as `key=value`. */
const FIXED_KEYS = new Set(['time', 'level', 'name', 'msg']);

/**
 * One JSON log line as a readable one: `2026-12-06T10:05:50.123Z INFO  message key=value ...`.
 * Values that are not plain words are written as JSON strings, so a line stays one line.
 */
export function formatConsoleLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const level = String(entry['level'] ?? '').toUpperCase().padEnd(5);
  const parts = [String(entry['time'] ?? ''), level, String(entry['msg'] ?? '')];
  for (const [key, value] of Object.entries(entry)) {
    if (FIXED_KEYS.has(key) || value === undefined) continue;
    parts.push(`${key}=${fieldText(value)}`);
  }
  return `${parts.join(' ')}\n`;
}

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /^[\w.:/@[\]-]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}

/** A pino destination that writes each line in the console format to `next`. */
export function createConsoleStream(next: DestinationStream): DestinationStream {
  return { write: (line: string) => next.write(formatConsoleLine(line)) };
}
