import type { TextTable } from '../call-codec.js';
import type { Queryable } from './sql.js';
import { fromColumn, toColumn } from './text.js';

/** Texts longer than this stay inline in stored calls rather than numbered (as in SQLite). */
export const MAX_NUMBERED_TEXT = 256;
/** Rows of `strings` at which new texts of calls stay inline. */
export const MAX_NUMBERED_TEXTS = 1_000_000;
/** Texts remembered in memory per direction; a memo starts over when full. */
const TEXT_MEMO = 100_000;

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * The `strings` table as the PostgreSQL store uses it: the call codec is synchronous, so the ids a
 * batch needs are looked up (and new texts numbered) in one round trip before it encodes, and the
 * ids a read needs in one round trip before it decodes. Ids never change and rows are never
 * deleted, so a memo is never wrong, only cold; numbering commits on its own (an id handed out
 * for a batch that then fails is an unused row, not a wrong one), and several instances number
 * the same text once (unique text, insert-if-absent).
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
}

export async function createNumberedTexts(db: Queryable): Promise<NumberedTexts> {
  const ids = new Map<string, number>();
  const byId = new Map<number, string>();
  const [top] = await db.query<{ n: number | null }>('SELECT max(id) AS n FROM strings');
  let rows = Number(top?.n ?? 0);

  const remember = (text: string, id: number) => {
    if (ids.size >= TEXT_MEMO) ids.clear();
    if (byId.size >= TEXT_MEMO) byId.clear();
    ids.set(text, id);
    byId.set(id, text);
  };
  const numberable = (text: string) => text.length <= MAX_NUMBERED_TEXT && rows < MAX_NUMBERED_TEXTS && !LONE_SURROGATE.test(text);

  // Inserts what is absent and answers every id it can see: the new rows, and those committed
  // before the statement began. A row another instance commits meanwhile is read by a second look.
  const numberSql = `WITH wanted AS (SELECT DISTINCT unnest($1::text[]) AS text),
      added AS (INSERT INTO strings (text) SELECT text FROM wanted w
        WHERE NOT EXISTS (SELECT 1 FROM strings s WHERE s.text = w.text)
        ON CONFLICT (text) DO NOTHING RETURNING id, text)
    SELECT id, text, true AS added FROM added
    UNION ALL SELECT s.id, s.text, false FROM strings s JOIN wanted w ON s.text = w.text`;
  const lookupSql = 'SELECT id, text FROM strings WHERE text = ANY($1::text[])';

  return {
    known: (text) => ids.get(text),
    numberable,
    async resolve(always, bounded) {
      const out = new Map<string, number>();
      const wanted = new Set<string>();
      for (const t of always) if (!ids.has(t)) wanted.add(t);
      const lookOnly = new Set<string>();
      for (const t of bounded) {
        if (ids.has(t) || wanted.has(t)) continue;
        if (numberable(t)) wanted.add(t);
        else lookOnly.add(t);
      }
      const take = (r: { id: number; text: string }) => {
        const text = fromColumn(r.text);
        out.set(text, r.id);
        remember(text, r.id);
      };
      if (wanted.size > 0) {
        const found = await db.query<{ id: number; text: string; added: boolean }>(numberSql, [[...wanted].map(toColumn)]);
        for (const r of found) {
          take(r);
          if (r.added) rows = Math.max(rows, r.id);
        }
        const raced = [...wanted].filter((t) => !out.has(t));
        if (raced.length > 0) for (const r of await db.query<{ id: number; text: string }>(lookupSql, [raced.map(toColumn)])) take(r);
      }
      if (lookOnly.size > 0) for (const r of await db.query<{ id: number; text: string }>(lookupSql, [[...lookOnly].map(toColumn)])) take(r);
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
      for (const r of await db.query<{ id: number; text: string }>('SELECT id, text FROM strings WHERE id = ANY($1::int[])', [[...new Set(missing)]])) {
        const text = fromColumn(r.text);
        out.set(r.id, text);
        remember(text, r.id);
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
  };
}
