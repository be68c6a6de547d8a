// Grows a SQLite database the way a long-running server grows it, for `bench/ab-serve.mjs --db`:
// a real `conduct serve` of --root takes --spans workload spans over OTLP/HTTP with random trace ids
// (BENCH_RANDOM_TRACE_IDS=1, as real W3C trace ids are: every bench figure without it sees an index
// by trace id that only grows at its end), flushes and stops; its database file is copied to --out.
//
//   node bench/grow-db.mjs --root /work/wt/base4 --spans 8000000 --shape 4 --out /tmp/grown-2m.db
//
// The file's event times are the wall clock of the run (the server's retention keeps them), and its
// load generator id (--loadgen, 9999 by default) differs from ab-serve's (1, 2, ...), so the measured
// runs' traces are new traces, not late parts of the stored ones. Prints the file's size and rows.
import { copyFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { startServer } from '../eval/server.mjs';
import { startLoadgen } from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    root: { type: 'string', default: join(HERE, '..') },
    spans: { type: 'string', default: '8000000' },
    shape: { type: 'string', default: '4' },
    loadgen: { type: 'string', default: '9999' },
    out: { type: 'string' },
  },
});
if (!values.out) throw new Error('--out <file> is required');
// The load generator's child process reads it when it builds its request source.
process.env.BENCH_RANDOM_TRACE_IDS = '1';

const started = Date.now();
const loadgen = await startLoadgen();
const server = await startServer(resolve(values.root), { learning: { minCalls: 100, period: '5s' } }, { keep: true });
try {
  // Under heavy machine load the generator can fail part way (a connection reset): the file then
  // holds what was stored until then, which is still a grown file (its counts are printed).
  const done = await loadgen.run({
    transport: 'http',
    target: server.otlpHttp.replace('http://', ''),
    concurrency: 8,
    spans: Number(values.spans),
    loadgenId: Number(values.loadgen),
    shape: Number(values.shape),
  }).catch((err) => {
    process.stderr.write(`[grow-db] the load generator stopped: ${err.message}\n`);
    return { spansAcked: NaN };
  });
  await server.flush();
  process.stderr.write(`[grow-db] ${done.spansAcked} spans acknowledged in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
} finally {
  await server.stop();
  loadgen.close();
}
// Whatever of the WAL the server left goes into the file before it is copied.
const file = join(server.dir, 'conduct.db');
const own = new Database(file);
own.pragma('wal_checkpoint(TRUNCATE)');
own.close();
const out = resolve(values.out);
copyFileSync(file, out);
rmSync(server.dir, { recursive: true, force: true });
const db = new Database(out, { readonly: true });
const count = (table) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get();
process.stdout.write(
  `${out}: ${(statSync(out).size / 1048576).toFixed(0)} MB, ${count('trace_parts')} trace parts, ${count('chains')} chains, ${count('identities')} identities\n`,
);
db.close();
