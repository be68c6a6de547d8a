/**
 * Issue 17: one writer per storage path, with real `conduct` processes (bin/conduct.js). While a
 * `serve` runs, a second `serve` on the same database (other ports) and a `replay` into it exit 2
 * naming the path and the running process, and touch nothing: the first server's journal segment
 * is neither deleted nor replaced, no file appears, and the first keeps serving. After the first is
 * killed with SIGKILL, the operating system has dropped its lock and a new `serve` starts on the
 * same files and finds the acknowledged data.
 */
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runToEnd, serve, writeConfig, type ServeProcess } from './reliability/support/child.js';
import { idsOf, post, PRINCIPAL, request as traceRequest, SPANS } from './support/split-trace.js';

/** The late-parts trace, whole: trace numbers 11 (the first), 12 (the replay's input) and 13 (after the refusals). */
const FIRST = 11;
const REPLAYED = 12;
const LATER = 13;
const IDENTITIES = [PRINCIPAL, 'svc:shop/orders'].sort();

async function send(http: string, n: number): Promise<void> {
  await post({ http: `http://${http}` }, traceRequest(n, 'whole', SPANS.map((s) => s.role)));
}

async function storedIdentities(api: string, n: number): Promise<string[]> {
  const flushed = await fetch(`${api}/api/v1/flush`, { method: 'POST' });
  expect(flushed.status).toBe(200);
  const trace = (await (await fetch(`${api}/api/v1/traces/${idsOf(n, 'whole').traceId}`)).json()) as { chains?: Array<{ identity: string }> };
  return (trace.chains ?? []).map((c) => c.identity).sort();
}

/** Every file under `dir`, with the inode it is (a replaced file has another). */
function files(dir: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    found.set(path, statSync(path).ino);
  }
  return found;
}

/** Files the process holds open that were deleted under it. */
function deletedOpenFiles(pid: number): string[] {
  const fdDir = `/proc/${pid}/fd`;
  if (!existsSync(fdDir)) return [];
  const out: string[] = [];
  for (const fd of readdirSync(fdDir)) {
    try {
      const target = readlinkSync(join(fdDir, fd));
      if (target.endsWith('(deleted)')) out.push(target);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

describe('one writer per storage path (child processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-lock-'));
  /** The replay's input, outside `dir` (whose files the test compares). */
  const inputs = mkdtempSync(join(tmpdir(), 'conduct-lock-input-'));
  const request = join(inputs, 'one.json');
  let first: ServeProcess | undefined;
  let config: string;
  let db: string;

  beforeAll(() => {
    ensureBuilt();
    config = writeConfig(dir);
    db = join(dir, 'conduct.db');
    writeFileSync(request, JSON.stringify(traceRequest(REPLAYED, 'whole', SPANS.map((s) => s.role))));
  });

  afterAll(async () => {
    if (first && first.child.exitCode === null && first.child.signalCode === null) {
      first.child.kill('SIGKILL');
      await first.exited;
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(inputs, { recursive: true, force: true });
  });

  it('refuses a second serve and a replay with exit 2, naming the path and the running process, and touches nothing', async () => {
    first = await serve(config);
    const pid = first.child.pid!;
    await send(first.http, FIRST);
    const journal = `${db}.journal`;
    const segments = readdirSync(journal).filter((f) => f.endsWith('.seg'));
    expect(segments.length).toBeGreaterThan(0);
    const before = files(dir);
    expect(before.has(`${db}.lock`)).toBe(true);

    const second = await runToEnd(['serve', '--config', config, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--api', '127.0.0.1:0']);
    expect(second.code, second.out).toBe(2);
    expect(second.out).toContain(db);
    expect(second.out).toContain(`pid ${pid}`);
    expect(second.out).toContain('conduct serve');
    expect(second.out).not.toContain('conduct listening');

    const replay = await runToEnd(['replay', '--db', db, request]);
    expect(replay.code, replay.out).toBe(2);
    expect(replay.out).toContain(db);
    expect(replay.out).toContain(`pid ${pid}`);

    // Nothing deleted, replaced or added by either refused process.
    expect(files(dir)).toEqual(before);
    expect(deletedOpenFiles(pid)).toEqual([]);

    // The first server still takes data and stores it.
    await send(first.http, LATER);
    expect(await storedIdentities(first.api, LATER)).toEqual(IDENTITIES);
  }, 90_000);

  it('after kill -9 of the holder, a new serve starts on the same files and has the acknowledged data', async () => {
    first!.child.kill('SIGKILL');
    expect(await first!.exited).toBe('SIGKILL');
    const next = await serve(config);
    try {
      expect(await storedIdentities(next.api, FIRST)).toEqual(IDENTITIES);
    } finally {
      next.child.kill('SIGTERM');
      expect(await next.exited).toBe(0);
    }
  }, 90_000);
});
