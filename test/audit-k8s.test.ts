/**
 * Kubernetes audit events end to end: a seeded cluster's audit events (controllers, an operator,
 * kubelets, a CI deployer, a monitoring agent) posted over real HTTP to the webhook receiver of a
 * running conduct, as the API server's batch webhook backend does; then the monitoring agent's
 * stolen token lists secrets across namespaces and execs into a pod. The same events written as
 * the API server's log backend and replayed with `--format k8s-audit` give the same alerts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfig, replayFiles, type Alert, type ConfigInput } from '@conduct/backend';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { AuditLog, CONTROLLER, DEPLOYER, eventLists, kubelet, LOOTED_NAMESPACES, MONITOR, OPERATOR, type AuditEvent } from './support/k8s-audit.js';
import { HOUR, MINUTE } from './support/traffic.js';

const T0 = Date.UTC(2026, 10, 27, 6, 0, 0);
const TOKEN = 'api-server-webhook-token';
/**
 * Records of one caller within a minute are one chain: a lateness above that window keeps every
 * chain whole however the events are batched, and the idle timeout is out of the way, so live and
 * replay complete the same chains.
 */
const settings = (): ConfigInput => ({ learning: { minCalls: 20, period: '1h' }, stitching: { idle: '1h', lateness: '2m' }, log: { level: 'silent' } });

const auditIds = (a: Alert) => [...((a.evidence?.auditIds ?? []) as string[])].sort();
const key = (a: Alert) => `${a.severity} ${a.detectors.join('+')} ${a.identity} ${a.traceId} x${a.count} ${auditIds(a).join(',')}`;
const serious = (alerts: Alert[]) => alerts.filter((a) => a.severity !== 'low' && a.severity !== 'info');

