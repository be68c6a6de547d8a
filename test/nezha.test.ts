/**
 * Real traces of two microservice benchmarks (TrainTicket, OnlineBoutique; see
 * shared/data/README.md), converted to OTLP/JSON here and ingested over HTTP: the
 * service-to-service edges conduct derives must match the cross-service parent/child pairs
 * counted from the CSV itself.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConduct, type TestConduct } from './support/conduct.js';

interface Row {
  traceId: string;
  spanId: string;
  parentId: string;
  service: string;
  name: string;
  start: string;
  end: string;
}

const DATA = new URL('./data/nezha-traces/', import.meta.url);

function readCsv(file: string): Row[] {
  const lines = readFileSync(new URL(file, DATA), 'utf8').trim().split('\n').slice(1);
  return lines.map((line) => {
    const [traceId, spanId, parentId, pod, name, start, end] = line.split(',');
    // The service is the pod name without its ReplicaSet hash and pod suffix.
    return { traceId: traceId!, spanId: spanId!, parentId: parentId!, service: pod!.replace(/-[a-z0-9]+-[a-z0-9]+$/, ''), name: name!, start: start!, end: end! };
  });
}

function byTrace(rows: Row[]): Map<string, Row[]> {
  const traces = new Map<string, Row[]>();
  for (const r of rows) {
    let list = traces.get(r.traceId);
    if (!list) traces.set(r.traceId, (list = []));
    list.push(r);
  }
  return traces;
}

/** Cross-service parent/child pairs, counted from the CSV: "parentService -> childService" -> n. */
function expectedEdges(traces: Map<string, Row[]>): Map<string, number> {
  const edges = new Map<string, number>();
  for (const rows of traces.values()) {
    const spans = new Map(rows.map((r) => [r.spanId, r]));
    for (const r of rows) {
      const parent = spans.get(r.parentId);
      if (!parent || parent.service === r.service) continue;
      const key = `${parent.service} -> ${r.service}`;
      edges.set(key, (edges.get(key) ?? 0) + 1);
    }
  }
  return edges;
}

/** One OTLP/JSON export request for a group of whole traces, one resource per service. */
function toOtlpJson(traces: Row[][]): string {
  const byService = new Map<string, Row[]>();
  for (const r of traces.flat()) {
    let list = byService.get(r.service);
    if (!list) byService.set(r.service, (list = []));
    list.push(r);
  }
  return JSON.stringify({
    resourceSpans: [...byService].map(([service, rows]) => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeSpans: [
        {
          scope: { name: 'nezha-csv' },
          spans: rows.map((r) => ({
            traceId: r.traceId,
            spanId: r.spanId,
            parentSpanId: r.parentId === 'root' ? '' : r.parentId,
            name: r.name,
            kind: 2,
            startTimeUnixNano: r.start,
            endTimeUnixNano: r.end,
          })),
        },
      ],
    })),
  });
}

describe.each([
  ['TrainTicket', '2023-01-29_08_43_trace.csv'],
  ['OnlineBoutique', '2022-08-22_05_19_trace.csv'],
])('real %s traces', (_name, file) => {
  let conduct: TestConduct;
  beforeAll(async () => {
    conduct = await startTestConduct({ stitching: { idle: '10s' } });
  });
  afterAll(async () => {
    await conduct?.dispose();
  });

  it('yields the service-to-service edges of the CSV', async () => {
    const traces = byTrace(readCsv(file));
    const expected = expectedEdges(traces);
    expect(expected.size).toBeGreaterThan(5);

    // Whole traces per request, about 500 spans each, as a Collector batch would send them.
    let group: Row[][] = [];
    let size = 0;
    const send = async () => {
      if (!group.length) return;
      const res = await fetch(`${conduct.http}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: toOtlpJson(group) });
      expect(res.status).toBe(200);
      group = [];
      size = 0;
    };
    for (const rows of traces.values()) {
      group.push(rows);
      size += rows.length;
      if (size >= 500) await send();
    }
    await send();
    await conduct.flush();

    const actual = new Map<string, number>();
    for (const traceId of traces.keys()) {
      const res = await conduct.get<{ chains: { calls: { service: string; peer: string }[] }[] }>(`/api/v1/traces/${traceId}`);
      if (res.status === 404) continue; // a trace without cross-service calls has no chain
      expect(res.status).toBe(200);
      for (const chain of res.body.chains) {
        for (const call of chain.calls) {
          const key = `${call.service} -> ${call.peer}`;
          actual.set(key, (actual.get(key) ?? 0) + 1);
        }
      }
    }
    expect(Object.fromEntries([...actual].sort())).toEqual(Object.fromEntries([...expected].sort()));
  });
});
