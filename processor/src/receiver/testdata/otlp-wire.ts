/**
 * Test-only helpers: a minimal protobuf writer to build OTLP requests byte by byte (including
 * malformed ones), a reader for the answers, and small raw HTTP / gRPC clients.
 * Written independently of @conduct/proto so the tests check the receivers against the wire
 * format itself, not against the code under test.
 */
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';

// ---- writing ---------------------------------------------------------------------------------

export function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}

export const tag = (field: number, wireType: number): Buffer => varint((field << 3) | wireType);
export const lenField = (field: number, payload: Buffer | string): Buffer => {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([tag(field, 2), varint(bytes.length), bytes]);
};
export const varintField = (field: number, value: number | bigint): Buffer => Buffer.concat([tag(field, 0), varint(value)]);
export const fixed64Field = (field: number, value: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(value);
  return Buffer.concat([tag(field, 1), b]);
};

/** A KeyValue with a string AnyValue, as field `field` of its parent. */
export const keyValue = (field: number, key: string, value: string): Buffer =>
  lenField(field, Buffer.concat([lenField(1, key), lenField(2, lenField(1, value))]));

export interface TestSpan {
  traceId: string;
  spanId: string;
  name: string;
  attributes?: Record<string, string>;
}

/** An ExportTraceServiceRequest with one resource (service.name) and the given spans. */
export function traceRequest(service: string, spans: TestSpan[]): Buffer {
  const encodedSpans = spans.map((s) =>
    lenField(
      2,
      Buffer.concat([
        lenField(1, Buffer.from(s.traceId, 'hex')),
        lenField(2, Buffer.from(s.spanId, 'hex')),
        lenField(5, s.name),
        varintField(6, 2),
        fixed64Field(7, 1_700_000_000_000_000_000n),
        fixed64Field(8, 1_700_000_000_250_000_000n),
        ...Object.entries(s.attributes ?? {}).map(([k, v]) => keyValue(9, k, v)),
      ]),
    ),
  );
  const resource = lenField(1, keyValue(1, 'service.name', service));
  return lenField(1, Buffer.concat([resource, lenField(2, Buffer.concat(encodedSpans))]));
}

/** The same request in OTLP/JSON (lower-case hex ids). */
export function traceRequestJson(service: string, spans: TestSpan[]): string {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [
          {
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              name: s.name,
              kind: 2,
              startTimeUnixNano: '1700000000000000000',
              endTimeUnixNano: '1700000000250000000',
              attributes: Object.entries(s.attributes ?? {}).map(([key, v]) => ({ key, value: { stringValue: v } })),
            })),
          },
        ],
      },
    ],
  });
}

// ---- reading ---------------------------------------------------------------------------------

/** Reads a message into field number -> list of raw values (varints as bigint, LEN as Buffer). */
export function readFields(buf: Uint8Array): Map<number, Array<bigint | Buffer>> {
  const fields = new Map<number, Array<bigint | Buffer>>();
  const bytes = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = bytes[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < bytes.length) {
    const key = Number(readVarint());
    const field = key >> 3;
    const wire = key & 7;
    let value: bigint | Buffer;
    if (wire === 0) value = readVarint();
    else if (wire === 2) {
      const len = Number(readVarint());
      value = bytes.subarray(pos, pos + len);
      pos += len;
    } else if (wire === 1) {
      value = bytes.readBigUInt64LE(pos);
      pos += 8;
    } else if (wire === 5) {
      value = BigInt(bytes.readUInt32LE(pos));
      pos += 4;
    } else throw new Error(`unexpected wire type ${wire}`);
    fields.set(field, [...(fields.get(field) ?? []), value]);
  }
  return fields;
}

export interface DecodedStatus {
  code: number;
  message: string;
  /** From a google.rpc.RetryInfo detail, when present. */
  retryDelayMs?: number;
}

/** Decodes a google.rpc.Status, including a RetryInfo detail. */
export function readRpcStatus(buf: Uint8Array): DecodedStatus {
  const f = readFields(buf);
  const status: DecodedStatus = {
    code: Number((f.get(1)?.[0] as bigint | undefined) ?? 0n),
    message: ((f.get(2)?.[0] as Buffer | undefined) ?? Buffer.alloc(0)).toString('utf8'),
  };
  for (const any of (f.get(3) ?? []) as Buffer[]) {
    const a = readFields(any);
    const typeUrl = (a.get(1)?.[0] as Buffer).toString('utf8');
    if (typeUrl.endsWith('google.rpc.RetryInfo')) {
      const retry = readFields(a.get(2)?.[0] as Buffer);
      const duration = readFields((retry.get(1)?.[0] as Buffer | undefined) ?? Buffer.alloc(0));
      const seconds = Number((duration.get(1)?.[0] as bigint | undefined) ?? 0n);
      const nanos = Number((duration.get(2)?.[0] as bigint | undefined) ?? 0n);
      status.retryDelayMs = seconds * 1000 + nanos / 1e6;
    }
  }
  return status;
}

/** Decodes an ExportTraceServiceResponse's partial_success. */
export function readExportResponse(buf: Uint8Array): { rejectedSpans: number; errorMessage: string } {
  const partial = readFields(buf).get(1)?.[0] as Buffer | undefined;
  if (!partial) return { rejectedSpans: 0, errorMessage: '' };
  const p = readFields(partial);
  return {
    rejectedSpans: Number((p.get(1)?.[0] as bigint | undefined) ?? 0n),
    errorMessage: ((p.get(2)?.[0] as Buffer | undefined) ?? Buffer.alloc(0)).toString('utf8'),
  };
}

// ---- raw clients -----------------------------------------------------------------------------

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP request over node:http (a fresh connection unless an agent is given). */
export function rawHttp(
  endpoint: string,
  options: { method?: string; path?: string; headers?: Record<string, string | number>; body?: Buffer | string; agent?: http.Agent },
): Promise<RawResponse> {
  const [host, port] = [endpoint.slice(0, endpoint.lastIndexOf(':')), Number(endpoint.slice(endpoint.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, method: options.method ?? 'POST', path: options.path ?? '/v1/traces', headers: options.headers, agent: options.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface GrpcAnswer {
  error?: grpc.ServiceError;
  response?: Buffer;
}

/** One raw unary call to TraceService/Export with bytes in and bytes out. */
export function rawExport(client: grpc.Client, body: Buffer, metadata = new grpc.Metadata(), options: grpc.CallOptions = {}): Promise<GrpcAnswer> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      metadata,
      options,
      (error, response) => resolve(error ? { error } : { response: response ?? Buffer.alloc(0) }),
    );
  });
}

/** Random lower-case hex of `bytes` bytes. */
export function hexId(bytes: number): string {
  return Buffer.from(Array.from({ length: bytes }, () => Math.floor(Math.random() * 256))).toString('hex');
}
