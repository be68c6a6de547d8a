import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Chain, Logger, TraceSummary } from '@conduct/processor';
import { silentLogger } from '@conduct/processor';
import { applyMigrations, loadMigrations, schemaVersion } from './migrate.js';
import { traceIdToBytes } from '../trace-id.js';
import { encodeCalls, encodeCallsBinary, startCallsRun, type TextTable } from '../call-codec.js';
import { acceptable, acceptableRun, chainCounts, chainFromColumns, edgeFromRow, finite, identityFromRow, mergeTraceSummary, MAX_TRACE_SERVICES, receivedOf, type EdgeRow, type IdentityRow } from '../rows.js';
import type { EdgeRecord, IdentityRecord, PruneResult, WriteResult } from '../contracts.js';
import { createRowInserter } from './multi-row.js';
import { createTextSweep, type SweptTexts, type TextSweepOptions } from './text-sweep.js';
import { CHAIN_KEYS_MERGE_AT, CHAINS_OF_IDENTITY, createChainKeys } from './chain-keys.js';
import { createTraceKeys, PARTS_OF_TRACE, TRACE_KEYS_MERGE_AT } from './trace-keys.js';
import { KEY_SWEEP_MIN } from './key-sweep.js';


/** Texts longer than this stay inline in stored calls rather than numbered in `strings`. */
const MAX_NUMBERED_TEXT = 256;

/** Rows of `strings` at which the store stops numbering new texts (they stay inline). */
const MAX_NUMBERED_TEXTS = 1_000_000;

/** Texts remembered in memory per direction; the memo starts over when full. */
const TEXT_MEMO = 100_000;

/** How long a statement waits for a lock held by another connection before failing. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/**
 * WAL pages after which a commit checkpoints (`wal_autocheckpoint`; SQLite's default is 1,000).
 * Trace ids are random, so a batch dirties about one page of the trace-id index per trace (a
 * batch of 1,024 small traces wrote ~1,200 pages to the WAL on a file of 400k traces): with
 * 1,000 pages every commit checkpointed, copying each page again; over four times as many the
 * pages that several batches dirtied are copied once. Store write 0.72 of before with random
 * trace ids on that file (bench/README.md, "SQLite write per batch, second pass").
 */
export const WAL_AUTOCHECKPOINT_PAGES = 4000;

/**
 * Size the WAL file is cut back to when it starts over after a checkpoint (`journal_size_limit`).
 * A long read (an export, a backup, a slow API query) holds the checkpoint back and the WAL grows
 * past its usual ~16-22 MB (WAL_AUTOCHECKPOINT_PAGES between checkpoints plus a batch); without a
 * limit the file keeps its largest size for good. Above the usual size, so that the WAL is not cut
 * and grown again every checkpoint.
 */
export const WAL_SIZE_LIMIT_BYTES = 32 * 1024 * 1024;

/** Page cache per connection in KiB; keeps the random trace-id index hot while writing. */
export const DEFAULT_CACHE_KIB = 64 * 1024;

export interface StoreOptions {
  /** SQLite file; its directory is created. `:memory:` for a throw-away store. */
  path: string;
  /** Lock wait in ms (`busy_timeout`). Default DEFAULT_BUSY_TIMEOUT_MS. */
  busyTimeoutMs?: number;
  /** SQLite page cache in KiB. Default DEFAULT_CACHE_KIB. */
  cacheKiB?: number;
  /** Growth of `strings` (rows) that starts a sweep of unreferenced texts: see text-sweep.ts. Default DEFAULT_TEXT_SWEEP_MIN_GROWTH. */
  textSweepMinGrowth?: number;
  /** Keys of new trace parts that start a merge of the trace keys (see createTraceKeys). Default TRACE_KEYS_MERGE_AT. */
  traceKeysMergeAt?: number;
  /** Chains past the keyed ones that start a merge of their identity keys (see chain-keys.ts). Default CHAIN_KEYS_MERGE_AT. */
  chainKeysMergeAt?: number;
  /** Keys left behind by retention that start a sweep of a key table at least (see key-sweep.ts). Default KEY_SWEEP_MIN. */
  keySweepMin?: number;
  /** Folder of numbered migrations; the store's own by default (tests point it elsewhere). */
  migrationsDir?: string;
  logger?: Logger;
}

/** Where `recentTraceIdsStep` goes on: before this part (`Number.MAX_SAFE_INTEGER` at first), after this many old ones in a row. */
export interface RecentTracesCursor {
  beforeSeq: number;
  oldInARow: number;
}

/**
 * Seqs are in write order and received times nearly so (a replayed trace keeps the time the
 * journal first received it, a merged chain the time of its first part): one old part among new
 * ones does not end `recentTraceIdsStep`'s scan, this many in a row do.
 */
const OLD_PARTS_IN_A_ROW = 256;

