import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/index.js';
import { tempDir } from '../store/testdata/fixtures.js';
import { serveConfig, splitEndpoint, startConduct } from './index.js';
import { requireBuilt, runConductChild } from './testdata/child.js';

const TRACE = '5B8EFFF798038103D269B633813FC60C';

/** One client span of service `frontend` calling `cart`, as OTLP/JSON. */
function otlpJson(traceId = TRACE) {
  const attr = (key: string, value: string) => ({ key, value: { stringValue: value } });
  return {
    resourceSpans: [
      {
        resource: { attributes: [attr('service.name', 'frontend')] },
        scopeSpans: [
          {
            spans: [
              {
                traceId,
                spanId: 'EEE19B7EC3C1B174',
                name: 'GET /cart',
                kind: 3,
                startTimeUnixNano: '1700000000000000000',
                endTimeUnixNano: '1700000000010000000',
                attributes: [attr('http.request.method', 'GET'), attr('peer.service', 'cart'), attr('url.full', 'http://cart:8080/cart')],
              },
            ],
          },
        ],
      },
    ],
  };
}

async function send(httpAddress: string, body: unknown): Promise<void> {
  const res = await fetch(`http://${httpAddress}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
}

describe('conduct serve (child process)', () => {
  const t = tempDir('conduct-cli-');
  beforeAll(() => {
    requireBuilt();
  });
  afterAll(() => t.cleanup());

  it('stops with exit code 2 and names the key when the config file is bad', async () => {
    const file = join(t.dir, 'bad.yaml');
    writeFileSync(file, 'stitching:\n  idle: sometime\napi:\n  endpoint: 127.0.0.1:0\n');
    const child = runConductChild(['serve', '--config', file]);
    expect(await child.exit).toBe(2);
    expect(child.stderr()).toContain('stitching.idle');

    writeFileSync(file, 'storage:\n  pathh: x.db\n');
    const unknown = runConductChild(['serve', '--config', file]);
    expect(await unknown.exit).toBe(2);
    expect(unknown.stderr()).toContain('storage.pathh');

    const flag = runConductChild(['serve', '--grpc', 'localhost']);
    expect(await flag.exit).toBe(2);
    expect(flag.stderr()).toContain('receivers.grpc.endpoint');
  });

  it('also exits 2 naming the key for configuration only start-up can check (files it names)', async () => {
    const missing = join(t.dir, 'no-such.pem');
    const db = join(t.dir, 'startup-config.db');
    const cases: Array<[string, string]> = [
      [`api: { endpoint: "127.0.0.1:0", tls: { cert: ${JSON.stringify(missing)}, key: ${JSON.stringify(missing)} } }\n`, 'api.tls.cert'],
      [`receivers: { http: { endpoint: "127.0.0.1:0", tls: { cert: ${JSON.stringify(missing)}, key: ${JSON.stringify(missing)} } } }\napi: { endpoint: "127.0.0.1:0" }\n`, 'receivers.http.tls.cert'],
    ];
    for (const [yaml, key] of cases) {
      const file = join(t.dir, 'startup.yaml');
      writeFileSync(file, `${yaml}storage: { path: ${JSON.stringify(db)} }\n`);
      const child = runConductChild(['serve', '--config', file, '--grpc', '127.0.0.1:0']);
      expect(await child.exit, child.stderr()).toBe(2);
      expect(child.stderr()).toContain(`invalid configuration: ${key}`);
    }
  });

  it('logs its endpoints, stores a trace, stops on SIGTERM and keeps the data across a restart', async () => {
    const db = join(t.dir, 'nested', 'dir', 'conduct.db');
    const file = join(t.dir, 'ok.yaml');
    writeFileSync(file, 'log:\n  level: info\napi:\n  endpoint: 127.0.0.1:1\n');
    const args = ['serve', '--config', file, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--api', '127.0.0.1:0', '--db', db];

    const first = runConductChild(args);
    const at = await first.listening;
    expect(at.db).toBe(db);
    expect(splitEndpoint(at.grpc)?.port).toBeGreaterThan(0);
    expect(splitEndpoint(at.api)?.port).not.toBe(1); // the flag won over the file
    await send(at.http, otlpJson());
    expect(await (await fetch(`http://${at.api}/api/v1/flush`, { method: 'POST' })).json()).toEqual({ ok: true });
    const trace = (await (await fetch(`http://${at.api}/api/v1/traces/${TRACE}`)).json()) as { chains: Array<{ identity: string }> };
    expect(trace.chains.map((c) => c.identity)).toEqual(['svc:frontend']);
    first.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    expect(first.stderr()).toContain('conduct stopped');

    const second = runConductChild(args);
    const again = await second.listening;
    try {
      const ids = (await (await fetch(`http://${again.api}/api/v1/identities`)).json()) as { identities: Array<{ id: string; calls: number }> };
      expect(ids.identities).toContainEqual(expect.objectContaining({ id: 'svc:frontend', calls: 1 }));
      const chains = (await (await fetch(`http://${again.api}/api/v1/identities/svc%3Afrontend/chains`)).json()) as { chains: Array<{ traceId: string }> };
      expect(chains.chains.map((c) => c.traceId)).toEqual([TRACE.toLowerCase()]);
    } finally {
      second.kill('SIGINT');
      expect(await second.exit).toBe(0);
    }
  });
});

