import type Database from 'better-sqlite3';
import { createRowInserter } from './multi-row.js';
import { createKeySweep, type KeySweep } from './key-sweep.js';

/** Default of StoreOptions.traceKeysMergeAt: keys in `recent.trace_keys_recent` that start a merge into `trace_keys`. */
export const TRACE_KEYS_MERGE_AT = 131_072;

/** The in-memory database, attached to the store's connection, that holds the newest parts' keys. */
const RECENT = 'recent';

/**
 * The parts of one trace by its id (bind the id twice): the trace-id index of `trace_parts` is
 * `trace_keys` and the in-memory `recent.trace_keys_recent`, see createTraceKeys. Every read
 * through it checks the part's own trace id as well (a third bind): a key retention left behind
 * for a sweep (key-sweep.ts) may name a seq that a part of another trace took again.
 */
export const PARTS_OF_TRACE = `SELECT seq FROM trace_keys WHERE trace_id = ? UNION ALL SELECT seq FROM ${RECENT}.trace_keys_recent WHERE trace_id = ?`;

/** What the store does with the trace keys; every call runs in its caller's transaction. */
export interface TraceKeys {
  /** Keys of parts with consecutive seqs from `firstSeq`, one per id; merges when enough wait. */
  add(ids: readonly Buffer[], firstSeq: number): void;
  /** Drops the keys of deleted parts, each by its trace id and seq. */
  drop(keys: ReadonlyArray<readonly [traceId: Buffer, seq: number]>): void;
  /**
   * A statement that drops the keys of the parts a WHERE clause on `trace_parts` selects, bound with
   * its parameters: run it just before deleting those parts with the same clause, in one
   * transaction, and it takes their keys in two statements (the file's and the recent ones).
   */
  dropping(where: string): (...params: unknown[]) => void;
  /** The sweep of the keys retention leaves behind (key-sweep.ts). */
  readonly sweep: KeySweep;
  /**
   * After parts were deleted and before new ones go in: keeps the merged range at or below the
   * newest part's seq. `trace_parts` gives a new row the largest seq plus one, so once the newest
   * parts are gone a new one could take a seq inside the range, and its key would not be found
   * again when the recent keys are read back from `trace_parts` at the next open. Once no part is
   * left, drops every key.
   */
  settle(): void;
  /** Drops what a write that threw left queued. */
  clear(): void;
}

/**
 * The trace-id index of `trace_parts` in two parts (migrations 095 and 097). Parts up to
 * `trace_keys_upto.seq` have their (trace id, seq) in `trace_keys`; newer parts have theirs in
 * `trace_keys_recent` of an in-memory database attached to the connection, which a write adds to
 * and which is read back from `trace_parts` (the parts past that seq) when the store opens. Once it
 * holds `mergeAt` keys, the write that put them there moves them, in key order, into `trace_keys`
 * and the seq up to its newest part, so that a merge writes each of its leaves about once instead
 * of once per trace.
 *
 * Trace ids are random, so a write's keys land all over the recent table as well: in the file
 * (095) it took a page per key once it held a few thousand, 531 of the 675 WAL pages a commit
 * wrote on a grown file (bench/README.md, "Recent trace keys in memory"). In memory they cost no
 * WAL page, no checkpoint copy and no cache space of the file; the attached database takes part
 * in the connection's transactions, so a write that rolls back takes its keys back with it.
 *
 * This holds because one process writes a storage path (lock.ts): another connection that wrote
 * parts would not see them in this one's recent keys.
 */
export function createTraceKeys(db: Database.Database, mergeAt: number, sweepMin: number): TraceKeys {
  db.exec(`ATTACH DATABASE ':memory:' AS ${RECENT}`);
  db.exec(`CREATE TABLE ${RECENT}.trace_keys_recent (trace_id BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (trace_id, seq)) WITHOUT ROWID`);
  db.prepare(
    `INSERT INTO ${RECENT}.trace_keys_recent (trace_id, seq) SELECT trace_id, seq FROM trace_parts WHERE seq > (SELECT seq FROM trace_keys_upto)`,
  ).run();
  const insert = createRowInserter(db, `${RECENT}.trace_keys_recent (trace_id, seq)`, 2);
  const countRecent = db.prepare(`SELECT count(*) FROM ${RECENT}.trace_keys_recent`).pluck();
  // OR IGNORE: a key retention left behind may name the seq a new part of the same trace took again.
  const merge = [
    db.prepare(`INSERT OR IGNORE INTO trace_keys (trace_id, seq) SELECT trace_id, seq FROM ${RECENT}.trace_keys_recent ORDER BY trace_id, seq`),
    db.prepare(`DELETE FROM ${RECENT}.trace_keys_recent`),
  ];
  const moveTo = db.prepare('UPDATE trace_keys_upto SET seq = ?');
  const dropKey = [
    db.prepare('DELETE FROM trace_keys WHERE trace_id = ? AND seq = ?'),
    db.prepare(`DELETE FROM ${RECENT}.trace_keys_recent WHERE trace_id = ? AND seq = ?`),
  ];
  const lower = db.prepare(
    'UPDATE trace_keys_upto SET seq = newest FROM (SELECT coalesce(max(seq), 0) AS newest FROM trace_parts) WHERE seq > newest',
  );
  const empty = db.prepare('SELECT NOT EXISTS (SELECT 1 FROM trace_parts)').pluck();
  const dropAll = [db.prepare('DELETE FROM trace_keys'), db.prepare(`DELETE FROM ${RECENT}.trace_keys_recent`)];
  const sweep = createKeySweep(db, { name: 'trace_keys', table: 'trace_keys', columns: ['trace_id', 'seq'], rows: 'trace_parts', min: sweepMin });
  const every = Math.max(1, Math.floor(mergeAt));
  let recent = Number(countRecent.get());
  return {
    add(ids, firstSeq) {
      for (let i = 0; i < ids.length; i++) {
        insert.values.push(ids[i], firstSeq + i);
        insert.queued();
      }
      insert.flush();
      recent += ids.length;
      if (recent < every) return;
      for (const statement of merge) statement.run();
      moveTo.run(firstSeq + ids.length - 1);
      recent = 0;
    },
    drop(keys) {
      for (const [traceId, seq] of keys) for (const statement of dropKey) statement.run(traceId, seq);
    },
    dropping(where) {
      const statements = ['trace_keys', `${RECENT}.trace_keys_recent`].map((table) =>
        db.prepare(`DELETE FROM ${table} WHERE (trace_id, seq) IN (SELECT trace_id, seq FROM trace_parts WHERE ${where})`),
      );
      return (...params) => {
        for (const statement of statements) statement.run(...params);
      };
    },
    sweep,
    settle() {
      lower.run();
      if (empty.get() !== 1) return;
      for (const statement of dropAll) statement.run();
      sweep.cleared();
    },
    // A write that threw rolled back with its transaction, so the count may be off by that write's
    // keys (or a merge's): that only moves the next merge, never a key.
    clear() {
      insert.clear();
    },
  };
}