export interface Store {
  /** The database file. */
  readonly path: string;
  /**
   * The open connection, for components that keep their own tables (added as numbered
   * migrations, see store/README.md). Prepare statements once; never interpolate span data.
   */
  readonly db: Database.Database;
  /**
   * Stores chains and folds them into identities and edges, and records the completed traces'
   * summaries, in one transaction.
   */
  writeChains(chains: readonly Chain[], traces?: readonly TraceSummary[]): WriteResult;
  /**
   * Runs `run` (a transaction of the caller's that writes chains through this store) so that the
   * texts its writes number are remembered only if it commits.
   */
  inTransaction<T>(run: () => T): T;
  /**
   * `writeChains` and `replaceTraceChains` for a caller's open transaction that is rolled back
   * whole when one of them throws (as `commitBatch`'s): they take no savepoint of their own, so
   * a failed write leaves its rows to that rollback. Throws when no transaction is open.
   */
  readonly writeInTransaction: Pick<Store, 'writeChains' | 'replaceTraceChains'>;
  /** Whether `writeChains` stores this chain (trace id of 32 hex digits, not all zero; calls a list). */
  accepts(chain: Chain): boolean;
  /** Identities ordered by most recent activity. */
  listIdentities(limit: number): IdentityRecord[];
  getIdentity(id: string): IdentityRecord | undefined;
  /** Every observed edge of an identity, most used first. */
  identityEdges(id: string): EdgeRecord[];
  /** An identity's chains, newest (by end time) first; only those that ended in [sinceMs, untilMs) when given. */
  recentChains(identity: string, limit: number, sinceMs?: number, untilMs?: number): Chain[];
  /** How many identities and edges are stored. */
  counts(): { identities: number; edges: number };
  /** Every chain of a trace in time order; `traceId` is 32 hex digits in either case. */
  traceChains(traceId: string): Chain[];
  /**
   * Replaces every stored chain of a trace with `chains` (a later part of the trace merged into
   * it), in one transaction: the old chains' calls, chains and edges are taken off their
   * identities and edges and the new ones added, so each call is counted once; an identity or
   * edge left with nothing is deleted. First and last seen times are kept. Chains of another
   * trace, or that `accepts` refuses, are counted in `rejected` and not stored.
   */
  replaceTraceChains(traceId: string, chains: readonly Chain[]): WriteResult;
  /** What is known of a completed trace (spans, services, times, merged over late parts); undefined when unknown. */
  traceSummary(traceId: string): TraceSummary | undefined;
  /**
   * One step of `ChainReader.recentTraceIds`: visits the trace ids of up to `rows` trace parts
   * before the cursor (newest first) and moves it. Returns undefined to go on, or the answer: true
   * once the parts left are older than `sinceMs`, false when the store cannot tell (every part was
   * visited, and it holds chains or summaries written before trace parts existed).
   */
  recentTraceIdsStep(sinceMs: number, cursor: RecentTracesCursor, rows: number, visit: (traceId: string) => void): boolean | undefined;
  /**
   * One bounded retention step: deletes at most `maxRows` chains and at most `maxRows` trace
   * summaries that ended before `beforeMs` (event time), taken from the oldest stored (append
   * order), so a step never scans the whole table. A young row at the front holds back at most
   * one step's window; keep calling while it deletes something or says `more`. A step also
   * advances the sweep of texts no chain refers to any more (text-sweep.ts).
   */
  pruneStep(beforeMs: number, maxRows: number): PruneResult;
  /** Newest chain end time ever stored (event time), 0 when empty. */
  newestEventMs(): number;
  /** Database size in bytes (pages in use plus free pages). */
  sizeBytes(): number;
  /** Highest applied migration. */
  schemaVersion(): number;
  /** Closes the connection; safe to call twice. */
  close(): void;
}

/** One edge's aggregate within a `writeChains` call, as the upsert binds it. */
interface EdgeAgg {
  identity: string;
  service: string;
  peer: string;
  operation: string;
  peerKind: string;
  external: number;
  count: number;
  first: number;
  last: number;
}

/**
 * An identity's aggregate within a `writeChains` call, as the upsert binds it, with what its
 * chains' rows bind: the numbers (ids of `strings`) of its id, its kind and the display name of
 * its last chain that had one, and its edges by service, peer and operation.
 */
interface IdentityAgg {
  id: string;
  number: number;
  kind: string;
  kindNumber: number;
  /** The newest display name of its chains (what the upsert stores). */
  displayName: string | null;
  /** The display name of the last chain that had one, as text, and its number. */
  chainName: string | undefined;
  nameNumber: number;
  first: number;
  last: number;
  calls: number;
  chains: number;
  edges: Map<string, Map<string, Map<string, EdgeAgg>>>;
}

/** A trace's chains within one write: the range of `chains.seq` they took (-1 until inserted) and their newest end. */
interface TracePart {
  /** The trace id as given. */
  key: string;
  id: Buffer;
  end: number;
  first: number;
  last: number;
  /** Whether a summary of the write took this part into its row. */
  summarised: boolean;
}

/** A row of `chains` (numbered: identity, kind and display name as ids of `strings`) or of `chains_text`. */
interface ChainRow {
  trace_id: Buffer;
  identity: string | number;
  identity_kind: string | number;
  display_name: string | number | null;
  start_ms: number;
  end_ms: number;
  calls: string | Buffer;
  received_ms: number | null;
  numbered: 0 | 1;
  seq: number;
}

/** A summary's services as stored: at most MAX_TRACE_SERVICES, as texts (the array itself when it is that already). */
function servicesOf(services: unknown): readonly string[] {
  if (!Array.isArray(services)) return [];
  if (services.length <= MAX_TRACE_SERVICES && services.every((s) => typeof s === 'string')) return services as string[];
  return services.slice(0, MAX_TRACE_SERVICES).map(String);
}

/** The last `chains.seq` that the partial trace-id index of migration 090 covers (0 on a database created with it). */
function indexedChainsUpTo(db: Database.Database): number {
  const sql = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'chains_by_trace_id_upto'").pluck().get() as string | undefined;
  const upto = Number(/WHERE seq <= (\d+)\s*$/.exec(sql ?? '')?.[1]);
  if (!Number.isSafeInteger(upto)) throw new Error('the store schema lacks the trace-id index of migration 090 (chains_by_trace_id_upto)');
  return upto;
}

