import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, startConduct, type ConfigInput, type RunningConduct, type StartOptions } from '@conduct/backend';

/** Deep-merges plain objects (arrays and scalars from `b` replace those of `a`). */
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export interface TestConduct {
  /** Base URL of the API, e.g. http://127.0.0.1:39211 */
  api: string;
  /** gRPC receiver HOST:PORT. */
  grpc: string;
  /** Base URL of the OTLP/HTTP receiver. */
  http: string;
  dir: string;
  dbPath: string;
  /** The conduct itself (in this process): its registry, store, `flush({ sinksTimeoutMs })`. */
  running: RunningConduct;
  stop(): Promise<void>;
  /** Stops and removes the temporary directory. */
  dispose(): Promise<void>;
  get<T = any>(path: string): Promise<{ status: number; body: T }>;
  post<T = any>(path: string, body?: unknown): Promise<{ status: number; body: T }>;
  flush(): Promise<void>;
}

/** Starts a whole conduct in this process on ephemeral ports and a temporary SQLite file (`start`: startConduct's options). */
export async function startTestConduct(overrides: ConfigInput = {}, dir?: string, start: StartOptions = {}): Promise<TestConduct> {
  const workDir = dir ?? mkdtempSync(join(tmpdir(), 'conduct-test-'));
  const dbPath = join(workDir, 'conduct.db');
  const base: ConfigInput = {
    receivers: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } },
    api: { endpoint: '127.0.0.1:0' },
    storage: { path: dbPath },
    stitching: { idle: '300ms' },
    log: { level: 'silent' },
  };
  const config = parseConfig(merge(base as Record<string, unknown>, overrides as Record<string, unknown>));
  const running = await startConduct(config, start);
  const api = `http://${running.apiAddress}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const headers: Record<string, string> = {};
    if (config.api.token) headers.authorization = `Bearer ${config.api.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(api + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed as any };
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await running.stop();
  };
  return {
    api,
    grpc: running.grpcAddress,
    http: `http://${running.httpAddress}`,
    dir: workDir,
    dbPath,
    running,
    stop,
    async dispose() {
      await stop();
      if (!dir) rmSync(workDir, { recursive: true, force: true });
    },
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body ?? {}),
    async flush() {
      const res = await call('POST', '/api/v1/flush', {});
      if (res.status !== 200) throw new Error(`flush answered ${res.status}: ${JSON.stringify(res.body)}`);
    },
  };
}
