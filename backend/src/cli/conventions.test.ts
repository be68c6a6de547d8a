import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../store/testdata/fixtures.js';
import { requireBuilt, runConductChild } from './testdata/child.js';

/** The version users see: the package's. */
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Every line of standard error parses as a JSON log line with a level name and an ISO time. */
function expectJsonLines(lines: string[]): Array<Record<string, unknown>> {
  return lines.map((line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON line on stderr: ${line}`);
    }
    expect(entry['level']).toMatch(/^(trace|debug|info|warn|error|fatal)$/);
    expect(entry['time']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    return entry;
  });
}

describe('conduct command conventions (child process)', () => {
  const t = tempDir('conduct-conventions-');
  beforeAll(() => requireBuilt());
  afterAll(() => t.cleanup());

  it('prints its version for -v and --version and exits 0', async () => {
    for (const flag of ['-v', '--version']) {
      const child = runConductChild([flag]);
      expect(await child.exit).toBe(0);
      expect(child.stdout().trim()).toBe(VERSION);
    }
  });

  it('--log-level debug logs debug lines as JSON with level names; --log-level over log.level; a bad level exits 2', async () => {
    const file = join(t.dir, 'quiet.yaml');
    writeFileSync(file, `log: { level: error }\nstorage: { path: ${JSON.stringify(join(t.dir, 'levels.db'))} }\n`);
    const ports = ['--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--api', '127.0.0.1:0'];
    const child = runConductChild(['serve', '--config', file, ...ports, '--log-level', 'debug']);
    const at = await child.listening;
    const metrics = await (await fetch(`http://${at.api}/metrics`)).text();
    expect(metrics).toContain(`conduct_build_info{version="${VERSION}",node="${process.versions.node}"} 1`);
    child.kill('SIGTERM');
    expect(await child.exit).toBe(0);
    const entries = expectJsonLines(child.stderrLines());
    expect(entries.some((e) => e['level'] === 'debug')).toBe(true);
    expect(entries.some((e) => e['msg'] === 'conduct stopped' && e['level'] === 'info')).toBe(true);

    const bad = runConductChild(['serve', '--log-level', 'loud']);
    expect(await bad.exit).toBe(2);
    expect(bad.stderr()).toContain('loud');
    expectJsonLines(bad.stderrLines());
  });

  it('serve answers /readyz (store, journal, pipeline, started) and /healthz, and 404 JSON for unknown paths', async () => {
    const child = runConductChild(['serve', '--db', join(t.dir, 'ready.db'), '--grpc', '', '--http', '127.0.0.1:0', '--api', '127.0.0.1:0']);
    const at = await child.listening;
    try {
      const ready = await fetch(`http://${at.api}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', checks: { started: 'ok', store: 'ok', journal: 'ok', pipeline: 'ok' } });
      expect((await fetch(`http://${at.api}/healthz`)).status).toBe(200);
      for (const path of ['/readyz/x', '/api/v1/nope', '/wp-login.php', '/identities/a/b']) {
        const res = await fetch(`http://${at.api}${path}`);
        expect(res.status, path).toBe(404);
        expect(await res.json(), path).toEqual({ error: 'not found' });
      }
      const page = await fetch(`http://${at.api}/alerts`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
    } finally {
      child.kill('SIGTERM');
      expect(await child.exit).toBe(0);
    }
  });

  it('log.format: console writes readable lines', async () => {
    const file = join(t.dir, 'console.yaml');
    writeFileSync(file, `log: { format: console }\nstorage: { path: ${JSON.stringify(join(t.dir, 'console.db'))} }\n`);
    const child = runConductChild(['serve', '--config', file, '--grpc', '', '--http', '', '--api', '127.0.0.1:0']);
    // The start line in the console format: time, level name, message, then key=value fields.
    const started = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const line = child.stderrLines().find((l) => l.includes('conduct listening'));
        if (line) {
          clearInterval(timer);
          resolve(line);
        }
      }, 20);
      void child.exit.then(() => {
        clearInterval(timer);
        reject(new Error(`exited: ${child.stderr()}`));
      });
    });
    expect(started).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO  conduct listening: .* api=127\.0\.0\.1:\d+ /);
    child.kill('SIGTERM');
    expect(await child.exit).toBe(0);
    expect(child.stderr()).not.toContain('{"level"');
  });

  it('exits 2 for flag errors: a port out of range, an unknown flag, a missing value; every stderr line is JSON', async () => {
    const cases: Array<[string[], string]> = [
      [['serve', '--api', '127.0.0.1:99999'], 'api.endpoint: the port must be from 0 to 65535'],
      [['serve', '--grpc', '127.0.0.1:65536'], 'receivers.grpc.endpoint'],
      [['serve', '--bogus'], "unknown option '--bogus'"],
      [['serve', '--db'], "option '--db <path>' argument missing"],
      [['frobnicate'], "unknown command 'frobnicate'"],
    ];
    for (const [args, message] of cases) {
      const child = runConductChild(args, { cwd: t.dir });
      expect(await child.exit, args.join(' ')).toBe(2);
      const entries = expectJsonLines(child.stderrLines());
      expect(entries.map((e) => e['msg']).join('\n'), args.join(' ')).toContain(message);
    }
    expect(existsSync(join(t.dir, 'data')), 'no flag error creates ./data').toBe(false);
  });

  it('refuses bare numbers for durations in the file, naming the key (exit 2)', async () => {
    for (const [yaml, key] of [['stitching: { idle: 5 }', 'stitching.idle'], ['storage: { retention: 7 }', 'storage.retention']]) {
      const file = join(t.dir, 'bare.yaml');
      writeFileSync(file, `${yaml}\n`);
      const child = runConductChild(['serve', '--config', file], { cwd: t.dir });
      expect(await child.exit).toBe(2);
      const [entry] = expectJsonLines(child.stderrLines());
      expect(entry!['msg']).toMatch(new RegExp(`${key.replace('.', '\\.')}: \\d has no unit`));
    }
  });

  it('a port in use stops start-up before any file exists, naming the key and address, with only JSON on stderr', async () => {
    const busy = await listenSomewhere();
    const port = (busy.address() as AddressInfo).port;
    try {
      for (const key of ['--grpc', '--http', '--api']) {
        const db = join(t.dir, `busy${key}`, 'conduct.db');
        const ports: Record<string, string> = { '--grpc': '127.0.0.1:0', '--http': '127.0.0.1:0', '--api': '127.0.0.1:0', [key]: `127.0.0.1:${port}` };
        const child = runConductChild(['serve', '--db', db, ...Object.entries(ports).flat()]);
        expect(await child.exit, key).toBe(1);
        const entries = expectJsonLines(child.stderrLines());
        const failure = entries.find((e) => e['msg'] === 'conduct could not start');
        expect(String(failure?.['err']), key).toContain(`cannot listen on 127.0.0.1:${port}: address already in use`);
        expect(existsSync(db), `${key}: the database was created`).toBe(false);
        expect(existsSync(`${db}.journal`), `${key}: the journal was created`).toBe(false);
        expect(existsSync(dirname(db)), `${key}: the database's directory was created`).toBe(false);
      }
    } finally {
      await new Promise((done) => busy.close(done));
    }
  });

  it("Node's own warnings become log lines too", async () => {
    // A preload that emits a process warning on SIGUSR2, once serve is running.
    const probe = join(t.dir, 'warn-probe.mjs');
    writeFileSync(probe, "process.on('SIGUSR2', () => process.emitWarning('probe warning from the test', 'ProbeWarning'));\n");
    const env = { ...process.env, NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import ${JSON.stringify(pathToFileURL(probe).href)}` };
    const child = runConductChild(['serve', '--db', join(t.dir, 'warn.db'), '--grpc', '', '--http', '', '--api', '127.0.0.1:0'], { env });
    await child.listening;
    child.kill('SIGUSR2');
    await waitFor(() => child.stderr().includes('probe warning from the test'));
    child.kill('SIGTERM');
    expect(await child.exit).toBe(0);
    const entries = expectJsonLines(child.stderrLines());
    expect(entries).toContainEqual(expect.objectContaining({ level: 'warn', source: 'node', warning: 'ProbeWarning', msg: 'probe warning from the test' }));
  });

  it('a database that cannot be opened is named in the error', async () => {
    const dir = join(t.dir, 'a-directory.db');
    mkdirSync(dir);
    const child = runConductChild(['serve', '--db', dir, '--grpc', '', '--http', '', '--api', '127.0.0.1:0']);
    expect(await child.exit).toBe(1);
    const failure = expectJsonLines(child.stderrLines()).find((e) => e['msg'] === 'conduct could not start');
    expect(String(failure?.['err'])).toContain(`storage.path: cannot open the database ${dir}`);
  });
});

describe('${env:NAME} in the configuration file (child process)', () => {
  const t = tempDir('conduct-env-');
  beforeAll(() => requireBuilt());
  afterAll(() => t.cleanup());

  it('takes secrets and paths from the environment and never logs them, even at trace level', async () => {
    const token = 'tok-FROM-ENV-71c3';
    const dir = join(t.dir, 'dir-FROM-ENV-9e1a');
    const file = join(t.dir, 'env.yaml');
    writeFileSync(
      file,
      [
        'api: { endpoint: "127.0.0.1:0", token: "${env:CONDUCT_TEST_TOKEN}" }',
        'receivers: { grpc: { endpoint: "" }, http: { endpoint: "${env:CONDUCT_TEST_HTTP:-127.0.0.1:0}" } }',
        'storage: { path: "${env:CONDUCT_TEST_DIR}/conduct.db" }',
        'log: { level: trace }',
      ].join('\n'),
    );
    const env = { ...process.env, CONDUCT_TEST_TOKEN: token, CONDUCT_TEST_DIR: dir };
    const child = runConductChild(['serve', '--config', file], { env });
    const at = await child.listening;
    expect((await fetch(`http://${at.api}/api/v1/identities`)).status).toBe(401);
    expect((await fetch(`http://${at.api}/api/v1/identities`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(existsSync(join(dir, 'conduct.db'))).toBe(true);
    child.kill('SIGTERM');
    expect(await child.exit).toBe(0);
    const entries = expectJsonLines(child.stderrLines());
    expect(entries.some((e) => e['msg'] === 'configuration')).toBe(true);
    expect(child.stderr()).not.toContain(token);
    expect(child.stderr()).not.toContain('dir-FROM-ENV-9e1a');
    expect(at.db).toBe('${env:CONDUCT_TEST_DIR}/conduct.db');
  });

  it('an unset variable stops start-up with exit 2, naming the key and the variable', async () => {
    const file = join(t.dir, 'unset.yaml');
    writeFileSync(file, 'api: { token: "${env:CONDUCT_TEST_UNSET_TOKEN}" }\n');
    const env = { ...process.env };
    delete env['CONDUCT_TEST_UNSET_TOKEN'];
    const child = runConductChild(['serve', '--config', file], { env, cwd: t.dir });
    expect(await child.exit).toBe(2);
    const [entry] = expectJsonLines(child.stderrLines());
    expect(entry!['msg']).toContain('api.token: environment variable CONDUCT_TEST_UNSET_TOKEN is not set');
  });
});

/** Resolves once `done()` holds (checked every 20 ms); the test's own timeout bounds it. */
async function waitFor(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 20));
}

function listenSomewhere(): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
