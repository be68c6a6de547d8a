import type { TextTable } from '../call-codec.js';
import type { Queryable } from './sql.js';
import { fromColumn, toColumn } from './text.js';

/** Texts longer than this stay inline in stored calls rather than numbered (as in SQLite). */
export const MAX_NUMBERED_TEXT = 256;
/** Rows of `strings` at which new texts of calls stay inline. */
export const MAX_NUMBERED_TEXTS = 1_000_000;
/** Texts remembered in memory per direction; a memo starts over when full. */
const TEXT_MEMO = 100_000;
/** SQLSTATE of `conduct_texts_at` (migration 050): the text generation a write was encoded in is over. */
export const GENERATION_OVER = 'CT001';

const LONE_SURROGATE = /\p{Cs}/u;

/** Did a write fail because a sweep started after its texts were looked up? */
export function generationOver(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === GENERATION_OVER;
}

/**
 * The `strings` table as the PostgreSQL store uses it: the call codec is synchronous, so the ids a
 * batch needs are looked up (and new texts numbered) in one round trip before it encodes, and the
 * ids a read needs in one round trip before it decodes. Numbering commits on its own (an id handed
 * out for a batch that then fails is an unused row, not a wrong one), and several instances
 * number the same text once (unique text, insert-if-absent).
 *
 * Texts no chain refers to are deleted by the sweep (text-sweep.ts), so the memo of text ids that
 * writes use belongs to a text generation: every lookup marks the rows it answers with the memo's
 * generation, a sweep deletes only rows marked before the generation it started, and every chain
 * write names its generation (`conduct_texts_at`) and fails when a sweep started since; the writer
 * then renews the memo and writes again. Ids are never handed out twice, so the memo of texts by
 * id (reads) stays true across generations: an id no chain refers to is never read.
 */
export interface NumberedTexts {
  /** Known id of a text (memo only), or undefined. */
  known(text: string): number | undefined;
  /** Whether a text of a call may be numbered (bounded texts: short, no lone surrogate, table not full). */
  numberable(text: string): boolean;
  /**
   * Looks up the ids of `texts` (numbering the missing ones: all of `always`, the `bounded` ones
   * while the table has room) and returns them by text; a bounded text with no id stays inline.
   */
  resolve(always: Iterable<string>, bounded: Iterable<string>): Promise<Map<string, number>>;
  /** Text of a known id (memo only), or undefined. */
  textOf(id: number): string | undefined;
  /** The texts of these ids (from the memo or the table); ids with no row are left out. */
  load(ids: Iterable<number>): Promise<Map<number, string>>;
  /** A codec table over `extra` and the memo: unknown texts inline, unknown ids an error. */
  table(extra?: { ids?: ReadonlyMap<string, number>; texts?: ReadonlyMap<number, string> }): TextTable;
  /** The generation the memo of ids belongs to: chain writes encoded from it name it. */
  generation(): number;
  /** Forgets the memo of ids and takes the current generation (`gen` when known: a sweep this process started). */
  renew(gen?: number): Promise<void>;
}

