/*
 * OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export` on grpc-js.
 * The service is defined by hand with pass-through (de)serialisers, so the raw request bytes reach
 * the export flow and are decoded by conduct's own scanner, not by a generated full decode.
 */
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { encodeExportTraceResponse, encodeRpcStatus } from '@conduct/proto';
import type { Logger, TraceIngest } from '../model.js';
import { createBearerCheck, UNAUTHENTICATED_MESSAGE } from './auth.js';
import {
  DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES,
  DEFAULT_SHUTDOWN_GRACE_MS,
  validateReceiverConfig,
  type GrpcReceiverConfig,
} from './config.js';
import { formatEndpoint, parseEndpoint } from './endpoint.js';
import { createExportFlow } from './export-flow.js';
import { createReceiverMetrics, type ReceiverMetrics } from './metrics.js';
import type { Receiver, ReceiverDeps } from './model.js';
import { onceEach } from './lifecycle.js';
import { loadTlsMaterial } from './tls.js';

export const TRACE_SERVICE_NAME = 'opentelemetry.proto.collector.trace.v1.TraceService';
export const TRACE_EXPORT_PATH = `/${TRACE_SERVICE_NAME}/Export`;
/** Trailer carrying a serialized google.rpc.Status (with RetryInfo) on UNAVAILABLE. */
const STATUS_DETAILS_KEY = 'grpc-status-details-bin';

const passThrough = (bytes: Buffer): Buffer => bytes;

/** The bytes before a message in its gRPC frame: compressed flag and length. */
const FRAME_HEADER_BYTES = 5;

/**
 * Whether a request's bytes fill their buffer but for the frame header before them: grpc-js joins
 * each message's frame into a buffer of its own, hands over the part past the header and reads
 * neither again, so the buffer is the request's (RawRequest.ownsBuffer) and can move to the
 * pipeline thread whole. Copied instead, it cost a 262 KB allocation and copy per request of the
 * bench on the main thread, and that much external memory, which brings V8's full collections
 * forward (bench/README.md "Garbage collection by thread"). A message in any other layout is copied.
 */
function ownsFrame(body: Buffer): boolean {
  return body.byteOffset === FRAME_HEADER_BYTES && body.byteOffset + body.byteLength === body.buffer.byteLength;
}

/** TraceService with one unary method whose request and response stay raw bytes. */
const traceServiceDefinition: grpc.ServiceDefinition = {
  Export: {
    path: TRACE_EXPORT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
    originalName: 'export',
  },
};