describe('secrets (child process)', () => {
  const t = tempDir('conduct-cli-secrets-');
  afterAll(() => t.cleanup());

  it('never logs tokens, webhook secrets or header values, even at trace level', async () => {
    const secrets = ['grpc-TOKEN-7c1e', 'http-TOKEN-9a4d', 'api-TOKEN-3f0b', 'hook-SECRET-5e2a', 'hook-HEADER-8d6c', 'fwd-HEADER-1b9f', 'URL-PATH-SECRET-4c2d', 'URL-QUERY-SECRET-0a1b'];
    const file = join(t.dir, 'secrets.yaml');
    writeFileSync(
      file,
      `receivers:
  grpc: { endpoint: "127.0.0.1:0", auth: { token: ${secrets[0]} } }
  http: { endpoint: "127.0.0.1:0", auth: { token: ${secrets[1]} } }
api: { endpoint: "127.0.0.1:0", token: ${secrets[2]} }
storage: { path: ${JSON.stringify(join(t.dir, 'conduct.db'))} }
alerts:
  sinks: [{ type: webhook, endpoint: "http://127.0.0.1:9/hook/${secrets[6]}?key=${secrets[7]}", secret: ${secrets[3]}, headers: { authorization: "Bearer ${secrets[4]}" } }]
forward: [{ endpoint: "127.0.0.1:9", protocol: grpc, headers: { authorization: "Bearer ${secrets[5]}" } }]
log: { level: trace }
`,
    );
    const child = runConductChild(['serve', '--config', file]);
    const at = await child.listening;
    const post = (token?: string) =>
      fetch(`http://${at.http}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(otlpJson()),
      });
    expect((await post()).status).toBe(401);
    expect((await post(secrets[0])).status).toBe(401); // the other receiver's token
    expect((await post(secrets[1])).status).toBe(200);
    expect((await fetch(`http://${at.api}/api/v1/identities`, { headers: { authorization: `Bearer ${secrets[1]}` } })).status).toBe(401);
    const flushed = await fetch(`http://${at.api}/api/v1/flush`, { method: 'POST', headers: { authorization: `Bearer ${secrets[2]}` } });
    expect(flushed.status).toBe(200);
    child.kill('SIGTERM');
    expect(await child.exit).toBe(0);
    const log = child.stderr();
    expect(log).toContain('conduct stopped');
    for (const secret of secrets) expect(log, `${secret} appears in the log`).not.toContain(secret);
  }, 60_000);
});

describe('startConduct (in process)', () => {
  it('runs receivers, pipeline, store and API on port 0, and restarts on the same database', async () => {
    const t = tempDir('conduct-start-');
    const config = parseConfig({
      receivers: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } },
      api: { endpoint: '127.0.0.1:0', token: 'tkn' },
      storage: { path: join(t.dir, 'conduct.db') },
    });
    const auth = { authorization: 'Bearer tkn' };
    try {
      const a = await startConduct(config);
      expect((await fetch(`http://${a.apiAddress}/healthz`)).status).toBe(200);
      await send(a.httpAddress, otlpJson());
      await a.flush();
      const res = await fetch(`http://${a.apiAddress}/api/v1/traces/${TRACE.toLowerCase()}`, { headers: auth });
      const body = (await res.json()) as { chains: Array<{ identity: string; calls: Array<{ operation: string; peer: string }> }> };
      expect(body.chains[0]!.identity).toBe('svc:frontend');
      expect(body.chains[0]!.calls[0]!.peer).toBe('cart');
      const metrics = await (await fetch(`http://${a.apiAddress}/metrics`, { headers: auth })).text();
      expect(metrics).toMatch(/^conduct_chains_stored_total 1$/m);
      expect(metrics).toMatch(/^process_cpu_user_seconds_total /m);
      await a.stop();
      await a.stop(); // twice is safe

      const b = await startConduct(config);
      try {
        const ids = (await (await fetch(`http://${b.apiAddress}/api/v1/identities`, { headers: auth })).json()) as { identities: Array<{ id: string }> };
        expect(ids.identities.map((i) => i.id)).toEqual(['svc:frontend']);
      } finally {
        await b.stop();
      }
    } finally {
      t.cleanup();
    }
  });

  it('stops what it started when a port is taken', async () => {
    const t = tempDir('conduct-start-');
    const first = await startConduct(parseConfig({
      receivers: { grpc: { endpoint: '' }, http: { endpoint: '' } },
      api: { endpoint: '127.0.0.1:0' },
      storage: { path: join(t.dir, 'a.db') },
    }));
    try {
      const clash = parseConfig({
        receivers: { grpc: { endpoint: '' }, http: { endpoint: '' } },
        api: { endpoint: first.apiAddress },
        storage: { path: join(t.dir, 'b.db') },
      });
      await expect(startConduct(clash)).rejects.toThrow(/EADDRINUSE/);
      // The failed start closed its store: the file can be opened and used again at once.
      const retry = await startConduct({ ...clash, api: { ...clash.api, endpoint: '127.0.0.1:0' } });
      await retry.stop();
    } finally {
      await first.stop();
      t.cleanup();
    }
  });

  it('applies flags over the file and validates them as the keys they override', () => {
    const t = tempDir('conduct-flags-');
    try {
      const file = join(t.dir, 'c.yaml');
      writeFileSync(file, 'storage:\n  path: /from/file.db\nreceivers:\n  grpc:\n    endpoint: 0.0.0.0:4317\n');
      const c = serveConfig({ config: file, db: join(t.dir, 'flag.db'), http: '' });
      expect(c.storage.path).toBe(join(t.dir, 'flag.db'));
      expect(c.receivers.grpc.endpoint).toBe('0.0.0.0:4317');
      expect(c.receivers.http.endpoint).toBe('');
      expect(() => serveConfig({ api: 'no-port' })).toThrow(/api\.endpoint/);
    } finally {
      t.cleanup();
    }
  });
});
