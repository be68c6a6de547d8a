import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The `conduct` command as users run it (the built dist/). */
export const CONDUCT_BIN = fileURLToPath(new URL('../../../../bin/conduct.js', import.meta.url));
const BUILT = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

/** Throws unless backend/dist is built (`npm run build`; `npm test` builds it first). */
export function requireBuilt(): void {
  if (!existsSync(BUILT)) throw new Error('backend/dist is not built: run `npm run build` first');
}

export interface ConductChild {
  /** The exit code (null when killed by a signal). */
  exit: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  /** Standard error's lines so far, without the empty last one. */
  stderrLines: () => string[];
  kill: (signal: NodeJS.Signals) => void;
  /** Resolves with the fields of the start log line (JSON format). */
  listening: Promise<{ grpc: string; http: string; api: string; db: string }>;
}

/** Runs `node bin/conduct.js ...args` with standard error not a terminal (JSON logs). */
export function runConductChild(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ConductChild {
  const child = spawn(process.execPath, [CONDUCT_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  let out = '';
  let err = '';
  let onListening: (v: { grpc: string; http: string; api: string; db: string }) => void = () => {};
  let onExitFirst: (e: Error) => void = () => {};
  const listening = new Promise<{ grpc: string; http: string; api: string; db: string }>((resolve, reject) => {
    onListening = resolve;
    onExitFirst = reject;
  });
  listening.catch(() => {}); // a test that never awaits it must not fail on its rejection
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    for (const line of err.split('\n')) {
      if (line.includes('"conduct listening')) onListening(JSON.parse(line));
    }
  });
  const exit = new Promise<number | null>((r) =>
    child.on('close', (code) => {
      onExitFirst(new Error(`conduct exited (${code}) before listening: ${err}`));
      r(code);
    }),
  );
  return {
    exit,
    stdout: () => out,
    stderr: () => err,
    stderrLines: () => err.split('\n').filter((l) => l !== ''),
    kill: (s) => child.kill(s),
    listening,
  };
}
