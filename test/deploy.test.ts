/**
 * Issue 17: the packaging under deploy/ checked as far as it can be without a container engine or
 * a cluster. The Dockerfile copies only files that exist (and that .dockerignore lets through);
 * the image, the Kubernetes manifests and the systemd unit agree with each other and with the
 * configuration defaults on ports, paths and probes; and the unit's command line, run as it is
 * (install directory and config path mapped to this checkout), starts a conduct whose probe paths
 * and HEALTHCHECK answer, and which SIGTERM stops cleanly.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { EXIT_USAGE, loadConfigFile, parseConfig, splitEndpoint, type Config } from '@conduct/backend';
import { ensureBuilt } from './reliability/support/child.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

// ---- Dockerfile ------------------------------------------------------------------------------

interface Instruction {
  stage: string;
  op: string;
  args: string;
}

/** Instructions with continuation lines joined, each tagged with its stage (`AS name`, or its index). */
function dockerfile(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, ' ');
  const out: Instruction[] = [];
  let stage = '';
  let stages = 0;
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) continue;
    const [, op, args] = m;
    if (op === 'FROM') stage = / AS (\S+)/i.exec(args)?.[1] ?? `stage-${stages}`, stages++;
    out.push({ stage, op, args: args.trim() });
  }
  return out;
}

/** True when a .dockerignore pattern list leaves `path` (relative to the context) out. */
function ignored(patterns: string[], path: string): boolean {
  const parts = path.replace(/\/$/, '').split('/');
  const segment = (glob: string) => new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
  return patterns.some((p) => {
    if (p.startsWith('**/')) return parts.some((s) => segment(p.slice(3)).test(s));
    return path === p || path.startsWith(`${p}/`);
  });
}

/** The port of an endpoint `HOST:PORT`. */
function portOf(endpoint: string): number {
  const parts = splitEndpoint(endpoint);
  if (!parts) throw new Error(`not HOST:PORT: ${endpoint}`);
  return parts.port;
}

function ports(c: Config): { grpc: number; http: number; api: number } {
  return { grpc: portOf(c.receivers.grpc.endpoint), http: portOf(c.receivers.http.endpoint), api: portOf(c.api.endpoint) };
}

const DEFAULTS = parseConfig({}, 'defaults');
const SHIPPED = loadConfigFile(join(DEPLOY, 'conduct.yaml'));
const DATA_DIR = posix.dirname(SHIPPED.storage.path);