export async function createNumberedTexts(db: Queryable): Promise<NumberedTexts> {
  const ids = new Map<string, number>();
  const byId = new Map<number, string>();
  let gen = 0;
  /** Rows of the table, estimated: the count after the last sweep plus the ids handed out since. */
  let rows = 0;

  const refresh = async (known?: number) => {
    const [row] = await db.query<{ gen: number; rows: number }>(
      `SELECT s.gen, s.rows_after + greatest(0, coalesce((SELECT max(id) FROM strings), 0) - s.high_after) AS rows
       FROM text_sweep s WHERE s.id = 1`,
    );
    ids.clear();
    gen = known ?? Number(row?.gen ?? 1);
    rows = Number(row?.rows ?? 0);
  };
  await refresh();

  const rememberId = (text: string, id: number) => {
    if (ids.size >= TEXT_MEMO) ids.clear();
    ids.set(text, id);
  };
  const rememberText = (id: number, text: string) => {
    if (byId.size >= TEXT_MEMO) byId.clear();
    byId.set(id, text);
  };
  const numberable = (text: string) => text.length <= MAX_NUMBERED_TEXT && rows < MAX_NUMBERED_TEXTS && !LONE_SURROGATE.test(text);

  // Marks the texts' rows with the generation ($2) and answers their ids: rows marked now, rows
  // marked in this generation before, and (when $3) new rows for the absent texts. A row another
  // instance commits meanwhile, or a sweep deletes meanwhile, is missing from the answer: the
  // caller asks again for those.
  const lookupSql = `WITH wanted AS (SELECT DISTINCT unnest($1::text[]) AS text),
      marked AS (UPDATE strings s SET gen = $2 FROM wanted w WHERE s.text = w.text AND s.gen < $2 RETURNING s.id, s.text),
      added AS (INSERT INTO strings (text, gen) SELECT text, $2 FROM wanted w
        WHERE $3 AND NOT EXISTS (SELECT 1 FROM strings s WHERE s.text = w.text)
        ON CONFLICT (text) DO NOTHING RETURNING id, text)
    SELECT id, text, true AS added FROM added
    UNION ALL SELECT id, text, false FROM marked
    UNION ALL SELECT s.id, s.text, false FROM strings s JOIN wanted w ON s.text = w.text WHERE s.gen >= $2`;
  /** Tries at most this often for a text the table keeps losing to races. */
  const LOOKUP_TRIES = 3;

  /** Ids of `texts` marked in generation `at` (numbering them when `number`), by text. */
  const lookUp = async (texts: readonly string[], at: number, number: boolean): Promise<Map<string, number>> => {
    const out = new Map<string, number>();
    let left = texts;
    for (let attempt = 0; attempt < LOOKUP_TRIES && left.length > 0; attempt++) {
      const found = await db.query<{ id: number; text: string; added: boolean }>(lookupSql, [left.map(toColumn), at, number]);
      for (const r of found) {
        out.set(fromColumn(r.text), r.id);
        if (r.added) rows++;
      }
      left = left.filter((t) => !out.has(t));
    }
    return out;
  };

  return {
    known: (text) => ids.get(text),
    numberable,
    async resolve(always, bounded) {
      const at = gen;
      const wanted = new Set<string>();
      for (const t of always) if (!ids.has(t)) wanted.add(t);
      const lookOnly = new Set<string>();
      for (const t of bounded) {
        if (ids.has(t) || wanted.has(t)) continue;
        if (numberable(t)) wanted.add(t);
        else lookOnly.add(t);
      }
      const out = new Map<string, number>();
      for (const [t, id] of await lookUp([...wanted], at, true)) out.set(t, id);
      for (const [t, id] of await lookUp([...lookOnly], at, false)) out.set(t, id);
      // Only ids of the memo's own generation join it (a sweep may have started meanwhile: the
      // write then fails on its generation, and the memo is renewed).
      if (gen === at) {
        for (const [t, id] of out) {
          rememberId(t, id);
          rememberText(id, t);
        }
      }
      for (const t of always) {
        const id = out.get(t) ?? ids.get(t);
        if (id === undefined) throw new Error('a text could not be numbered in the strings table');
        out.set(t, id);
      }
      return out;
    },
    textOf: (id) => byId.get(id),
    async load(wantedIds) {
      const out = new Map<number, string>();
      const missing: number[] = [];
      for (const id of wantedIds) {
        if (out.has(id)) continue;
        const text = byId.get(id);
        if (text === undefined) missing.push(id);
        else out.set(id, text);
      }
      if (missing.length === 0) return out;
      // Texts read are remembered by id only: a write may use an id only after marking its row.
      for (const r of await db.query<{ id: number; text: string }>('SELECT id, text FROM strings WHERE id = ANY($1::int[])', [[...new Set(missing)]])) {
        const text = fromColumn(r.text);
        out.set(r.id, text);
        rememberText(r.id, text);
      }
      return out;
    },
    table(extra) {
      return {
        idOf: (text) => extra?.ids?.get(text) ?? ids.get(text) ?? -1,
        textOf(id) {
          const text = extra?.texts?.get(id) ?? byId.get(id);
          if (text === undefined) throw new Error(`stored calls refer to text ${id}, which is not in the strings table`);
          return text;
        },
      };
    },
    generation: () => gen,
    renew: (known) => refresh(known),
  };
}
