/**
 * `conduct serve` as a child process (the built command, `node bin/conduct.js serve`), for tests
 * that kill it, signal it and restart it on the same database.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { splitHostPort } from './wire.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = join(ROOT, 'backend/dist/cli/main.js');

/** Brings backend/dist up to date (tsc -b is incremental) and checks the command is built. */
export function ensureBuilt(): void {
  spawnSync('npx', ['tsc', '-b', 'backend/tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
  if (!existsSync(MAIN)) {
    const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
    if (r.status !== 0 || !existsSync(MAIN)) throw new Error('conduct is not built (npm run build failed)');
  }
}

export interface ServeProcess {
  child: ChildProcess;
  /** OTLP/HTTP HOST:PORT. */
  http: string;
  /** API base URL. */
  api: string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  /** Resolves once the process has ended and its output has all been read. */
  closed: Promise<void>;
  /** Everything the process logged so far. */
  log(): string;
}

/**
 * Writes `conduct.yaml` into `dir` (endpoints on port 0, database in `dir`, or in the PostgreSQL
 * database at `postgresUrl` when given) and returns its path.
 */
export function writeConfig(dir: string, extraYaml = '', postgresUrl?: string): string {
  const path = join(dir, 'conduct.yaml');
  const postgres = postgresUrl ? `, postgres: { url: "${postgresUrl}" }` : '';
  writeFileSync(
    path,
    `receivers:
  grpc: { endpoint: "127.0.0.1:0" }
  http: { endpoint: "127.0.0.1:0" }
api: { endpoint: "127.0.0.1:0" }
storage: { path: "${join(dir, 'conduct.db')}"${postgres} }
log: { level: info }
${extraYaml}`,
  );
  return path;
}

/** The `conduct serve` processes a test file started, so that its afterAll can kill what is left. */
export class ServeProcesses {
  private readonly all: ServeProcess[] = [];

  /** `serve`, remembered. */
  async start(configPath: string, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<ServeProcess> {
    const p = await serve(configPath, timeoutMs, env);
    this.all.push(p);
    return p;
  }

  /** SIGKILL for every process still running. */
  killAll(): void {
    for (const p of this.all) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  }
}

/** POSTs one OTLP/HTTP protobuf request to HOST:PORT; the status, or 0 when the connection died without an answer. */
export function sendOtlp(endpoint: string, body: Buffer, agent?: http.Agent): Promise<number> {
  const [host, port] = splitHostPort(endpoint);
  return new Promise((resolve) => {
    const req = http.request({ host, port, path: '/v1/traces', method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Calls conduct's API (a POST with an empty JSON object); the body parsed as JSON, or as text when it is not. */
export async function api<T = any>(p: ServeProcess, method: string, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(p.api + path, { method, headers: method === 'POST' ? { 'content-type': 'application/json' } : {}, body: method === 'POST' ? '{}' : undefined });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as T };
  } catch {
    return { status: res.status, body: text as T };
  }
}

/**
 * Starts `conduct serve --config <path>` and waits until it logs the addresses it listens on;
 * `env` is added to the process's environment (e.g. CONDUCT_FAILPOINTS).
 */
export function serve(configPath: string, timeoutMs = 30_000, env: Record<string, string> = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/conduct.js'), 'serve', '--config', configPath], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`conduct did not start in time:\n${out}`));
    }, timeoutMs);
    let started = false;
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (started) return;
      for (const line of out.split('\n')) {
        if (!line.includes('conduct listening')) continue;
        try {
          const rec = JSON.parse(line) as { http?: string; api?: string };
          if (rec.http && rec.api) {
            clearTimeout(timer);
            started = true;
            resolve({ child, http: rec.http, api: `http://${rec.api}`, exited, closed, log: () => out });
            return;
          }
        } catch {
          /* not a JSON line */
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      if (started) return;
      clearTimeout(timer);
      reject(new Error(`conduct exited (${code}) before listening:\n${out}`));
    });
  });
}

/** Runs `conduct ARGS` to its end: the exit code and everything it wrote (standard output and error). */
export function runToEnd(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/conduct.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
  // 'close', not 'exit': the last lines can arrive after 'exit'.
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}
