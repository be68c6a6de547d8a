/**
 * Issue 18, point 5 and the status filter, in Chromium against a conduct fed real OTLP/HTTP: the
 * late-parts trace (test/support/split-trace.ts) sent in parts, so one alert is superseded by the
 * later part and another, whose trace never gets its later part, stays open.
 */
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureUiBuilt, launchBrowser, watchedPage } from './support/browser.js';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { CALLEE_HALF, CALLER_HALF, idsOf, PRINCIPAL, sendInParts } from './support/split-trace.js';

const DAY = 86_400_000;

interface Listed {
  alerts: { id: string; traceId: string; status: string }[];
}

describe('alert status and received times in a real browser', () => {
  let conduct: TestConduct;
  let browser: Browser;
  let context: BrowserContext;
  // Replayed data: two days old in event time.
  const replayedT0 = Math.floor((Date.now() - 2 * DAY) / 60_000) * 60_000;

  beforeAll(async () => {
    ensureUiBuilt();
    // The storefront's principal may call the storefront and orders: its client span's address
    // alone is no expected peer, so the caller half alone breaks the policy.
    conduct = await startTestConduct({ stitching: { idle: '1s' }, policies: [{ match: PRINCIPAL, expectedPeers: ['shop/web', 'shop/orders'] }] });
    // Trace 1: the callee half arrives later and resolves the call (its alert is superseded).
    await sendInParts(conduct, 1, [CALLER_HALF, CALLEE_HALF], replayedT0);
    // Trace 2: the caller half only (its alert stays open).
    await sendInParts(conduct, 2, [CALLER_HALF], replayedT0);
    await conduct.flush();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await conduct?.dispose();
  });

  it('filters alerts by status superseded: the alert a later part of its trace replaced, and no other', async () => {
    const superseded = (await conduct.get<Listed>('/api/v1/alerts?status=superseded')).body.alerts;
    expect(superseded.map((a) => a.traceId)).toEqual([idsOf(1, 'split').traceId]);
    const all = (await conduct.get<Listed>('/api/v1/alerts')).body.alerts;
    expect(all.map((a) => [a.traceId, a.status]).sort()).toEqual([
      [idsOf(1, 'split').traceId, 'superseded'],
      [idsOf(2, 'split').traceId, 'open'],
    ]);

    const w = await watchedPage(context);
    const { page } = w;
    const shown = () => page.locator('[data-testid=alerts] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-alert-id')));
    await page.goto(`${conduct.api}/alerts`);
    await expect.poll(shown).toEqual(all.map((a) => a.id));
    await page.getByLabel('status').selectOption('superseded');
    await page.waitForURL(/status=superseded/);
    await expect.poll(shown).toEqual(superseded.map((a) => a.id));
    expect(await page.locator('[data-testid=alerts] tbody tr [data-testid=alert-status]').allInnerTexts()).toEqual(['superseded']);
    // A shared link keeps the filter.
    await page.goto(page.url());
    await expect.poll(shown).toEqual(superseded.map((a) => a.id));
    expect(await page.getByLabel('status').inputValue()).toBe('superseded');
    expect(w.pageErrors).toEqual([]);
    await page.close();
  });
});
