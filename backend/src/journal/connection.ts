import Database from 'better-sqlite3';

/** Page cache of the journal's connection, KiB. */
export const JOURNAL_CACHE_KIB = 2 * 1024;

/**
 * A connection of the journal's own to the store's file. Journal pages are written once and read
 * again only on replay, so they get a small page cache instead of filling the store's (64 MiB,
 * there for the store's indexes): with 100k pending traces and nothing stored yet that cache held
 * ~60 MB of request bodies. Both connections are used from one thread, one transaction at a time.
 * `:memory:` gives the journal a database of its own, as durable as the in-memory store.
 */
export function openJournalDatabase(path: string, busyTimeoutMs: number): Database.Database {
  const db = new Database(path);
  try {
    if (path !== ':memory:') db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    db.pragma(`cache_size = -${JOURNAL_CACHE_KIB}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