/** Opens (creating when needed) the database and brings its schema up to date. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const logger = options.logger ?? silentLogger;
  const migrations = await loadMigrations(options.migrationsDir);
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  const db = new Database(options.path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS))}`);
    db.pragma(`cache_size = -${Math.max(2048, Math.floor(options.cacheKiB ?? DEFAULT_CACHE_KIB))}`);
    const applied = applyMigrations(db, migrations);
    if (applied.length) logger.info({ path: options.path, applied }, 'store schema migrated');
    const known = migrations.at(-1)?.version ?? 0;
    const current = schemaVersion(db);
    if (current > known) {
      logger.warn({ path: options.path, current, known }, 'store schema is newer than this build');
    }
  } catch (err) {
    db.close();
    throw err;
  }
  const sweep = options.textSweepMinGrowth !== undefined ? { minGrowth: options.textSweepMinGrowth } : {};
  return createStore(db, options.path, sweep, {
    traceKeys: options.traceKeysMergeAt ?? TRACE_KEYS_MERGE_AT,
    chainKeys: options.chainKeysMergeAt ?? CHAIN_KEYS_MERGE_AT,
    sweepMin: options.keySweepMin ?? KEY_SWEEP_MIN,
  });
}

/** When the staged indexes merge (trace-keys.ts, chain-keys.ts) and the keys retention left behind are swept (key-sweep.ts). */
interface MergeAt {
  traceKeys: number;
  chainKeys: number;
  sweepMin: number;
}

