import type Database from 'better-sqlite3';

/** Default of StoreOptions.keySweepMin: keys left behind that start a sweep at least. */
export const KEY_SWEEP_MIN = 65_536;

export interface KeySweepOptions {
  /** The sweep's row in `key_sweeps`, which counts the keys left behind (migration 097). */
  name: string;
  /** The keys' table (`WITHOUT ROWID`); its primary key is `columns`. */
  table: string;
  /** The primary key's columns in order; `seq` is one of them. */
  columns: readonly string[];
  /** The table of the rows the keys name by `seq`, its `INTEGER PRIMARY KEY`. */
  rows: string;
  /** Keys left behind that start a sweep at least; a sweep also waits for half the rows' seq span. */
  min: number;
}

/** The sweep of one key table; every call runs in its caller's transaction (retention's step). */
export interface KeySweep {
  /** Counts keys whose rows were deleted without them. */
  leftBehind(keys: number): void;
  /** One step of at most `keys` keys read, when a sweep is due or under way; true while one is. */
  step(keys: number): boolean;
  /** Forgets the count and any sweep under way: the caller dropped every key. */
  cleared(): void;
}

/**
 * Deletes, in bounded steps, the keys that retention left behind. Retention deletes rows from the
 * front of their append order; deleting each one's key with it dirtied a page of the key table per
 * key when keys are random (trace ids): 3.3 µs per chain retention deleted and most of its commit
 * (bench/README.md, "Retention without a page per key"). Instead retention counts the keys it
 * leaves behind, and once they are at least `min` and half the rows' seq span, a sweep walks the key
 * table in key order, a window a step, deleting the keys below the oldest row's seq: each page is
 * written once a sweep, for the many keys it holds.
 *
 * A key left behind names a seq that no row holds any more, or (once the table hands seqs out again
 * after its newest rows went) a row of another key; readers through the keys check the row's own
 * columns, so such a key only takes space until a sweep. A key of a row kept past older deleted
 * ones (retention keeps young rows at the front) stays until that row goes too and the oldest seq
 * passes it. A step deletes only keys below the oldest row's seq as its own transaction sees it, so
 * a step that rolls back (its place in memory kept) can only leave keys for the next sweep.
 */
export function createKeySweep(db: Database.Database, options: KeySweepOptions): KeySweep {
  const { name, table, rows, min } = options;
  const cols = options.columns.join(', ');
  const marks = options.columns.map(() => '?').join(', ');
  const stale = `seq < (SELECT coalesce(min(seq), 9007199254740991) FROM ${rows})`;
  db.prepare('INSERT OR IGNORE INTO key_sweeps (name, stale) VALUES (?, 0)').run(name);
  const count = db.prepare('SELECT stale FROM key_sweeps WHERE name = ?').pluck();
  const add = db.prepare('UPDATE key_sweeps SET stale = max(0, stale + ?) WHERE name = ?');
  const reset = db.prepare('UPDATE key_sweeps SET stale = 0 WHERE name = ?');
  // Each of min and max on its own (a query with both scans the table instead of its ends).
  const span = db.prepare(`SELECT coalesce((SELECT max(seq) FROM ${rows}) - (SELECT min(seq) FROM ${rows}) + 1, 0)`).pluck();
  // The key `keys` on from the cursor (or from the start): the end of the step's window.
  const firstEnd = db.prepare(`SELECT ${cols} FROM ${table} ORDER BY ${cols} LIMIT 1 OFFSET ?`).raw();
  const nextEnd = db.prepare(`SELECT ${cols} FROM ${table} WHERE (${cols}) > (${marks}) ORDER BY ${cols} LIMIT 1 OFFSET ?`).raw();
  const within = db.prepare(`DELETE FROM ${table} WHERE (${cols}) > (${marks}) AND (${cols}) <= (${marks}) AND ${stale}`);
  const upTo = db.prepare(`DELETE FROM ${table} WHERE (${cols}) <= (${marks}) AND ${stale}`);
  const after = db.prepare(`DELETE FROM ${table} WHERE (${cols}) > (${marks}) AND ${stale}`);
  const all = db.prepare(`DELETE FROM ${table} WHERE ${stale}`);
  /** The sweep under way: the last key its windows reached (none yet), and the count when it started. */
  let sweep: { cursor: unknown[] | undefined; counted: number } | undefined;
  return {
    leftBehind(keys) {
      if (keys > 0) add.run(keys, name);
    },
    step(keys) {
      if (!sweep) {
        const left = Number(count.get(name));
        if (left < min || left < Number(span.get()) / 2) return false;
        sweep = { cursor: undefined, counted: left };
      }
      const window = Math.max(1, Math.floor(keys));
      const { cursor } = sweep;
      const end = (cursor ? nextEnd.get(...cursor, window - 1) : firstEnd.get(window - 1)) as unknown[] | undefined;
      if (end) {
        if (cursor) within.run(...cursor, ...end);
        else upTo.run(...end);
        sweep.cursor = end;
        return true;
      }
      if (cursor) after.run(...cursor);
      else all.run();
      // Keys left behind the cursor while it swept wait for the next sweep.
      add.run(-sweep.counted, name);
      sweep = undefined;
      return false;
    },
    cleared() {
      reset.run(name);
      sweep = undefined;
    },
  };
}
