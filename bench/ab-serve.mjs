// A/B of the whole server's CPU per span between two checkouts' builds: `conduct serve` of each
// (its own process, SQLite, detection and the journal on, default limits) takes the same number of
// workload spans over OTLP/HTTP from the bench's load generator, then a flush; its CPU time (every
// thread: main, pipeline, GC helpers, from /proc) divided by the spans. Sides alternate, the order
// flipping every round, so that both see the same machine load; medians and the after/before ratio.
//
//   npm run build && node bench/ab-serve.mjs --before ../columnar-base [--after .] [--rounds 5] [--spans 200000] [--shape 8]
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    after: { type: 'string', default: join(HERE, '..') },
    rounds: { type: 'string', default: '5' },
    spans: { type: 'string', default: '200000' },
    shape: { type: 'string', default: '8' },
    transport: { type: 'string', default: 'http' },
  },
});
if (!values.before) throw new Error('--before <checkout> is required');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const TICKS = 100; // USER_HZ on Linux

const freePort = () =>
  new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });

/** CPU seconds of a process so far (utime + stime of all its threads). */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

async function once(root, loadgen, id) {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-ab-serve-'));
  const [grpc, http, apiPort] = [await freePort(), await freePort(), await freePort()];
  const config = {
    receivers: { grpc: { endpoint: `127.0.0.1:${grpc}` }, http: { endpoint: `127.0.0.1:${http}` } },
    api: { endpoint: `127.0.0.1:${apiPort}` },
    storage: { path: join(dir, 'conduct.db') },
    learning: { minCalls: 100, period: '5s' },
    log: { level: 'warn' },
  };
  writeFileSync(join(dir, 'conduct.yaml'), stringify(config));
  const child = spawn(process.execPath, [join(root, 'bin/conduct.js'), 'serve', '--config', join(dir, 'conduct.yaml')], { stdio: ['ignore', 'ignore', 'inherit'], cwd: dir });
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
    const cpu0 = cpuSeconds(child.pid);
    const answer = new Promise((r) => loadgen.once('message', r));
    const target = `127.0.0.1:${values.transport === 'grpc' ? grpc : http}`;
    loadgen.send({ cmd: 'run', transport: values.transport, target, concurrency: 8, spans: Number(values.spans), loadgenId: id, shape: Number(values.shape) });
    const done = await answer;
    if (done.type !== 'done') throw new Error(`load generator: ${done.message}`);
    const res = await fetch(`${api}/api/v1/flush`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    if (res.status !== 200) throw new Error(`flush answered ${res.status}`);
    const cpu = cpuSeconds(child.pid) - cpu0;
    const spans = done.spansAcked;
    const rss = Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
    return { usPerSpan: (cpu * 1e6) / spans, spans, peakRssMB: rss };
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
    rmSync(dir, { recursive: true, force: true });
  }
}

const loadgen = fork(join(HERE, 'loadgen.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
await new Promise((r) => loadgen.once('message', r));
const roots = { before: resolve(values.before), after: resolve(values.after) };
const runs = { before: [], after: [] };
let id = 1;
for (let r = 0; r < Number(values.rounds); r++) {
  for (const side of r % 2 ? ['after', 'before'] : ['before', 'after']) {
    const x = await once(roots[side], loadgen, id++);
    runs[side].push(x);
    process.stdout.write(`round ${r + 1} ${side}: ${x.usPerSpan.toFixed(2)} µs CPU/span over ${x.spans} spans, peak RSS ${x.peakRssMB.toFixed(0)} MB\n`);
  }
}
loadgen.send({ cmd: 'exit' });
const med = (side, k) => median(runs[side].map((x) => x[k]));
process.stdout.write(
  `median server CPU µs/span: before ${med('before', 'usPerSpan').toFixed(2)}, after ${med('after', 'usPerSpan').toFixed(2)}, ratio ${(med('after', 'usPerSpan') / med('before', 'usPerSpan')).toFixed(2)}; ` +
    `peak RSS MB: before ${med('before', 'peakRssMB').toFixed(0)}, after ${med('after', 'peakRssMB').toFixed(0)}\n`,
);
