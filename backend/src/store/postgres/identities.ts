import type { EdgeRecord, IdentityReader, IdentityRecord } from '../contracts.js';
import type { Queryable } from './sql.js';
import { fromColumn, toColumn } from './text.js';

interface IdentityRow {
  id: string;
  kind: string;
  display_name: string | null;
  first_seen_ms: number;
  last_seen_ms: number;
  calls: number;
  chains: number;
  peers: number;
}

interface EdgeRow {
  identity: string;
  service: string;
  peer: string;
  peer_kind: string;
  external: boolean;
  operation: string;
  count: number;
  first_seen_ms: number;
  last_seen_ms: number;
}

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
      return rows.map(toIdentity);
    },
    async getIdentity(id) {
      const [row] = await db.query<IdentityRow>(`SELECT ${IDENTITY_COLUMNS} FROM identities i WHERE i.id = $1`, [toColumn(id)]);
      return row && toIdentity(row);
    },
    async identityEdges(id) {
      const rows = await db.query<EdgeRow>(
        `SELECT identity, service, peer, peer_kind, external, operation, count, first_seen_ms, last_seen_ms
         FROM edges WHERE identity = $1
         ORDER BY count DESC, service, peer, operation`,
        [toColumn(id)],
      );
      return rows.map(toEdge);
    },
    async counts() {
      const [row] = await db.query<{ identities: number; edges: number }>(
        'SELECT (SELECT count(*) FROM identities)::int8 AS identities, (SELECT count(*) FROM edges)::int8 AS edges',
      );
      return { identities: row?.identities ?? 0, edges: row?.edges ?? 0 };
    },
  };
}

function toIdentity(row: IdentityRow): IdentityRecord {
  return {
    id: fromColumn(row.id),
    kind: fromColumn(row.kind),
    ...(row.display_name !== null ? { displayName: fromColumn(row.display_name) } : {}),
    firstSeenMs: row.first_seen_ms,
    lastSeenMs: row.last_seen_ms,
    calls: row.calls,
    chains: row.chains,
    peers: row.peers,
  };
}

function toEdge(row: EdgeRow): EdgeRecord {
  return {
    identity: fromColumn(row.identity),
    service: fromColumn(row.service),
    peer: fromColumn(row.peer),
    peerKind: fromColumn(row.peer_kind),
    external: row.external,
    operation: fromColumn(row.operation),
    count: row.count,
    firstSeenMs: row.first_seen_ms,
    lastSeenMs: row.last_seen_ms,
  };
}
