/** Longest text taken from an audit record field (principals, names, targets). */
export const MAX_FIELD_LENGTH = 256;
/** Longest user agent taken. */
export const MAX_AGENT_LENGTH = 512;

/** A record field as bounded text: strings only, cut to `max`; undefined when absent or empty. */
export function field(value: unknown, max = MAX_FIELD_LENGTH): string | undefined {
  if (typeof value !== 'string') return undefined;
  const t = value.length > max ? value.slice(0, max) : value;
  return t.trim() === '' ? undefined : t;
}

/** An RFC 3339 time as ms since the epoch; undefined when it does not parse. */
export function timeOf(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length > 64) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
