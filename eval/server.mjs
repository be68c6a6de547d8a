// A real `conduct serve` (the built dist, `bin/conduct.js`) on a temporary SQLite file, for the
// precision benchmark. Ports are free ones on 127.0.0.1; the process is stopped with SIGTERM.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `conduct serve` with `settings` (learning, stitching, ...) merged over the eval's ports and
 * database; `nodeOptions` (e.g. "--cpu-prof --cpu-prof-dir=DIR") become the server's NODE_OPTIONS,
 * `nodeArgs` are node flags on its command line (for those NODE_OPTIONS refuses, e.g. --single-threaded-gc),
 * `env` is added to its environment, `onStdout` receives its standard output (else discarded),
 * `database` is a SQLite file the server starts on a copy of (bench/grow-db.mjs makes one).
 */
export async function startServer(root, settings, { keep = false, nodeOptions, nodeArgs = [], env, onStdout, database } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-eval-'));
  if (database) copyFileSync(database, join(dir, 'conduct.db'));
  const [grpcPort, httpPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const config = {
    ...settings,
    receivers: { grpc: { endpoint: `127.0.0.1:${grpcPort}` }, http: { endpoint: `127.0.0.1:${httpPort}` } },
    api: { endpoint: `127.0.0.1:${apiPort}` },
    storage: { path: join(dir, 'conduct.db') },
    log: { level: 'warn' },
  };
  const configPath = join(dir, 'conduct.yaml');
  writeFileSync(configPath, stringify(config));
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'bin/conduct.js'), 'serve', '--config', configPath], {
    stdio: ['ignore', onStdout ? 'pipe' : 'ignore', 'pipe'],
    cwd: dir,
    env: { ...process.env, ...env, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
  });
  if (onStdout) child.stdout.on('data', onStdout);
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-8000);
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  const api = `http://127.0.0.1:${apiPort}`;
  const started = Date.now();
  // Checkouts before /readyz (bench/ab-serve.mjs runs older builds) answer 404 there: /healthz then.
  let ready = '/readyz';
  for (;;) {
    if (exited) throw new Error(`conduct serve exited during start-up:\n${stderr}`);
    try {
      const status = (await fetch(api + ready)).status;
      if (status === 200) break;
      if (status === 404 && ready === '/readyz') ready = '/healthz';
    } catch {
      /* not listening yet */
    }
    if (Date.now() - started > 60_000) throw new Error(`conduct serve did not become ready:\n${stderr}`);
    await sleep(100);
  }
  const getJson = async (path) => {
    const res = await fetch(api + path);
    if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
  return {
    dir,
    api,
    pid: child.pid,
    configPath,
    otlpHttp: `http://127.0.0.1:${httpPort}`,
    otlpGrpc: `http://127.0.0.1:${grpcPort}`,
    stderr: () => stderr,
    getJson,
    async flush() {
      const res = await fetch(`${api}/api/v1/flush`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      if (res.status !== 200) throw new Error(`flush answered ${res.status}: ${await res.text()}`);
    },
    /** Prometheus text -> {metric name: sum over its label sets}. */
    async metrics() {
      const text = await (await fetch(`${api}/metrics`)).text();
      const out = {};
      for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const m = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
        if (m) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
      }
      return out;
    },
    async stop() {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}
