import type Database from 'better-sqlite3';
import { createKeySweep, type KeySweep } from './key-sweep.js';

/** Default of StoreOptions.chainKeysMergeAt: chains past the keyed ones that start a merge of their keys. */
export const CHAIN_KEYS_MERGE_AT = 16_384;

/**
 * The chains of one identity that ended in a range, newest first, as `chains` rows (bind the
 * identity's number, the range's start and end, and a limit; then the number, start and end
 * again): the keyed ones through `chain_keys`, at most `limit` of them, and the newer ones by a
 * scan of the end of `chains`, which holds fewer than CHAIN_KEYS_MERGE_AT rows. The caller orders
 * and limits the union; the newest `limit` chains are among these. A key counts only when its
 * chain is there with the key's identity and end, and only up to the keyed seq: retention leaves
 * keys behind for a sweep, and one may name a seq the table handed out again (key-sweep.ts).
 */
export const CHAINS_OF_IDENTITY = (columns: string): string =>
  `SELECT ${columns} FROM chains WHERE seq IN
     (SELECT k.seq FROM chain_keys k JOIN chains c ON c.seq = k.seq AND c.identity = k.identity AND c.end_ms = k.end_ms
      WHERE k.identity = ? AND k.end_ms >= ? AND k.end_ms < ? AND k.seq <= (SELECT seq FROM chain_keys_upto)
      ORDER BY k.end_ms DESC, k.seq DESC LIMIT ?)
   UNION ALL SELECT ${columns} FROM chains WHERE seq > (SELECT seq FROM chain_keys_upto) AND identity = ? AND end_ms >= ? AND end_ms < ?`;

/** What the store does with the identity keys of `chains` (migration 096); every call runs in its caller's transaction. */
export interface ChainKeys {
  /** Once a write's chains are in, `last` the seq of its newest: merges when enough chains wait past the keyed ones. */
  added(last: number): void;
  /** The key of a deleted chain; a chain past the keyed ones has none, and this finds nothing. */
  drop(identity: number, endMs: number, seq: number): void;
  /** The sweep of the keys retention leaves behind (key-sweep.ts). */
  readonly sweep: KeySweep;
  /**
   * After chains were deleted and before new ones go in: keeps the keyed range at or below the
   * newest chain's seq. `chains` gives a new row the largest seq plus one, so once the newest
   * chains are gone a new one could take a seq inside the range and have no key. Once no chain is
   * left, drops every key.
   */
  settle(): void;
}

/**
 * The identity index of `chains`, kept for the chains up to `chain_keys_upto.seq` in the table
 * `chain_keys` (identity, end time, seq). An index on `chains (identity, end_ms)` took each write's
 * chains at every identity's place in it, so every commit rewrote one leaf per identity that wrote
 * (54 of 174 WAL pages a commit, fresh file, 4-span traces; bench/README.md, "The identity keys of
 * chains"). Here a write adds no key: once `mergeAt` chains are past the keyed ones, the write that
 * put them there adds their keys in key order and moves the range up to its newest chain, so each
 * identity's leaf is written about once a merge. Reads scan the chains past the range, which is at
 * most `mergeAt` rows (CHAINS_OF_IDENTITY). A replaced trace's chains take their keys with them
 * (`drop`); retention leaves its chains' keys for a sweep, in key order (key-sweep.ts).
 *
 * The range's end lives in the database (`chain_keys_upto`), not in memory: a write or a deletion
 * whose transaction rolls back takes its merge and its moves of the range back with it.
 */
export function createChainKeys(db: Database.Database, mergeAt: number, sweepMin: number): ChainKeys {
  const upto = db.prepare('SELECT seq FROM chain_keys_upto').pluck();
  // OR IGNORE: a key retention left behind may name a seq the table handed out again, and match.
  const merge = db.prepare(
    'INSERT OR IGNORE INTO chain_keys (identity, end_ms, seq) SELECT identity, end_ms, seq FROM chains WHERE seq > ? ORDER BY identity, end_ms, seq',
  );
  const moveTo = db.prepare('UPDATE chain_keys_upto SET seq = ?');
  const dropKey = db.prepare('DELETE FROM chain_keys WHERE identity = ? AND end_ms = ? AND seq = ?');
  const lower = db.prepare(
    'UPDATE chain_keys_upto SET seq = newest FROM (SELECT coalesce(max(seq), 0) AS newest FROM chains) WHERE seq > newest',
  );
  const empty = db.prepare('SELECT NOT EXISTS (SELECT 1 FROM chains)').pluck();
  const dropAll = db.prepare('DELETE FROM chain_keys');
  const sweep = createKeySweep(db, { name: 'chain_keys', table: 'chain_keys', columns: ['identity', 'end_ms', 'seq'], rows: 'chains', min: sweepMin });
  const every = Math.max(1, Math.floor(mergeAt));
  return {
    added(last) {
      const from = Number(upto.get());
      if (last - from < every) return;
      merge.run(from);
      moveTo.run(last);
    },
    drop(identity, endMs, seq) {
      dropKey.run(identity, endMs, seq);
    },
    sweep,
    settle() {
      lower.run();
      if (empty.get() !== 1) return;
      dropAll.run();
      sweep.cleared();
    },
  };
}
