import { describe, expect, it } from 'vitest';
import { loggableTarget } from './redact.js';

describe('loggableTarget', () => {
  it('keeps only scheme, host and port of a URL', () => {
    expect(loggableTarget('https://hooks.slack.com/services/T000/B000/XXXXSECRET')).toBe('https://hooks.slack.com/…');
    expect(loggableTarget('https://siem.example:8088/hook?key=SECRET')).toBe('https://siem.example:8088/…');
    expect(loggableTarget('http://user:SECRET@alertmanager:9093/api/v2/alerts')).toBe('http://alertmanager:9093/…');
    expect(loggableTarget('http://collector:4318')).toBe('http://collector:4318');
  });

  it('keeps gRPC targets and file paths, without user info', () => {
    expect(loggableTarget('otel-collector:4317')).toBe('otel-collector:4317');
    expect(loggableTarget('token:SECRET@collector:4317')).toBe('collector:4317');
    expect(loggableTarget('/var/log/conduct/alerts.jsonl')).toBe('/var/log/conduct/alerts.jsonl');
    expect(loggableTarget(undefined)).toBeUndefined();
  });

  it('never echoes an unparsable URL', () => {
    expect(loggableTarget('http://[bad SECRET')).toBe('(unparsable URL)');
  });
});

describe('delivery errors', () => {
  it('name the webhook without the secret parts of its URL', async () => {
    const { postHttp } = await import('./transport.js');
    const err = await postHttp(
      { url: 'http://127.0.0.1:9/services/PATH-SECRET?key=QUERY-SECRET', body: '{}', headers: {}, timeoutMs: 2000 },
      new AbortController().signal,
    ).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain('http://127.0.0.1:9/…');
    expect(err!.message).not.toMatch(/SECRET/);
  });
});
