/**
 * Ids of recently completed traces with the processing time of their latest completion, forgotten
 * oldest first. The stitcher notes every completed trace here (to tell late spans), so it is
 * written for that rate: an id maps to the number of its latest entry (a small integer, no object),
 * and the entries are an append-only log of ids and times whose numbers are their positions plus
 * `base`. A map of `{ seq, ms }` objects was an object per completed trace that lived until the
 * id was forgotten (100,000 completions later by default), 2-3% of the pipeline thread.
 *
 * An id completed again gets a new entry; the older one is stale (the map holds the newer number)
 * and is skipped when reached.
 */
export class CompletedIds {
  private readonly latest = new Map<string, number>();
  private ids: string[] = [];
  /** Processing time of each entry (doubles in one array, not one boxed number per entry). */
  private times: number[] = [];
  /** First entry not yet stepped past. */
  private head = 0;
  /** Number of the entry at position 0. */
  private base = 0;

  /** Ids remembered. */
  get size(): number {
    return this.latest.size;
  }

  /** Processing time of the latest completion of `id`, or undefined when not remembered. */
  timeOf(id: string): number | undefined {
    const seq = this.latest.get(id);
    return seq === undefined ? undefined : this.times[seq - this.base];
  }

  /** Notes a completion of `id` at `ms`, the latest. */
  note(id: string, ms: number): void {
    this.latest.set(id, this.base + this.ids.length);
    this.ids.push(id);
    this.times.push(ms);
  }

  /** Forgets the id whose latest completion is the oldest; returns that completion's time. Not when empty. */
  forgetOldest(): number {
    for (;;) {
      const at = this.head++;
      const id = this.ids[at]!;
      if (this.latest.get(id) === this.base + at) {
        this.latest.delete(id);
        return this.times[at]!;
      }
    }
  }

  /**
   * Drops the stepped-past front once it is most of the log, and keeps only the latest entries
   * once stale ones outnumber the ids several times over (ids completed again and again).
   */
  compact(): void {
    const count = this.latest.size;
    if (this.ids.length - this.head > 4 * count + 1_024) {
      const ids: string[] = [];
      const times: number[] = [];
      const base = this.base + this.ids.length;
      for (let at = this.head; at < this.ids.length; at++) {
        const id = this.ids[at]!;
        if (this.latest.get(id) !== this.base + at) continue;
        this.latest.set(id, base + ids.length);
        ids.push(id);
        times.push(this.times[at]!);
      }
      this.ids = ids;
      this.times = times;
      this.base = base;
      this.head = 0;
    } else if (this.head > 1_024 && this.head * 2 > this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.times = this.times.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
  }
}