describe('Kubernetes audit events, live over the webhook and replayed from the log', () => {
  let dir: string;
  let events: AuditEvent[];
  let attack: AuditEvent[];
  let conduct: TestConduct;
  let url: string;
  let liveAlerts: Alert[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'conduct-k8s-audit-'));
    const log = new AuditLog(20);
    for (let m = 0; m < 150; m++) log.normalMinute(T0 + m * MINUTE, m);
    attack = log.stolenToken(T0 + 2 * HOUR + 35 * MINUTE + 10_000);
    // A minute of ordinary work after the theft, so the event-time watermark moves past it.
    log.normalMinute(T0 + 2 * HOUR + 37 * MINUTE, 157);
    events = log.sorted();
    writeFileSync(join(dir, 'audit.log'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');

    conduct = await startTestConduct({ ...settings(), receivers: { k8sAudit: { endpoint: '127.0.0.1:0', auth: { token: TOKEN } } } });
    url = `http://${conduct.running.k8sAuditAddress}/k8s-audit`;
    for (const body of eventLists(events)) {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body });
      expect(res.status).toBe(200);
    }
    await conduct.flush();
    liveAlerts = (await conduct.get<{ alerts: Alert[] }>('/api/v1/alerts?limit=1000')).body.alerts;
  });
  afterAll(async () => {
    await conduct?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('learns every actor as its own identity from ResponseComplete events only', async () => {
    const calls = events.filter((e) => e.stage === 'ResponseComplete').length;
    expect(events.length).toBeGreaterThan(calls);
    const { body } = await conduct.get<{ identities: { id: string; status: string; calls: number }[] }>('/api/v1/identities');
    const ids = new Map(body.identities.map((i) => [i.id, i]));
    for (const who of [CONTROLLER, OPERATOR, DEPLOYER, MONITOR, kubelet(1), kubelet(2), kubelet(3)]) {
      expect(ids.get(who)?.status, who).toBe('enforcing');
    }
    expect(body.identities.reduce((n, i) => n + i.calls, 0)).toBe(calls);
  });

  it('the stolen monitoring token: secrets listed across namespaces and an exec are caught, with the auditIDs of those requests', () => {
    const attackIds = new Set(attack.map((e) => e.auditID));
    const onAttack = serious(liveAlerts).filter((a) => a.identity === MONITOR);
    // One incident per trace of the stolen token, its findings inside.
    expect(new Set(onAttack.map((a) => a.traceId)).size).toBe(onAttack.length);
    const detectors = onAttack.flatMap((a) => a.detectors);
    expect(detectors, liveAlerts.map(key).join('\n')).toEqual(expect.arrayContaining(['new-operation', 'new-source', 'fan-out']));
    const findingOf = (detector: string) => onAttack.flatMap((a) => a.findings.map((f) => ({ incident: a, f }))).find((x) => x.f.detector === detector)!;
    const newOperation = findingOf('new-operation');
    expect(newOperation.f.title).toMatch(/list secrets/);
    expect(newOperation.f.title).toMatch(/create pods\/exec/);
    const secretLists = attack.filter((e) => e.verb === 'list' && e.objectRef?.resource === 'secrets').map((e) => e.auditID);
    const exec = attack.find((e) => e.objectRef?.subresource === 'exec')!.auditID;
    expect(auditIds(newOperation.incident)).toEqual(expect.arrayContaining([...secretLists, exec]));
    // The finding itself names the records of its own offending calls: the new operations
    // (secrets listed, the exec, and the read of the pod before it).
    const findingIds = (newOperation.f.evidence?.auditIds ?? []) as string[];
    expect(findingIds).toEqual(expect.arrayContaining([...secretLists, exec]));
    for (const id of findingIds) expect(attackIds.has(id)).toBe(true);
    const fanOut = findingOf('fan-out');
    expect(fanOut.f.explanation).toMatch(new RegExp(LOOTED_NAMESPACES.slice(0, 2).join('|')));
    const source = findingOf('new-source');
    expect(source.f.explanation).toMatch(/10\.0\.9\.0\/24/);
    for (const a of onAttack) {
      expect(auditIds(a).length).toBeGreaterThan(0);
      for (const id of auditIds(a)) expect(attackIds.has(id), `${a.detector} names ${id}`).toBe(true);
    }
  });

  it('ordinary work of the other identities raises nothing of medium or above', () => {
    expect(serious(liveAlerts).filter((a) => a.identity !== MONITOR).map(key)).toEqual([]);
  });

  it('the trace API shows each call with its auditID, the API server as peer and the request source', async () => {
    const trace = serious(liveAlerts).find((a) => a.identity === MONITOR)!.traceId;
    const { status, body } = await conduct.get<{ chains: { identity: string; calls: Record<string, any>[] }[] }>(`/api/v1/traces/${trace}`);
    expect(status).toBe(200);
    const calls = body.chains.flatMap((c) => c.calls);
    const exec = attack.find((e) => e.objectRef?.subresource === 'exec')!;
    const call = calls.find((c) => c.auditId === exec.auditID)!;
    expect(call).toMatchObject({ peer: 'kube-apiserver', operation: 'create pods/exec', target: 'payments/payments-api-1', httpStatus: 101 });
    expect(call.source).toMatchObject({ clientAddress: '10.0.9.77', network: '10.0.9.0/24', userAgent: expect.stringMatching(/^kubectl\/v1\.30\.1/) });
    expect(calls.filter((c) => c.operation === 'list secrets').map((c) => c.target).sort()).toEqual([...LOOTED_NAMESPACES].sort());
  });

  it('replaying the same events from the log backend file gives the same alerts', async () => {
    const config = parseConfig({ ...settings(), storage: { path: join(dir, 'replay.db') } });
    const summary = await replayFiles({ config, files: [join(dir, 'audit.log')], format: 'k8s-audit' });
    expect(summary.badRequests).toBe(0);
    expect(summary.audit).toEqual({ records: events.length, calls: events.filter((e) => e.stage === 'ResponseComplete').length, skipped: events.filter((e) => e.stage !== 'ResponseComplete').length });
    expect(liveAlerts.length).toBeGreaterThan(0);
    expect(summary.alerts.map(key).sort()).toEqual(liveAlerts.map(key).sort());
  });

  it('the example configuration in examples/k8s-audit is valid', () => {
    const config = loadConfigFile(new URL('../examples/k8s-audit/conduct.yaml', import.meta.url).pathname);
    expect(config.receivers.k8sAudit.endpoint).toBe('0.0.0.0:9443');
    expect(config.receivers.k8sAudit.auth?.token).toBeTruthy();
  });
});
