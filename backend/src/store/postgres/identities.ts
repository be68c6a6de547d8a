import type { IdentityReader } from '../contracts.js';
import { edgeFromRow, identityFromRow, type EdgeRow, type IdentityRow } from '../rows.js';
import type { Queryable } from './sql.js';
import { fromColumn, toColumn } from './text.js';

const IDENTITY_COLUMNS = `i.id, i.kind, i.display_name, i.first_seen_ms, i.last_seen_ms, i.calls, i.chains,
  (SELECT count(DISTINCT e.peer) FROM edges e WHERE e.identity = i.id)::int AS peers`;

/** Identities and observed edges. Texts order byte-wise (the columns are `COLLATE "C"`), as in SQLite. */
export function createPostgresIdentities(db: Queryable): IdentityReader {
  return {
    async listIdentities(limit) {
      const rows = await db.query<IdentityRow>(
        `SELECT ${IDENTITY_COLUMNS} FROM identities i ORDER BY i.last_seen_ms DESC, i.id LIMIT $1`,
        [Math.max(0, Math.floor(limit))],
      );
      return rows.map((row) => identityFromRow(row, fromColumn));
    },
    async getIdentity(id) {
      const [row] = await db.query<IdentityRow>(`SELECT ${IDENTITY_COLUMNS} FROM identities i WHERE i.id = $1`, [toColumn(id)]);
      return row && identityFromRow(row, fromColumn);
    },
    async identityEdges(id) {
      const rows = await db.query<EdgeRow>(
        `SELECT identity, service, peer, peer_kind, external, operation, count, first_seen_ms, last_seen_ms
         FROM edges WHERE identity = $1
         ORDER BY count DESC, service, peer, operation`,
        [toColumn(id)],
      );
      return rows.map((row) => edgeFromRow(row, fromColumn));
    },
    async counts() {
      const [row] = await db.query<{ identities: number; edges: number }>(
        'SELECT (SELECT count(*) FROM identities)::int8 AS identities, (SELECT count(*) FROM edges)::int8 AS edges',
      );
      return { identities: row?.identities ?? 0, edges: row?.edges ?? 0 };
    },
  };
}
