import { randomUUID } from 'node:crypto';
import { decodeCalls, type TextTable } from '../call-codec.js';
import { TEXT_SWEEP_LOCK } from './migrations/050-text-sweep.js';
import type { NumberedTexts } from './numbered-texts.js';
import type { Sql } from './sql.js';

/** Default of {@link PostgresTextSweepOptions.minGrowth} (as SQLite's). */
export const DEFAULT_TEXT_SWEEP_MIN_GROWTH = 10_000;
/** A sweep whose instance has not stepped for this long (it died) is started again by another. */
export const TEXT_SWEEP_STALE_MS = 10 * 60 * 1000;

export interface PostgresTextSweepOptions {
  /**
   * A sweep starts once `strings` has had this many ids handed out since the last sweep (and at
   * least an eighth of its rows then), and retention has deleted chains since.
   */
  minGrowth?: number;
}

interface Mark {
  gen: number;
  phase: 'mark' | 'delete';
  /** Last chain seq read (marking) or last text id looked at (deleting). */
  cursor: number;
  low: number;
  high: number;
  bits: Uint8Array;
}

/**
 * Frees the rows of `strings` no stored chain refers to any more, in bounded steps run by
 * retention, while every instance on the database memos text ids (numbered-texts.ts):
 *
 * 1. Start: one instance claims the sweep (`text_sweep.owner`, with a heartbeat) and raises the
 *    text generation under the sweep lock held exclusively. Chain writes hold that lock shared and
 *    check their generation, so the raise waits for every write in flight, and every write after
 *    it fails unless its texts were looked up (their rows marked) in the new generation.
 * 2. Mark: reads the chains in seq order a window at a time and sets a bit for every text id they
 *    refer to (identity, kind, display name, the ids inside the calls). Every chain written with
 *    ids of an older generation committed before the raise, so the mark sees it (or retention
 *    deleted it); chains written after refer only to rows marked in the new generation.
 * 3. Delete: rows up to the highest id at the start whose bit is clear and whose generation is
 *    older than the sweep's are deleted. A row a writer marks meanwhile is kept (the delete
 *    re-checks the generation of a row it waits for), and a lookup that loses a row to the delete
 *    numbers the text again.
 * Ids are never handed out twice, so a text deleted and needed again comes back under a new id.
 */
