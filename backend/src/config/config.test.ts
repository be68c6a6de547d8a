import { describe, expect, it } from 'vitest';
import { DEFAULT_IDLE_MS, DEFAULT_LATE_TRACE_WINDOW_MS, DEFAULT_LATENESS_MS, DEFAULT_MAX_PENDING_SPANS } from '@conduct/processor';
import { DEFAULT_HUMANS_MODE } from '../detect/humans.js';
import { DEFAULT_RELEASE_GRACE_MS } from '../detect/release.js';
import { DEFAULT_CARDINALITY_LIMITS, DEFAULT_LEARNING } from '../detect/limits.js';
import { parseConfig } from './index.js';

describe('tls configuration', () => {
  it('mutual TLS needs a CA of its own, for the API and for each receiver, and the error names the key', () => {
    const pem = { cert: '/etc/conduct/server.pem', key: '/etc/conduct/server.key' };
    expect(() => parseConfig({ api: { tls: { ...pem, clientAuth: true } } })).toThrow(/api\.tls\.ca: is required when clientAuth is true/);
    expect(() => parseConfig({ receivers: { grpc: { tls: { ...pem, clientAuth: true } } } })).toThrow(/receivers\.grpc\.tls\.ca/);
    expect(() => parseConfig({ receivers: { http: { tls: { ...pem, clientAuth: true } } } })).toThrow(/receivers\.http\.tls\.ca/);

    const ok = parseConfig({ api: { tls: { ...pem, ca: '/etc/conduct/ca.pem', clientAuth: true } }, receivers: { http: { tls: pem } } });
    expect(ok.api.tls).toEqual({ ...pem, ca: '/etc/conduct/ca.pem', clientAuth: true });
    expect(ok.receivers.http.tls).toEqual({ ...pem, clientAuth: false });
  });
});

describe('storage configuration', () => {
  it('stays on SQLite without storage settings, takes a PostgreSQL URL, and names the key of a bad one', () => {
    expect(parseConfig({}).storage.postgres).toBeUndefined();
    const url = 'postgres://conduct:secret@db:5432/conduct';
    expect(parseConfig({ storage: { postgres: { url } } }).storage.postgres).toEqual({ url });
    expect(() => parseConfig({ storage: { postgres: { url: 'mysql://db/conduct' } } })).toThrow(/storage\.postgres\.url: must be a postgres/);
    expect(() => parseConfig({ storage: { postgres: {} } })).toThrow(/storage\.postgres\.url/);
  });
});

describe('alert sink entries (each sink type owns its piece of the schema)', () => {
  const sinks = (...entries: unknown[]) => parseConfig({ alerts: { sinks: entries } });

  it('names the key of a required field a sink type lacks, under its index', () => {
    expect(() => sinks({ type: 'webhook' })).toThrow(/alerts\.sinks\.0\.endpoint: Required/);
    expect(() => sinks({ type: 'jsonl' }, { type: 'otlp-logs' })).toThrow(/alerts\.sinks\.1\.endpoint: Required/);
    expect(() => sinks({ type: 'webhook', endpoint: 'ftp://hooks.example/x' })).toThrow(/alerts\.sinks\.0\.endpoint: must be an http:\/\/ or https:\/\/ URL/);
  });

  it('refuses an unknown type, naming the types there are', () => {
    expect(() => sinks({ type: 'pager', endpoint: 'http://x' })).toThrow(/alerts\.sinks\.0\.type: .*'otlp-logs' \| 'finding-span' \| 'webhook' \| 'ocsf' \| 'jsonl'/);
    expect(() => sinks({ endpoint: 'http://x' })).toThrow(/alerts\.sinks\.0\.type/);
  });

  it("refuses a field of another sink type by name (a webhook's secret on an OTLP sink, via on a webhook)", () => {
    expect(() => sinks({ type: 'otlp-logs', endpoint: '127.0.0.1:4317', secret: 's3cret' })).toThrow(/unknown key "alerts\.sinks\.0\.secret"/);
    expect(() => sinks({ type: 'webhook', endpoint: 'http://x', via: 'forward' })).toThrow(/unknown key "alerts\.sinks\.0\.via"/);
    expect(() => sinks({ type: 'webhook', endpoint: 'http://x', format: 'teams' })).toThrow(/alerts\.sinks\.0\.format/);
  });

  it('keeps each type its own fields, durations in ms', () => {
    const c = sinks(
      { type: 'webhook', endpoint: 'https://hooks.example/conduct', format: 'slack', secret: 's', timeout: '2s', minSeverity: 'high' },
      { type: 'finding-span', via: 'forward' },
      { type: 'ocsf', path: '-' },
    );
    expect(c.alerts.sinks[0]).toEqual({ type: 'webhook', endpoint: 'https://hooks.example/conduct', format: 'slack', secret: 's', timeout: 2000, minSeverity: 'high' });
    expect(c.alerts.sinks[1]).toEqual({ type: 'finding-span', via: 'forward' });
    expect(c.alerts.sinks[2]).toEqual({ type: 'ocsf', path: '-' });
  });
});

describe('defaults owned by their components', () => {
  it('stitching, learning and limits take the stitcher and detection defaults', () => {
    const c = parseConfig({});
    expect(c.stitching).toEqual({
      idle: DEFAULT_IDLE_MS,
      lateness: DEFAULT_LATENESS_MS,
      maxPendingSpans: DEFAULT_MAX_PENDING_SPANS,
      lateTraceWindow: DEFAULT_LATE_TRACE_WINDOW_MS,
    });
    expect(c.learning).toEqual(DEFAULT_LEARNING);
    expect(c.limits).toMatchObject(DEFAULT_CARDINALITY_LIMITS);
    expect(c.detection.humans).toBe(DEFAULT_HUMANS_MODE);
    expect(c.detection.releaseGrace).toBe(DEFAULT_RELEASE_GRACE_MS);
  });

  it('names the key of a bad policy entry', () => {
    expect(() => parseConfig({ policies: [{ match: 'svc-*', expectedPeer: ['x'] }] })).toThrow(/unknown key "policies\.0\.expectedPeer"/);
    expect(() => parseConfig({ policies: [{ purpose: 'x' }] })).toThrow(/policies\.0\.match: Required/);
  });
});
