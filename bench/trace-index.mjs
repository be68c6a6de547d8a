// What the trace-id index of `trace_parts` costs a write, raw SQLite (the store's pragmas and the
// table's columns, no conduct code): a file grown to N parts (`--grown`), then `--batches`
// transactions of `--batch` parts each (about a store write of ~5 batches of 1,024 small traces),
// written alternately, batch by batch, into copies of that file with each layout; CPU µs per part.
//
//   node bench/trace-index.mjs [--grown 2000000] [--batches 60] [--batch 5120] [--ids random|counting] [--merge-at 131072]
//
// Layouts:
//   direct  the store's today (migration 090): an index on trace_parts (trace_id), each part's
//           entry inserted where its id falls: with random ids (real W3C trace ids) a write dirties
//           about one leaf of it per part once the index is far larger than a write, and the
//           commit writes each such page to the WAL and the checkpoint copies it again.
//   staged  no index on trace_parts; its (trace_id, seq) pairs go to a small WITHOUT ROWID table,
//           merged in key order into a large one whenever the small one reaches --merge-at rows
//           (each leaf of the large one is then written about once per merge, not once per part).
//   flag    trace_parts with a `recent` column and two partial indexes on trace_id (recent rows,
//           the rest); a merge is one UPDATE clearing the flag.
// --ids counting: the first 4 bytes of each id count up, as the bench workload's do (the index
// only grows at its end): the regime every whole-server bench measures.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    grown: { type: 'string', default: '2000000' },
    batches: { type: 'string', default: '60' },
    batch: { type: 'string', default: '5120' },
    ids: { type: 'string', default: 'random' },
    'merge-at': { type: 'string', default: '131072' },
    layouts: { type: 'string', default: 'direct,staged' },
  },
});
const GROWN = Number(values.grown);
const BATCHES = Number(values.batches);
const BATCH = Number(values.batch);
const MERGE_AT = Number(values['merge-at']);
const LAYOUTS = values.layouts.split(',');
const SERVICES = '["frontend","checkout"]';

const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
let counter = 0;
/** A trace id: random, or with its first 4 bytes counting up (--ids counting). */
const nextId = () => {
  const id = randomBytes(16);
  if (values.ids === 'counting') id.writeUInt32BE(counter++ >>> 0, 0);
  return id;
};

/** The store's connection settings (backend/src/store/sqlite/store.ts). */
function open(path) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 4000');
  db.pragma('cache_size = -65536');
  return db;
}

const dir = mkdtempSync(join(tmpdir(), 'conduct-trace-index-'));
const grownPath = join(dir, 'grown.db');
{
  const db = open(grownPath);
  db.exec('CREATE TABLE parts (seq INTEGER PRIMARY KEY, trace_id BLOB NOT NULL, end_ms INTEGER NOT NULL, first_chain INTEGER, last_chain INTEGER, spans INTEGER, services TEXT)');
  const insert = db.prepare('INSERT INTO parts (trace_id, end_ms, first_chain, last_chain, spans, services) VALUES (?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < GROWN; i++) insert.run(nextId(), i, 2 * i, 2 * i + 1, 4, SERVICES);
  })();
  db.close();
}

/** A copy of the grown file with `layout`'s indexes, and its write of one batch. */
function layout(name) {
  const path = join(dir, `${name}.db`);
  for (const suffix of ['', '-wal', '-shm']) if (existsSync(grownPath + suffix)) copyFileSync(grownPath + suffix, path + suffix);
  const db = open(path);
  if (name === 'direct') db.exec('CREATE INDEX parts_by_trace ON parts (trace_id)');
  else if (name === 'flag') {
    db.exec(`ALTER TABLE parts ADD COLUMN recent INTEGER;
      CREATE INDEX parts_by_trace ON parts (trace_id) WHERE recent IS NULL;
      CREATE INDEX recent_parts_by_trace ON parts (trace_id) WHERE recent = 1`);
  } else if (name === 'staged') {
    db.exec(`CREATE TABLE keys (trace_id BLOB, seq INTEGER, PRIMARY KEY (trace_id, seq)) WITHOUT ROWID;
      CREATE TABLE recent_keys (trace_id BLOB, seq INTEGER, PRIMARY KEY (trace_id, seq)) WITHOUT ROWID;
      INSERT INTO keys SELECT trace_id, seq FROM parts ORDER BY trace_id, seq`);
  } else throw new Error(`--layouts: unknown layout ${name}`);
  db.pragma('wal_checkpoint(TRUNCATE)');
  const columns = 'trace_id, end_ms, first_chain, last_chain, spans, services';
  const insert = db.prepare(name === 'flag' ? `INSERT INTO parts (${columns}, recent) VALUES (?, ?, ?, ?, ?, ?, 1)` : `INSERT INTO parts (${columns}) VALUES (?, ?, ?, ?, ?, ?)`);
  const insertKey = name === 'staged' ? db.prepare('INSERT INTO recent_keys (trace_id, seq) VALUES (?, ?)') : undefined;
  const mergeSql = name === 'staged' ? 'INSERT INTO keys SELECT trace_id, seq FROM recent_keys ORDER BY trace_id, seq; DELETE FROM recent_keys' : 'UPDATE parts SET recent = NULL WHERE recent = 1';
  const merge = db.transaction(() => db.exec(mergeSql));
  const write = db.transaction((ids) => {
    for (const id of ids) {
      const seq = insert.run(id, 1, 2, 3, 4, SERVICES).lastInsertRowid;
      insertKey?.run(id, seq);
    }
  });
  let recent = 0;
  const side = { name, us: 0, mergeUs: 0, merges: 0, db };
  side.write = (ids) => {
    const c0 = cpu();
    write(ids);
    recent += ids.length;
    if (name !== 'direct' && recent >= MERGE_AT) {
      const m0 = cpu();
      merge();
      side.mergeUs += cpu() - m0;
      side.merges++;
      recent = 0;
    }
    side.us += cpu() - c0;
  };
  return side;
}

const sides = LAYOUTS.map(layout);
const batches = Array.from({ length: BATCHES }, () => Array.from({ length: BATCH }, nextId));
for (let i = 0; i < BATCHES; i++) {
  // The order flips every batch, so that both see the same machine load.
  const order = i % 2 ? [...sides].reverse() : sides;
  for (const side of order) side.write(batches[i]);
}
const parts = BATCH * BATCHES;
console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${GROWN} parts grown, ${values.ids} ids, ${BATCHES} writes of ${BATCH} parts`);
for (const side of sides) {
  const merges = side.merges ? `, merges ${side.merges} (${((100 * side.mergeUs) / side.us).toFixed(0)}% of its CPU)` : '';
  console.log(`${side.name.padEnd(7)} ${(side.us / parts).toFixed(2)} µs CPU per part, ${(side.us / sides[0].us).toFixed(3)} of ${sides[0].name}${merges}`);
  side.db.close();
}
rmSync(dir, { recursive: true, force: true });
