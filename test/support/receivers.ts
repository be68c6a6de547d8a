/**
 * Destinations for conduct's alerts and forwarded traffic in end-to-end tests: a plain HTTP server
 * and a gRPC server for one OTLP Export method, both on real ports, recording the raw bytes they
 * get in arrival order. The HTTP one can be told to hang (never answer).
 */
import { once } from 'node:events';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';

export const LOGS_EXPORT = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';
export const TRACES_EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

export interface Recorded {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RecordingHttp {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Every request whose body has fully arrived, answered or not. */
  received: Recorded[];
  /** The requests answered so far, in the order of their answers. */
  answered: Recorded[];
  close(): Promise<void>;
}

export interface RecordingHttpOptions {
  /** Never answer. */
  hang?: boolean;
  /** Answer each request this long after it arrived (a slow receiver). */
  answerAfterMs?: number;
  /** Listen on this port (one a test kept free until now); any free port by default. */
  port?: number;
  /** Asked per request once its body arrived: true answers 503 (a receiver that is down), and it is not `answered`. */
  refuse?: (request: Recorded) => boolean;
}

/** An HTTP server answering 200 `{}` to everything (503 to what `refuse` picks), or never answering when `hang` is set. */
export async function recordingHttp(options: RecordingHttpOptions = {}): Promise<RecordingHttp> {
  const received: Recorded[] = [];
  const answered: Recorded[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const got = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      received.push(got);
      if (options.hang) return;
      if (options.refuse?.(got)) {
        res.writeHead(503).end();
        return;
      }
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        answered.push(got);
      };
      if (options.answerAfterMs) setTimeout(answer, options.answerAfterMs);
      else answer();
    });
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    answered,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RecordingGrpc {
  /** `127.0.0.1:PORT` */
  address: string;
  received: Array<{ body: Buffer; metadata: grpc.Metadata }>;
  close(): Promise<void>;
}

/** A gRPC server implementing one unary OTLP Export method, keeping each request message's bytes. */
export async function recordingGrpc(methodPath: string): Promise<RecordingGrpc> {
  const received: RecordingGrpc['received'] = [];
  const raw = (b: Buffer) => b;
  const server = new grpc.Server();
  server.addService(
    { Export: { path: methodPath, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        received.push({ body: call.request, metadata: call.metadata });
        callback(null, Buffer.alloc(0));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** A local port with nothing listening on it (bound, then released): connections are refused. */
export async function refusedPort(): Promise<number> {
  const s = http.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Polls until `check` passes; the test's own timeout bounds the wait (no wall-clock assertion). */
export async function until(check: () => boolean | Promise<boolean>, intervalMs = 20): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, intervalMs));
}
