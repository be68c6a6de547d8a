import type Database from 'better-sqlite3';
import { decodeCalls, type TextTable } from '../call-codec.js';

/** Default of {@link TextSweepOptions.minGrowth}. */
export const DEFAULT_TEXT_SWEEP_MIN_GROWTH = 10_000;

export interface TextSweepOptions {
  /**
   * A sweep starts once `strings` has this many rows more than after the last sweep (and at least
   * an eighth more), and retention has deleted chains since: texts are freed in bulk, not one by one.
   */
  minGrowth?: number;
}

/** What the sweep needs of the text table: its size, ids handed out while it marks, and its memos. */
export interface SweptTexts {
  /** Rows of `strings` as the table counts them. */
  rows(): number;
  /** Calls `mark` with every id the table hands out from now on (undefined stops it). */
  watch(mark: ((id: number) => void) | undefined): void;
  /** Forgets both memos and counts the rows again (after rows were deleted). */
  reset(): void;
}

/**
 * Frees the rows of `strings` that no stored chain refers to any more, in bounded steps (mark,
 * then sweep), so retention frees the texts of identities and operations that are gone and the
 * file stops growing under id churn: SQLite reuses the freed pages, no VACUUM.
 *
 * Marking reads the chains tables in `seq` order a window at a time and sets a bit for each text
 * id a row refers to (identity, kind, display name, and the ids inside its calls). Chains written
 * while it marks are either read later by it or, for ids handed out after it started, marked as
 * they are handed out (`watch`): a text a new chain uses again is never deleted under it. Then
 * the unmarked ids up to the highest one when it started are deleted, a window at a time.
 * Ids are never handed out again below the highest id (SQLite's rowid), and the memos are
 * forgotten after a delete, so no memo can name a deleted or renumbered text.
 */
export function createTextSweep(db: Database.Database, texts: SweptTexts, options: TextSweepOptions = {}) {
  const minGrowth = Math.max(1, options.minGrowth ?? DEFAULT_TEXT_SWEEP_MIN_GROWTH);
  const maxId = db.prepare('SELECT coalesce(max(id), 0) FROM strings').pluck();
  const minId = db.prepare('SELECT coalesce(min(id), 1) FROM strings').pluck();
  const textChains = db.prepare('SELECT seq, calls FROM chains_text WHERE seq > ? ORDER BY seq LIMIT ?');
  const numberedChains = db.prepare('SELECT seq, identity, kind, display_name, calls FROM chains WHERE seq > ? ORDER BY seq LIMIT ?');
  const idsAfter = db.prepare('SELECT id FROM strings WHERE id > ? AND id <= ? ORDER BY id LIMIT ?').pluck();
  const deleteId = db.prepare('DELETE FROM strings WHERE id = ?');

  interface Mark {
    phase: 'text' | 'numbered' | 'delete';
    /** Last seq read (marking) or last id looked at (deleting). */
    cursor: number;
    low: number;
    high: number;
    bits: Uint8Array;
  }
  let mark: Mark | undefined;
  let rowsAfterSweep = texts.rows();
  let chainsDeleted = false;

  const set = (id: number) => {
    if (!mark || id < mark.low || id > mark.high) return;
    const i = id - mark.low;
    mark.bits[i >> 3]! |= 1 << (i & 7);
  };
  const isSet = (m: Mark, id: number) => {
    const i = id - m.low;
    return (m.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  };
  /** A text table that only marks the ids a row's calls refer to. */
  const marking: TextTable = {
    idOf: () => -1,
    textOf(id) {
      set(id);
      return '';
    },
  };
  const NO_CHAIN = { traceId: '', identity: '', identityKind: '', startMs: 0 };
  const markCalls = (calls: string | Buffer) => {
    if (typeof calls !== 'string') decodeCalls(calls, NO_CHAIN, marking);
  };

  const start = () => {
    const low = minId.get() as number;
    const high = maxId.get() as number;
    mark = { phase: 'text', cursor: 0, low, high, bits: new Uint8Array(((high - low + 1) >> 3) + 1) };
    texts.watch(set);
  };

  /**
   * One step of at most `maxRows` rows read or deleted; starts a sweep when one is due.
   * Returns the texts deleted. Run it inside the caller's transaction (retention's step).
   */
  const step = (maxRows: number, deletedChains: number): number => {
    if (deletedChains > 0) chainsDeleted = true;
    if (!mark) {
      const growth = texts.rows() - rowsAfterSweep;
      if (!chainsDeleted || growth < Math.max(minGrowth, rowsAfterSweep / 8)) return 0;
      start();
    }
    const m = mark!;
    const rows = Math.max(1, Math.floor(maxRows));
    if (m.phase === 'text') {
      const read = textChains.all(m.cursor, rows) as Array<{ seq: number; calls: string | Buffer }>;
      for (const r of read) markCalls(r.calls);
      m.cursor = read.at(-1)?.seq ?? m.cursor;
      if (read.length < rows) Object.assign(m, { phase: 'numbered', cursor: 0 });
      return 0;
    }
    if (m.phase === 'numbered') {
      const read = numberedChains.all(m.cursor, rows) as Array<{ seq: number; identity: number; kind: number; display_name: number | null; calls: Buffer }>;
      for (const r of read) {
        set(r.identity);
        set(r.kind);
        if (r.display_name !== null) set(r.display_name);
        markCalls(r.calls);
      }
      m.cursor = read.at(-1)?.seq ?? m.cursor;
      if (read.length < rows) Object.assign(m, { phase: 'delete', cursor: m.low - 1 });
      return 0;
    }
    const ids = idsAfter.all(m.cursor, m.high, rows) as number[];
    let deleted = 0;
    for (const id of ids) {
      if (isSet(m, id)) continue;
      deleteId.run(id);
      deleted++;
    }
    m.cursor = ids.at(-1) ?? m.cursor;
    if (ids.length < rows) {
      mark = undefined;
      texts.watch(undefined);
      chainsDeleted = false;
    }
    if (deleted > 0 || !mark) texts.reset();
    if (!mark) rowsAfterSweep = texts.rows();
    return deleted;
  };

  return {
    step,
    /** Whether a sweep is under way (marking or deleting). */
    active: () => mark !== undefined,
  };
}
