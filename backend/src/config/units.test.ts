import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './index.js';
import { z } from 'zod';
import { durationFromConfig, sizeFromConfig } from './duration.js';
import { configSchema, durationSchema, sizeSchema } from './schema.js';

/** Keys (dotted, list items as 0) whose schema is `target`, found by walking the config schema. */
function keysUsing(target: z.ZodTypeAny): string[] {
  const found: string[] = [];
  const walk = (node: z.ZodTypeAny, path: string[]): void => {
    if (node === target) {
      found.push(path.join('.'));
      return;
    }
    if (node instanceof z.ZodObject) for (const [k, v] of Object.entries(node.shape as Record<string, z.ZodTypeAny>)) walk(v, [...path, k]);
    else if (node instanceof z.ZodDefault) walk(node._def.innerType, path);
    else if (node instanceof z.ZodOptional) walk(node._def.innerType, path);
    else if (node instanceof z.ZodEffects) walk(node._def.schema, path);
    else if (node instanceof z.ZodArray) walk(node.element, [...path, '0']);
    else if (node instanceof z.ZodUnion) for (const o of node.options as z.ZodTypeAny[]) walk(o, path);
    else if (node instanceof z.ZodDiscriminatedUnion) for (const o of node.options as z.ZodTypeAny[]) walk(o, path);
  };
  walk(configSchema, []);
  // A key the options of a union share (every sink's `timeout`) is one key.
  return [...new Set(found)].sort();
}

/** Sets `value` at a dotted key path (`forward.0.retry.maxElapsed`) in a fresh config object. */
function configWith(key: string, value: unknown): Record<string, unknown> {
  const base: Record<string, unknown> = {
    alerts: { sinks: [{ type: 'webhook', endpoint: 'http://127.0.0.1:9/hook' }] },
    forward: [{ endpoint: '127.0.0.1:4317', retry: {} }],
  };
  const parts = key.split('.');
  let at = base as Record<string, unknown>;
  for (const part of parts.slice(0, -1)) {
    at[part] ??= {};
    at = at[part] as Record<string, unknown>;
  }
  at[parts.at(-1)!] = value;
  return base;
}

/** Every key of the schema that holds a duration, and every one that holds a size. */
const DURATION_KEYS = [
  'storage.retention',
  'storage.alertRetention',
  'cluster.leaseTimeout',
  'stitching.idle',
  'stitching.lateness',
  'stitching.lateTraceWindow',
  'receivers.k8sAudit.chainWindow',
  'learning.period',
  'learning.forgetAfter',
  'detection.releaseGrace',
  'alerts.sinks.0.timeout',
  'alerts.sinks.0.backoff',
  'alerts.deliveryRetention',
  'forward.0.timeout',
  'forward.0.drainTimeout',
  'forward.0.retry.initialInterval',
  'forward.0.retry.maxInterval',
  'forward.0.retry.maxElapsed',
  'forward.0.retry.maxRetryAfter',
];
const SIZE_KEYS = [
  'receivers.grpc.maxRequestBytes',
  'receivers.http.maxRequestBytes',
  'receivers.k8sAudit.maxRequestBytes',
  'limits.maxMemoryBytes',
  'forward.0.spoolMaxBytes',
  'forward.0.queueMaxBytes',
  'forward.0.spoolSegmentBytes',
];

describe('durations and sizes need their units', () => {
  it('the lists below hold every duration and size key of the schema', () => {
    expect([...DURATION_KEYS].sort()).toEqual(keysUsing(durationSchema));
    expect([...SIZE_KEYS].sort()).toEqual(keysUsing(sizeSchema));
  });

  it('refuses a bare number for every duration key, naming the key', () => {
    for (const key of DURATION_KEYS) {
      for (const bare of [5, '5', 7.5]) {
        const attempt = () => parseConfig(configWith(key, bare), 'conduct.yaml');
        expect(attempt, `${key}: ${bare}`).toThrow(ConfigError);
        expect(attempt, `${key}: ${bare}`).toThrow(new RegExp(`${key.replace(/\./g, '\\.')}: ${bare} has no unit`));
      }
      expect(() => parseConfig(configWith(key, '5s')), key).not.toThrow();
    }
  });

  it('refuses a bare number for every size key, naming the key', () => {
    for (const key of SIZE_KEYS) {
      for (const bare of [1048576, '1048576']) {
        expect(() => parseConfig(configWith(key, bare)), `${key}: ${bare}`).toThrow(new RegExp(`${key.replace(/\./g, '\\.')}: 1048576 has no unit`));
      }
      expect(() => parseConfig(configWith(key, '1048576B')), key).not.toThrow();
    }
  });

  it('reads units into milliseconds and bytes, and takes 0 alone without one', () => {
    const c = parseConfig({ stitching: { idle: '5s', lateness: '1m30s' }, storage: { retention: '7d' }, limits: { maxMemoryBytes: 0 }, learning: { period: '0' } });
    expect(c.stitching.idle).toBe(5_000);
    expect(c.stitching.lateness).toBe(90_000);
    expect(c.storage.retention).toBe(7 * 86_400_000);
    expect(c.limits.maxMemoryBytes).toBe(0);
    expect(c.learning.period).toBe(0);
    expect(parseConfig({ receivers: { http: { maxRequestBytes: '64MiB' } } }).receivers.http.maxRequestBytes).toBe(64 * 1024 * 1024);
    expect(parseConfig({ receivers: { http: { maxRequestBytes: '512KB' } } }).receivers.http.maxRequestBytes).toBe(512_000);
    expect(durationFromConfig('5 s')).toMatchObject({ ok: false });
    expect(durationFromConfig('5parsecs')).toMatchObject({ ok: false });
    expect(sizeFromConfig('5 MiB')).toEqual({ ok: true, value: 5 * 1024 * 1024 });
    expect(sizeFromConfig('5 furlongs')).toMatchObject({ ok: false });
  });
});

describe('endpoints', () => {
  it('refuses a port above 65535, naming the key', () => {
    expect(() => parseConfig({ api: { endpoint: '127.0.0.1:99999' } })).toThrow(/api\.endpoint: the port must be from 0 to 65535/);
    expect(() => parseConfig({ receivers: { grpc: { endpoint: '127.0.0.1:65536' } } })).toThrow(/receivers\.grpc\.endpoint/);
    expect(parseConfig({ api: { endpoint: '[::1]:65535' } }).api.endpoint).toBe('[::1]:65535');
  });
});
