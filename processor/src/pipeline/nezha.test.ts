import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { SpanKind, StatusCode, type Attributes, type SpanData, type TracesRequestData } from '@conduct/proto';
import { createPipeline, createCollectingConsumer } from './index.js';

/**
 * Real traces of the TrainTicket and OnlineBoutique benchmarks (Nezha data set, see
 * test/data/README.md), converted to OTLP in the test. Every span is given kind SERVER, as
 * the CSV has no kinds. The service-to-service edges conduct derives must equal the cross-service
 * parent/child pairs counted from the CSV itself.
 */
const DATA = fileURLToPath(new URL('../../../test/data/nezha-traces/', import.meta.url));

interface Row {
  traceId: string;
  spanId: string;
  parentId: string;
  service: string;
  operation: string;
  startMs: number;
  endMs: number;
}

/** The first `limit` data rows of a Nezha trace CSV (operation names may contain commas). */
function readRows(file: string, limit: number): Row[] {
  const lines = readFileSync(DATA + file, 'utf8').split('\n').slice(1, limit + 1);
  return lines
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const f = line.split(',');
      const [traceId, spanId, parentId, pod] = f as [string, string, string, string];
      const [start, end] = f.slice(-3, -1) as [string, string];
      return {
        traceId,
        spanId,
        parentId: parentId === 'root' ? '' : parentId,
        // The pod name is <service>-<replica set hash>-<pod id>.
        service: pod.replace(/-[a-z0-9]+-[a-z0-9]+$/, ''),
        operation: f.slice(4, -3).join(','),
        startMs: nanosToMs(start),
        endMs: nanosToMs(end),
      };
    });
}

function nanosToMs(ns: string): number {
  return Number(ns.slice(0, -6)) + Number(ns.slice(-6)) / 1e6;
}

/** Requests of `perRequest` spans each, grouped by service, in the given row order. */
function toRequests(rows: Row[], perRequest: number): TracesRequestData[] {
  const resources = new Map<string, Attributes>();
  const resourceOf = (service: string) => {
    let r = resources.get(service);
    if (!r) resources.set(service, (r = Object.assign(Object.create(null) as Attributes, { 'service.name': service })));
    return r;
  };
  const requests: TracesRequestData[] = [];
  for (let i = 0; i < rows.length; i += perRequest) {
    const byService = new Map<string, SpanData[]>();
    const chunk = rows.slice(i, i + perRequest);
    for (const row of chunk) {
      let spans = byService.get(row.service);
      if (!spans) byService.set(row.service, (spans = []));
      spans.push({
        traceId: row.traceId,
        spanId: row.spanId,
        parentSpanId: row.parentId,
        name: row.operation,
        kind: SpanKind.SERVER,
        startMs: row.startMs,
        endMs: row.endMs,
        statusCode: StatusCode.UNSET,
        attributes: Object.create(null) as Attributes,
      });
    }
    requests.push({
      resourceSpans: [...byService].map(([service, spans]) => ({ resource: resourceOf(service), spans })),
      spanCount: chunk.length,
      rejectedSpans: 0,
      rejectMessage: '',
    });
  }
  return requests;
}

/** Counts of `parent service -> child service` over spans whose parent is present in a different service. */
function expectedEdges(rows: Row[]): Map<string, number> {
  const service = new Map(rows.map((r) => [`${r.traceId}/${r.spanId}`, r.service]));
  const edges = new Map<string, number>();
  for (const r of rows) {
    const parent = r.parentId ? service.get(`${r.traceId}/${r.parentId}`) : undefined;
    if (parent === undefined || parent === r.service) continue;
    const key = `${parent} -> ${r.service}`;
    edges.set(key, (edges.get(key) ?? 0) + 1);
  }
  return edges;
}

/** A deterministic shuffle, so that spans arrive out of order. */
function shuffle<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

async function derivedEdges(rows: Row[]): Promise<{ edges: Map<string, number>; traces: number; spans: number }> {
  const consumer = createCollectingConsumer();
  const pipeline = createPipeline({
    stitching: { idleMs: 60_000, latenessMs: 3_600_000, maxPendingSpans: 100_000 },
    consumer,
    registry: new Registry(),
    idleTimer: false,
  });
  for (const req of toRequests(shuffle(rows, 7), 97)) {
    expect(await pipeline.accept(req)).toEqual({ ok: true });
  }
  await pipeline.stop();
  const edges = new Map<string, number>();
  for (const chain of consumer.chains()) {
    for (const call of chain.calls) {
      expect(call.peerKind).toBe('service');
      const key = `${call.service} -> ${call.peer}`;
      edges.set(key, (edges.get(key) ?? 0) + 1);
    }
  }
  const traces = consumer.batches.reduce((n, b) => n + b.traces, 0);
  const spans = consumer.batches.reduce((n, b) => n + b.spans, 0);
  return { edges, traces, spans };
}

const sorted = (m: Map<string, number>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

describe('real traces from the Nezha data set', () => {
  it('TrainTicket: derived service edges equal the cross-service parent/child pairs of the CSV', async () => {
    const rows = readRows('2023-01-29_08_43_trace.csv', 2_000);
    const expected = expectedEdges(rows);
    expect(expected.size).toBeGreaterThan(10);
    const { edges, traces, spans } = await derivedEdges(rows);
    expect(sorted(edges)).toEqual(sorted(expected));
    expect(spans).toBe(rows.length);
    expect(traces).toBe(new Set(rows.map((r) => r.traceId)).size);
  });

  it('OnlineBoutique: derived service edges equal the cross-service parent/child pairs of the CSV', async () => {
    const rows = readRows('2022-08-22_05_19_trace.csv', 2_000);
    const expected = expectedEdges(rows);
    expect(expected.size).toBeGreaterThan(5);
    const { edges } = await derivedEdges(rows);
    expect(sorted(edges)).toEqual(sorted(expected));
  });
});
