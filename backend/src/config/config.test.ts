import { describe, expect, it } from 'vitest';
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
