import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createCollectingConsumer, createPipeline } from './index.js';
import { UNINSTRUMENTED_CALLER } from '../calls/index.js';
import { request, resource, span, spanId, SpanKind } from '../calls/testdata/trace-builder.js';
import type { StitchConfig } from '../stitch/index.js';

const deployer = resource('deployer', { 'service.namespace': 'ci', 'cloud.region': 'eu-west-1' });
const kube = resource('kube-api', { 'service.namespace': 'platform' });
const IDLE = 1_000;
const AGE = 30_000;
const T = 1_700_000_000_000;

/** The caller's half of a trace: its job span and the HTTP client span to the API. */
const callerHalf = (n: number) =>
  request([
    span(deployer, { id: `job${n}`, traceId: tid(n), start: T, end: T + 50 }),
    span(deployer, { id: `cli${n}`, traceId: tid(n), parent: `job${n}`, kind: SpanKind.CLIENT, start: T + 5, end: T + 40, attrs: { 'http.request.method': 'PATCH', 'url.full': 'http://10.0.0.7:6443/apis/apps/v1/deployments/web', 'server.address': '10.0.0.7', 'server.port': 6443 } }),
  ]);
/** The callee's half, exported later: its server span (with the authenticated principal) and a child. */
const calleeHalf = (n: number) =>
  request([
    span(kube, { id: `srv${n}`, traceId: tid(n), parent: `cli${n}`, kind: SpanKind.SERVER, start: T + 7, end: T + 38, attrs: { 'http.request.method': 'PATCH', 'http.route': '/apis/apps/v1/deployments/:name', 'enduser.id': 'system:serviceaccount:ci:deployer', 'client.address': '10.0.3.9' } }),
    span(kube, { id: `db${n}`, traceId: tid(n), parent: `srv${n}`, kind: SpanKind.CLIENT, start: T + 9, end: T + 20, attrs: { 'db.system.name': 'etcd', 'db.operation.name': 'put' } }),
  ]);
function tid(n: number): string {
  return n.toString(16).padStart(32, '0');
}

function setup(stitching: Partial<StitchConfig> = {}) {
  const clock = { t: 0, now() { return this.t; } };
  const registry = new Registry();
  const consumer = createCollectingConsumer();
  const pipeline = createPipeline({
    stitching: { idleMs: IDLE, latenessMs: 3_600_000, maxPendingSpans: 10_000, recentClients: { maxAgeMs: AGE, maxSpans: 1_000 }, ...stitching },
    consumer,
    registry,
    clock,
    idleTimer: false,
  });
  /** Lets the trace go idle and hands what completed to the consumer. */
  const idle = async () => {
    clock.t += IDLE;
    pipeline.tick();
    await pipeline.flush();
  };
  return { clock, registry, consumer, pipeline, idle };
}

const metric = async (registry: Registry, name: string, label: string) =>
  (await registry.getSingleMetric(name)!.get()).values.find((v) => Object.values(v.labels).includes(label))?.value ?? 0;

