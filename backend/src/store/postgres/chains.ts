import { randomUUID } from 'node:crypto';
import type { Chain, TraceSummary } from '@conduct/processor';
import { decodeCalls, encodeCalls, encodeCallsBinary, type TextTable } from '../call-codec.js';
import { traceIdToBytes } from '../trace-id.js';
import { acceptable, chainCounts, chainFromColumns, finite, mergeTraceSummary, MAX_TRACE_SERVICES, receivedOf } from '../rows.js';
import type { BatchUnit, ChainQuery, ChainReader, ChainRetention, ChainWriter, PruneResult, WriteResult } from '../contracts.js';
import { writeHandOff } from './handoff.js';
import { generationOver, type NumberedTexts } from './numbered-texts.js';
import type { Queryable, Sql } from './sql.js';
import { createPostgresTextSweep, type PostgresTextSweepOptions } from './text-sweep.js';
import { fromColumn, toColumn, toColumnOrNull } from './text.js';

/** First byte of the JSON form of calls (`[`); the binary form starts with its version, 3. */
const JSON_FIRST_BYTE = 0x5b;
/** Ids of written batches are kept this long (wall clock), long enough for any retry of a batch. */
export const WRITTEN_BATCH_TTL_MS = 24 * 60 * 60 * 1000;
/** Attempts of a chain write that meets sweeps of texts starting (one per sweep: two is plenty). */
const GENERATION_ATTEMPTS = 4;

/** One batch as the write statement binds it, every column an array. */
interface BatchColumns {
  chains: { traceId: Buffer[]; identity: number[]; kind: number[]; displayName: Array<number | null>; start: number[]; end: number[]; calls: Buffer[]; received: Array<number | null> };
  identities: { id: string[]; kind: string[]; displayName: Array<string | null>; first: number[]; last: number[]; calls: number[]; chains: number[] };
  edges: { identity: string[]; service: string[]; peer: string[]; operation: string[]; peerKind: string[]; external: boolean[]; count: number[]; first: number[]; last: number[] };
  traces: { traceId: Buffer[]; start: number[]; end: number[]; spans: number[]; services: string[] };
  /** The text generation the chains' text ids belong to. */
  generation: number;
}

/**
 * Every part of a batch in one statement (data-modifying CTEs over arrays): one round trip, and
 * its own transaction, so the batch is stored whole or not at all. Identities and edges arrive
 * aggregated, one row per key, so no upsert meets its own key twice; sorted, so that instances
 * writing at once take their row locks in the same order. The batch's id (or its unit's) goes in
 * last: a batch sent again after a commit whose answer was lost fails on it, and is known to be
 * stored. Within a unit that recorded its id already the id is null and nothing is recorded.
 * The chains' text ids are of the generation $32: the statement fails (CT001) when a sweep of
 * texts started since they were looked up (numbered-texts.ts).
 */
