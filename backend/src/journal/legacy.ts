import type { Database } from 'better-sqlite3';
import type { Logger } from '@conduct/processor';
import { JOURNAL_BODY_FORMATS, type JournalBodyFormat } from './schema.js';

/** A request of a journal written by an older version, with the traces it still waited for. */
export interface LegacyRequest {
  receivedMs: number;
  spans: number;
  format: JournalBodyFormat;
  body: Buffer;
  traces: Set<string>;
}

/** The older version's journal tables that exist in `db`. */
function legacyTables(db: Database): string[] {
  return db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('journal', 'journal_traces')`).pluck().all() as string[];
}

/**
 * Calls `onRequest` for each unsettled request of the SQLite journal that versions before the
 * segment log kept in the store's database (JOURNAL_SCHEMA), oldest first, one body in memory at
 * a time. Nothing when the tables are missing or empty.
 */
export function readLegacyJournal(db: Database, logger: Logger, onRequest: (r: LegacyRequest) => void): void {
  if (legacyTables(db).length < 2) return;
  // Journals from before the format column hold the decoded request as JSON text.
  const hasFormat = (db.prepare('PRAGMA table_info(journal)').all() as Array<{ name: string }>).some((c) => c.name === 'format');
  const one = db.prepare(`SELECT received_ms, spans, body, ${hasFormat ? 'format' : `'decoded' AS format`} FROM journal WHERE seq = ?`);
  const tracesOf = db.prepare('SELECT trace_id FROM journal_traces WHERE seq = ?').pluck();
  for (const seq of db.prepare('SELECT seq FROM journal ORDER BY seq').pluck().all() as number[]) {
    const row = one.get(seq) as { received_ms: number; spans: number; body: string | Buffer; format: string };
    const traces = new Set(tracesOf.all(seq) as string[]);
    if (traces.size === 0) continue;
    if (!(JOURNAL_BODY_FORMATS as readonly string[]).includes(row.format)) {
      logger.error({ seq, format: row.format }, 'unreadable journal entry skipped');
      continue;
    }
    const body = typeof row.body === 'string' ? Buffer.from(row.body, 'utf8') : row.body;
    onRequest({ receivedMs: row.received_ms, spans: row.spans, format: row.format as JournalBodyFormat, body, traces });
  }
}

/** Empties the older version's journal tables (they stay: store migration 020 made them). */
export function clearLegacyJournal(db: Database): void {
  for (const t of legacyTables(db)) db.exec(`DELETE FROM ${t}`);
}
