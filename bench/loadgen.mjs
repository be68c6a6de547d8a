// The load generator: a child process (forked by run.mjs) that sends the workload's pre-encoded
// OTLP/protobuf requests to a receiver over gRPC or HTTP and reports what was acknowledged.
//
// Messages from the parent: {cmd: 'run', transport, target, concurrency, durationMs?, spans?,
// spansPerSec?, loadgenId, shape?, eventTime?: {startMs, scale}} (shape: a key of workload.mjs's SHAPES,
// default 8), {cmd: 'prepare', loadgenId?, shape?} (build that request source now; answers
// {type: 'prepared'}), {cmd: 'stop'} (end the running load early) and {cmd: 'exit'}. Answers: {type: 'done', ...figures} or
// {type: 'error', message}. A refused request (gRPC UNAVAILABLE / RESOURCE_EXHAUSTED, HTTP 429 /
// 503) is sent again after a short pause, as an exporter with retries would.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { createRequestSource } from './workload.mjs';

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
/** Pause before resending a refused request (the server suggests more; the bench wants pressure). */
const RETRY_PAUSE_MS = 20;
/** HTTP/2 window for the gRPC client, as a tuned Collector exporter would use. */
const GRPC_WINDOW_BYTES = 8 * 1024 * 1024;
/** gRPC connections opened; in-flight requests are spread over them. */
const GRPC_CHANNELS = 2;
/** Ack timeline resolution (ms). */
const TIMELINE_STEP_MS = 250;

const passThrough = (b) => b;
/** Set by {cmd: 'stop'}: the running load ends after the requests in flight. */
let stopRequested = false;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function grpcSender(target) {
  const clients = Array.from({ length: GRPC_CHANNELS }, (_, i) => new grpc.Client(target, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc-node.flow_control_window': GRPC_WINDOW_BYTES,
    'grpc.use_local_subchannel_pool': 1,
    'bench.channel': i,
  }));
  let n = 0;
  return {
    /** Resolves 'ok', 'retry' or throws on a permanent failure. */
    send(body) {
      const client = clients[n++ % clients.length];
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(EXPORT_PATH, passThrough, passThrough, body, (err) => {
          if (!err) return resolve('ok');
          if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.RESOURCE_EXHAUSTED) return resolve('retry');
          reject(new Error(`gRPC ${grpc.status[err.code] ?? err.code}: ${err.details}`));
        });
      });
    },
    close() {
      for (const c of clients) c.close();
    },
  };
}

function httpSender(target, concurrency) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  return {
    send(body) {
      return new Promise((resolve, reject) => {
        const req = http.request({ host, port, path: '/v1/traces', method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) resolve('ok');
            else if (res.statusCode === 503 || res.statusCode === 429) resolve('retry');
            else reject(new Error(`HTTP ${res.statusCode}`));
          });
        });
        req.on('error', reject);
        req.end(body);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

/**
 * Request sources by load generator id and shape, built once ({cmd: 'prepare'} builds one before
 * a measurement starts): later runs continue their generations, so runs against the same server
 * never repeat a trace id.
 */
const sources = new Map();
/** `realIds`: random trace ids and span ids of each send's own, as real ones are (whatever the environment says). */
function sourceFor(loadgenId = 0, shape = 8, realIds = false) {
  const key = `${loadgenId}/${shape}/${realIds}`;
  if (!sources.has(key)) sources.set(key, createRequestSource(loadgenId, shape, realIds ? { randomTraceIds: true, uniqueSpanIds: true } : undefined));
  return sources.get(key);
}

async function run({ transport, target, concurrency = 8, durationMs, spans, spansPerSec, loadgenId = 0, shape, eventTime, realIds = false }) {
  // eventTime {startMs, scale}: requests stamped at startMs + elapsed wall time x scale (the soak's compressed day).
  const wallStart = Date.now();
  const stampMs = eventTime ? () => eventTime.startMs + (Date.now() - wallStart) * eventTime.scale : () => Date.now();
  const source = sourceFor(loadgenId, shape, realIds);
  const sender = transport === 'grpc' ? grpcSender(target) : httpSender(target, concurrency);
  const perRequest = source.spansPerRequest;
  const requestsWanted = spans ? Math.ceil(spans / perRequest) : Infinity;
  stopRequested = false;
  const start = performance.now();
  const deadline = durationMs ? start + durationMs : Infinity;
  let issued = 0;
  let acked = 0;
  let retries = 0;
  const timeline = [];
  let nextMark = TIMELINE_STEP_MS;
  const latencies = [];

  const worker = async () => {
    for (;;) {
      if (stopRequested || issued >= requestsWanted || performance.now() >= deadline) return;
      if (spansPerSec) {
        const due = start + ((issued * perRequest) / spansPerSec) * 1000;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        if (stopRequested || performance.now() >= deadline) return;
      }
      issued++;
      const body = source.next(stampMs());
      for (;;) {
        const sentAt = performance.now();
        const outcome = await sender.send(body);
        if (outcome === 'ok') {
          latencies.push(performance.now() - sentAt);
          break;
        }
        retries++;
        await sleep(RETRY_PAUSE_MS);
      }
      acked++;
      const t = performance.now() - start;
      if (t >= nextMark) {
        timeline.push([Math.round(t), acked * perRequest]);
        nextMark = t + TIMELINE_STEP_MS;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - start;
  sender.close();
  latencies.sort((a, b) => a - b);
  const q = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : 0);
  return {
    type: 'done',
    requests: acked,
    spansAcked: acked * perRequest,
    retries,
    elapsedMs,
    spansPerSec: (acked * perRequest) / (elapsedMs / 1000),
    requestLatencyMs: { p50: q(0.5), p99: q(0.99) },
    cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    timeline,
  };
}

process.on('message', (msg) => {
  if (msg.cmd === 'exit') process.exit(0);
  if (msg.cmd === 'stop') stopRequested = true;
  if (msg.cmd === 'prepare') {
    sourceFor(msg.loadgenId, msg.shape, msg.realIds);
    process.send({ type: 'prepared' });
  }
  if (msg.cmd === 'run') {
    run(msg).then(
      (result) => process.send(result),
      (err) => process.send({ type: 'error', message: err.message }),
    );
  }
});
process.send({ type: 'ready' });
