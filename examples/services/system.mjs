// Starts the whole demo system: one process per instrumented service (each with its own
// OpenTelemetry resource), plus two uninstrumented outside parties (the partner's API and a
// file-sharing host), all on 127.0.0.1 with ports chosen at start.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createApiServerAudit } from './api-server-audit.mjs';
import { makeCertificates } from './certs.mjs';
import { SERVICES } from './registry.mjs';

const SERVICE_JS = fileURLToPath(new URL('./service.mjs', import.meta.url));
/**
 * Time one service process gets from its fork to its ready message (it waits for that message,
 * so a fast machine waits no longer): generous, for machines loaded by other work.
 */
export const START_TIMEOUT_MS = 180_000;
/** Service processes started at once: starting all twelve together starves a loaded machine. */
export const START_CONCURRENCY = 3;
/** Time one command to a service process may take: a task runs several calls, each up to CALL_TIMEOUT_MS. */
export const COMMAND_TIMEOUT_MS = 180_000;
/** Last lines of a service's stderr kept for error messages. */
export const STDERR_LINES = 20;

/** An uninstrumented JSON server standing for a party outside our systems. */
function outsideParty(onRequest) {
  const server = createServer((req, res) => {
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
    });
    req.on('end', () => {
      onRequest?.(req, size);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ accepted: true, bytes: size }));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/**
 * Runs `task` for each item, at most `limit` at a time. After a failure no further item is
 * started; rejects with the first failure once the running tasks have ended.
 */
async function eachLimited(items, limit, task) {
  const queue = [...items];
  let failure;
  const worker = async () => {
    while (queue.length > 0 && !failure) {
      try {
        await task(queue.shift());
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, worker));
  if (failure) throw failure;
}

/**
 * True when this machine routes all of 127.0.0.0/8 to loopback (Linux does; macOS only has
 * 127.0.0.1 unless aliases are added), so a client can appear to come from another segment.
 */
export async function canUseLoopbackAddress(address) {
  const server = createServer((_, res) => res.end());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: server.address().port, localAddress: address });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  } finally {
    server.close();
  }
}

/**
 * Starts every service. `otlpEndpoint` is conduct's OTLP/gRPC receiver URL; `dir` a scratch
 * directory (certificates, the warehouse database); `k8sAuditEndpoint` (optional) conduct's
 * Kubernetes audit receiver, fed by the demo's API server audit source. Returns a handle to drive
 * and stop them.
 */
export async function startSystem({ otlpEndpoint, dir, k8sAuditEndpoint }) {
  const apiServer = k8sAuditEndpoint ? createApiServerAudit({ endpoint: k8sAuditEndpoint }) : undefined;
  const certs = await makeCertificates(dir);
  const deployerToken = randomBytes(16).toString('hex');
  const received = { partner: 0, drop: 0 };
  const partner = await outsideParty(() => received.partner++);
  const drop = await outsideParty(() => received.drop++);
  const ports = { partner: partner.address().port, drop: drop.address().port };
  /** Ports of the services that also (or only) speak gRPC, by service name. */
  const grpcPorts = {};
  const children = new Map();
  let nextId = 1;
  const pending = new Map();

  const startOne = (name) =>
    new Promise((resolve, reject) => {
      const child = fork(SERVICE_JS, [name], {
        execArgv: [],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        env: {
          ...process.env,
          OTEL_SEMCONV_STABILITY_OPT_IN: 'http',
          OTEL_LOG_LEVEL: 'error',
          OTEL_SDK_DISABLED: 'false',
          CONDUCT_OTLP_ENDPOINT: otlpEndpoint,
          DEMO_DIR: dir,
          DEMO_DEPLOYER_TOKEN: deployerToken,
        },
      });
      const stderr = [];
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (text) => {
        stderr.push(...text.split('\n').filter(Boolean));
        if (stderr.length > STDERR_LINES) stderr.splice(0, stderr.length - STDERR_LINES);
      });
      const timer = setTimeout(() => reject(new Error(`${name} did not start in time: ${stderr.join(' | ')}`)), START_TIMEOUT_MS);
      child.on('message', (msg) => {
        if (msg?.type === 'ready') {
          clearTimeout(timer);
          if (msg.port) ports[name] = msg.port;
          if (msg.grpcPort) grpcPorts[name] = msg.grpcPort;
          resolve();
        } else if (msg?.type === 'error') {
          clearTimeout(timer);
          reject(new Error(`${name}: ${msg.error}`));
        } else if (msg?.id && pending.has(msg.id)) {
          const p = pending.get(msg.id);
          pending.delete(msg.id);
          clearTimeout(p.timer);
          if (msg.ok) p.resolve(msg.result);
          else p.reject(new Error(`${name}: ${msg.error}`));
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        children.delete(name);
        for (const [id, p] of pending) {
          if (p.name !== name) continue;
          pending.delete(id);
          clearTimeout(p.timer);
          p.reject(new Error(`${name} exited (${code}): ${stderr.join(' | ')}`));
        }
        reject(new Error(`${name} exited (${code}) while starting: ${stderr.join(' | ')}`));
      });
      children.set(name, child);
    });

  const send = (name, msg) =>
    new Promise((resolve, reject) => {
      const child = children.get(name);
      if (!child?.connected) return reject(new Error(`${name} is not running`));
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${name} did not answer ${msg.cmd} in time`));
      }, COMMAND_TIMEOUT_MS);
      pending.set(id, { name, resolve, reject, timer });
      child.send({ ...msg, id });
    });
  const all = (msg) => Promise.all([...children.keys()].map((name) => send(name, msg)));

  const stop = async () => {
    await Promise.allSettled([...children.keys()].map((name) => send(name, { cmd: 'stop' })));
    for (const child of children.values()) child.kill();
    children.clear();
    partner.close();
    drop.close();
  };

  try {
    await eachLimited(Object.keys(SERVICES), START_CONCURRENCY, startOne);
    await all({ cmd: 'peers', ports, grpcPorts });
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    ports,
    grpcPorts,
    certs,
    /** Requests the outside parties received: `{partner, drop}`. */
    received,
    /** Runs a task of a job service (`deployer`, `nightly-export`). */
    run: (name, task, args) => send(name, { cmd: 'run', task, args }),
    /** The Kubernetes API server's audit source, when conduct takes audit events (else undefined). */
    apiServer,
    /** Sets the demo clock of every service (ms added to span times from now on). */
    setClock: (offsetMs) => {
      apiServer?.setClock(offsetMs);
      return all({ cmd: 'clock', offsetMs });
    },
    /** Exports every ended span of every service now, and posts the queued audit events. */
    flush: () => Promise.all([all({ cmd: 'flush' }), apiServer?.flush()]),
    /** Base URL of a plain-HTTP service, for callers outside the system (users, attackers). */
    url: (name) => `http://127.0.0.1:${ports[name]}`,
    stop,
  };
}
