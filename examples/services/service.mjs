// Entry point of one demo service process: `node service.mjs <name>`, forked by system.mjs with
// an IPC channel. Environment: CONDUCT_OTLP_ENDPOINT (conduct's OTLP/gRPC receiver, e.g.
// http://127.0.0.1:4317), DEMO_DIR (certificates, databases), DEMO_DEPLOYER_TOKEN.
//
// Messages from the parent: {id, cmd: 'peers'|'clock'|'run'|'flush'|'stop', ...}; each is answered
// with {id, ok, result?|error?}. On start the process sends {type: 'ready', port?, grpcPort?}.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICES } from './registry.mjs';
import { flushTelemetry, setClockOffset, startTelemetry, stopTelemetry } from './telemetry.mjs';

const name = process.argv[2];
const dir = process.env.DEMO_DIR ?? '.';
const service = SERVICES[name];
if (!service) {
  process.send?.({ type: 'error', error: `unknown service ${name}` });
  process.exit(2);
}
// The services take http/https through nodeHttp()/nodeHttps() when they start, after this.
startTelemetry({ otlpEndpoint: process.env.CONDUCT_OTLP_ENDPOINT ?? 'http://127.0.0.1:4317', resource: service.resource });

let ports = {};
let grpcPorts = {};
const read = (f) => readFileSync(join(dir, f), 'utf8');
const ctx = {
  name,
  dir,
  secrets: { deployerToken: process.env.DEMO_DEPLOYER_TOKEN ?? '' },
  get certs() {
    return {
      ca: read('ca.crt'),
      server: { cert: read('ledger.crt'), key: read('ledger.key') },
      client: { cert: read('payments.crt'), key: read('payments.key') },
    };
  },
  /** Port of another service (known once the parent sent the peers). */
  port(peer) {
    const p = ports[peer];
    if (!p) throw new Error(`${name}: no port for ${peer}`);
    return p;
  },
  /** Base URL of another plain-HTTP service. */
  peer(peer) {
    return `http://127.0.0.1:${this.port(peer)}`;
  },
  /** `host:port` of another service's gRPC server. */
  grpcAddress(peer) {
    const p = grpcPorts[peer];
    if (!p) throw new Error(`${name}: no gRPC port for ${peer}`);
    return `127.0.0.1:${p}`;
  },
};

const started = await service.start(ctx);
const tasks = started.tasks ?? {};

process.on('message', async (msg) => {
  const reply = (body) => process.send?.({ id: msg?.id, ...body });
  try {
    switch (msg?.cmd) {
      case 'peers':
        ports = { ...msg.ports };
        grpcPorts = { ...msg.grpcPorts };
        return reply({ ok: true });
      case 'clock':
        setClockOffset(Number(msg.offsetMs));
        return reply({ ok: true });
      case 'run': {
        const task = tasks[msg.task];
        if (!task) throw new Error(`${name} has no task ${msg.task}`);
        return reply({ ok: true, result: await task(msg.args ?? {}) });
      }
      case 'flush':
        await flushTelemetry();
        return reply({ ok: true });
      case 'stop':
        await flushTelemetry().catch(() => {});
        reply({ ok: true });
        await stopTelemetry().catch(() => {});
        process.exit(0);
        return;
      default:
        throw new Error(`unknown command ${msg?.cmd}`);
    }
  } catch (err) {
    reply({ ok: false, error: String(err?.message ?? err) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready', port: started.port, grpcPort: started.grpcPort });