describe('deploy/Dockerfile', () => {
  const steps = dockerfile(read('deploy/Dockerfile'));
  const dockerignore = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = [...new Set(steps.map((s) => s.stage))];
  const runtime = steps.filter((s) => s.stage === stages.at(-1));
  const arg = (op: string) => runtime.filter((s) => s.op === op).map((s) => s.args);

  beforeAll(() => ensureBuilt());

  it('is multi-stage: the build stage installs, builds and prunes to production dependencies; the runtime copies the result', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = steps.filter((s) => s.stage === 'build' && s.op === 'RUN').map((s) => s.args).join(' && ');
    expect(build).toMatch(/npm ci\b/);
    expect(build).toMatch(/npm run build[\s\S]*npm prune --omit=dev/);
    expect(arg('COPY')).toContain('--from=build /app/node_modules/ node_modules/');
    expect(arg('RUN').join(' ')).not.toMatch(/npm (ci|install)/);
  });

  it('copies only files that exist and that .dockerignore lets into the context', () => {
    const copies = steps.filter((s) => s.op === 'COPY');
    expect(copies.length).toBeGreaterThan(10);
    for (const { args } of copies) {
      const words = args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='));
      const sources = words.filter((w) => !w.startsWith('--')).slice(0, -1);
      for (const src of sources) {
        // From the build stage: /app is the repository as built there (npm run build makes dist/).
        const rel = from ? src.replace(/^\/app\//, '') : src;
        if (from) expect(src.startsWith('/app/'), src).toBe(true);
        expect(existsSync(join(ROOT, rel)), `${args}: ${rel} does not exist`).toBe(true);
        if (!from) expect(ignored(dockerignore, rel.replace(/^\.\//, '')), `${rel} is excluded by .dockerignore`).toBe(false);
      }
    }
    // What a local install or build leaves must not reach the build (stale tsbuildinfo skips emits).
    for (const p of ['node_modules', 'backend/dist', 'proto/node_modules', 'backend/tsconfig.tsbuildinfo']) expect(ignored(dockerignore, p), p).toBe(true);
  });

  it('runs conduct serve as a non-root user, on the shipped config, with a volume, ports and HEALTHCHECK matching it', () => {
    const user = arg('USER').at(-1);
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(arg('ENTRYPOINT').at(-1)).toBe('["node", "/app/bin/conduct.js"]');
    const cmd = JSON.parse(arg('CMD').at(-1)!) as string[];
    expect(cmd.slice(0, 2)).toEqual(['serve', '--config']);
    expect(arg('COPY')).toContain(`deploy/conduct.yaml ${cmd[2]}`);
    expect(arg('VOLUME')).toEqual([DATA_DIR]);
    const shipped = ports(SHIPPED);
    expect(shipped).toEqual(ports(DEFAULTS));
    expect(arg('EXPOSE').join(' ').split(/\s+/).map(Number).sort()).toEqual([shipped.grpc, shipped.http, shipped.api].sort());
    for (const e of [SHIPPED.receivers.grpc.endpoint, SHIPPED.receivers.http.endpoint, SHIPPED.api.endpoint]) expect(e.startsWith('0.0.0.0:'), e).toBe(true);
    const health = arg('HEALTHCHECK').at(-1)!;
    expect(health).toContain(`http://127.0.0.1:${shipped.api}/readyz`);
  });
});

// ---- Kubernetes --------------------------------------------------------------------------------

type Doc = Record<string, any>;

function manifests(): Doc[] {
  const docs: Doc[] = [];
  for (const file of ['configmap.yaml', 'service.yaml', 'statefulset.yaml']) {
    for (const doc of parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', file), 'utf8'))) {
      expect(doc.errors, file).toEqual([]);
      docs.push(doc.toJS() as Doc);
    }
  }
  return docs;
}

describe('deploy/kubernetes', () => {
  const docs = manifests();
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  const [configMap] = byKind('ConfigMap');
  const [set] = byKind('StatefulSet');
  const pod = set.spec.template.spec;
  const [container] = pod.containers as Doc[];
  const containerPort = (name: string) => (container.ports as Doc[]).find((p) => p.name === name)?.containerPort as number;

  it('has a ConfigMap whose conduct.yaml is the shipped configuration', () => {
    const config = parseConfig(parseYaml(configMap.data['conduct.yaml'] as string), 'configmap');
    expect(config).toEqual(SHIPPED);
  });

  it('serves 4317, 4318 and 8080 (the configuration defaults) through the Service, to the ports conduct listens on', () => {
    const expected = ports(DEFAULTS);
    const services = byKind('Service');
    expect(services.length).toBeGreaterThan(0);
    const main = services.find((s) => s.spec.clusterIP !== 'None')!;
    expect((main.spec.ports as Doc[]).map((p) => p.port).sort()).toEqual([expected.grpc, expected.http, expected.api].sort());
    for (const s of services) {
      expect(s.spec.selector).toEqual(set.spec.selector.matchLabels);
      for (const p of s.spec.ports as Doc[]) expect(containerPort(p.targetPort as string), `${s.metadata.name} ${p.name}`).toBe(p.port);
    }
    expect({ grpc: containerPort('otlp-grpc'), http: containerPort('otlp-http'), api: containerPort('http') }).toEqual(ports(SHIPPED));
    expect(set.spec.serviceName).toBe(services.find((s) => s.spec.clusterIP === 'None')?.metadata.name);
  });

  it('keeps the database on a volume claim, mounts the ConfigMap where the args read it, and runs as non-root', () => {
    const claims = set.spec.volumeClaimTemplates as Doc[];
    expect(claims.map((c) => c.metadata.name)).toContain('data');
    const mount = (name: string) => (container.volumeMounts as Doc[]).find((m) => m.name === name)?.mountPath as string;
    expect(mount('data')).toBe(DATA_DIR);
    const configVolume = (pod.volumes as Doc[]).find((v) => v.configMap?.name === configMap.metadata.name)!;
    expect(container.args).toEqual(['serve', '--config', `${mount(configVolume.name as string)}/conduct.yaml`]);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).not.toBe(0);
  });

  it('probes liveness on /healthz and readiness on /readyz, on the API port', () => {
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(containerPort('http')).toBe(ports(SHIPPED).api);
  });
});

// ---- systemd, and the probe paths on a running conduct ---------------------------------------------

/** `[Section] Key=value` pairs of a unit file (a key that repeats keeps its last value). */
function unit(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1];
      out[section] = {};
      continue;
    }
    const eq = line.indexOf('=');
    out[section][line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

describe('deploy/systemd/conduct.service, run as written', () => {
  const service = unit(read('deploy/systemd/conduct.service')).Service;
  const dir = mkdtempSync(join(tmpdir(), 'conduct-deploy-'));
  let child: ReturnType<typeof spawn>;
  let exited: Promise<number | null>;
  let api = '';
  let log = '';

  beforeAll(async () => {
    ensureBuilt();
    // The unit's command line with the install directory mapped to this checkout, and the shipped
    // configuration with ports picked free and the database in a temporary directory.
    const [node, ...args] = service.ExecStart.split(/\s+/);
    expect(node).toBe('/usr/bin/node');
    const config = join(dir, 'conduct.yaml');
    const configIndex = args.indexOf('/etc/conduct/conduct.yaml');
    expect(configIndex).toBeGreaterThan(0);
    writeFileSync(
      config,
      read('deploy/conduct.yaml')
        .replace(/0\.0\.0\.0:\d+/g, '127.0.0.1:0')
        .replace(DATA_DIR, join(dir, 'state')),
    );
    args[configIndex] = config;
    const mapped = args.map((a) => a.replace(/^\/opt\/conduct\//, ROOT));
    expect(existsSync(mapped[0])).toBe(true);
    child = spawn(process.execPath, mapped, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_ENV: 'production' } });
    exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    api = await new Promise<string>((resolve, reject) => {
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        log += chunk;
        const line = log.split('\n').find((l) => l.includes('conduct listening'));
        if (line) resolve((JSON.parse(line) as { api: string }).api);
      });
      void exited.then((code) => reject(new Error(`conduct exited ${code} before listening:\n${log}`)));
    });
  }, 60_000);

  afterAll(async () => {
    if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps its state where storage.path points, and does not restart on a usage error', () => {
    expect(`/var/lib/${service.StateDirectory}`).toBe(DATA_DIR);
    expect(service.RestartPreventExitStatus.split(/\s+/)).toContain(String(EXIT_USAGE));
    expect(service.KillSignal).toBe('SIGTERM');
    expect(existsSync(join(dir, 'state', 'conduct.db'))).toBe(true);
  });

  it('answers the probe paths of the manifests with 200 and JSON', async () => {
    const set = manifests().find((d) => d.kind === 'StatefulSet')!;
    const [container] = set.spec.template.spec.containers as Doc[];
    const paths = [container.startupProbe, container.livenessProbe, container.readinessProbe].map((p: Doc) => p.httpGet.path as string);
    expect(new Set(paths)).toEqual(new Set(['/healthz', '/readyz']));
    for (const path of paths) {
      const res = await fetch(`http://${api}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(/^application\/json/);
    }
  });

  it("passes the image's HEALTHCHECK command (pointed at this conduct's API port)", async () => {
    const health = dockerfile(read('deploy/Dockerfile')).filter((s) => s.op === 'HEALTHCHECK').at(-1)!.args;
    const argv = JSON.parse(health.slice(health.indexOf('CMD') + 3).trim()) as string[];
    expect(argv[0]).toBe('node');
    const port = splitEndpoint(api)!.port;
    const script = argv.map((a) => a.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${port}`));
    const code = await new Promise<number>((resolve) => execFile(process.execPath, script.slice(1), (err) => resolve(err ? ((err as { code?: number }).code ?? 1) : 0)));
    expect(code).toBe(0);
    // And fails when nothing answers there: the check tests something.
    const closed = argv.map((a) => a.replace(/127\.0\.0\.1:\d+/, '127.0.0.1:1'));
    const refused = await new Promise<number>((resolve) => execFile(process.execPath, closed.slice(1), (err) => resolve(err ? ((err as { code?: number }).code ?? 1) : 0)));
    expect(refused).toBe(1);
  });

  it('stops with exit code 0 on its KillSignal', async () => {
    child.kill(service.KillSignal as NodeJS.Signals);
    expect(await exited).toBe(0);
    expect(log).toContain('conduct stopped');
  });
});


describe('.ci/run on a fresh machine', () => {
  it('is `npm ci` and the README\'s test command, and installs no system package', () => {
    const commands = read('.ci/run')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#') && !l.startsWith('set ') && !l.startsWith('cd '));
    expect(commands.map((c) => c.split(/\s+/).slice(0, 2).join(' '))).toEqual(['npm ci', 'npm test']);
    const readme = read('README.md');
    expect(readme).toMatch(/## Test it\s+```sh\s+npm test\s+```/);
  });
});
