/**
 * PostgreSQL `text` cannot hold the character U+0000, which span data may carry (every text of a
 * span is the sender's). Texts bound to text columns go through `toColumn` and come back through
 * `fromColumn`: a text with a NUL, or one that begins with the marker U+0001, is stored as the
 * marker followed by the text with U+0000 written as U+0001 '0' and U+0001 as U+0001 '1'. Every
 * other text is stored as it is, so ordinary texts sort and compare as themselves.
 */
const MARK = '\u0001';

export function toColumn(text: string): string {
  if (!text.includes('\u0000') && !text.startsWith(MARK)) return text;
  return MARK + text.replace(/[\u0000\u0001]/g, (c) => (c === '\u0000' ? `${MARK}0` : `${MARK}1`));
}

export function fromColumn(stored: string): string {
  if (!stored.startsWith(MARK)) return stored;
  return stored.slice(1).replace(/\u0001([01])/g, (_, d: string) => (d === '0' ? '\u0000' : MARK));
}

/** `toColumn` for a value that may be absent. */
export function toColumnOrNull(text: string | null | undefined): string | null {
  return text === null || text === undefined ? null : toColumn(text);
}