const WRITE_SQL = `WITH
  g AS MATERIALIZED (SELECT conduct_texts_at($32::int) AS gen),
  c AS (INSERT INTO chains (trace_id, identity, kind, display_name, start_ms, end_ms, calls, received_ms)
    SELECT u.* FROM g, unnest($1::bytea[], $2::int[], $3::int[], $4::int[], $5::int8[], $6::int8[], $7::bytea[], $31::int8[]) AS u),
  i AS (INSERT INTO identities (id, kind, display_name, first_seen_ms, last_seen_ms, calls, chains)
    SELECT * FROM unnest($8::text[], $9::text[], $10::text[], $11::int8[], $12::int8[], $13::int8[], $14::int8[])
    ON CONFLICT (id) DO UPDATE SET
      kind = excluded.kind,
      display_name = coalesce(excluded.display_name, identities.display_name),
      first_seen_ms = least(identities.first_seen_ms, excluded.first_seen_ms),
      last_seen_ms = greatest(identities.last_seen_ms, excluded.last_seen_ms),
      calls = identities.calls + excluded.calls,
      chains = identities.chains + excluded.chains),
  e AS (INSERT INTO edges (identity, service, peer, operation, peer_kind, external, count, first_seen_ms, last_seen_ms)
    SELECT * FROM unnest($15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::bool[], $21::int8[], $22::int8[], $23::int8[])
    ON CONFLICT (identity, service, peer, operation) DO UPDATE SET
      peer_kind = excluded.peer_kind,
      external = excluded.external,
      count = edges.count + excluded.count,
      first_seen_ms = least(edges.first_seen_ms, excluded.first_seen_ms),
      last_seen_ms = greatest(edges.last_seen_ms, excluded.last_seen_ms)),
  t AS (INSERT INTO traces (trace_id, start_ms, end_ms, spans, services)
    SELECT tr.trace_id, tr.start_ms, tr.end_ms, tr.spans, ARRAY(SELECT json_array_elements_text(tr.services::json))
    FROM unnest($24::bytea[], $25::int8[], $26::int8[], $27::int4[], $28::text[]) AS tr (trace_id, start_ms, end_ms, spans, services))
  INSERT INTO written_batches (id, written_ms) SELECT $29::uuid, $30 WHERE $29::uuid IS NOT NULL`;

/** A unit's id when it stores no chain: a unit sent again after its commit fails on it. */
const UNIT_ID_SQL = 'INSERT INTO written_batches (id, written_ms) VALUES ($1, $2)';

/** The well-formed ids among `keys`, each once. */
function distinctIds(keys: ReadonlyArray<Buffer | undefined>): Buffer[] {
  const seen = new Map<string, Buffer>();
  for (const k of keys) if (k) seen.set(k.toString('hex'), k);
  return [...seen.values()];
}

/** `items` by the hex of their trace id, each trace's in the order given. */
function groupByTrace<T>(items: readonly T[], idOf: (item: T) => Buffer): Map<string, T[]> {
  const byTrace = new Map<string, T[]>();
  for (const item of items) {
    const key = idOf(item).toString('hex');
    const list = byTrace.get(key);
    if (list) list.push(item);
    else byTrace.set(key, [item]);
  }
  return byTrace;
}

const CHAIN_COLUMNS = 'c.seq, c.trace_id, c.identity, c.kind, c.display_name, c.start_ms, c.end_ms, c.calls, c.received_ms';

interface ChainRow {
  seq: number;
  trace_id: Buffer;
  identity: number;
  kind: number;
  display_name: number | null;
  start_ms: number;
  end_ms: number;
  calls: Buffer;
  received_ms: number | null;
}

/** A time bound compared with whole-ms columns, rounded up (`>= x` and `< x` admit the same rows). */
function wholeBound(ms: number | undefined): number | null {
  return typeof ms === 'number' && Number.isFinite(ms) ? Math.ceil(ms) : null;
}

/**
 * Waits for every statement sent together; rejects with the first error that is not a statement
 * refused only because an earlier one had failed the transaction (SQLSTATE 25P02).
 */
async function settled(sent: ReadonlyArray<Promise<unknown>>): Promise<void> {
  const outcomes = await Promise.allSettled(sent);
  const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as { code?: string });
  if (failed.length > 0) throw failed.find((e) => e?.code !== '25P02') ?? failed[0];
}

/** Is this error the batch's id meeting itself (the batch was stored by an earlier attempt)? */
function alreadyWritten(err: unknown): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && e.constraint === 'written_batches_pkey';
}

export interface PostgresChains {
  /** The chain writer but for `commitBatch`, which the backend makes of `commitUnit`. */
  writer: Omit<ChainWriter, 'commitBatch'>;
  /** `ChainWriter.commitBatch` with the checkpoint as its statements (detection-state.ts) and the unit's id. */
  commitUnit(unit: BatchUnit, statements: ReadonlyArray<[string, unknown[]]>, unitId: string): Promise<WriteResult>;
  reader: ChainReader;
  retention: ChainRetention;
}

