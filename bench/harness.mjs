// What the bench's phases share: free ports, process and per-thread figures from /proc, the load
// generator and decode-only server as child processes, and `conduct serve` on a temporary
// database. run.mjs and the phase modules in bench/phases/ import from here.
import { fork, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(HERE, '..');
export const MILLION = 1_000_000;
/** The policy every bench server has: the latency phase's attacks break it. */
export const ATTACK_POLICY = { match: 'agent:bench-attack-*', deniedOperations: ['DELETE /admin/*'] };
/** Set by run.mjs: extra node flags for `conduct serve`, and the embedded PostgreSQL of BENCH_STORAGE=postgres. */
export const serverSettings = { nodeOptions: [], postgres: undefined };

export const log = (s) => process.stderr.write(`[bench] ${s}\n`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const quantile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
export const fmt = (n, digits = 0) => (n === null || n === undefined || Number.isNaN(n) ? '-' : Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
export const mark = (ok) => (ok === undefined ? '' : ok ? 'met' : 'NOT met');

export function parseDurationMs(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s);
  if (!m) throw new Error(`"${s}" is not a duration like 500ms or 1s (BENCH_IDLE, BENCH_E2E_IDLE)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2]];
}

/**
 * Server variants, `name=JSON;name=JSON` -> [{name, overrides, nodeOptions, root}]: the JSON holds
 * config overrides, optionally "nodeOptions" (node flags) and "root" (another checkout's build).
 * `what` names the setting in errors.
 */
export function parseVariants(text, what = 'variants') {
  return text.split(';').filter(Boolean).map((part) => {
    const eq = part.indexOf('=');
    if (eq < 1) throw new Error(`${what}: "${part}" is not name=JSON`);
    const { nodeOptions = [], root, ...overrides } = JSON.parse(part.slice(eq + 1) || '{}');
    return { name: part.slice(0, eq), overrides, nodeOptions, root };
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ---- process figures (Linux /proc) --------------------------------------------------------------

export const TICKS_PER_SECOND = 100;
/** CPU seconds (user + system) and resident memory (MB now and peak) of a process. */
export function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { cpuSeconds, rssMB: kb('VmRSS') / 1024, peakRssMB: kb('VmHWM') / 1024 };
}

/**
 * CPU seconds per thread of a process, by thread id (`/proc/<pid>/task/<tid>/stat`). Node 20 does
 * not name its threads (every `comm` is "node"), so `threadSplit` tells them apart by the order
 * they were started in.
 */
export function threadCpu(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/**
 * Threads node starts before any JavaScript runs, right after the main thread: the platform's
 * delayed-task scheduler and its worker pool (`--v8-pool-size`), which run V8's GC helper tasks
 * (parallel scavenge and marking, concurrent marking and sweeping) and background compilation for
 * every isolate of the process, the pipeline thread's included. The pool's size is read from the
 * process's own command line and NODE_OPTIONS (the last `--v8-pool-size` wins, the command line's
 * over NODE_OPTIONS'; node's default is 4, and 0 means one less than the machine's cores, at least 1).
 */
export function platformThreads(pid) {
  const flagsOf = (words) => {
    let size;
    for (let i = 0; i < words.length; i++) {
      const m = /^--v8[-_]pool[-_]size(?:=(.*))?$/.exec(words[i]);
      if (m) size = Number(m[1] ?? words[++i]);
    }
    return size;
  };
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  // node's own flags: the words before the script (the first word that is not a flag).
  const script = cmdline.findIndex((w, i) => i > 0 && !w.startsWith('-'));
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  const nodeOptions = environ.find((e) => e.startsWith('NODE_OPTIONS='))?.slice('NODE_OPTIONS='.length) ?? '';
  const size = flagsOf(cmdline.slice(1, script < 0 ? undefined : script)) ?? flagsOf(nodeOptions.split(/\s+/).filter(Boolean)) ?? 4;
  return 1 + (size > 0 ? size : Math.max(1, availableParallelism() - 1));
}

/**
 * CPU seconds between two `threadCpu` readings by kind of thread: `main` (the thread id that is
 * the pid), `gc` (the `platformThreads` started next, by thread id order: V8's helpers), `pipeline`
 * (the busiest of the rest: the pipeline's worker thread) and `other` (libuv's pool, the signal
 * thread, any other worker). `threads` lists every thread's seconds in start order.
 */
export function threadSplit(pid, before, after) {
  const delta = (tid) => (after.get(tid) ?? 0) - (before.get(tid) ?? 0);
  const order = [...after.keys()].filter((tid) => tid !== String(pid)).sort((x, y) => Number(x) - Number(y));
  const platform = new Set(order.slice(0, platformThreads(pid)));
  const rest = order.filter((tid) => !platform.has(tid));
  let pipelineTid;
  for (const tid of rest) if (pipelineTid === undefined || delta(tid) > delta(pipelineTid)) pipelineTid = tid;
  const sum = (tids) => tids.reduce((n, tid) => n + delta(tid), 0);
  return {
    main: delta(String(pid)),
    pipeline: pipelineTid === undefined ? 0 : delta(pipelineTid),
    gc: sum([...platform]),
    other: sum(rest.filter((tid) => tid !== pipelineTid)),
    threads: order.map((tid) => Math.round(delta(tid) * 100) / 100),
  };
}

/**
 * Runs `once(i, round)` for each of `count` sides in every one of `rounds` rounds, the order
 * reversed every other round (a b c, c b a, ...) so that every side sees the same machine load;
 * resolves with each side's results in round order.
 */
export async function alternateRounds(count, rounds, once) {
  const runs = Array.from({ length: count }, () => []);
  for (let r = 0; r < rounds; r++) {
    const order = [...runs.keys()];
    if (r % 2) order.reverse();
    for (const i of order) runs[i].push(await once(i, r));
  }
  return runs;
}

// ---- child processes --------------------------------------------------------------------------

export function forkChild(script, args = []) {
  const child = fork(join(HERE, script), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters = [];
  child.on('message', (m) => waiters.shift()?.(m));
  const next = () => new Promise((resolve) => waiters.push(resolve));
  return { child, next, ready: next() };
}

/** Starts the load generator process; `run(options)` resolves with its figures. */
export async function startLoadgen() {
  const lg = forkChild('loadgen.mjs');
  await lg.ready;
  return {
    pid: lg.child.pid,
    async run(options) {
      const answer = lg.next();
      lg.child.send({ cmd: 'run', ...options });
      const result = await answer;
      if (result.type !== 'done') throw new Error(`load generator: ${result.message}`);
      return result;
    },
    /** Builds the request source of a shape now, so that a measured run does not pay for it. */
    async prepare(shape, loadgenId = 0, realIds = false) {
      const answer = lg.next();
      lg.child.send({ cmd: 'prepare', shape, loadgenId, realIds });
      await answer;
    },
    stop() {
      lg.child.send({ cmd: 'stop' });
    },
    close() {
      lg.child.send({ cmd: 'exit' });
    },
  };
}

export async function startDecodeServer() {
  const ds = forkChild('decode-server.mjs');
  const ready = await ds.ready;
  return {
    pid: ds.child.pid,
    grpc: ready.grpc,
    http: ready.http,
    async close() {
      const exited = new Promise((r) => ds.child.once('exit', r));
      ds.child.send({ cmd: 'exit' });
      await exited;
    },
  };
}

/** Starts `conduct serve` on a fresh temporary database with the bench config plus `overrides` (and extra node flags). */
export async function startConduct(name, overrides = {}, nodeOptions = [], root = ROOT) {
  const dir = mkdtempSync(join(tmpdir(), `conduct-bench-${name}-`));
  const [grpcPort, httpPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const config = {
    receivers: { grpc: { endpoint: `127.0.0.1:${grpcPort}` }, http: { endpoint: `127.0.0.1:${httpPort}` } },
    api: { endpoint: `127.0.0.1:${apiPort}` },
    learning: { minCalls: 100, period: '5s' },
    policies: [ATTACK_POLICY],
    log: { level: 'warn' },
    ...overrides,
    storage: {
      path: join(dir, 'conduct.db'),
      ...(serverSettings.postgres ? { postgres: { url: await serverSettings.postgres.createDatabase() } } : {}),
      ...(overrides.storage ?? {}),
    },
    stitching: { ...(overrides.stitching ?? {}) },
  };
  const configPath = join(dir, 'conduct.yaml');
  writeFileSync(configPath, stringify(config));
  const child = spawn(process.execPath, [...serverSettings.nodeOptions, ...nodeOptions, join(root, 'bin/conduct.js'), 'serve', '--config', configPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
    cwd: dir,
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  const api = `http://127.0.0.1:${apiPort}`;
  const started = performance.now();
  for (;;) {
    if (exited) throw new Error(`conduct serve exited during start-up:\n${stderr}`);
    try {
      if ((await fetch(`${api}/readyz`)).status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (performance.now() - started > 60_000) throw new Error(`conduct serve did not become ready:\n${stderr}`);
    await sleep(100);
  }
  return {
    pid: child.pid,
    dir,
    dbPath: config.storage.path,
    api,
    grpc: `127.0.0.1:${grpcPort}`,
    http: `127.0.0.1:${httpPort}`,
    target: (transport) => (transport === 'grpc' ? `127.0.0.1:${grpcPort}` : `127.0.0.1:${httpPort}`),
    stderr: () => stderr,
    exited: () => exited,
    async flush() {
      const res = await fetch(`${api}/api/v1/flush`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      if (res.status !== 200) throw new Error(`flush answered ${res.status}`);
    },
    async metrics() {
      return parseMetrics(await (await fetch(`${api}/metrics`)).text());
    },
    async dbBytes() {
      if (config.storage.postgres) {
        const { default: pg } = await import('pg');
        const client = new pg.Client({ connectionString: config.storage.postgres.url });
        await client.connect();
        try {
          return Number((await client.query('SELECT pg_database_size(current_database()) AS n')).rows[0].n);
        } finally {
          await client.end();
        }
      }
      return ['', '-wal'].reduce((n, suffix) => n + (existsSync(config.storage.path + suffix) ? statSync(config.storage.path + suffix).size : 0), 0);
    },
    async close() {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Prometheus text -> {metric name: sum over its label sets}. */
export function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) out[m[1]] = (out[m[1]] ?? 0) + Number(m[3]);
  }
  return out;
}

