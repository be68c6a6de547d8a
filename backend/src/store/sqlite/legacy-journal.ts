import type Database from 'better-sqlite3';
import type { LegacyJournal, LegacyJournalRequest } from '../contracts.js';

/** The older version's journal tables that exist in `db`. */
function legacyTables(db: Database.Database): string[] {
  return db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('journal', 'journal_traces')`).pluck().all() as string[];
}

/**
 * The SQLite journal that versions before the segment log kept in the store's database
 * (legacy-journal-schema.ts): read oldest first, one body in memory at a time, then emptied.
 */
export function createLegacyJournal(db: Database.Database): LegacyJournal {
  return {
    async read(onRequest) {
      if (legacyTables(db).length < 2) return;
      // Journals from before the format column hold the decoded request as JSON text.
      const hasFormat = (db.prepare('PRAGMA table_info(journal)').all() as Array<{ name: string }>).some((c) => c.name === 'format');
      const one = db.prepare(`SELECT received_ms, spans, body, ${hasFormat ? 'format' : `'decoded' AS format`} FROM journal WHERE seq = ?`);
      const tracesOf = db.prepare('SELECT trace_id FROM journal_traces WHERE seq = ?').pluck();
      for (const seq of db.prepare('SELECT seq FROM journal ORDER BY seq').pluck().all() as number[]) {
        const row = one.get(seq) as { received_ms: number; spans: number; body: string | Buffer; format: string };
        const traces = new Set(tracesOf.all(seq) as string[]);
        if (traces.size === 0) continue;
        const body = typeof row.body === 'string' ? Buffer.from(row.body, 'utf8') : row.body;
        const request: LegacyJournalRequest = { receivedMs: row.received_ms, spans: row.spans, format: row.format, body, traces };
        onRequest(request, seq);
      }
    },
    async clear() {
      for (const t of legacyTables(db)) db.exec(`DELETE FROM ${t}`);
    },
  };
}