function createStore(db: Database.Database, path: string, sweep: TextSweepOptions, mergeAt: MergeAt): Store {
  // First: it attaches the in-memory database that the statements below read through PARTS_OF_TRACE.
  const keys = createTraceKeys(db, mergeAt.traceKeys, mergeAt.sweepMin);
  // A write's chains and trace parts go in multi-row statements (multi-row.ts). Values are bound by
  // position: binding by name looks each one up in an object (an upsert ~30% dearer).
  const insertChains = createRowInserter(db, 'chains (trace_id, identity, kind, display_name, start_ms, end_ms, calls, received_ms)', 8);
  // A write folds into a few dozen identities and edges: one statement each.
  const upsertIdentity = db.prepare(
    `INSERT INTO identities (id, kind, display_name, first_seen_ms, last_seen_ms, calls, chains)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET
       kind = excluded.kind,
       display_name = coalesce(excluded.display_name, identities.display_name),
       first_seen_ms = min(identities.first_seen_ms, excluded.first_seen_ms),
       last_seen_ms = max(identities.last_seen_ms, excluded.last_seen_ms),
       calls = identities.calls + excluded.calls,
       chains = identities.chains + excluded.chains`,
  );
  const upsertEdge = db.prepare(
    `INSERT INTO edges (identity, service, peer, operation, peer_kind, external, count, first_seen_ms, last_seen_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (identity, service, peer, operation) DO UPDATE SET
       peer_kind = excluded.peer_kind,
       external = excluded.external,
       count = edges.count + excluded.count,
       first_seen_ms = min(edges.first_seen_ms, excluded.first_seen_ms),
       last_seen_ms = max(edges.last_seen_ms, excluded.last_seen_ms)`,
  );
  const identityColumns = `i.id, i.kind, i.display_name, i.first_seen_ms, i.last_seen_ms, i.calls, i.chains,
    (SELECT count(DISTINCT e.peer) FROM edges e WHERE e.identity = i.id) AS peers`;
  const selectIdentities = db.prepare(
    `SELECT ${identityColumns} FROM identities i ORDER BY i.last_seen_ms DESC, i.id LIMIT ?`,
  );
  const selectIdentity = db.prepare(`SELECT ${identityColumns} FROM identities i WHERE i.id = ?`);
  const selectEdges = db.prepare(
    `SELECT identity, service, peer, peer_kind, external, operation, count, first_seen_ms, last_seen_ms
     FROM edges WHERE identity = ? ORDER BY count DESC, service, peer, operation`,
  );
  // Chains of both tables; every row of chains_text was appended before those of chains.
  const textColumns = 'trace_id, identity, identity_kind, display_name, start_ms, end_ms, calls, NULL AS received_ms, 0 AS numbered, seq';
  const numberedColumns = 'trace_id, identity, kind, display_name, start_ms, end_ms, calls, received_ms, 1, seq';
  const selectRecent = db.prepare(
    `SELECT ${textColumns} FROM chains_text WHERE identity = ? AND end_ms >= ? AND end_ms < ?
     UNION ALL ${CHAINS_OF_IDENTITY(numberedColumns)}
     ORDER BY end_ms DESC, numbered DESC, seq DESC LIMIT ?`,
  );
  const chainKeys = createChainKeys(db, mergeAt.chainKeys, mergeAt.sweepMin);
  // Chains written before migration 090 are found by trace id through the partial index up to
  // their last seq; later ones through the seq ranges of their trace's parts (`IN` drops the
  // duplicates of ranges that overlap, the trace id check the other traces' chains inside a range).
  const upto = indexedChainsUpTo(db);
  const selectTrace = db.prepare(
    `SELECT ${textColumns} FROM chains_text WHERE trace_id = ?
     UNION ALL SELECT ${numberedColumns} FROM chains WHERE trace_id = ? AND seq <= ${upto}
     UNION ALL SELECT ${numberedColumns} FROM chains WHERE seq IN
       (SELECT c.seq FROM trace_parts p JOIN chains c ON c.seq BETWEEN p.first_chain AND p.last_chain WHERE p.seq IN (${PARTS_OF_TRACE}) AND p.trace_id = ?)
       AND seq > ${upto} AND trace_id = ?
     ORDER BY start_ms, numbered, seq`,
  );
  const selectTraceParts = db.prepare(
    `SELECT ${textColumns} FROM chains_text WHERE trace_id = ?
     UNION ALL SELECT ${numberedColumns} FROM chains WHERE seq IN
       (SELECT c.seq FROM trace_parts p JOIN chains c ON c.seq BETWEEN p.first_chain AND p.last_chain WHERE p.seq IN (${PARTS_OF_TRACE}) AND p.trace_id = ?)
       AND seq > ${upto} AND trace_id = ?
     ORDER BY start_ms, numbered, seq`,
  );
  // Whether rows before 090 hold chains: once retention has deleted them, a lookup by trace skips
  // their index (a late part's lookups cost as before 090). A chain written later takes a seq up to
  // `upto` only when the table was emptied; the write says so.
  const holdsOldChains = db.prepare(`SELECT EXISTS (SELECT 1 FROM chains WHERE seq <= ${upto})`).pluck();
  let oldChains = holdsOldChains.get() === 1;
  const traceRows = (bytes: Buffer): ChainRow[] =>
    (oldChains ? selectTrace.all(bytes, bytes, bytes, bytes, bytes, bytes) : selectTraceParts.all(bytes, bytes, bytes, bytes, bytes)) as ChainRow[];
  // Retention deletes from the front of the append order, within a window of `maxRows` rows.
  const deleteOldTextChains = db.prepare('DELETE FROM chains_text WHERE seq IN (SELECT seq FROM chains_text ORDER BY seq LIMIT ?) AND end_ms < ?');
  // The keys of the chains and parts deleted from the front are left for the key tables' sweeps
  // (key-sweep.ts): deleting them here dirtied a page of trace keys per part.
  const deleteOldChains = db.prepare('DELETE FROM chains WHERE seq IN (SELECT seq FROM chains ORDER BY seq LIMIT ?) AND end_ms < ?');
  const insertParts = createRowInserter(db, 'trace_parts (trace_id, end_ms, first_chain, last_chain, start_ms, summary_end_ms, spans, services)', 8);
  // Summaries of both tables; every row of traces was written before those of trace_parts.
  const selectTraceSummary = db.prepare(
    `SELECT start_ms, end_ms, spans, services FROM (
       SELECT 0 AS newer, seq, start_ms, end_ms, spans, services FROM traces WHERE trace_id = ?
       UNION ALL SELECT 1, seq, start_ms, summary_end_ms, spans, services FROM trace_parts WHERE seq IN (${PARTS_OF_TRACE}) AND trace_id = ? AND spans IS NOT NULL
     ) ORDER BY newer, seq LIMIT 64`,
  );
  const selectPartSummary = db.prepare(
    `SELECT start_ms, summary_end_ms AS end_ms, spans, services FROM trace_parts WHERE seq IN (${PARTS_OF_TRACE}) AND trace_id = ? AND spans IS NOT NULL ORDER BY seq LIMIT 64`,
  );
  // As for chains: `traces` gets no rows after 090, so once empty it is not looked up.
  const holdsOldSummaries = db.prepare('SELECT EXISTS (SELECT 1 FROM traces)').pluck();
  let oldSummaries = holdsOldSummaries.get() === 1;
  // Parts newest first, each with the received time of its first chain (the chain's seq too: a
  // part whose first chain is gone has had it taken by retention, from the front).
  const selectPartsBefore = db
    .prepare(
      `SELECT p.seq, p.trace_id, p.first_chain, c.seq, c.received_ms FROM trace_parts p LEFT JOIN chains c ON c.seq = p.first_chain
       WHERE p.seq < ? ORDER BY p.seq DESC LIMIT ?`,
    )
    .raw();
  const holdsTextChains = db.prepare('SELECT EXISTS (SELECT 1 FROM chains_text)').pluck();
  const recentTraceIdsStep = (sinceMs: number, cursor: RecentTracesCursor, rows: number, visit: (traceId: string) => void): boolean | undefined => {
    const found = selectPartsBefore.all(cursor.beforeSeq, rows) as Array<[number, Buffer, number | null, number | null, number | null]>;
    for (const [seq, traceId, firstChain, chainSeq, receivedMs] of found) {
      if (firstChain !== null) {
        if (chainSeq === null) return true;
        if (receivedMs !== null && receivedMs < sinceMs) {
          if (++cursor.oldInARow >= OLD_PARTS_IN_A_ROW) return true;
        } else cursor.oldInARow = 0;
      }
      visit(traceId.toString('hex'));
      cursor.beforeSeq = seq;
    }
    if (found.length === rows) return undefined;
    return !(oldChains || oldSummaries || holdsTextChains.get() === 1);
  };
  const deleteOldTraces = db.prepare('DELETE FROM traces WHERE seq IN (SELECT seq FROM traces ORDER BY seq LIMIT ?) AND end_ms < ?');
  // A part's end_ms is the newest of its summary's and its chains' ends. It goes once no chain up to
  // its range's end is left (chains go from the front, so its own are gone; a part never outlives
  // the way to its chains). Only parts with a summary count as traces.
  const deleteOldParts = db
    .prepare(
      `DELETE FROM trace_parts WHERE seq IN (SELECT seq FROM trace_parts ORDER BY seq LIMIT ?) AND end_ms < ?
         AND (last_chain IS NULL OR last_chain < coalesce((SELECT min(seq) FROM chains), 9007199254740991))
       RETURNING spans IS NOT NULL`,
    )
    .pluck();
  // Parts without chains (summaries of traces that made none) by end time, wherever they are in the
  // append order: few, and their keys go with them (the delete's own WHERE, run just before it in
  // the same transaction, takes the same rows), since a sweep takes only keys below the oldest part.
  const OLD_SUMMARIES = 'seq IN (SELECT seq FROM trace_parts WHERE first_chain IS NULL AND end_ms < ? ORDER BY end_ms LIMIT ?)';
  const deleteOldSummaries = db.prepare(`DELETE FROM trace_parts WHERE ${OLD_SUMMARIES}`);
  const dropOldSummaryKeys = keys.dropping(OLD_SUMMARIES);
  const deleteOldIdentities = db.prepare('DELETE FROM identities WHERE id IN (SELECT id FROM identities WHERE last_seen_ms < ? ORDER BY last_seen_ms LIMIT ?)');
  const deleteOldEdges = db.prepare(
    `DELETE FROM edges WHERE (identity, service, peer, operation) IN
       (SELECT identity, service, peer, operation FROM edges WHERE last_seen_ms < ? ORDER BY last_seen_ms LIMIT ?)`,
  );
  // Chains alerts hold out of learning (detection-schema.ts), by start time (migration 080); a
  // database migrated without the detection tables has none (prepared once the table is there).
  const hasHeldChains = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'held_chains'").pluck();
  let deleteOldHeld: Database.Statement | undefined;
  const pruneHeld = (beforeMs: number, rows: number): number => {
    if (!deleteOldHeld && !hasHeldChains.get()) return 0;
    deleteOldHeld ??= db.prepare(
      `DELETE FROM held_chains WHERE (identity, trace_id, alert_id) IN
         (SELECT identity, trace_id, alert_id FROM held_chains WHERE start_ms < ? ORDER BY start_ms LIMIT ?)`,
    );
    return deleteOldHeld.run(beforeMs, rows).changes;
  };
  const pruneStep = db.transaction((beforeMs: number, maxRows: number): PruneResult => {
    const rows = Math.max(1, Math.floor(maxRows));
    // The older table's window first; the rest of the step's rows from the front of the newer one.
    const older = deleteOldTextChains.run(rows, beforeMs).changes;
    let chains = older;
    if (older < rows) {
      const deleted = deleteOldChains.run(rows - older, beforeMs).changes;
      if (deleted > 0) {
        chainKeys.sweep.leftBehind(deleted);
        chainKeys.settle();
      }
      chains += deleted;
    }
    let traces = deleteOldTraces.run(rows, beforeMs).changes;
    let parts = 0;
    if (traces < rows) {
      const deleted = deleteOldParts.all(rows - traces, beforeMs) as number[];
      for (const summary of deleted) traces += summary;
      keys.sweep.leftBehind(deleted.length);
      parts += deleted.length;
    }
    if (traces < rows) {
      dropOldSummaryKeys(beforeMs, rows - traces);
      const deleted = deleteOldSummaries.run(beforeMs, rows - traces).changes;
      traces += deleted;
      parts += deleted;
    }
    if (parts > 0) keys.settle();
    const result: PruneResult = { chains, traces };
    // Identities and edges with no activity left within retention (id churn must not grow the file).
    const identities = deleteOldIdentities.run(beforeMs, rows).changes;
    const edges = deleteOldEdges.run(beforeMs, rows).changes;
    if (identities > 0) result.identities = identities;
    if (edges > 0) result.edges = edges;
    const held = pruneHeld(beforeMs, rows);
    if (held > 0) result.held = held;
    // Then a step of freeing the texts no chain refers to any more.
    const freed = textSweep.step(rows, chains);
    if (freed > 0) result.texts = freed;
    if (textSweep.active()) result.more = true;
    // And a step of each key table's sweep, when one is due: a few times the step's rows, keys are small.
    const chainKeysSwept = chainKeys.sweep.step(rows * 4);
    const traceKeysSwept = keys.sweep.step(rows * 4);
    if (chainKeysSwept || traceKeysSwept) result.more = true;
    if (oldChains) oldChains = holdsOldChains.get() === 1;
    if (oldSummaries) oldSummaries = holdsOldSummaries.get() === 1;
    return result;
  });
  const deleteIndexedTraceChains = db.prepare(`DELETE FROM chains WHERE trace_id = ? AND seq <= ${upto}`);
  const deleteChain = db.prepare('DELETE FROM chains WHERE seq = ?');
  // A replaced trace's parts keep their summaries and lose their chain ranges.
  const deleteChainParts = db.prepare(`DELETE FROM trace_parts WHERE seq IN (${PARTS_OF_TRACE}) AND trace_id = ? AND spans IS NULL RETURNING seq`).pluck();
  const clearChainRanges = db.prepare(`UPDATE trace_parts SET first_chain = NULL, last_chain = NULL WHERE seq IN (${PARTS_OF_TRACE}) AND trace_id = ? AND first_chain IS NOT NULL`);
  const deleteTraceTextChains = db.prepare('DELETE FROM chains_text WHERE trace_id = ?');
  const takeOffIdentity = db.prepare('UPDATE identities SET calls = calls - ?, chains = chains - ? WHERE id = ?');
  const dropEmptyIdentity = db.prepare('DELETE FROM identities WHERE id = ? AND calls <= 0 AND chains <= 0');
  const takeOffEdge = db.prepare('UPDATE edges SET count = count - ? WHERE identity = ? AND service = ? AND peer = ? AND operation = ?');
  const dropEmptyEdge = db.prepare('DELETE FROM edges WHERE identity = ? AND service = ? AND peer = ? AND operation = ? AND count <= 0');
  // identities.last_seen_ms is the newest chain end per identity: no scan of the chains table.
  const selectNewest = db.prepare('SELECT max(last_seen_ms) AS v FROM identities');
  const selectCounts = db.prepare('SELECT (SELECT count(*) FROM identities) AS identities, (SELECT count(*) FROM edges) AS edges');

  const texts = createTextTable(db);
  const textSweep = createTextSweep(db, texts, sweep);
  // The writes' bodies run in a transaction of their own (`write`, `replace`) or, from a caller
  // that rolls its whole transaction back when one throws (`writeInTransaction`), in the caller's
  // without a savepoint: a savepoint copies every page a write first touches to its sub-journal
  // (a temporary file past 64 KiB), ~9% of a batch's write on a grown file (bench/README.md).
  const writeBody = (chains: readonly Chain[], traces: readonly TraceSummary[] | undefined): WriteResult => {
    const result: WriteResult = { chains: 0, calls: 0, rejected: 0 };
    // Each trace's chains of this write, by trace id as given: one `trace_parts` row each (090).
    // A trace's chains come together, so a chain of the previous chain's trace takes its part
    // without a lookup.
    const parts = new Map<string, TracePart>();
    const ordered: TracePart[] = [];
    let lastKey: string | undefined;
    let lastPart: TracePart | undefined;
    // Each identity's aggregate, with the numbers of its texts and its edges by service, peer and
    // operation in nested maps (no key string per call): a chain of an identity seen earlier in the
    // write looks up nothing of its own in the text table.
    const identities = new Map<string, IdentityAgg>();
    const edges: EdgeAgg[] = [];
    // The parts of the chains queued in `insertChains` (their calls' blobs views of the codec's
    // run, valid until the next `startCallsRun`), for their ranges once the insert tells their seqs
    // (consecutive, ending at the last row's).
    const queuedParts: TracePart[] = [];
    let newest: number | undefined;
    const inserted = (last: number | undefined): void => {
      if (last === undefined) return;
      newest = last;
      const first = last - queuedParts.length + 1;
      if (first <= upto) oldChains = true;
      for (let i = 0; i < queuedParts.length; i++) {
        const seq = first + i;
        const part = queuedParts[i]!;
        if (part.first < 0 || seq < part.first) part.first = seq;
        if (seq > part.last) part.last = seq;
      }
      queuedParts.length = 0;
      startCallsRun();
    };
    // A write that threw may have left rows queued (rolled back with its transaction).
    insertChains.clear();
    insertParts.clear();
    partIds.length = 0;
    lastPart = undefined;
    keys.clear();
    startCallsRun();
    const accept = acceptableRun();
    for (const chain of chains) {
      const traceId = accept(chain);
      if (!traceId) {
        result.rejected++;
        continue;
      }
      const calls = chain.calls;
      const start = finite(chain.startMs);
      const end = finite(chain.endMs, start);
      const stored = encodeCallsBinary(calls, start, texts, true) ?? encodeCalls(calls, start);
      const kind = String(chain.identityKind);
      const displayName = chain.displayName ?? null;
      let agg = identities.get(chain.identity);
      if (agg) {
        if (agg.kind !== kind) {
          agg.kind = kind;
          agg.kindNumber = texts.numberOf(kind);
        }
        if (displayName !== null) agg.displayName = displayName;
        if (start < agg.first) agg.first = start;
        if (end > agg.last) agg.last = end;
        agg.calls += calls.length;
        agg.chains++;
      } else {
        agg = {
          id: chain.identity,
          number: texts.numberOf(chain.identity),
          kind,
          kindNumber: texts.numberOf(kind),
          displayName,
          chainName: undefined,
          nameNumber: 0,
          first: start,
          last: end,
          calls: calls.length,
          chains: 1,
          edges: new Map(),
        };
        identities.set(chain.identity, agg);
      }
      let nameNumber: number | null = null;
      if (displayName !== null) {
        const name = String(displayName);
        if (agg.chainName !== name) {
          agg.chainName = name;
          agg.nameNumber = texts.numberOf(name);
        }
        nameNumber = agg.nameNumber;
      }
      insertChains.values.push(traceId, agg.number, agg.kindNumber, nameNumber, start, end, stored, receivedOf(chain));
      let part: TracePart | undefined;
      if (chain.traceId === lastKey) part = lastPart!;
      else {
        part = parts.get(chain.traceId);
        if (!part) {
          parts.set(chain.traceId, (part = { key: chain.traceId, id: traceId, end, first: -1, last: -1, summarised: false }));
          ordered.push(part);
        }
        lastKey = chain.traceId;
        lastPart = part;
      }
      if (end > part.end) part.end = end;
      queuedParts.push(part);
      inserted(insertChains.queued());
      result.chains++;
      result.calls += calls.length;

      const byService = agg.edges;
      for (const call of calls) {
        const at = finite(call.startMs, start);
        const service = String(call.service ?? '');
        const peer = String(call.peer ?? '');
        const operation = String(call.operation ?? '');
        let byPeer = byService.get(service);
        if (!byPeer) byService.set(service, (byPeer = new Map()));
        let byOperation = byPeer.get(peer);
        if (!byOperation) byPeer.set(peer, (byOperation = new Map()));
        const e = byOperation.get(operation);
        if (e) {
          e.count++;
          if (at < e.first) e.first = at;
          if (at > e.last) e.last = at;
          e.peerKind = String(call.peerKind);
          e.external = call.external ? 1 : 0;
        } else {
          const row: EdgeAgg = {
            identity: chain.identity,
            service,
            peer,
            operation,
            peerKind: String(call.peerKind ?? ''),
            external: call.external ? 1 : 0,
            count: 1,
            first: at,
            last: at,
          };
          byOperation.set(operation, row);
          edges.push(row);
        }
      }
    }
    inserted(insertChains.flush());
    if (newest !== undefined) chainKeys.added(newest);
    for (const r of identities.values()) upsertIdentity.run(r.id, r.kind, r.displayName, r.first, r.last, r.calls, r.chains);
    for (const e of edges) upsertEdge.run(e.identity, e.service, e.peer, e.operation, e.peerKind, e.external, e.count, e.first, e.last);
    writeParts(parts, ordered, traces);
    return result;
  };
  const write = db.transaction(writeBody);
  /** The write's `trace_parts` rows: each summary with its trace's chains when it has some, then the other traces' chains. */
  const writeParts = (parts: Map<string, TracePart>, ordered: readonly TracePart[], traces: readonly TraceSummary[] | undefined): void => {
    if (traces) {
      let next = 0;
      for (const t of traces) {
        // A part is keyed by the trace id as given, so a summary that finds one has its bytes. The
        // summaries usually come in the order of their traces' chains: the next part is tried first.
        let part: TracePart | undefined;
        if (t) {
          const ahead = ordered[next];
          if (ahead !== undefined && ahead.key === t.traceId) {
            part = ahead;
            next++;
          } else {
            part = parts.get(t.traceId);
          }
        }
        const id = part ? part.id : t && traceIdToBytes(t.traceId);
        if (!id) continue;
        const start = finite(t.startMs);
        const end = finite(t.endMs, start);
        const spans = Math.max(0, Math.floor(finite(t.spans)));
        const services = JSON.stringify(servicesOf(t.services));
        if (part && !part.summarised) {
          part.summarised = true;
          insertParts.values.push(id, Math.max(end, part.end), part.first, part.last, start, end, spans, services);
        } else {
          insertParts.values.push(id, end, null, null, start, end, spans, services);
        }
        partIds.push(id);
        lastPart = insertParts.queued() ?? lastPart;
      }
    }
    for (const part of ordered) {
      if (part.summarised) continue;
      insertParts.values.push(part.id, part.end, part.first, part.last, null, null, null, null);
      partIds.push(part.id);
      lastPart = insertParts.queued() ?? lastPart;
    }
    lastPart = insertParts.flush() ?? lastPart;
    // The write's parts took consecutive seqs, ending at the last one's (see createRowInserter).
    if (lastPart !== undefined) keys.add(partIds, lastPart - partIds.length + 1);
    partIds.length = 0;
    lastPart = undefined;
  };
  /** The trace ids of the parts queued by writeParts, in order, and the seq of the last one inserted. */
  const partIds: Buffer[] = [];
  let lastPart: number | undefined;

  const replaceBody = (traceId: string, chains: readonly Chain[]): WriteResult => {
    const bytes = traceIdToBytes(traceId);
    const own = bytes ? chains.filter((c) => acceptable(c)?.equals(bytes)) : [];
    if (!bytes) return { chains: 0, calls: 0, rejected: chains.length };
    const rows = traceRows(bytes);
    const counts = chainCounts(rows.map((row) => toChain(row, texts)));
    deleteIndexedTraceChains.run(bytes);
    for (const row of rows) {
      if (!row.numbered) continue;
      if (row.seq > upto) deleteChain.run(row.seq);
      chainKeys.drop(row.identity as number, row.end_ms, row.seq);
    }
    if (rows.length > 0) chainKeys.settle();
    const parts = deleteChainParts.all(bytes, bytes, bytes) as number[];
    if (parts.length > 0) {
      keys.drop(parts.map((seq) => [bytes, seq] as const));
      keys.settle();
    }
    clearChainRanges.run(bytes, bytes, bytes);
    deleteTraceTextChains.run(bytes);
    for (const [id, c] of counts.identities) takeOffIdentity.run(c.calls, c.chains, id);
    for (const e of counts.edges.values()) takeOffEdge.run(e.count, e.identity, e.service, e.peer, e.operation);
    const result = writeBody(own, undefined);
    for (const id of counts.identities.keys()) dropEmptyIdentity.run(id);
    for (const e of counts.edges.values()) dropEmptyEdge.run(e.identity, e.service, e.peer, e.operation);
    return { ...result, rejected: result.rejected + chains.length - own.length };
  };
  const replace = db.transaction(replaceBody);
  /** Runs a write's body in the caller's transaction, which must be open. */
  const unguarded = <T>(run: () => T): T => {
    if (!db.inTransaction) throw new Error('writeInTransaction needs an open transaction of the caller');
    return numbering(run);
  };

  let open = true;
  /** Set while `inTransaction` runs: the writes inside leave the texts they numbered to it. */
  let inUnit = false;
  /** Runs a write; the texts it numbered are kept in the memo only once they are committed. */
  const numbering = <T>(run: () => T): T => {
    if (inUnit) return run();
    // Within a caller's transaction the texts numbered now may still be rolled back with it.
    const outer = db.inTransaction;
    inUnit = true;
    try {
      const result = run();
      if (outer) texts.forgetAdded();
      else texts.keepAdded();
      return result;
    } catch (err) {
      texts.forgetAdded();
      throw err;
    } finally {
      inUnit = false;
    }
  };
  return {
    path,
    db,
    writeChains: (chains, traces) => numbering(() => write(chains, traces)),
    accepts: (chain) => acceptable(chain) !== undefined,
    replaceTraceChains: (traceId, chains) => numbering(() => replace(traceId, chains)),
    writeInTransaction: {
      writeChains: (chains, traces) => unguarded(() => writeBody(chains, traces)),
      replaceTraceChains: (traceId, chains) => unguarded(() => replaceBody(traceId, chains)),
    },
    inTransaction: numbering,
    listIdentities: (limit) => (selectIdentities.all(limit) as IdentityRow[]).map((row) => identityFromRow(row)),
    getIdentity(id) {
      const row = selectIdentity.get(id) as IdentityRow | undefined;
      return row && identityFromRow(row);
    },
    identityEdges: (id) => (selectEdges.all(id) as EdgeRow[]).map((row) => edgeFromRow(row)),
    recentChains: (identity, limit, sinceMs = -Number.MAX_SAFE_INTEGER, untilMs = Number.MAX_SAFE_INTEGER) => {
      const number = texts.knownId(identity) ?? -1;
      const rows = selectRecent.all(identity, sinceMs, untilMs, number, sinceMs, untilMs, limit, number, sinceMs, untilMs, limit) as ChainRow[];
      return rows.map((row) => toChain(row, texts));
    },
    counts: () => selectCounts.get() as { identities: number; edges: number },
    traceChains(traceId) {
      const bytes = traceIdToBytes(traceId);
      return bytes ? traceRows(bytes).map((row) => toChain(row, texts)) : [];
    },
    pruneStep: (beforeMs, maxRows) => pruneStep(beforeMs, maxRows),
    traceSummary(traceId) {
      const bytes = traceIdToBytes(traceId);
      if (!bytes) return undefined;
      const rows = (oldSummaries ? selectTraceSummary.all(bytes, bytes, bytes, bytes) : selectPartSummary.all(bytes, bytes, bytes)) as { start_ms: number; end_ms: number; spans: number; services: string }[];
      return mergeTraceSummary(bytes, rows.map((r) => ({ ...r, services: JSON.parse(r.services) as string[] })));
    },
    recentTraceIdsStep,
    newestEventMs: () => (selectNewest.get() as { v: number | null }).v ?? 0,
    sizeBytes() {
      const pages = db.pragma('page_count', { simple: true }) as number;
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      return pages * pageSize;
    },
    schemaVersion: () => schemaVersion(db),
    close() {
      if (!open) return;
      open = false;
      db.close();
    },
  };
}

