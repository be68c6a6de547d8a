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

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;

/** Trims, drops control characters and bounds the length. */
export function clean(value: string, max = MAX_TEXT_LENGTH): string {
  // Most values are already clean: short, no control characters, nothing to trim. Return them as
  // they are, without building new strings.
  if (value.length <= max && !hasControlOrEdgeSpace(value)) return value;
  return value.slice(0, max * 2).replace(CONTROL_CHARACTERS, '').trim().slice(0, max);
}

/**
 * True when `clean` could change the value: a control character anywhere, or a character that
 * `trim` removes at either end (every such character is a space, a control character or above
 * U+007F, so only those are looked at closely).
 */
function hasControlOrEdgeSpace(value: string): boolean {
  const n = value.length;
  if (n === 0) return false;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(n - 1);
  if (first <= 0x20 || first >= 0x7f || last <= 0x20 || last >= 0x7f) {
    // Rare: let the full path decide (it is exact for non-ASCII white space too).
    return true;
  }
  for (let i = 1; i < n - 1; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** Bits of first characters of attribute keys: one per letter a-z, bit 26 for any other character. */
export const ALL_LETTERS = 0x7ffffff;

/** The bit of a key's first character (see {@link ALL_LETTERS}). */
export function letterOf(key: string): number {
  const c = key.charCodeAt(0) - 97;
  return c >= 0 && c < 26 ? 1 << c : 1 << 26;
}

/** Key families by the letter their keys start with (see {@link lettersOf}). */
export const DB_KEYS = letterOf('db.');
export const MESSAGING_KEYS = letterOf('messaging.');
export const RPC_KEYS = letterOf('rpc.');
export const GEN_AI_KEYS = letterOf('gen_ai.');
export const HTTP_KEYS = letterOf('http.');
export const HTTP_OR_URL_KEYS = HTTP_KEYS | letterOf('url.');

/**
 * The first characters of an attribute object's keys: a key whose letter is missing is not there,
 * so a whole family of keys (`db.`, `messaging.`, `gen_ai.`) can be skipped unread. One pass over
 * a span's own keys costs about as much as one or two lookups of a key the span lacks, and spans
 * come with many key sets, so most reads of an absent key miss V8's caches.
 */
export function lettersOf(attrs: Attributes): number {
  let letters = 0;
  for (const key in attrs) letters |= letterOf(key);
  return letters;
}

/** True when any attribute key starts with one of the prefixes. */
export function hasPrefix(attrs: Attributes, prefixes: readonly string[]): boolean {
  for (const key in attrs) {
    for (const p of prefixes) if (key.startsWith(p)) return true;
  }
  return false;
}