/** Creates the OTLP/gRPC receiver. */
export function createGrpcReceiver(config: GrpcReceiverConfig, ingest: TraceIngest, deps: ReceiverDeps): Receiver {
  validateReceiverConfig(config, 'receivers.grpc');
  const address = parseEndpoint(config.endpoint, 'receivers.grpc.endpoint');
  const { logger } = deps;
  const metrics = createReceiverMetrics(deps.registry);
  const exportFlow = createExportFlow(ingest, metrics, logger, config.decodeLimits, deps.forwarder);
  const checkToken = config.auth ? createBearerCheck(config.auth.token) : undefined;
  const window = config.flowControlWindowBytes ?? DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES;
  const graceMs = config.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;

  let server: grpc.Server | undefined;

  const exportHandler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    void exportFlow('grpc', 'protobuf', call.request, undefined, ownsFrame(call.request)).then((result) => {
      switch (result.kind) {
        case 'ok':
          callback(null, Buffer.from(encodeExportTraceResponse({ rejectedSpans: result.rejectedSpans, errorMessage: result.errorMessage })));
          return;
        case 'invalid':
          callback({ code: grpc.status.INVALID_ARGUMENT, details: result.message });
          return;
        case 'overloaded': {
          const trailers = new grpc.Metadata();
          const detail = { code: grpc.status.UNAVAILABLE, message: result.message, retryDelayMs: result.retryAfterMs };
          trailers.set(STATUS_DETAILS_KEY, Buffer.from(encodeRpcStatus(detail)));
          callback({ code: grpc.status.UNAVAILABLE, details: result.message, metadata: trailers });
          return;
        }
      }
    }).catch((error: unknown) => {
      // Not expected (the export flow answers every outcome as data); never let it crash the process.
      logger.error({ err: error instanceof Error ? error.message : String(error) }, 'OTLP/gRPC receiver failed to answer a call');
      callback({ code: grpc.status.INTERNAL, details: 'internal error' });
    });
  };

  async function start(): Promise<string> {
    const tls = config.tls ? await loadTlsMaterial(config.tls, 'receivers.grpc') : undefined;
    const credentials = tls
      ? grpc.ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.clientAuth)
      : grpc.ServerCredentials.createInsecure();
    const created = new grpc.Server({
      // Larger messages (after gzip inflation, which grpc-js caps as it inflates) get RESOURCE_EXHAUSTED.
      'grpc.max_receive_message_length': config.maxRequestBytes,
      // Read by grpc-js clients today and by servers once grpc-node#3058 lands; applied by hand below.
      'grpc-node.flow_control_window': window,
      // No channelz: conduct serves no channelz service, and with it on grpc-js registers the server
      // and every connection in a process-wide map and counts and timestamps every call and message.
      'grpc.enable_channelz': 0,
      interceptors: [createInterceptor(metrics, checkToken)],
    });
    created.addService(traceServiceDefinition, { Export: exportHandler });
    server = created;
    const host = address.host || '0.0.0.0';
    const port = await new Promise<number>((resolve, reject) => {
      created.bindAsync(formatEndpoint(host, address.port), credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort)));
    });
    const windowApplied = raiseFlowControlWindows(created, window, logger);
    const endpoint = formatEndpoint(host, port);
    logger.info(
      { protocol: 'grpc', endpoint, tls: Boolean(tls), mutualTls: Boolean(tls?.clientAuth), auth: Boolean(checkToken), maxRequestBytes: config.maxRequestBytes, flowControlWindowBytes: windowApplied ? window : undefined },
      'OTLP/gRPC receiver listening',
    );
    return endpoint;
  }

  async function stop(): Promise<void> {
    const current = server;
    if (!current) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => current.forceShutdown(), graceMs);
      timer.unref();
      current.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    logger.info({ protocol: 'grpc' }, 'OTLP/gRPC receiver stopped');
  }

  return onceEach(start, stop);
}

/**
 * One interceptor for two jobs: refuse calls without the bearer token as soon as their metadata
 * arrives (before the message is read), and count every call's final status exactly once.
 * grpc-js sends some statuses itself from the innermost call (RESOURCE_EXHAUSTED for an oversized
 * or over-inflating message, for instance), bypassing interceptor responders, so the count wraps
 * that call's sendStatus.
 */
function createInterceptor(metrics: ReceiverMetrics, checkToken: ((authorization: string | undefined) => boolean) | undefined): grpc.ServerInterceptor {
  return (_method, call) => {
    let counted = false;
    const sendStatus = call.sendStatus.bind(call);
    call.sendStatus = (status) => {
      if (!counted) {
        counted = true;
        metrics.request('grpc', grpc.status[status.code] ?? String(status.code));
        if (status.code === grpc.status.RESOURCE_EXHAUSTED) metrics.requestRejected('grpc', 'too-large');
      }
      sendStatus(status);
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            if (checkToken) {
              const value = metadata.get('authorization')[0];
              if (!checkToken(typeof value === 'string' ? value : undefined)) {
                metrics.requestRejected('grpc', 'unauthenticated');
                call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE });
                return;
              }
            }
            nextMetadata(metadata);
          },
        }),
    });
  };
}

/**
 * Raises the HTTP/2 receive windows of every connection: the per-stream initial window (SETTINGS)
 * and the connection window, both from 64 KiB to `window` bytes, so a large export is not throttled
 * to one 64 KiB round trip at a time. grpc-js (1.14) offers no server option for this yet, so this
 * reaches its HTTP/2 servers; if that internal shape changes, it logs once and leaves the defaults.
 */
function raiseFlowControlWindows(server: grpc.Server, window: number, logger: Logger): boolean {
  const internals = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(internals instanceof Map)) {
    logger.warn({ protocol: 'grpc' }, 'cannot raise HTTP/2 flow-control windows on this grpc-js version; using the 64 KiB defaults');
    return false;
  }
  for (const http2Server of internals.keys() as IterableIterator<Http2Server>) {
    http2Server.on('session', (session: ServerHttp2Session) => {
      try {
        session.setLocalWindowSize(window);
        session.settings({ initialWindowSize: window });
      } catch {
        // A session that closed at once; nothing to tune.
      }
    });
  }
  return true;
}
