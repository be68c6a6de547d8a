import type { Attributes } from '@conduct/proto';

/** Longest text conduct copies from a span into a call (names, peers, targets). */
export const MAX_TEXT_LENGTH = 256;
/** Longest user agent kept. */
export const MAX_USER_AGENT_LENGTH = 512;

/**
 * The first present, non-empty value among `keys`, as a trimmed string cut to `max` characters.
 * Attribute values are attacker-controlled: everything read from them goes through here.
 */
export function firstOf(attrs: Attributes, keys: readonly string[], max = MAX_TEXT_LENGTH): string | undefined {
  for (const key of keys) {
    const value = attrs[key];
    if (value === undefined || value === null) continue;
    const text = clean(String(value), max);
    if (text !== '') return text;
  }
  return undefined;
}

/** One attribute as text (see {@link firstOf}); reads the one key without building a list. */
export function text(attrs: Attributes, key: string, max = MAX_TEXT_LENGTH): string | undefined {
  const value = attrs[key];
  if (value === undefined || value === null) return undefined;
  const t = clean(String(value), max);
  return t === '' ? undefined : t;
}

/** Trims, drops control characters and bounds the length. */
export function clean(value: string, max = MAX_TEXT_LENGTH): string {
  // eslint-disable-next-line no-control-regex
  return value.slice(0, max * 2).replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, max);
}

/** True when any attribute key starts with one of the prefixes. */
export function hasPrefix(attrs: Attributes, prefixes: readonly string[]): boolean {
  for (const key in attrs) {
    for (const p of prefixes) if (key.startsWith(p)) return true;
  }
  return false;
}
