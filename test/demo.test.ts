/**
 * Issue 6 end to end: `conduct demo` in its bounded mode. conduct runs in this process on a
 * temporary database; the example services run as real Node processes instrumented with the
 * OpenTelemetry SDK and send their spans over OTLP/gRPC. After the replayed normal minutes every
 * demo identity must enforce, each misconduct scenario must raise its alert (identity, detector,
 * severity >= medium, a trace link to a trace conduct knows), and the legitimate burst must raise
 * nothing of medium or above.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo, SEVERITY_RANK, type DemoResult } from '@conduct/backend';
import type { Call } from '@conduct/processor';

const MISCONDUCT = ['enumeration', 'agent-tool-flood', 'stolen-certificate', 'exfiltration', 'lateral-movement', 'stolen-sa-token'];

describe('conduct demo (bounded mode)', () => {
  let demo: DemoResult;
  const lines: string[] = [];

  // The services start three at a time, each allowed 3 minutes to report ready
  // (examples/services/system.mjs); then the learning minutes and the scenarios run.
  beforeAll(async () => {
    demo = await runDemo({ print: (l) => lines.push(l) });
  }, 600_000);

  afterAll(async () => {
    await demo?.stop();
  });

  it('gets every demo identity to enforcing before the scenarios', () => {
    expect(demo.stillLearning).toEqual([]);
    expect(lines.some((l) => l.startsWith('learning: minute'))).toBe(true);
  });

  it('runs the six misconduct scenarios and the legitimate burst', () => {
    expect(demo.scenarios.map((s) => s.name).sort()).toEqual([...MISCONDUCT, 'legitimate-burst'].sort());
  });

  for (const name of MISCONDUCT) {
    it(`${name}: raises its alert for the right identity at medium or above, linked to the trace`, async () => {
      const scenario = demo.scenarios.find((s) => s.name === name)!;
      const { identity, detectors } = scenario.expect;
      const hits = scenario.alerts.filter(
        (a) => a.identity === identity && a.detectors.some((d) => detectors!.includes(d)) && SEVERITY_RANK[a.severity] >= SEVERITY_RANK.medium,
      );
      // One incident per identity and trace, its findings inside.
      const perTrace = new Map<string, number>();
      for (const a of scenario.alerts) perTrace.set(`${a.identity} ${a.traceId}`, (perTrace.get(`${a.identity} ${a.traceId}`) ?? 0) + 1);
      expect([...perTrace.values()].every((n) => n === 1), JSON.stringify([...perTrace])).toBe(true);
      for (const a of scenario.alerts) {
        expect(a.detectors).toEqual([...new Set(a.findings.map((f) => f.detector))]);
        expect(a.detector).toBe(a.findings[0]!.detector);
        expect(a.severity).toBe(a.findings[0]!.severity);
      }
      expect(hits, `${name}: ${scenario.reason ?? ''}`).not.toHaveLength(0);
      expect(scenario.passed).toBe(true);
      const alert = hits[0]!;
      expect(alert.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(alert.links.trace).toContain(alert.traceId);
      expect(alert.explanation.length).toBeGreaterThan(20);
      const res = await fetch(`${demo.apiUrl}/api/v1/traces/${alert.traceId}`);
      expect(res.status).toBe(200);
      const trace = (await res.json()) as { chains: { identity: string }[] };
      expect(trace.chains.map((c) => c.identity)).toContain(identity);
      expect(lines.some((l) => l.includes(alert.detector) && l.includes(identity!))).toBe(true);
    });
  }

  it('stolen-sa-token is fed by Kubernetes audit events: its alerts name the audit records, its calls are at the API server', async () => {
    const scenario = demo.scenarios.find((s) => s.name === 'stolen-sa-token')!;
    const alerts = scenario.alerts.filter((a) => a.identity === scenario.expect.identity);
    const ids = alerts.flatMap((a) => (a.evidence?.auditIds ?? []) as string[]);
    expect(ids.length).toBeGreaterThan(0);
    const res = await fetch(`${demo.apiUrl}/api/v1/traces/${alerts[0]!.traceId}`);
    const trace = (await res.json()) as { chains: { calls: Call[] }[] };
    const calls = trace.chains.flatMap((c) => c.calls);
    expect(calls.every((c) => c.peer === 'kube-apiserver' && c.auditId !== undefined)).toBe(true);
    expect(calls.map((c) => c.operation)).toEqual(expect.arrayContaining(['list secrets', 'create pods/exec']));
    expect(calls.map((c) => c.auditId)).toEqual(expect.arrayContaining(ids));
  });

  it('legitimate-burst: 8x the usual traffic over known peers raises nothing above low', () => {
    const burst = demo.scenarios.find((s) => s.name === 'legitimate-burst')!;
    const loud = burst.alerts.filter((a) => SEVERITY_RANK[a.severity] >= SEVERITY_RANK.medium);
    expect(loud.map((a) => `${a.detector} ${a.severity} ${a.identity}: ${a.title}`)).toEqual([]);
  });

  it('normal traffic raises nothing of medium or above', () => {
    const loud = demo.learningAlerts.filter((a) => SEVERITY_RANK[a.severity] >= SEVERITY_RANK.medium);
    expect(loud.map((a) => `${a.detector} ${a.identity}: ${a.title}`)).toEqual([]);
  });

  it('storefront -> catalog is gRPC: stitched client and server spans make calls named <service>/<method>', async () => {
    const identity = 'svc:shop/storefront';
    const res = await fetch(`${demo.apiUrl}/api/v1/identities/${encodeURIComponent(identity)}/chains?limit=200`);
    expect(res.status).toBe(200);
    const { chains } = (await res.json()) as { chains: { calls: Call[] }[] };
    const grpcCalls = chains.flatMap((c) => c.calls).filter((c) => c.protocol === 'grpc');
    // Browsing lists the products and opens one: both RPCs of shop.catalog.v1.Catalog.
    expect(new Set(grpcCalls.map((c) => c.operation))).toEqual(
      new Set(['shop.catalog.v1.Catalog/ListProducts', 'shop.catalog.v1.Catalog/GetProduct']),
    );
    for (const call of grpcCalls) {
      expect(call).toMatchObject({ identity, service: 'shop/storefront', peer: 'shop/catalog' });
      expect(call.status).not.toBe('error');
      // Stitched: the client span made the call, the catalog's server span answered it.
      expect(call.serverSpanId).toMatch(/^[0-9a-f]{16}$/);
      expect(call.serverSpanId).not.toBe(call.spanId);
    }
    // The other hops stay HTTP.
    expect(chains.flatMap((c) => c.calls).some((c) => c.protocol === 'http' && c.peer === 'shop/checkout')).toBe(true);
  });

  it('prints the UI URL', () => {
    expect(lines.some((l) => l.includes(demo.uiUrl))).toBe(true);
  });
});
