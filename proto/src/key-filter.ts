/**
 * The per-key decisions of an {@link AttributeKeep}, shared by both decoders. A decision is looked
 * up in one Map per attribute key (the keys come from the scanner's string table, so the same
 * string object and its cached hash are seen again and again).
 */
import type { AttributeKeep } from './model.js';
import { attributeKeyId, PRESENCE_KEY_ID } from './key-ids.js';

/** What a decoder does with one attribute. */
export const KeyDecision = {
  /** Left out: its value is not decoded. */
  DROP: 0,
  /** Kept with its value. */
  KEEP: 1,
  /** Kept with its value; it also tells that a key with a presence prefix is there. */
  KEEP_PREFIXED: 2,
  /** Outside the kept keys but with a presence prefix: kept only when nothing marks presence yet. */
  PRESENCE: 3,
} as const;
export type KeyDecision = (typeof KeyDecision)[keyof typeof KeyDecision];

/** Decisions remembered per filter at most: keys are attacker-controlled, so the cache is bounded. */
export const MAX_REMEMBERED_KEYS = 4_096;

export class KeyFilter {
  /** Per key: its decision in the low 2 bits, its key id (key-ids.ts) above them. */
  private readonly decisions = new Map<string, number>();
  private readonly prefixes: readonly string[];

  constructor(private readonly keep: AttributeKeep) {
    this.prefixes = keep.presencePrefixes ?? [];
    for (const key of keep.keys) this.decisions.set(key, this.compute(key));
  }

  decide(key: string): KeyDecision {
    return (this.lookup(key) & 3) as KeyDecision;
  }

  /**
   * The decision for `key` (low 2 bits) and, above them, the id a kept key is stored under:
   * its own for a key of `keys`, PRESENCE_KEY_ID for one kept for its prefix, 0 when dropped.
   */
  lookup(key: string): number {
    const known = this.decisions.get(key);
    if (known !== undefined) return known;
    const found = this.compute(key);
    if (this.decisions.size < MAX_REMEMBERED_KEYS) this.decisions.set(key, found);
    return found;
  }

  private compute(key: string): number {
    let prefixed = false;
    for (const p of this.prefixes) {
      if (key.startsWith(p)) {
        prefixed = true;
        break;
      }
    }
    if (this.keep.keys.has(key)) return (attributeKeyId(key) << 2) | (prefixed ? KeyDecision.KEEP_PREFIXED : KeyDecision.KEEP);
    return prefixed ? (PRESENCE_KEY_ID << 2) | KeyDecision.PRESENCE : KeyDecision.DROP;
  }
}

const filters = new WeakMap<AttributeKeep, KeyFilter>();

/** The filter of `keep`, made on first use and then reused; undefined keeps every attribute. */
export function keyFilterOf(keep: AttributeKeep | undefined): KeyFilter | undefined {
  if (keep === undefined) return undefined;
  let filter = filters.get(keep);
  if (filter === undefined) filters.set(keep, (filter = new KeyFilter(keep)));
  return filter;
}
