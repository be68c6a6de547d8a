import { describe, expect, it } from 'vitest';
import { encodeRpcStatus } from '@conduct/proto';
import { resolveForwardTarget } from './config.js';
import { backoffMs } from './downstream.js';
import { grpcTarget, retryDelayFromStatusDetails } from './grpc-transport.js';
import { tracesUrl } from './http-transport.js';
import { JsonConversionError, tracesJsonToProtobuf } from './json-to-protobuf.js';
import { parseRetryAfter } from './transport.js';

const retry = { initialIntervalMs: 100, maxIntervalMs: 1_000, maxRetryAfterMs: 5_000 };

describe('backoffMs', () => {
  it('grows exponentially up to the cap, jittered within the upper half', () => {
    expect(backoffMs(0, undefined, retry, () => 0)).toBe(50);
    expect(backoffMs(0, undefined, retry, () => 1)).toBe(100);
    expect(backoffMs(3, undefined, retry, () => 1)).toBe(800);
    expect(backoffMs(10, undefined, retry, () => 1)).toBe(1_000);
    expect(backoffMs(10, undefined, retry, () => 0)).toBe(500);
  });

  it("takes the downstream's figure, capped", () => {
    expect(backoffMs(5, 250, retry)).toBe(250);
    expect(backoffMs(0, 60_000, retry)).toBe(5_000);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, ignores junk', () => {
    expect(parseRetryAfter('3')).toBe(3_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('retryDelayFromStatusDetails', () => {
  it('reads RetryInfo from a google.rpc.Status', () => {
    expect(retryDelayFromStatusDetails(Buffer.from(encodeRpcStatus({ code: 14, message: 'x', retryDelayMs: 2_500 })))).toBe(2_500);
  });

  it('is undefined without RetryInfo or for garbage', () => {
    expect(retryDelayFromStatusDetails(Buffer.from(encodeRpcStatus({ code: 14, message: 'x' })))).toBeUndefined();
    expect(retryDelayFromStatusDetails(Buffer.from([0xff, 0xff, 0xff]))).toBeUndefined();
    expect(retryDelayFromStatusDetails(Buffer.from([0x1a, 0x7f, 0x01]))).toBeUndefined();
  });
});

describe('endpoints', () => {
  it('appends /v1/traces to an HTTP base URL once', () => {
    expect(tracesUrl('http://collector:4318').href).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl('collector:4318/').href).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl('https://x.example/otlp/v1/traces').href).toBe('https://x.example/otlp/v1/traces');
  });

  it('reads a gRPC endpoint with or without a scheme', () => {
    expect(grpcTarget('collector:4317', undefined, false)).toEqual({ address: 'collector:4317', secure: false });
    expect(grpcTarget('https://collector:4317', undefined, false)).toEqual({ address: 'collector:4317', secure: true });
    expect(grpcTarget('collector:4317', false, true)).toEqual({ address: 'collector:4317', secure: true });
    expect(grpcTarget('collector:4317', true, true)).toEqual({ address: 'collector:4317', secure: false });
  });

  it('applies defaults and names bad keys', () => {
    const t = resolveForwardTarget({ endpoint: 'c:4317' }, 0);
    expect(t).toMatchObject({ protocol: 'grpc', queueSize: 1000, timeoutMs: 10_000, spoolPath: undefined });
    expect(() => resolveForwardTarget({ endpoint: 'c:4317', headers: { 'bad header': 'x' } }, 2)).toThrow(/forward\[2\]\.headers/);
  });
});

describe('tracesJsonToProtobuf on hostile input', () => {
  it('refuses what is not an OTLP request', () => {
    expect(() => tracesJsonToProtobuf('nope')).toThrow(JsonConversionError);
    expect(() => tracesJsonToProtobuf('[1]')).toThrow(JsonConversionError);
    expect(() => tracesJsonToProtobuf('{"resourceSpans":{}}')).toThrow(JsonConversionError);
    expect(() => tracesJsonToProtobuf('{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"1e9"}]}]}]}')).toThrow(
      JsonConversionError,
    );
  });

  it('refuses values nested too deeply instead of overflowing the stack', () => {
    let value = '{"stringValue":"x"}';
    for (let i = 0; i < 200; i++) value = `{"arrayValue":{"values":[${value}]}}`;
    const body = `{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":${value}}]}}]}`;
    expect(() => tracesJsonToProtobuf(body)).toThrow(/nested too deeply/);
  });

  it('an empty request is an empty message; unknown fields are ignored', () => {
    expect(tracesJsonToProtobuf('{}').length).toBe(0);
    expect(tracesJsonToProtobuf('{"future":1,"resourceSpans":[]}').length).toBe(0);
  });
});
