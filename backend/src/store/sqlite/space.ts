import Database from 'better-sqlite3';

/** Pages of one table or index (`dbstat`), overflow pages of its rows included. */
export interface ObjectSpace {
  /** Table or index name (SQLite's own, e.g. `sqlite_autoindex_strings_1`, for implicit indexes). */
  name: string;
  /** The table an index belongs to; the table itself for a table. */
  table: string;
  pages: number;
  bytes: number;
  /** Bytes of its pages that hold nothing (free space inside used pages). */
  unusedBytes: number;
}

/** How a database file's pages are used: per table and index, and free pages waiting for reuse. */
export interface SpaceReport {
  pageSize: number;
  /** Pages of the main file (in use plus free). */
  pageCount: number;
  /** Pages on the free list: freed by deletes, reused by later writes before the file grows. */
  freePages: number;
  /** Largest first. */
  objects: ObjectSpace[];
}

/**
 * Where the pages of an open database go, from SQLite's `dbstat` virtual table (compiled into
 * better-sqlite3). Reads every page once: for tools and benchmarks, not for the hot path.
 */
export function spaceReport(db: Database.Database): SpaceReport {
  const rows = db
    .prepare(
      `SELECT d.name AS name, coalesce(m.tbl_name, d.name) AS tbl, count(*) AS pages, sum(d.pgsize) AS bytes, sum(d.unused) AS unused
       FROM dbstat d LEFT JOIN sqlite_schema m ON m.name = d.name
       GROUP BY d.name ORDER BY bytes DESC, d.name`,
    )
    .all() as Array<{ name: string; tbl: string; pages: number; bytes: number; unused: number }>;
  return {
    pageSize: db.pragma('page_size', { simple: true }) as number,
    pageCount: db.pragma('page_count', { simple: true }) as number,
    freePages: db.pragma('freelist_count', { simple: true }) as number,
    objects: rows.map((r) => ({ name: r.name, table: r.tbl, pages: r.pages, bytes: r.bytes, unusedBytes: r.unused })),
  };
}

/**
 * {@link spaceReport} of a database file another process may be writing (WAL mode): opened read
 * only, so it never takes a write lock or checkpoints; the report is one consistent snapshot.
 */
export function readSpaceReport(path: string): SpaceReport {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return db.transaction(() => spaceReport(db))();
  } finally {
    db.close();
  }
}