export function createPostgresChains(db: Sql, texts: NumberedTexts, sweepOptions: PostgresTextSweepOptions = {}): PostgresChains {
  const textSweep = createPostgresTextSweep(db, texts, sweepOptions);
  /** Ids of batches by the array the caller passed: the same array sent again is the same batch. */
  const batchIds = new WeakMap<readonly Chain[], string>();

  /** Runs a chain write; when a sweep of texts started after it looked its texts up, renews them and writes again. */
  const afresh = async <T>(write: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (!generationOver(err) || attempt >= GENERATION_ATTEMPTS) throw err;
        await texts.renew();
      }
    }
  };

  /**
   * Encodes and writes the accepted chains and the summaries through `q` in one statement; counts
   * what it stored. `id`: the batch's or unit's id, recorded by the same statement (null: none).
   * Resolves with `recorded: false` when there was nothing to write (the id is not recorded then).
   * `own`: the statement is its own transaction, and an id met again means stored before.
   */
  const write = async (
    q: Queryable,
    chains: readonly Chain[],
    traces: readonly TraceSummary[] | undefined,
    id: string | null,
    own = false,
  ): Promise<WriteResult & { recorded: boolean }> => {
    const result = { chains: 0, calls: 0, rejected: 0, recorded: false };
    const accepted: Array<{ chain: Chain; traceId: Buffer }> = [];
    for (const chain of chains) {
      const traceId = acceptable(chain);
      if (traceId) accepted.push({ chain, traceId });
      else result.rejected++;
    }
    const summaries = summaryColumns(traces);
    if (accepted.length === 0 && summaries.traceId.length === 0) return result;
    const columns = await encodeBatch(accepted, texts);
    columns.traces = summaries;
    for (const { chain } of accepted) {
      result.chains++;
      result.calls += chain.calls.length;
    }
    const { chains: c, identities: i, edges: e, traces: t } = columns;
    try {
      await q.query(WRITE_SQL, [
        c.traceId, c.identity, c.kind, c.displayName, c.start, c.end, c.calls,
        i.id, i.kind, i.displayName, i.first, i.last, i.calls, i.chains,
        e.identity, e.service, e.peer, e.operation, e.peerKind, e.external, e.count, e.first, e.last,
        t.traceId, t.start, t.end, t.spans, t.services,
        id, Date.now(), c.received, columns.generation,
      ]);
    } catch (err) {
      if (!own || !alreadyWritten(err)) throw err;
    }
    result.recorded = id !== null;
    return result;
  };

  /** A batch of its own: one statement, recorded by an id kept per array (the same array sent again is the same batch). */
  const writeBatch = async (chains: readonly Chain[], traces: readonly TraceSummary[] | undefined): Promise<WriteResult> => {
    let id = batchIds.get(chains);
    if (!id) batchIds.set(chains, (id = randomUUID()));
    const { chains: stored, calls, rejected } = await afresh(() => write(db, chains, traces, id, true));
    return { chains: stored, calls, rejected };
  };

  const writer: PostgresChains['writer'] = {
    accepts: (chain) => acceptable(chain) !== undefined,
    writeChains: writeBatch,
    replaceTraceChains: (traceId, chains) => afresh(() => db.transaction((tx) => replaceIn(tx, [{ traceId, chains }]))),
  };

  /**
   * The unit's chains, replaced traces and (as `statements`) detection checkpoint, in one
   * transaction; a unit of chains and summaries alone is one statement, its own transaction. The
   * unit's id is recorded by the chains' statement (or first, when the unit stores none). The
   * chains' statement and the checkpoint's go out together (pipeline mode: one round trip).
   */
  const commitUnit = async (unit: BatchUnit, statements: ReadonlyArray<[string, unknown[]]>, unitId: string): Promise<WriteResult> => {
    // As `write` decides: a unit with an accepted chain or a well-formed summary records its id there.
    const writable = Boolean(unit.chains?.some((c) => acceptable(c))) || summaryColumns(unit.traces).traceId.length > 0;
    const more = (unit.replaced?.length ?? 0) > 0 || statements.length > 0 || (unit.handOff?.items.length ?? 0) > 0;
    if (!writable && !more) return { chains: 0, calls: 0, rejected: unit.chains?.length ?? 0 };
    try {
      if (!more) {
        const { recorded: _, ...written } = await afresh(() => write(db, unit.chains ?? [], unit.traces, unitId));
        return written;
      }
      return await afresh(() => db.transaction(async (tx) => {
        // The chains' statement goes out once its new texts are numbered (on another connection);
        // the checkpoint's touch other tables, so their order on the wire does not matter.
        const chains = write(tx, unit.chains ?? [], unit.traces, unitId);
        const sent: Array<Promise<unknown>> = [chains];
        if (!writable) sent.push(tx.query(UNIT_ID_SQL, [unitId, Date.now()]));
        for (const [text, values] of statements) sent.push(tx.query(text, values));
        await settled(sent);
        const { recorded: _, ...written } = await chains;
        if (unit.replaced?.length) {
          const replaced = await replaceIn(tx, unit.replaced);
          written.chains += replaced.chains;
          written.calls += replaced.calls;
          written.rejected += replaced.rejected;
        }
        if (unit.handOff) await writeHandOff(tx, unit.handOff.items, unit.handOff.fromInstance);
        return written;
      }));
    } catch (err) {
      if (!alreadyWritten(err)) throw err;
      // An earlier attempt committed the whole unit; only its counts are not known here.
      return { chains: 0, calls: 0, rejected: 0 };
    }
  };

  /**
   * Replaces the stored chains of the traces `replaced` names (each with its new chains) within the
   * transaction `tx`, all of them in the same few statements: their old chains locked, read and
   * deleted, taken off their identities and edges, the new ones written, and identities and edges
   * left empty deleted. One trace at a time took seven round trips a trace; a unit of a batch with
   * a hundred later parts spent ~300 ms in them, which set detection latency's tail
   * (bench/README.md, "Later parts on PostgreSQL"). A trace named twice keeps its last chains, as
   * replacing it twice in a row would.
   */
  const replaceIn = async (tx: Queryable, replaced: ReadonlyArray<{ traceId: string; chains: readonly Chain[] }>): Promise<WriteResult> => {
    // Each trace's last entry is the one that stands; an earlier one's chains count as written and replaced.
    const keys = replaced.map((r) => traceIdToBytes(r.traceId));
    const last = new Map<string, number>();
    keys.forEach((bytes, i) => bytes && last.set(bytes.toString('hex'), i));
    const ids: Buffer[] = [];
    const own: Chain[] = [];
    const superseded = { chains: 0, calls: 0 };
    let rejected = 0;
    replaced.forEach((r, i) => {
      const bytes = keys[i];
      if (!bytes) {
        rejected += r.chains.length;
        return;
      }
      const stands = last.get(bytes.toString('hex')) === i;
      if (stands) ids.push(bytes);
      for (const c of r.chains) {
        if (!acceptable(c)?.equals(bytes)) rejected++;
        else if (stands) own.push(c);
        else {
          superseded.chains++;
          superseded.calls += c.calls.length;
        }
      }
    });
    if (ids.length === 0) return { ...superseded, rejected };
    // The old chains, locked (in seq order) and read, then taken off their identities and edges.
    const rows = await tx.query<ChainRow>(`SELECT ${CHAIN_COLUMNS} FROM chains c WHERE c.trace_id = ANY($1::bytea[]) ORDER BY c.seq FOR UPDATE`, [ids]);
    const old = chainCounts(await toChains(rows));
    await tx.query('DELETE FROM chains WHERE trace_id = ANY($1::bytea[])', [ids]);
    const identityIds = [...old.identities.keys()].sort();
    const edges = [...old.edges.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const identityArgs = [identityIds.map(toColumn), identityIds.map((id) => old.identities.get(id)!.calls), identityIds.map((id) => old.identities.get(id)!.chains)];
    const edgeArgs = [edges.map((e) => toColumn(e.identity)), edges.map((e) => toColumn(e.service)), edges.map((e) => toColumn(e.peer)), edges.map((e) => toColumn(e.operation))];
    if (identityIds.length > 0) {
      await tx.query(
        `UPDATE identities i SET calls = i.calls - o.calls, chains = i.chains - o.chains
         FROM unnest($1::text[], $2::int8[], $3::int8[]) AS o (id, calls, chains) WHERE i.id = o.id`,
        identityArgs,
      );
      await tx.query(
        `UPDATE edges x SET count = x.count - o.count
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) AS o (identity, service, peer, operation, count)
         WHERE x.identity = o.identity AND x.service = o.service AND x.peer = o.peer AND x.operation = o.operation`,
        [...edgeArgs, edges.map((e) => e.count)],
      );
    }
    // Within a transaction whose id is recorded (a unit), or one of its own (replaceTraceChains).
    const { recorded: _, ...written } = await write(tx, own, undefined, null);
    if (identityIds.length > 0) {
      await tx.query('DELETE FROM identities WHERE id = ANY($1::text[]) AND calls <= 0 AND chains <= 0', [identityArgs[0]]);
      await tx.query(
        `DELETE FROM edges x USING unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS o (identity, service, peer, operation)
         WHERE x.identity = o.identity AND x.service = o.service AND x.peer = o.peer AND x.operation = o.operation AND x.count <= 0`,
        edgeArgs,
      );
    }
    return { chains: written.chains + superseded.chains, calls: written.calls + superseded.calls, rejected: written.rejected + rejected };
  };

  /** Chains of rows, their texts looked up in one round trip when the memo lacks any. */
  const toChains = async (rows: readonly ChainRow[]): Promise<Chain[]> => {
    const needed = new Set<number>();
    const collect: TextTable = {
      idOf: () => -1,
      textOf(id) {
        if (texts.textOf(id) === undefined) needed.add(id);
        return '';
      },
    };
    for (const r of rows) {
      for (const id of [r.identity, r.kind, r.display_name]) if (id !== null && texts.textOf(id) === undefined) needed.add(id);
      if (r.calls[0] !== JSON_FIRST_BYTE) decodeCalls(r.calls, { traceId: '', identity: '', identityKind: '', startMs: 0 }, collect);
    }
    const loaded = needed.size > 0 ? await texts.load(needed) : undefined;
    const table = texts.table(loaded ? { texts: loaded } : undefined);
    return rows.map((r) => toChain(r, table));
  };

  const reader: ChainReader = {
    async traceChains(traceId) {
      const bytes = traceIdToBytes(traceId);
      if (!bytes) return [];
      const rows = await db.query<ChainRow>(`SELECT ${CHAIN_COLUMNS} FROM chains c WHERE c.trace_id = $1 ORDER BY c.start_ms, c.seq`, [bytes]);
      return toChains(rows);
    },
    async recentChains(identity, query: ChainQuery) {
      const limit = Math.max(1, Math.floor(query.limit));
      const rows = await db.query<ChainRow>(
        `SELECT ${CHAIN_COLUMNS} FROM chains c
         WHERE c.identity = (SELECT id FROM strings WHERE text = $1)
           AND ($2::int8 IS NULL OR c.end_ms >= $2) AND ($3::int8 IS NULL OR c.end_ms < $3)
         ORDER BY c.end_ms DESC, c.seq DESC LIMIT $4`,
        // End times are whole ms: a bound is rounded up without changing which chains it admits.
        [toColumn(identity), wholeBound(query.sinceMs), wholeBound(query.untilMs), limit],
      );
      return toChains(rows);
    },
    async traceSummary(traceId) {
      const bytes = traceIdToBytes(traceId);
      if (!bytes) return undefined;
      const rows = await db.query<{ start_ms: number; end_ms: number; spans: number; services: string[] }>(
        'SELECT start_ms, end_ms, spans, services FROM traces WHERE trace_id = $1 ORDER BY seq LIMIT 64',
        [bytes],
      );
      return mergeTraceSummary(bytes, rows, fromColumn);
    },
    async traceSummaries(traceIds) {
      const keys = traceIds.map((id) => traceIdToBytes(id));
      const ids = distinctIds(keys);
      if (ids.length === 0) return keys.map(() => undefined);
      // At most 64 parts a trace, as traceSummary reads.
      const rows = await db.query<{ trace_id: Buffer; start_ms: number; end_ms: number; spans: number; services: string[] }>(
        `SELECT trace_id, start_ms, end_ms, spans, services FROM
           (SELECT trace_id, start_ms, end_ms, spans, services, seq, row_number() OVER (PARTITION BY trace_id ORDER BY seq) AS n
            FROM traces WHERE trace_id = ANY($1::bytea[])) t
         WHERE n <= 64 ORDER BY seq`,
        [ids],
      );
      const byTrace = groupByTrace(rows, (r) => r.trace_id);
      return keys.map((bytes) => (bytes ? mergeTraceSummary(bytes, byTrace.get(bytes.toString('hex')) ?? [], fromColumn) : undefined));
    },
    async chainsOfTraces(traceIds) {
      const keys = traceIds.map((id) => traceIdToBytes(id));
      const ids = distinctIds(keys);
      if (ids.length === 0) return keys.map(() => []);
      const rows = await db.query<ChainRow>(`SELECT ${CHAIN_COLUMNS} FROM chains c WHERE c.trace_id = ANY($1::bytea[]) ORDER BY c.start_ms, c.seq`, [ids]);
      const chains = await toChains(rows);
      const byTrace = groupByTrace(
        rows.map((row, i) => ({ row, chain: chains[i]! })),
        ({ row }) => row.trace_id,
      );
      return keys.map((bytes) => (bytes ? (byTrace.get(bytes.toString('hex')) ?? []).map(({ chain }) => chain) : []));
    },
    // Chains and summaries live in two tables here, and a summary's row does not say when it was
    // received: which traces were stored lately cannot be told. (In a cluster the engine does not
    // ask: another instance may have stored any trace.)
    recentTraceIds: async () => false,
    async newestEventMs() {
      // identities.last_seen_ms is the newest chain end per identity: no scan of the chains.
      const [row] = await db.query<{ v: number | null }>('SELECT max(last_seen_ms) AS v FROM identities');
      return row?.v ?? 0;
    },
  };

  const retention: ChainRetention = {
    async pruneStep(beforeMs, maxRows) {
      const rows = Math.max(1, Math.floor(maxRows));
      // From the front of the append order, within a window of `rows` rows: never a scan.
      const [r] = await db.query<{ chains: number; traces: number; identities: number; edges: number; held: number }>(
        `WITH c AS (DELETE FROM chains WHERE seq IN (SELECT seq FROM chains ORDER BY seq LIMIT $1) AND end_ms < $2 RETURNING 1),
           t AS (DELETE FROM traces WHERE seq IN (SELECT seq FROM traces ORDER BY seq LIMIT $1) AND end_ms < $2 RETURNING 1),
           b AS (DELETE FROM written_batches WHERE id IN (SELECT id FROM written_batches WHERE written_ms < $3 LIMIT $1)),
           i AS (DELETE FROM identities WHERE id IN (SELECT id FROM identities WHERE last_seen_ms < $2 ORDER BY last_seen_ms LIMIT $1) RETURNING 1),
           e AS (DELETE FROM edges WHERE (identity, service, peer, operation) IN
             (SELECT identity, service, peer, operation FROM edges WHERE last_seen_ms < $2 ORDER BY last_seen_ms LIMIT $1) RETURNING 1),
           h AS (DELETE FROM held_chains WHERE (identity, trace_id, alert_id) IN
             (SELECT identity, trace_id, alert_id FROM held_chains WHERE start_ms < $2 ORDER BY start_ms LIMIT $1) RETURNING 1)
         SELECT (SELECT count(*) FROM c)::int AS chains, (SELECT count(*) FROM t)::int AS traces,
           (SELECT count(*) FROM i)::int AS identities, (SELECT count(*) FROM e)::int AS edges, (SELECT count(*) FROM h)::int AS held`,
        [rows, wholeBound(beforeMs) ?? 0, Date.now() - WRITTEN_BATCH_TTL_MS],
      );
      const result: PruneResult = { chains: r?.chains ?? 0, traces: r?.traces ?? 0 };
      if (r?.identities) result.identities = r.identities;
      if (r?.edges) result.edges = r.edges;
      if (r?.held) result.held = r.held;
      // Texts no chain refers to any more: a step of the sweep, once one is due.
      const swept = await textSweep.step(rows, result.chains);
      if (swept.texts) result.texts = swept.texts;
      if (swept.more) result.more = true;
      return result;
    },
  };

  return { writer, commitUnit, reader, retention };
}

