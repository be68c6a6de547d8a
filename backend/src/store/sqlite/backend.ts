import type { Chain } from '@conduct/processor';
import type { BatchUnit, StorageBackend, StorageOpenOptions, WriteResult } from '../contracts.js';
import { createSqliteAlertRetention } from './alert-retention.js';
import { createSqliteDetectionState } from './detection-state.js';
import { createLegacyJournal } from './legacy-journal.js';
import { createSqliteOutbox } from './outbox.js';
import { createSqlitePathParameters } from './path-parameters.js';
import { openStore, type Store, type StoreOptions } from './store.js';

/** Trace parts `recentTraceIds` reads a step (~10-20 ms here). */
const RECENT_TRACES_STEP = 20_000;

/** The SQLite backend; `store` is its synchronous store, for SQLite-only tools and tests. */
export interface SqliteBackend extends StorageBackend {
  readonly kind: 'sqlite';
  readonly store: Store;
}

/**
 * Opens the SQLite backend at `path` (creating and migrating the file): every contract over one
 * connection, answered synchronously underneath.
 */
export async function openSqliteBackend(
  options: Omit<StoreOptions, 'logger'>,
  { logger }: StorageOpenOptions = {},
): Promise<SqliteBackend> {
  const store = await openStore({ ...options, ...(logger ? { logger } : {}) });
  const { db } = store;
  const outbox = createSqliteOutbox(db);
  const detection = createSqliteDetectionState(db, outbox);
  // One unit of a batch: its chains, replaced traces and detection checkpoint in one transaction,
  // rolled back whole when a part throws (so the store's parts take no savepoints of their own).
  const { writeInTransaction } = store;
  const commitBatch = db.transaction((unit: BatchUnit): WriteResult => {
    if (unit.handOff?.items.length) throw new Error('a cluster hand-off needs the PostgreSQL backend (storage.postgres.url)');
    const result: WriteResult = unit.chains || unit.traces ? writeInTransaction.writeChains(unit.chains ?? [], unit.traces) : { chains: 0, calls: 0, rejected: 0 };
    for (const r of unit.replaced ?? []) {
      const replaced = writeInTransaction.replaceTraceChains(r.traceId, r.chains);
      result.chains += replaced.chains;
      result.calls += replaced.calls;
      result.rejected += replaced.rejected;
    }
    if (unit.checkpoint) detection.applyCheckpoint(unit.checkpoint);
    return result;
  });
  let closed = false;
  return {
    kind: 'sqlite',
    location: store.path,
    store,
    chainWriter: {
      writeChains: async (chains, traces) => store.writeChains(chains, traces),
      replaceTraceChains: async (traceId, chains) => store.replaceTraceChains(traceId, chains),
      commitBatch: async (unit) => store.inTransaction(() => commitBatch(unit)),
      accepts: (chain: Chain) => store.accepts(chain),
    },
    chainReader: {
      traceChains: async (traceId) => store.traceChains(traceId),
      recentChains: async (identity, q) => store.recentChains(identity, Math.max(1, Math.floor(q.limit)), q.sinceMs, q.untilMs),
      traceSummary: async (traceId) => store.traceSummary(traceId),
      // Reads of this file cost no round trip: one trace after another.
      traceSummaries: async (traceIds) => traceIds.map((traceId) => store.traceSummary(traceId)),
      chainsOfTraces: async (traceIds) => traceIds.map((traceId) => store.traceChains(traceId)),
      newestEventMs: async () => store.newestEventMs(),
      async recentTraceIds(sinceMs, maxIds, visit) {
        // In steps, a turn of the event loop between them: a store that took a window of ids at a
        // high rate holds millions of parts.
        const cursor = { beforeSeq: Number.MAX_SAFE_INTEGER, oldInARow: 0 };
        let visited = 0;
        const counted = (traceId: string) => {
          visited++;
          visit(traceId);
        };
        for (;;) {
          const done = store.recentTraceIdsStep(sinceMs, cursor, RECENT_TRACES_STEP, counted);
          if (visited > maxIds) return false;
          if (done !== undefined) return done;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      },
    },
    retention: {
      pruneStep: async (beforeMs, maxRows) => store.pruneStep(beforeMs, maxRows),
    },
    identities: {
      listIdentities: async (limit) => store.listIdentities(limit),
      getIdentity: async (id) => store.getIdentity(id),
      identityEdges: async (id) => store.identityEdges(id),
      counts: async () => store.counts(),
    },
    detection,
    outbox,
    alertRetention: createSqliteAlertRetention(db),
    templates: createSqlitePathParameters(db),
    legacyJournal: createLegacyJournal(db),
    async ready() {
      return !closed && db.open;
    },
    sizeBytes: async () => store.sizeBytes(),
    schemaVersion: async () => store.schemaVersion(),
    async close() {
      closed = true;
      store.close();
    },
  };
}
