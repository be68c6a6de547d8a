import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { ResolvedForwardTarget } from './config.js';
import type { SendOutcome, Transport, WirePayload } from './transport.js';

export const TRACE_EXPORT_METHOD = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';
/** grpc-js channel option value for gzip message compression. */
const GRPC_COMPRESSION_GZIP = 2;

/**
 * Codes worth another attempt, as the OTLP specification lists them. RESOURCE_EXHAUSTED only
 * counts when the server sent RetryInfo (it is otherwise a permanent quota refusal).
 */
const RETRYABLE = new Set<number>([
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.ABORTED,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

/** Reads protobuf fields of one message: calls `onField` with the number, wire type and value. */
function scanFields(buf: Buffer, onField: (field: number, wire: number, value: Buffer | bigint) => void): boolean {
  let pos = 0;
  const varint = (): bigint | undefined => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= buf.length) return undefined;
      const byte = buf[pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
    return undefined;
  };
  while (pos < buf.length) {
    const key = varint();
    if (key === undefined) return false;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const v = varint();
      if (v === undefined) return false;
      onField(field, wire, v);
    } else if (wire === 2) {
      const len = varint();
      if (len === undefined || BigInt(pos) + len > BigInt(buf.length)) return false;
      onField(field, wire, buf.subarray(pos, pos + Number(len)));
      pos += Number(len);
    } else if (wire === 1) {
      if (pos + 8 > buf.length) return false;
      pos += 8;
    } else if (wire === 5) {
      if (pos + 4 > buf.length) return false;
      pos += 4;
    } else {
      return false;
    }
  }
  return true;
}

/**
 * The retry delay from a `grpc-status-details-bin` trailer (a `google.rpc.Status` whose details
 * hold a `google.rpc.RetryInfo`), in ms; undefined when there is none or it cannot be read.
 */
export function retryDelayFromStatusDetails(details: Buffer): number | undefined {
  let delay: number | undefined;
  scanFields(details, (field, wire, value) => {
    if (field !== 3 || wire !== 2 || !Buffer.isBuffer(value)) return; // Status.details (Any)
    let typeUrl = '';
    let inner: Buffer | undefined;
    scanFields(value, (f, w, v) => {
      if (f === 1 && w === 2 && Buffer.isBuffer(v)) typeUrl = v.toString('utf8');
      if (f === 2 && w === 2 && Buffer.isBuffer(v)) inner = v;
    });
    if (typeUrl !== RETRY_INFO_TYPE || !inner) return;
    scanFields(inner, (f, w, v) => {
      if (f !== 1 || w !== 2 || !Buffer.isBuffer(v)) return; // RetryInfo.retry_delay (Duration)
      let seconds = 0n;
      let nanos = 0n;
      scanFields(v, (df, dw, dv) => {
        if (df === 1 && dw === 0 && typeof dv === 'bigint') seconds = BigInt.asIntN(64, dv);
        if (df === 2 && dw === 0 && typeof dv === 'bigint') nanos = BigInt.asIntN(32, dv);
      });
      if (seconds >= 0n && nanos >= 0n && seconds < 10n ** 9n) delay = Number(seconds) * 1000 + Number(nanos) / 1e6;
    });
  });
  return delay;
}

/** Splits a gRPC endpoint into the channel target and whether TLS is used. */
export function grpcTarget(endpoint: string, insecure: boolean | undefined, hasTls: boolean): { address: string; secure: boolean } {
  const m = /^(https?):\/\/([^/]+)\/?$/i.exec(endpoint);
  if (m) return { address: m[2]!, secure: m[1]!.toLowerCase() === 'https' && !insecure };
  return { address: endpoint, secure: hasTls && !insecure };
}

const passThrough = (b: Buffer): Buffer => b;

/** OTLP/gRPC `TraceService/Export` with identity serialisers: the bytes go on the wire unchanged. */
export function createGrpcTransport(target: ResolvedForwardTarget): Transport {
  const tls = target.tls;
  const hasTlsFiles = Boolean(tls?.ca || tls?.cert || tls?.key);
  const { address, secure } = grpcTarget(target.endpoint, tls?.insecure, hasTlsFiles || (tls !== undefined && !tls.insecure));
  const credentials = secure
    ? grpc.credentials.createSsl(
        tls?.ca ? fs.readFileSync(tls.ca) : null,
        tls?.key ? fs.readFileSync(tls.key) : null,
        tls?.cert ? fs.readFileSync(tls.cert) : null,
      )
    : grpc.credentials.createInsecure();
  const options: grpc.ChannelOptions = {};
  if (target.compression === 'gzip') options['grpc.default_compression_algorithm'] = GRPC_COMPRESSION_GZIP;
  const client = new grpc.Client(address, credentials, options);
  const baseMetadata = new grpc.Metadata();
  for (const [name, value] of Object.entries(target.headers)) {
    try {
      baseMetadata.set(name.toLowerCase(), value);
    } catch {
      client.close();
      throw new Error(`forward endpoint ${target.endpoint}: header ${name} cannot be sent as gRPC metadata`);
    }
  }

  function send(payload: WirePayload, signal: AbortSignal): Promise<SendOutcome> {
    return new Promise<SendOutcome>((resolve) => {
      const metadata = baseMetadata.clone();
      let settled = false;
      const onAbort = () => call.cancel();
      const call = client.makeUnaryRequest<Buffer, Buffer>(
        TRACE_EXPORT_METHOD,
        passThrough,
        passThrough,
        payload.bytes,
        metadata,
        { deadline: Date.now() + target.timeoutMs },
        (err) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          if (!err) return resolve({ kind: 'ok' });
          const reason = `grpc-${grpc.status[err.code] ?? err.code}`;
          const details = err.metadata?.get('grpc-status-details-bin')[0];
          const retryAfterMs = Buffer.isBuffer(details) ? retryDelayFromStatusDetails(details) : undefined;
          if (RETRYABLE.has(err.code) || (err.code === grpc.status.RESOURCE_EXHAUSTED && retryAfterMs !== undefined)) {
            return resolve({ kind: 'retry', reason, retryAfterMs });
          }
          resolve({ kind: 'permanent', reason });
        },
      );
      if (signal.aborted) call.cancel();
      else signal.addEventListener('abort', onAbort);
    });
  }

  let closed = false;
  return {
    send,
    close() {
      if (closed) return;
      closed = true;
      client.close();
    },
  };
}
