/**
 * Composite keys already built, looked up by their parts in nested maps: the parts' hashes are
 * usually computed already (they are entry keys themselves), so a hit costs a few probes instead of
 * a JSON encoding and the hashing of a new string. Callers walk the levels themselves (no list of
 * parts or closure per lookup). Cleared whenever it holds `max` keys.
 */
export class KeyMemo {
  readonly root = new Map<unknown, unknown>();
  private size = 0;

  constructor(private readonly max: number) {}

  /** The map under `part` in `level`, created when missing. */
  level(level: Map<unknown, unknown>, part: unknown): Map<unknown, unknown> {
    let next = level.get(part) as Map<unknown, unknown> | undefined;
    if (!next) level.set(part, (next = new Map()));
    return next;
  }

  /** Remembers `key` under `part` in `level` (a level of this memo) and returns it. */
  add(level: Map<unknown, unknown>, part: unknown, key: string): string {
    if (this.size >= this.max) {
      // Full: start over; this key is remembered from its next use on.
      this.root.clear();
      this.size = 0;
      return key;
    }
    level.set(part, key);
    this.size++;
    return key;
  }
}