export function createPostgresTextSweep(db: Sql, texts: NumberedTexts, options: PostgresTextSweepOptions = {}) {
  const minGrowth = Math.max(1, options.minGrowth ?? DEFAULT_TEXT_SWEEP_MIN_GROWTH);
  const me = randomUUID();
  let mark: Mark | undefined;
  let chainsDeleted = false;

  const set = (m: Mark, id: number) => {
    if (id < m.low || id > m.high) return;
    const i = id - m.low;
    m.bits[i >> 3]! |= 1 << (i & 7);
  };
  const isSet = (m: Mark, id: number) => {
    const i = id - m.low;
    return (m.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  };
  const NO_CHAIN = { traceId: '', identity: '', identityKind: '', startMs: 0 };
  /** The first byte of the JSON form of calls (`[`): those hold no text ids. */
  const JSON_FIRST_BYTE = 0x5b;

  /** Claims and starts a sweep when one is due; undefined when none is (or another instance sweeps). */
  const start = async (): Promise<Mark | undefined> => {
    const now = Date.now();
    const [due] = await db.query<{ due: boolean }>(
      `SELECT (owner IS NULL OR owner = $1 OR beat_ms < $2)
          AND coalesce((SELECT max(id) FROM strings), 0) - high_after >= greatest($3::int8, rows_after / 8) AS due
       FROM text_sweep WHERE id = 1`,
      [me, now - TEXT_SWEEP_STALE_MS, minGrowth],
    );
    if (!due?.due) return undefined;
    const started = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [TEXT_SWEEP_LOCK]);
      const [claimed] = await tx.query<{ gen: number }>(
        `UPDATE text_sweep SET gen = gen + 1, owner = $1, beat_ms = $2
         WHERE id = 1 AND (owner IS NULL OR owner = $1 OR beat_ms < $3) RETURNING gen`,
        [me, now, now - TEXT_SWEEP_STALE_MS],
      );
      if (!claimed) return undefined;
      const [range] = await tx.query<{ low: number; high: number }>('SELECT coalesce(min(id), 1) AS low, coalesce(max(id), 0) AS high FROM strings');
      return { gen: claimed.gen, low: range!.low, high: range!.high };
    });
    if (!started) return undefined;
    // This process's writes use the new generation from now on (others find out by failing once).
    await texts.renew(started.gen);
    const { gen, low, high } = started;
    return { gen, phase: 'mark', cursor: 0, low, high, bits: new Uint8Array(((Math.max(high, low) - low + 1) >> 3) + 1) };
  };

  /** Marks the text ids of the next window of chains. */
  const markStep = async (m: Mark, rows: number) => {
    const read = await db.query<{ seq: number; identity: number; kind: number; display_name: number | null; calls: Buffer }>(
      'SELECT seq, identity, kind, display_name, calls FROM chains WHERE seq > $1 ORDER BY seq LIMIT $2',
      [m.cursor, rows],
    );
    const marking: TextTable = {
      idOf: () => -1,
      textOf(id) {
        set(m, id);
        return '';
      },
    };
    for (const r of read) {
      set(m, r.identity);
      set(m, r.kind);
      if (r.display_name !== null) set(m, r.display_name);
      if (r.calls[0] !== JSON_FIRST_BYTE) decodeCalls(r.calls, NO_CHAIN, marking);
    }
    m.cursor = read.at(-1)?.seq ?? m.cursor;
    if (read.length < rows) Object.assign(m, { phase: 'delete', cursor: m.low - 1 });
  };

  /** Deletes the unmarked texts of the next window of ids; returns how many. */
  const deleteStep = async (m: Mark, rows: number): Promise<number> => {
    const ids = (await db.query<{ id: number }>('SELECT id FROM strings WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3', [m.cursor, m.high, rows])).map((r) => r.id);
    const unmarked = ids.filter((id) => !isSet(m, id));
    let deleted = 0;
    if (unmarked.length > 0) {
      const [r] = await db.query<{ n: number }>(
        'WITH d AS (DELETE FROM strings WHERE id = ANY($1::int[]) AND gen < $2 RETURNING 1) SELECT count(*)::int AS n FROM d',
        [unmarked, m.gen],
      );
      deleted = r?.n ?? 0;
    }
    m.cursor = ids.at(-1) ?? m.cursor;
    if (ids.length < rows) {
      mark = undefined;
      chainsDeleted = false;
      // Done: the table's size now decides when the next sweep is due.
      await db.query(
        `UPDATE text_sweep SET owner = NULL, high_after = coalesce((SELECT max(id) FROM strings), 0), rows_after = (SELECT count(*) FROM strings)
         WHERE id = 1 AND owner = $1`,
        [me],
      );
    }
    return deleted;
  };

  return {
    /**
     * One step of at most about `maxRows` rows read or deleted; starts a sweep when one is due
     * (retention deleted chains, the table grew). Returns the texts deleted and whether a sweep
     * is under way.
     */
    async step(maxRows: number, deletedChains: number): Promise<{ texts: number; more: boolean }> {
      if (deletedChains > 0) chainsDeleted = true;
      if (!mark) {
        if (!chainsDeleted) return { texts: 0, more: false };
        mark = await start();
        if (!mark) {
          chainsDeleted = false;
          return { texts: 0, more: false };
        }
      }
      const m = mark;
      const rows = Math.max(1, Math.floor(maxRows));
      // The heartbeat: a sweep another instance took over (this one was taken for dead) stops here.
      const alive = await db.query('UPDATE text_sweep SET beat_ms = $2 WHERE id = 1 AND owner = $1 AND gen = $3 RETURNING 1', [me, Date.now(), m.gen]);
      if (alive.length === 0) {
        mark = undefined;
        return { texts: 0, more: false };
      }
      if (m.phase === 'mark') {
        await markStep(m, rows);
        return { texts: 0, more: true };
      }
      const deleted = await deleteStep(m, rows);
      return { texts: deleted, more: mark !== undefined };
    },
    /** Whether a sweep is under way here. */
    active: () => mark !== undefined,
  };
}