describe('late spans of a completed trace', () => {
  it('stitch a late server span to the caller span of the earlier part, owned by the server-side principal', async () => {
    const { registry, consumer, pipeline, idle } = setup();
    await pipeline.accept(callerHalf(1));
    await idle();
    // The caller's half alone: one unstitched call to the address it named.
    const [first] = consumer.chains();
    expect(first!.calls.map((c) => [c.identity, c.peer, c.peerKind])).toEqual([['svc:ci/deployer', '10.0.0.7:6443', 'http']]);

    // The API's spans arrive after the trace completed (another exporter's batch).
    await pipeline.accept(calleeHalf(1));
    await idle();
    const late = consumer.chains().slice(1);
    const calls = late.flatMap((c) => c.calls);
    const stitched = calls.find((c) => c.serverSpanId === spanId('srv1'))!;
    expect(stitched).toMatchObject({
      spanId: spanId('cli1'),
      identity: 'system:serviceaccount:ci:deployer',
      identityKind: 'principal',
      service: 'ci/deployer',
      peer: 'platform/kube-api',
      peerKind: 'service',
      operation: 'PATCH /apis/apps/v1/deployments/:name',
    });
    expect(stitched.source).toMatchObject({ region: 'eu-west-1', clientAddress: '10.0.3.9' });
    // Not also a call by the principal from an uninstrumented caller.
    expect(calls.filter((c) => c.service === UNINSTRUMENTED_CALLER)).toEqual([]);
    // The callee's own calls are derived as usual.
    expect(calls.some((c) => c.service === 'platform/kube-api' && c.peer === 'etcd')).toBe(true);
    expect(pipeline.stats().recentClients).toMatchObject({ hits: 1, misses: 0, spans: 0 });
    expect(await metric(registry, 'conduct_stitch_late_parents_total', 'stitched')).toBe(1);
  });

  it('stitch a late span once: a second copy of it is a miss', async () => {
    const { consumer, pipeline, idle } = setup();
    await pipeline.accept(callerHalf(2));
    await idle();
    await pipeline.accept(calleeHalf(2));
    await idle();
    await pipeline.accept(calleeHalf(2));
    await idle();
    const stitched = consumer.chains().flatMap((c) => c.calls).filter((c) => c.spanId === spanId('cli2') && c.peer === 'platform/kube-api');
    expect(stitched).toHaveLength(1);
    expect(pipeline.stats().recentClients).toMatchObject({ hits: 1, misses: 1 });
  });

  it('after maxAgeMs the caller span is forgotten: the late server span is a server-side-only call again', async () => {
    const { clock, registry, consumer, pipeline, idle } = setup();
    await pipeline.accept(callerHalf(3));
    await idle();
    clock.t += AGE;
    await pipeline.accept(calleeHalf(3));
    await idle();
    const calls = consumer.chains().flatMap((c) => c.calls);
    expect(calls.filter((c) => c.peer === 'platform/kube-api').map((c) => c.service)).toEqual([UNINSTRUMENTED_CALLER]);
    expect(pipeline.stats().recentClients).toMatchObject({ hits: 0, misses: 1, expired: 1, spans: 0 });
    expect(await metric(registry, 'conduct_stitch_late_parents_total', 'missed')).toBe(1);
    expect(await metric(registry, 'conduct_stitch_recent_client_spans_forgotten_total', 'expired')).toBe(1);
  });

  it('spans that arrive in time are stitched in their trace and leave nothing remembered', async () => {
    const { consumer, pipeline, idle } = setup();
    await pipeline.accept(callerHalf(4));
    await pipeline.accept(calleeHalf(4));
    await idle();
    const calls = consumer.chains().flatMap((c) => c.calls);
    expect(calls.filter((c) => c.spanId === spanId('cli4')).map((c) => [c.identity, c.peer])).toEqual([['system:serviceaccount:ci:deployer', 'platform/kube-api']]);
    // Nothing is remembered: the caller span was matched, and the API's database call will never have a server side.
    expect(pipeline.stats().recentClients).toMatchObject({ spans: 0, hits: 0, misses: 0 });
  });

  it('stitch a late client span to the server span of the earlier part (the caller half late)', async () => {
    const { consumer, pipeline, idle } = setup();
    await pipeline.accept(calleeHalf(5));
    await idle();
    // The API's half alone: its principal's server span has no caller yet.
    expect(consumer.chains().flatMap((c) => c.calls).filter((c) => c.peer === 'platform/kube-api').map((c) => c.service)).toEqual([UNINSTRUMENTED_CALLER]);
    expect(pipeline.stats().recentServers.spans).toBe(1);

    await pipeline.accept(callerHalf(5));
    await idle();
    const late = consumer.chains().slice(-2).flatMap((c) => c.calls);
    const stitched = late.find((c) => c.spanId === spanId('cli5'))!;
    expect(stitched).toMatchObject({ serverSpanId: spanId('srv5'), identity: 'system:serviceaccount:ci:deployer', service: 'ci/deployer', peer: 'platform/kube-api', operation: 'PATCH /apis/apps/v1/deployments/:name' });
    expect(stitched.source).toMatchObject({ region: 'eu-west-1', clientAddress: '10.0.3.9' });
    expect(late.filter((c) => c.peer === '10.0.0.7:6443')).toEqual([]);
    expect(pipeline.stats().recentServers).toMatchObject({ hits: 1, spans: 0 });
    expect(consumer.batches.at(-1)!.traceSummaries).toEqual([expect.objectContaining({ traceId: tid(5), late: 'joins', spans: 2 })]);
  });

  it('a part later than lateTraceWindowMs is a fragment of its own; a part of a trace forgotten within the window may be late, a new trace is not', async () => {
    const { clock, consumer, pipeline, idle } = setup({ lateTraceWindowMs: 10_000, rememberedTraces: 1 });
    await pipeline.accept(callerHalf(6));
    await idle();
    expect(consumer.batches.at(-1)!.traceSummaries![0]!.late).toBeUndefined();
    clock.t += 10_001;
    await pipeline.accept(calleeHalf(6));
    await idle();
    const fragment = consumer.batches.at(-1)!;
    expect(fragment.traceSummaries![0]!.late).toBe('fragment');
    // Derived as a trace of its own: the server span is a server-side-only call.
    expect(fragment.chains.flatMap((c) => c.calls).filter((c) => c.peer === 'platform/kube-api').map((c) => c.service)).toEqual([UNINSTRUMENTED_CALLER]);
    // A second trace pushes the first out of the one remembered id: a part of the first may be a
    // late part (it is forgotten only as far as a filter of hashes tells), a trace never completed
    // is not.
    await pipeline.accept(callerHalf(7));
    await idle();
    await pipeline.accept(callerHalf(8));
    await idle();
    expect(consumer.batches.at(-1)!.traceSummaries![0]!.late).toBeUndefined();
    await pipeline.accept(callerHalf(6));
    await idle();
    expect(consumer.batches.at(-1)!.traceSummaries![0]).toMatchObject({ traceId: tid(6), late: 'maybe' });
    clock.t += 10_001;
    await pipeline.accept(callerHalf(9));
    await idle();
    expect(consumer.batches.at(-1)!.traceSummaries![0]!.late).toBeUndefined();
  });
});
