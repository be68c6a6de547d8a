import { ALL_LETTERS, letterOf, PREFIXED, type AttrReader } from '@conduct/proto';

export { ALL_LETTERS, letterOf };

/** Longest text conduct copies from a span into a call (names, peers, targets). */
export const MAX_TEXT_LENGTH = 256;
/** Longest user agent kept. */
export const MAX_USER_AGENT_LENGTH = 512;

/**
 * The first present, non-empty value among `keys`, as a trimmed string cut to `max` characters.
 * Attribute values are attacker-controlled: everything read from them goes through here.
 */
export function firstOf(attrs: AttrReader, keys: readonly number[], max = MAX_TEXT_LENGTH): string | undefined {
  for (let i = 0; i < keys.length; i++) {
    const value = attrs.get(keys[i]!);
    if (value === undefined || value === null) continue;
    const text = clean(String(value), max);
    if (text !== '') return text;
  }
  return undefined;
}

/** One attribute as text (see {@link firstOf}); reads the one key without building a list. */
export function text(attrs: AttrReader, key: number, max = MAX_TEXT_LENGTH): string | undefined {
  const value = attrs.get(key);
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

/** Key families by the letter their keys start with (see AttrReader.letters). */
export const DB_KEYS = letterOf('db.');
export const MESSAGING_KEYS = letterOf('messaging.');
export const RPC_KEYS = letterOf('rpc.');
export const GEN_AI_KEYS = letterOf('gen_ai.');
export const HTTP_KEYS = letterOf('http.');
export const HTTP_OR_URL_KEYS = HTTP_KEYS | letterOf('url.');

/** True when a key with one of the presence prefixes (semconv PRESENCE_PREFIXES) is there. */
export function hasPrefix(attrs: AttrReader): boolean {
  return (attrs.letters & PREFIXED) !== 0;
}
