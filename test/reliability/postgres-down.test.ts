/**
 * PostgreSQL goes away in the middle of a stream of real OTLP (the official exporter) and comes
 * back: while it is down, conduct answers new requests retryable (HTTP 503 with Retry-After) and
 * holds what it acknowledged; once it is back it stores all of it by itself, each chain once.
 */
import { SpanKind } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedPostgres } from '@conduct/backend';
import { startTestConduct, type TestConduct } from '../support/conduct.js';
import { exporterFor, TestService } from '../support/otel.js';
import { stopTestPostgres, testPostgres } from '../support/postgres.js';

const T0 = Date.UTC(2026, 11, 6, 9, 0, 0);
const IDENTITY = 'svc:jobs/worker';

/** Passes spans to the official exporter and remembers which traces it acknowledged. */
class AckingExporter implements SpanExporter {
  readonly acked = new Set<string>();
  readonly failed = new Set<string>();
  constructor(private readonly inner: SpanExporter) {}
  export(spans: ReadableSpan[], done: (result: { code: ExportResultCode; error?: Error }) => void): void {
    this.inner.export(spans, (result) => {
      for (const s of spans) (result.code === ExportResultCode.SUCCESS ? this.acked : this.failed).add(s.spanContext().traceId);
      done(result);
    });
  }
  shutdown = () => this.inner.shutdown();
  forceFlush = () => this.inner.forceFlush?.() ?? Promise.resolve();
}

async function metric(conduct: TestConduct, name: string): Promise<number> {
  const text = await (await fetch(`${conduct.api}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('PostgreSQL down in the middle of a stream', () => {
  let server: EmbeddedPostgres;
  let conduct: TestConduct;
  beforeAll(async () => {
    server = await testPostgres();
    conduct = await startTestConduct({ storage: { postgres: { url: await server.createDatabase() } } });
  });
  afterAll(async () => {
    await conduct?.dispose();
    await stopTestPostgres();
  });

  it('refuses retryably while down, loses nothing it acknowledged, and recovers by itself', async () => {
    const exporter = new AckingExporter(exporterFor('http-proto', conduct, undefined, { timeoutMillis: 4_000 }));
    const worker = new TestService({ 'service.name': 'worker', 'service.namespace': 'jobs' }, exporter);
    let n = 0;
    /** One trace: the worker's call to an external API; resolves once the exporter has answered. */
    const send = async () => {
      const at = T0 + n++ * 100;
      const span = worker.start('GET', {
        kind: SpanKind.CLIENT,
        startMs: at,
        attributes: { 'http.request.method': 'GET', 'url.full': `https://api.example.com/v1/items/${n}` },
      });
      span.end(at + 5);
      // A refused export rejects the flush: the exporter's answer is what AckingExporter noted.
      await worker.flush().catch(() => undefined);
      return span.spanContext().traceId;
    };

    for (let i = 0; i < 20; i++) await send();
    expect(exporter.acked.size).toBe(20);

    await server.stop();
    // Acknowledged traces keep arriving until a store write finds the database gone; then the
    // gate shuts and the senders are told to come back later.
    let sentWhileDown = 0;
    while ((await metric(conduct, 'conduct_ingest_storage_refused_total')) === 0) {
      if (++sentWhileDown > 200) throw new Error('conduct never refused while PostgreSQL was down');
      await send();
    }
    // What a sender sees meanwhile: 503 with Retry-After.
    const span = { traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), name: 'GET', kind: 3, startTimeUnixNano: String(BigInt(T0) * 1_000_000n), endTimeUnixNano: String(BigInt(T0 + 5) * 1_000_000n) };
    const raw = await fetch(`${conduct.http}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans: [span] }] }] }),
    });
    expect(raw.status).toBe(503);
    expect(Number(raw.headers.get('retry-after'))).toBeGreaterThan(0);
    const ackedBeforeRestart = new Set(exporter.acked);
    // Acknowledged requests whose traces are not stored yet, held in the journal meanwhile.
    expect(await metric(conduct, 'conduct_journal_entries')).toBeGreaterThan(0);

    await server.start();
    for (let i = 0; i < 20; i++) await send();
    await conduct.flush();
    await worker.shutdown().catch(() => undefined);

    // Every acknowledged trace is stored, each with exactly one chain of one call.
    expect(ackedBeforeRestart.size).toBeGreaterThanOrEqual(20);
    expect(exporter.acked.size).toBeGreaterThanOrEqual(ackedBeforeRestart.size + 20);
    for (const traceId of exporter.acked) {
      const res = await conduct.get<{ chains: Array<{ identity: string; calls: unknown[] }> }>(`/api/v1/traces/${traceId}`);
      expect(res.status, traceId).toBe(200);
      expect(res.body.chains.map((c) => [c.identity, c.calls.length])).toEqual([[IDENTITY, 1]]);
    }
    // No chain twice: the identity's total is at most what was sent, and at least what was acknowledged.
    const identity = await conduct.get<{ chains: number }>(`/api/v1/identities/${encodeURIComponent(IDENTITY)}`);
    expect(identity.body.chains).toBeGreaterThanOrEqual(exporter.acked.size);
    expect(identity.body.chains).toBeLessThanOrEqual(n);
    expect(await metric(conduct, 'conduct_journal_entries')).toBe(0);
  });
});
