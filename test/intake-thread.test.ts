/**
 * The intake (the OTLP receivers and the journal) runs on the pipeline thread: an export request is
 * read, decoded, journaled and answered there while the main thread, which stores and analyses,
 * is busy; what is received on the main thread (Kubernetes audit) is journaled there too, and one
 * /metrics serves both threads' counters.
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { AuditLog, eventLists } from './support/k8s-audit.js';

const TRACE_ID = '5b8efff798038103d269b633813fc60c';
const EXPORT = JSON.stringify({
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'deployer' } }, { key: 'service.namespace', value: { stringValue: 'ci' } }] },
      scopeSpans: [
        {
          spans: [
            {
              traceId: TRACE_ID,
              spanId: 'eee19b7ec3c1b174',
              name: 'GET',
              kind: 3,
              startTimeUnixNano: '1790000000000000000',
              endTimeUnixNano: '1790000000050000000',
              attributes: [
                { key: 'http.request.method', value: { stringValue: 'GET' } },
                { key: 'url.full', value: { stringValue: 'https://s3.amazonaws.com/' } },
              ],
            },
          ],
        },
      ],
    },
  ],
});

/** Blocks this (the main) thread for `ms`; returns when it ended (wall clock). */
function blockMainThread(ms: number): number {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return Date.now();
}

/** Sends one OTLP/JSON export from another process; resolves with its status and when it was answered. */
function exportFromChild(url: string): { answer: Promise<{ status: number; atMs: number }> } {
  const script = `const r = await fetch(process.argv[1], { method: 'POST', headers: { 'content-type': 'application/json' }, body: process.argv[2] }); await r.text(); console.log(JSON.stringify({ status: r.status, atMs: Date.now() }));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, url, EXPORT], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return {
    answer: new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { status: number; atMs: number }) : reject(new Error(`sender exited ${code}: ${out}`))));
    }),
  };
}

async function metric(conduct: TestConduct, line: RegExp): Promise<number> {
  const text = (await conduct.get<string>('/metrics')).body;
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').at(-1)) : 0;
}

describe('the intake on the pipeline thread', () => {
  let conduct: TestConduct | undefined;
  afterEach(async () => {
    await conduct?.dispose();
    conduct = undefined;
  });

  it('answers (journaled) an OTLP export while the main thread is blocked, and stores it once the main thread runs again', async () => {
    conduct = await startTestConduct({});
    const sent = exportFromChild(`${conduct.http}/v1/traces`);
    // Long enough for another process to start and be answered: only a receiver and journal
    // that do not need this thread can answer before it ends.
    const unblockedAt = blockMainThread(5_000);
    const { status, atMs } = await sent.answer;
    expect(status).toBe(200);
    expect(atMs).toBeLessThan(unblockedAt);
    expect(await metric(conduct, /^conduct_journal_appended_total /)).toBe(1);
    await conduct.flush();
    const trace = await conduct.get<{ chains: Array<{ identity: string }> }>(`/api/v1/traces/${TRACE_ID}`);
    expect(trace.status).toBe(200);
    expect(trace.body.chains.map((c) => c.identity)).toEqual(['svc:ci/deployer']);
  });

  it("journals what the main thread's Kubernetes audit receiver takes, and serves both threads' receiver counters as one family", async () => {
    conduct = await startTestConduct({ receivers: { k8sAudit: { endpoint: '127.0.0.1:0' } } });
    const res = await fetch(`${conduct.http}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: EXPORT });
    expect(res.status).toBe(200);
    const log = new AuditLog(2);
    log.normalMinute(Date.UTC(2026, 10, 1, 8, 0, 0), 0);
    const [audit] = eventLists(log.sorted());
    const auditRes = await fetch(`http://${conduct.running.k8sAuditAddress}/k8s-audit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: audit });
    expect(auditRes.status).toBe(200);
    expect(await metric(conduct, /^conduct_journal_appended_total /)).toBe(2);
    const text = (await conduct.get<string>('/metrics')).body;
    expect(text.match(/^# TYPE conduct_receiver_requests_total /gm)).toHaveLength(1);
    expect(text).toMatch(/^conduct_receiver_requests_total\{protocol="http",code="200"\} 1$/m);
    expect(text).toMatch(/^conduct_receiver_requests_total\{protocol="k8s-audit",code="200"\} 1$/m);
  });
});
