// The bench's `pending` phase alone, several times, with what makes up the server's RSS: `conduct
// serve` with idle and lateness of an hour, 100k traces sent over HTTP, then RSS and resident
// memory by kind of mapping (from /proc), the heap of each thread and external memory (from
// /metrics) once they are all pending. V8 heap pages are the anonymous mappings under 1 MB;
// malloc's main arena ([heap]) holds SQLite's page cache, which the journal fills in this phase.
//
//   npm run build && node bench/pending-rss.mjs [--runs 3] [--traces 100000] [--node-options="..."]
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, traces: { type: 'string', default: '100000' }, 'node-options': { type: 'string', default: '' } } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const rssMB = (pid) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

/** Resident MB by kind of mapping: file-backed, [heap] (malloc's main arena), other anonymous by mapping size. */
function smapsSummary(pid) {
  const out = {};
  let kind = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const size = (parseInt(head[2], 16) - parseInt(head[1], 16)) / 1048576;
      const name = head[3];
      kind = name.startsWith('/') ? 'file' : name === '[heap]' ? 'brk heap' : name ? name : size >= 64 ? 'anon >=64MB' : size >= 1 ? 'anon 1-64MB' : 'anon <1MB';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] = (out[kind] ?? 0) + Number(rss[1]) / 1024;
  }
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v >= 0.5).map(([k, v]) => [k, Math.round(v)]));
}

async function metrics(api) {
  const out = {};
  for (const line of (await (await fetch(`${api}/metrics`)).text()).split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && !line.startsWith('#')) out[m[1] + (m[2] ?? '')] = Number(m[3]);
  }
  return out;
}

async function once(loadgen) {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-pending-rss-'));
  const [grpc, http, apiPort] = [await freePort(), await freePort(), await freePort()];
  const config = {
    receivers: { grpc: { endpoint: `127.0.0.1:${grpc}` }, http: { endpoint: `127.0.0.1:${http}` } },
    api: { endpoint: `127.0.0.1:${apiPort}` },
    storage: { path: join(dir, 'conduct.db') },
    learning: { minCalls: 100, period: '5s' },
    log: { level: 'warn' },
    stitching: { idle: '1h', lateness: '1h', maxPendingSpans: 100_000_000 },
  };
  writeFileSync(join(dir, 'conduct.yaml'), stringify(config));
  const nodeOptions = values['node-options'].split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeOptions, join(HERE, '..', 'bin/conduct.js'), 'serve', '--config', join(dir, 'conduct.yaml')], { stdio: ['ignore', 'ignore', 'inherit'], cwd: dir });
  const api = `http://127.0.0.1:${apiPort}`;
  try {
    for (;;) {
      try {
        if ((await fetch(`${api}/readyz`)).status === 200) break;
      } catch {
        /* not up yet */
      }
      await sleep(100);
    }
    const answer = new Promise((r) => loadgen.once('message', r));
    loadgen.send({ cmd: 'run', transport: 'http', target: `127.0.0.1:${http}`, concurrency: 4, spans: Math.ceil(Number(values.traces) / 64) * 512 });
    const done = await answer;
    if (done.type !== 'done') throw new Error(`load generator: ${done.message}`);
    await sleep(1_000);
    const m = await metrics(api);
    const rss = rssMB(child.pid);
    const smaps = smapsSummary(child.pid);
    const mb = (n) => n / 1048576;
    return {
      rss,
      heapUsed: mb(m.nodejs_heap_size_used_bytes),
      heapTotal: mb(m.nodejs_heap_size_total_bytes),
      external: mb(m.nodejs_external_memory_bytes),
      spans: m.conduct_stitch_pending_spans,
      pipelineHeap: mb(m.conduct_pipeline_thread_heap_used_bytes ?? 0),
      smaps,
    };
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
    rmSync(dir, { recursive: true, force: true });
  }
}

const loadgen = fork(join(HERE, 'loadgen.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
await new Promise((r) => loadgen.once('message', r));
const runs = [];
for (let i = 0; i < Number(values.runs); i++) {
  const r = await once(loadgen);
  runs.push(r);
  process.stdout.write(`run ${i + 1}: RSS ${r.rss.toFixed(0)} MB, main heap used ${r.heapUsed.toFixed(0)} / total ${r.heapTotal.toFixed(0)} MB, external ${r.external.toFixed(0)} MB, pipeline heap used ${r.pipelineHeap.toFixed(0)} MB, ${r.spans} spans pending; resident by mapping ${JSON.stringify(r.smaps)}\n`);
}
loadgen.send({ cmd: 'exit' });
process.stdout.write(`median RSS ${median(runs.map((r) => r.rss)).toFixed(0)} MB, pipeline heap used ${median(runs.map((r) => r.pipelineHeap)).toFixed(0)} MB\n`);
