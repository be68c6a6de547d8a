/**
 * The alert page's deliveries in a real browser: a webhook that refuses everything kills the
 * alerts' deliveries (no retries); the page shows each dead one with its error and the operator's
 * two ways out. Once the receiver is mended, Retry delivers it; Discard gives the other up for good.
 * Real OTLP from the official exporter, a real webhook receiver, Chromium.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureUiBuilt, launchBrowser, watchedPage } from './support/browser.js';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { recordingHttp, until, type RecordingHttp } from './support/receivers.js';
import { MINUTE, SpanKind, Traffic } from './support/traffic.js';

const SCREENSHOTS = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));
const DEPLOYER = { 'service.namespace': 'ci', 'service.name': 'deployer' };
const call = (host: string, peerService?: string) => ({
  name: 'call',
  kind: SpanKind.CLIENT,
  at: 0,
  attributes: { 'http.request.method': 'PUT', 'url.full': `https://${host}/x`, 'server.address': host, ...(peerService ? { 'peer.service': peerService } : {}) },
});

interface ApiDelivery {
  sink: string;
  seq: number;
  state: string;
}

describe('alert deliveries in the web UI', () => {
  let conduct: TestConduct;
  let traffic: Traffic;
  let hook: RecordingHttp;
  let browser: Browser;
  let context: BrowserContext;
  const state = { refusing: true };
  const ids: string[] = [];
  const deliveries = async (id: string) => (await conduct.get<{ deliveries: ApiDelivery[] }>(`/api/v1/alerts/${encodeURIComponent(id)}`)).body.deliveries;

  beforeAll(async () => {
    ensureUiBuilt();
    mkdirSync(SCREENSHOTS, { recursive: true });
    hook = await recordingHttp({ refuse: () => state.refusing });
    conduct = await startTestConduct({
      learning: { minCalls: 3, period: 0 },
      policies: [{ match: 'svc:ci/*', expectedPeers: ['kube-api'] }],
      alerts: { sinks: [{ type: 'webhook', name: 'pager-hook', endpoint: `${hook.url}/hook`, retries: 0 }] },
    });
    traffic = new Traffic(conduct, 'http-proto');
    const t0 = Date.now() - 60 * MINUTE;
    for (let i = 0; i < 3; i++) await traffic.trace(t0 + i * MINUTE, DEPLOYER, call('kube-api', 'kube-api'));
    const traces = [await traffic.trace(t0 + 10 * MINUTE, DEPLOYER, call('drop-1.example.com')), await traffic.trace(t0 + 11 * MINUTE, DEPLOYER, call('drop-2.example.com'))];
    await conduct.flush();
    const alerts = (await conduct.get<{ alerts: Array<{ id: string; traceId: string }> }>('/api/v1/alerts?limit=100')).body.alerts;
    for (const t of traces) ids.push(alerts.find((a) => a.traceId === t.traceId)!.id);
    for (const id of ids) await until(async () => (await deliveries(id)).every((d) => d.state === 'dead'));
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await traffic?.close();
    await conduct?.dispose();
    await hook?.close();
  });

  it('shows a dead delivery with its error; Retry delivers it once the receiver is mended', async () => {
    const w = await watchedPage(context);
    const { page } = w;
    await page.goto(`${conduct.api}/alerts/${encodeURIComponent(ids[0]!)}`);
    const row = page.locator('[data-testid=deliveries] tr[data-sink="pager-hook"][data-seq="1"]');
    await expect.poll(() => row.getAttribute('data-state')).toBe('dead');
    expect(await row.innerText()).toContain('503');
    await page.getByTestId('deliveries').scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${SCREENSHOTS}alert-deliveries.png` });
    state.refusing = false;
    await row.getByRole('button', { name: 'Retry' }).click();
    await until(() => hook.answered.some((r) => r.headers['x-conduct-delivery'] === `${ids[0]}/1`));
    // The page shows the answer (pending, or delivered already); the API says delivered.
    await expect.poll(() => row.getAttribute('data-state')).not.toBe('dead');
    await until(async () => (await deliveries(ids[0]!))[0]?.state === 'delivered');
    await page.reload();
    await expect.poll(() => row.getAttribute('data-state')).toBe('delivered');
    expect(await row.getByRole('button').count()).toBe(0);
    expect(w.pageErrors).toEqual([]);
    await page.close();
  });

  it('Discard gives a dead delivery up for good', async () => {
    const { page } = await watchedPage(context);
    await page.goto(`${conduct.api}/alerts/${encodeURIComponent(ids[1]!)}`);
    const row = page.locator('[data-testid=deliveries] tr[data-sink="pager-hook"][data-seq="1"]');
    await expect.poll(() => row.getAttribute('data-state')).toBe('dead');
    await row.getByRole('button', { name: 'Discard' }).click();
    await expect.poll(() => row.getAttribute('data-state')).toBe('discarded');
    expect((await deliveries(ids[1]!)).map((d) => d.state)).toEqual(['discarded']);
    expect(hook.answered.some((r) => r.headers['x-conduct-delivery'] === `${ids[1]}/1`)).toBe(false);
    await page.close();
  });
});
