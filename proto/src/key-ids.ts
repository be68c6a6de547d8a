/**
 * Process-wide ids of attribute keys, for readers of the columnar form (columns.ts), and the
 * letters that tell which families of keys a span has.
 */

// ---- attribute key ids -----------------------------------------------------------------------

/** The id shared by kept keys that are only there to say a key with a presence prefix is present. */
export const PRESENCE_KEY_ID = 0;
/** Most key ids handed out: ids are stored as 16-bit integers. Only kept keys (configuration) get one. */
export const MAX_KEY_IDS = 0xffff;

const keyIds = new Map<string, number>();
const keyNames: string[] = [''];

/** The process-wide id of an attribute key, given on first use (for kept keys and readers' keys). */
export function attributeKeyId(key: string): number {
  let id = keyIds.get(key);
  if (id === undefined) {
    if (keyNames.length > MAX_KEY_IDS) throw new RangeError(`more than ${MAX_KEY_IDS} attribute keys named`);
    id = keyNames.length;
    keyNames.push(key);
    keyIds.set(key, id);
  }
  return id;
}

/** The id of a key named before, without giving one (a key with no id is read by nobody). */
export function knownAttributeKeyId(key: string): number | undefined {
  return keyIds.get(key);
}

/** The key of an id from {@link attributeKeyId} ('' for PRESENCE_KEY_ID). */
export function attributeKeyName(id: number): string {
  return keyNames[id] ?? '';
}

// ---- letters: which families of keys an owner has -------------------------------------------

/** Bits of first characters of attribute keys: one per letter a-z, bit 26 for any other character. */
export const ALL_LETTERS = 0x7ffffff;
/** Set in an owner's letters when it has a key with one of the keep's presence prefixes. */
export const PREFIXED = 1 << 27;

/** The bit of a key's first character (see {@link ALL_LETTERS}). */
export function letterOf(key: string): number {
  const c = key.charCodeAt(0) - 97;
  return c >= 0 && c < 26 ? 1 << c : 1 << 26;
}

