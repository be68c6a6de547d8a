import type { Database } from 'better-sqlite3';
import type { LearnedPathParameter, OperationTemplateStore } from '../contracts.js';

interface Row {
  peer: string;
  method: string;
  segments: number;
  prefix: string;
  learned_ms: number;
}

/** Learned path parameters in `path_parameters` (migration 050); a position stored before is kept. */
export function createSqlitePathParameters(db: Database): OperationTemplateStore {
  const all = db.prepare('SELECT peer, method, segments, prefix, learned_ms FROM path_parameters ORDER BY learned_ms, peer, method, segments, prefix');
  const add = db.prepare(
    'INSERT INTO path_parameters (peer, method, segments, prefix, learned_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
  );
  const addAll = db.transaction((parameters: readonly LearnedPathParameter[]) => {
    for (const p of parameters) add.run(p.peer, p.method, p.segments, p.prefix, p.learnedMs);
  });
  return {
    async loadPathParameters() {
      return (all.all() as Row[]).map((r) => ({ peer: r.peer, method: r.method, segments: r.segments, prefix: r.prefix, learnedMs: r.learned_ms }));
    },
    async savePathParameters(parameters) {
      if (parameters.length > 0) addAll(parameters);
    },
  };
}
