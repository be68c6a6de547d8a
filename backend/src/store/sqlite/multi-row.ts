import type Database from 'better-sqlite3';

/**
 * Rows per statement of a multi-row INSERT, largest first: rows are inserted 64 at a time as they
 * come, the rest at the end with as few statements of 16, 4 and 1 rows as cover them. Each `run()`
 * costs better-sqlite3 a step, a reset and a result object, and SQLite a VDBE program start; a
 * statement of 64 rows pays that once instead of 64 times (bench/README.md, "SQLite store write
 * per batch, third pass").
 */
const FULL = 64;
const REST = [16, 4, 1] as const;

/**
 * Queues rows of a fixed set of columns and inserts them with multi-row statements, in the order
 * they were queued. Rows of a table with an `INTEGER PRIMARY KEY` that bind no key take consecutive
 * rowids within a statement (each new row takes the largest rowid plus one), ending at the one
 * `queued` or `flush` returns.
 *
 * The statements are `INSERT OR FAIL`: a statement that writes several rows and may abort on a
 * constraint makes SQLite keep a statement journal (every page the statement first touches copied
 * to a temporary file, to undo the statement alone), which made a 64-row insert into a file cost
 * twice as much per row as single-row ones; with FAIL an error stops the statement and keeps its
 * earlier rows. Use it only inside a transaction that is rolled back whole when a write throws.
 */
export interface RowInserter {
  /** Values of the queued rows, `columns` per row: push a row's values, then call `queued()`. */
  readonly values: unknown[];
  /** Inserts the queued rows once a full statement's worth is queued: the rowid of the last one, else undefined. */
  queued(): number | undefined;
  /** Inserts every queued row: the rowid of the last one, undefined when none was queued. */
  flush(): number | undefined;
  /** Drops the queued rows (what a write that threw left). */
  clear(): void;
}

/**
 * `into` is `table (a, b, ...)`, `columns` how many it names. `conflict` is the statements' conflict
 * clause: `OR FAIL` (above) by default; `OR REPLACE` for rows that overwrite others with the same
 * key (a key queued twice ends with its last values, as with one statement per row).
 */
export function createRowInserter(db: Database.Database, into: string, columns: number, conflict: 'OR FAIL' | 'OR REPLACE' = 'OR FAIL'): RowInserter {
  const row = `(${new Array<string>(columns).fill('?').join(', ')})`;
  const prepare = (rows: number): Database.Statement => db.prepare(`INSERT ${conflict} INTO ${into} VALUES ${new Array<string>(rows).fill(row).join(', ')}`);
  const full = prepare(FULL);
  // The smaller statements are prepared the first time a write needs them.
  const rest = new Map<number, { statement: Database.Statement; chunk: unknown[] }>();
  const values: unknown[] = [];
  // better-sqlite3 binds an array's elements in order.
  const run = (statement: Database.Statement, bound: unknown[]): number => Number(statement.run(bound).lastInsertRowid);
  return {
    values,
    queued() {
      if (values.length < FULL * columns) return undefined;
      const last = run(full, values);
      values.length = 0;
      return last;
    },
    flush() {
      let last: number | undefined;
      let at = 0;
      while (values.length - at >= FULL * columns) {
        last = run(full, values.slice(at, at + FULL * columns));
        at += FULL * columns;
      }
      for (const size of REST) {
        const n = size * columns;
        while (values.length - at >= n) {
          let r = rest.get(size);
          if (!r) rest.set(size, (r = { statement: prepare(size), chunk: new Array<unknown>(n) }));
          for (let i = 0; i < n; i++) r.chunk[i] = values[at + i];
          last = run(r.statement, r.chunk);
          at += n;
        }
      }
      for (const r of rest.values()) r.chunk.fill(undefined);
      values.length = 0;
      return last;
    },
    clear() {
      values.length = 0;
    },
  };
}