/** Trace summaries as columns; malformed trace ids are skipped, as SQLite does. */
function summaryColumns(traces: readonly TraceSummary[] | undefined): BatchColumns['traces'] {
  const out: BatchColumns['traces'] = { traceId: [], start: [], end: [], spans: [], services: [] };
  for (const t of traces ?? []) {
    const id = t && traceIdToBytes(t.traceId);
    if (!id) continue;
    const start = finite(t.startMs);
    const services = Array.isArray(t.services) ? t.services.slice(0, MAX_TRACE_SERVICES).map((s) => toColumn(String(s))) : [];
    out.traceId.push(id);
    out.start.push(start);
    out.end.push(finite(t.endMs, start));
    out.spans.push(Math.max(0, Math.min(2 ** 31 - 1, Math.floor(finite(t.spans)))));
    out.services.push(JSON.stringify(services));
  }
  return out;
}

/**
 * Encodes the chains' calls (their texts numbered: one round trip when some text is new to this
 * process) and aggregates identities and edges as SQLite's writer does.
 */
async function encodeBatch(accepted: ReadonlyArray<{ chain: Chain; traceId: Buffer }>, texts: NumberedTexts): Promise<BatchColumns> {
  // First pass over the memo: texts it lacks are noted, and the chains using them encoded again.
  // Ids as this batch saw them: the memo may start over while new texts are numbered.
  const generation = texts.generation();
  const batchIds = new Map<string, number>();
  const always = new Set<string>();
  const bounded = new Set<string>();
  let missing = false;
  const probe: TextTable = {
    idOf(text) {
      const id = batchIds.get(text) ?? texts.known(text);
      if (id !== undefined) {
        batchIds.set(text, id);
        return id;
      }
      if (!texts.numberable(text)) return -1;
      bounded.add(text);
      missing = true;
      return 0;
    },
    textOf: () => '',
  };
  const encoded: Array<Buffer | undefined> = [];
  for (const { chain } of accepted) {
    for (const t of [chain.identity, String(chain.identityKind), ...(chain.displayName === undefined || chain.displayName === null ? [] : [String(chain.displayName)])]) {
      const id = texts.known(t);
      if (id === undefined) always.add(t);
      else batchIds.set(t, id);
    }
    missing = false;
    const start = finite(chain.startMs);
    const binary = encodeCallsBinary(chain.calls, start, probe);
    encoded.push(missing ? undefined : Buffer.from(binary ?? Buffer.from(encodeCalls(chain.calls, start), 'utf8')));
  }
  if (always.size > 0 || bounded.size > 0) for (const [text, id] of await texts.resolve(always, bounded)) batchIds.set(text, id);
  const table = texts.table({ ids: batchIds });
  const idOf = (text: string): number => {
    const id = batchIds.get(text);
    if (id === undefined) throw new Error('a chain\'s identity text has no number');
    return id;
  };

  const out: BatchColumns = {
    chains: { traceId: [], identity: [], kind: [], displayName: [], start: [], end: [], calls: [], received: [] },
    identities: { id: [], kind: [], displayName: [], first: [], last: [], calls: [], chains: [] },
    edges: { identity: [], service: [], peer: [], operation: [], peerKind: [], external: [], count: [], first: [], last: [] },
    traces: { traceId: [], start: [], end: [], spans: [], services: [] },
    generation,
  };
  const identities = new Map<string, { kind: string; displayName: string | null; first: number; last: number; calls: number; chains: number }>();
  const edges = new Map<string, { identity: string; service: string; peer: string; operation: string; peerKind: string; external: boolean; count: number; first: number; last: number }>();
  accepted.forEach(({ chain, traceId }, n) => {
    const start = finite(chain.startMs);
    const end = finite(chain.endMs, start);
    let calls = encoded[n];
    if (!calls) {
      const binary = encodeCallsBinary(chain.calls, start, table);
      calls = Buffer.from(binary ?? Buffer.from(encodeCalls(chain.calls, start), 'utf8'));
    }
    const displayName = chain.displayName === undefined || chain.displayName === null ? null : String(chain.displayName);
    const c = out.chains;
    c.traceId.push(traceId);
    c.identity.push(idOf(chain.identity));
    c.kind.push(idOf(String(chain.identityKind)));
    c.displayName.push(displayName === null ? null : idOf(displayName));
    c.start.push(start);
    c.end.push(end);
    c.calls.push(calls);
    c.received.push(receivedOf(chain));

    const agg = identities.get(chain.identity);
    if (agg) {
      agg.kind = String(chain.identityKind);
      agg.displayName = displayName ?? agg.displayName;
      agg.first = Math.min(agg.first, start);
      agg.last = Math.max(agg.last, end);
      agg.calls += chain.calls.length;
      agg.chains++;
    } else {
      identities.set(chain.identity, { kind: String(chain.identityKind), displayName, first: start, last: end, calls: chain.calls.length, chains: 1 });
    }
    for (const call of chain.calls) {
      const at = finite(call.startMs, start);
      const service = String(call.service ?? '');
      const peer = String(call.peer ?? '');
      const operation = String(call.operation ?? '');
      const key = JSON.stringify([chain.identity, service, peer, operation]);
      const e = edges.get(key);
      if (e) {
        e.count++;
        e.first = Math.min(e.first, at);
        e.last = Math.max(e.last, at);
        e.peerKind = String(call.peerKind);
        e.external = Boolean(call.external);
      } else {
        edges.set(key, { identity: chain.identity, service, peer, operation, peerKind: String(call.peerKind ?? ''), external: Boolean(call.external), count: 1, first: at, last: at });
      }
    }
  });
  for (const [id, r] of [...identities].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const i = out.identities;
    i.id.push(toColumn(id));
    i.kind.push(toColumn(r.kind));
    i.displayName.push(toColumnOrNull(r.displayName));
    i.first.push(r.first);
    i.last.push(r.last);
    i.calls.push(r.calls);
    i.chains.push(r.chains);
  }
  for (const [, r] of [...edges].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const e = out.edges;
    e.identity.push(toColumn(r.identity));
    e.service.push(toColumn(r.service));
    e.peer.push(toColumn(r.peer));
    e.operation.push(toColumn(r.operation));
    e.peerKind.push(toColumn(r.peerKind));
    e.external.push(r.external);
    e.count.push(r.count);
    e.first.push(r.first);
    e.last.push(r.last);
  }
  return out;
}

function toChain(row: ChainRow, texts: TextTable): Chain {
  return chainFromColumns(
    {
      traceId: row.trace_id,
      identity: texts.textOf(row.identity),
      identityKind: texts.textOf(row.kind),
      displayName: row.display_name !== null ? texts.textOf(row.display_name) : null,
      startMs: row.start_ms,
      endMs: row.end_ms,
      calls: row.calls[0] === JSON_FIRST_BYTE ? row.calls.toString('utf8') : row.calls,
      receivedMs: row.received_ms,
    },
    texts,
  );
}
