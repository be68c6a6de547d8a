/**
 * Real receivers on real ports for the sink tests: a plain HTTP server and a gRPC server with one
 * unary method, both recording what they get. Their answers are scripted per request.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { Alert } from '../../model.js';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** How the HTTP receiver answers a request: a status code, or `hang` (never answer). */
export type HttpAnswer = number | 'hang';

export interface HttpReceiver {
  url: string;
  /** Every request, in arrival order. */
  requests: Received[];
  /** Requests answered 2xx. */
  accepted: Received[];
  /** Resolves once `n` requests were accepted. */
  waitAccepted(n: number): Promise<void>;
  close(): Promise<void>;
}

/** An HTTP receiver on `port` (0: any free port) answering each request as `answer` says. */
export async function startHttpReceiver(answer: (index: number) => HttpAnswer = () => 200, port = 0): Promise<HttpReceiver> {
  const requests: Received[] = [];
  const accepted: Received[] = [];
  let waiters: Array<{ n: number; resolve: () => void }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const got = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      const a = answer(requests.length);
      requests.push(got);
      if (a === 'hang') return;
      res.writeHead(a, { 'content-type': 'application/json' }).end('{}');
      if (a >= 200 && a < 300) {
        accepted.push(got);
        waiters = waiters.filter((w) => (accepted.length >= w.n ? (w.resolve(), false) : true));
      }
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    requests,
    accepted,
    waitAccepted: (n) => (accepted.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

export interface GrpcReceiver {
  /** HOST:PORT */
  address: string;
  /** Request messages (raw bytes) and their metadata, in arrival order. */
  requests: Array<{ body: Buffer; metadata: grpc.Metadata }>;
  waitRequests(n: number): Promise<void>;
  close(): Promise<void>;
}

/** A gRPC server implementing one unary method (e.g. LogsService/Export) that records raw requests. */
export async function startGrpcReceiver(service: string, method = 'Export'): Promise<GrpcReceiver> {
  const requests: GrpcReceiver['requests'] = [];
  let waiters: Array<{ n: number; resolve: () => void }> = [];
  const raw = (b: Buffer) => b;
  const definition: grpc.ServiceDefinition = {
    [method]: {
      path: `/${service}/${method}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    },
  };
  const server = new grpc.Server();
  server.addService(definition, {
    [method]: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      requests.push({ body: call.request, metadata: call.metadata });
      waiters = waiters.filter((w) => (requests.length >= w.n ? (w.resolve(), false) : true));
      callback(null, Buffer.alloc(0));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    requests,
    waitRequests: (n) => (requests.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

let seq = 0;

/** A hand-built alert; `over` replaces fields. */
export function makeAlert(over: Partial<Alert> = {}): Alert {
  seq++;
  const traceId = over.traceId ?? `4bf92f3577b34da6a3ce929d0e0e${String(4736 + seq).padStart(4, '0')}`;
  return {
    id: `alert-${seq}`,
    identity: 'spiffe://prod/ns/ci/sa/deployer',
    identityKind: 'certificate',
    detector: 'new-peer',
    detectors: ['new-peer', 'new-operation'],
    findings: [
      {
        detector: 'new-peer',
        severity: 'high',
        score: 82.5,
        title: 'spiffe://prod/ns/ci/sa/deployer contacted a new peer: iam.googleapis.com',
        explanation: 'This identity normally calls artifact-registry and gke only. It called iam.googleapis.com.',
        spanIds: ['00f067aa0ba902b7'],
        techniques: ['T1078.004'],
        attack: [{ id: 'T1078.004', name: 'Cloud Accounts', tactic: 'Defense Evasion' }],
        keys: ['peer:iam.googleapis.com'],
      },
      {
        detector: 'new-operation',
        severity: 'medium',
        score: 62,
        title: 'spiffe://prod/ns/ci/sa/deployer performed a new operation: POST /v1/projects/{id}/serviceAccounts',
        explanation: 'Normally it performs 3 operations.',
        spanIds: ['00f067aa0ba902b8'],
        techniques: ['T1580'],
        attack: [{ id: 'T1580', name: 'Cloud Infrastructure Discovery', tactic: 'Discovery' }],
        keys: ['op:POST /v1/projects/{id}/serviceAccounts'],
      },
    ],
    severity: 'high',
    score: 82.5,
    title: 'spiffe://prod/ns/ci/sa/deployer contacted a new peer: iam.googleapis.com',
    explanation:
      'This identity normally calls artifact-registry and gke only (1,204 calls over 9 days). It called iam.googleapis.com, a peer it has never contacted.',
    traceId,
    spanIds: ['00f067aa0ba902b7', '00f067aa0ba902b8'],
    eventTime: '2025-06-01T12:00:00.250Z',
    firstSeen: '2025-06-01T12:00:00.250Z',
    lastSeen: '2025-06-01T12:00:00.250Z',
    count: 1,
    status: 'open',
    techniques: ['T1078.004', 'T1580'],
    links: { trace: `http://jaeger:16686/trace/${traceId}` },
    evidence: {
      usualPeers: ['artifact-registry', 'gke'],
      newPeers: ['iam.googleapis.com'],
      newOperations: ['POST /v1/projects/{id}/serviceAccounts'],
    },
    ...over,
  };
}