/**
 * The `strings` table as the call codec uses it, with memos both ways. A text is numbered at
 * most once (its id never changes), so a memo is never wrong, only cold; the ids numbered by a
 * write are forgotten when it does not commit.
 */
function createTextTable(db: Database.Database): TextTable & SweptTexts & {
  /** The text's id, numbering it when new whatever its length or the table's size (identities, kinds, display names). */
  numberOf(text: string): number;
  /** The text's id when it has one; nothing is added. */
  knownId(text: string): number | undefined;
  keepAdded(): void;
  forgetAdded(): void;
} {
  const selectId = db.prepare('SELECT id FROM strings WHERE text = ?').pluck();
  const selectText = db.prepare('SELECT text FROM strings WHERE id = ?').pluck();
  const insert = db.prepare('INSERT INTO strings (text) VALUES (?)');
  const countRows = db.prepare('SELECT count(*) FROM strings').pluck();
  const ids = new Map<string, number>();
  const byId = new Map<number, string>();
  let added: string[] = [];
  let rows = countRows.get() as number;
  /** Told every id handed out while a text sweep marks (text-sweep.ts). */
  let watcher: ((id: number) => void) | undefined;
  /** The text's id; a new text is numbered unless `bounded` and it is long, odd or the table full (-1). */
  const number = (text: string, bounded: boolean): number => {
    const id = lookUp(text, bounded);
    if (watcher && id >= 0) watcher(id);
    return id;
  };
  const lookUp = (text: string, bounded: boolean): number => {
    const known = ids.get(text);
    if (known !== undefined) return known;
    if (bounded && text.length > MAX_NUMBERED_TEXT) return -1;
    let id = selectId.get(text) as number | undefined;
    if (id === undefined) {
      if (bounded && (rows >= MAX_NUMBERED_TEXTS || /\p{Cs}/u.test(text))) return -1;
      id = Number(insert.run(text).lastInsertRowid);
      rows++;
      added.push(text);
    }
    if (ids.size >= TEXT_MEMO) ids.clear();
    ids.set(text, id);
    return id;
  };
  return {
    idOf: (text) => number(text, true),
    numberOf: (text) => number(text, false),
    knownId: (text) => ids.get(text) ?? (selectId.get(text) as number | undefined),
    textOf(id) {
      let text = byId.get(id);
      if (text !== undefined) return text;
      text = selectText.get(id) as string | undefined;
      if (text === undefined) throw new Error(`stored calls refer to text ${id}, which is not in the strings table`);
      // Within a caller's transaction the id may be one a write just handed out and a rollback frees.
      if (db.inTransaction) return text;
      if (byId.size >= TEXT_MEMO) byId.clear();
      byId.set(id, text);
      return text;
    },
    keepAdded() {
      added = [];
    },
    forgetAdded() {
      for (const text of added) ids.delete(text);
      rows -= added.length;
      added = [];
    },
    rows: () => rows,
    watch(mark) {
      watcher = mark;
    },
    reset() {
      ids.clear();
      byId.clear();
      rows = countRows.get() as number;
    },
  };
}

function toChain(row: ChainRow, texts: TextTable): Chain {
  const text = (v: string | number): string => (row.numbered ? texts.textOf(v as number) : (v as string));
  return chainFromColumns(
    {
      traceId: row.trace_id,
      identity: text(row.identity),
      identityKind: text(row.identity_kind),
      displayName: row.display_name !== null ? text(row.display_name) : null,
      startMs: row.start_ms,
      endMs: row.end_ms,
      calls: row.calls,
      receivedMs: row.received_ms,
    },
    texts,
  );
}
