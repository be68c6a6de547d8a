import type { LearnedPathParameter, OperationTemplateStore } from '../contracts.js';
import type { Sql } from './sql.js';
import { fromColumn, toColumn } from './text.js';

interface Row {
  peer: string;
  method: string;
  segments: number;
  prefix: string;
  learned_ms: number;
}

/** Learned path parameters in `path_parameters` (migration 10); a position stored before is kept. */
export function createPostgresPathParameters(db: Sql, retrying: <T>(write: () => Promise<T>) => Promise<T>): OperationTemplateStore {
  return {
    async loadPathParameters() {
      const rows = await db.query<Row>(
        'SELECT peer, method, segments, prefix, learned_ms FROM path_parameters ORDER BY learned_ms, peer, method, segments, prefix',
      );
      return rows.map((r) => ({
        peer: fromColumn(r.peer),
        method: fromColumn(r.method),
        segments: r.segments,
        prefix: fromColumn(r.prefix),
        learnedMs: r.learned_ms,
      }));
    },
    async savePathParameters(parameters) {
      if (parameters.length === 0) return;
      const rows = parameters.map((p: LearnedPathParameter) => [toColumn(p.peer), toColumn(p.method), p.segments, toColumn(p.prefix), p.learnedMs]);
      await retrying(() =>
        db.transaction(async (tx) => {
          for (const r of rows) {
            await tx.query(
              'INSERT INTO path_parameters (peer, method, segments, prefix, learned_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
              r,
            );
          }
        }),
      );
    },
  };
}
