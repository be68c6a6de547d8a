/**
 * Items in the order they were last noted, read from the oldest end, kept beside the map that finds
 * them. A Map kept in that order by deleting and setting again would serve, but reading it from
 * its start steps over every slot that deletions emptied and the Map has not compacted yet: under
 * steady load hundreds of thousands, on every read. Here an item noted again gets a new entry at
 * the end; the caller keeps the number `note` returns and tells with it (in `live`) which entry is
 * the item's latest, so older ones are stale and skipped.
 */
export class Recency<T> {
  private items: T[] = [];
  private seqs: number[] = [];
  private head = 0;
  private last = 0;

  /** Notes `item` as the most recent; returns the number of this entry. */
  note(item: T): number {
    const seq = ++this.last;
    this.items.push(item);
    this.seqs.push(seq);
    return seq;
  }

  /** The least recently noted item whose entry is `live`, stepping past stale entries for good. */
  oldest(live: (item: T, seq: number) => boolean): T | undefined {
    while (this.head < this.items.length) {
      const item = this.items[this.head]!;
      if (live(item, this.seqs[this.head]!)) return item;
      this.head++;
    }
    return undefined;
  }

  /**
   * Drops the stepped-past front once it is most of the list, and starts over from `current`
   * (item and latest number, oldest first) once stale entries outnumber the `count` live items
   * several times over (items noted again and again).
   */
  compact(count: number, current: () => Iterable<readonly [T, number]>): void {
    if (this.items.length - this.head > 4 * count + 1_024) {
      this.clear();
      for (const [item, seq] of current()) {
        this.items.push(item);
        this.seqs.push(seq);
      }
    } else if (this.head > 1_024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.seqs = this.seqs.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.items = [];
    this.seqs = [];
    this.head = 0;
  }
}
