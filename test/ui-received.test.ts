/**
 * Issue 18, point 5 and the status filter, in Chromium against a conduct fed real OTLP/HTTP: the
 * late-parts trace (test/support/split-trace.ts) sent in parts, so one alert is superseded by the
 * later part and another, whose trace never gets its later part, stays open. Both are replayed
 * data, two days old in event time: the time conduct received them is shown beside their event
 * times. A third trace is live (event time now): no received time beside its times.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureUiBuilt, launchBrowser, watchedPage } from './support/browser.js';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { CALLEE_HALF, CALLER_HALF, idsOf, PRINCIPAL, sendInParts } from './support/split-trace.js';

const DAY = 86_400_000;
const SCREENSHOTS = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));

interface Listed {
  alerts: { id: string; traceId: string; status: string; lastSeen: string; receivedAt?: string }[];
}
interface TraceView {
  chains: { identity: string; startMs: number; receivedMs?: number }[];
}

/** A time as the UI writes it: `2026-12-04 13:00:00Z`. */
const shownTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');

describe('alert status and received times in a real browser', () => {
  let conduct: TestConduct;
  let browser: Browser;
  let context: BrowserContext;
  // Replayed data: two days old in event time.
  const replayedT0 = Math.floor((Date.now() - 2 * DAY) / 60_000) * 60_000;
  /** Wall clock before the first request and after the last was stored. */
  let sentFrom = 0;
  let storedBy = 0;

  beforeAll(async () => {
    ensureUiBuilt();
    mkdirSync(SCREENSHOTS, { recursive: true });
    // The storefront's principal may call the storefront and orders: its client span's address
    // alone is no expected peer, so the caller half alone breaks the policy.
    conduct = await startTestConduct({ stitching: { idle: '1s' }, policies: [{ match: PRINCIPAL, expectedPeers: ['shop/web', 'shop/orders'] }] });
    sentFrom = Date.now();
    // Trace 1: the callee half arrives later and resolves the call (its alert is superseded).
    await sendInParts(conduct, 1, [CALLER_HALF, CALLEE_HALF], replayedT0);
    // Trace 2: the caller half only (its alert stays open).
    await sendInParts(conduct, 2, [CALLER_HALF], replayedT0);
    // Trace 3: live, its event time now.
    await sendInParts(conduct, 3, [CALLER_HALF], Date.now() - 3_000);
    await conduct.flush();
    storedBy = Date.now();
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
      [idsOf(3, 'split').traceId, 'open'],
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

  it('keeps when conduct received each chain and alert, and shows it where it is far from the event time', async () => {
    const replayed = idsOf(2, 'split').traceId;
    const live = idsOf(3, 'split').traceId;
    // The API: alerts carry `receivedAt` (ISO), chains `receivedMs`; wall clock, while this test ran.
    const alerts = (await conduct.get<Listed>('/api/v1/alerts')).body.alerts;
    const alertOf = (traceId: string) => alerts.find((a) => a.traceId === traceId)!;
    for (const a of alerts) {
      const at = Date.parse(a.receivedAt ?? '');
      expect(at, a.traceId).toBeGreaterThanOrEqual(sentFrom);
      expect(at, a.traceId).toBeLessThanOrEqual(storedBy);
    }
    expect(Date.parse(alertOf(replayed).receivedAt!) - Date.parse(alertOf(replayed).lastSeen)).toBeGreaterThan(DAY);
    const chains = (await conduct.get<TraceView>(`/api/v1/traces/${replayed}`)).body.chains;
    expect(chains.length).toBeGreaterThan(0);
    for (const c of chains) {
      expect(c.receivedMs).toBeGreaterThanOrEqual(sentFrom);
      expect(c.receivedMs).toBeLessThanOrEqual(storedBy);
      expect(c.receivedMs! - c.startMs).toBeGreaterThan(DAY);
    }
    const receivedMs = chains[0]!.receivedMs!;

    const w = await watchedPage(context);
    const { page } = w;
    // The alerts list: the replayed alert's row says when it was received; the live one's does not.
    await page.goto(`${conduct.api}/alerts`);
    const row = (traceId: string) => page.locator(`tr[data-alert-id="${alertOf(traceId).id}"] [data-testid=time]`);
    await row(replayed).waitFor();
    // In the table the received time takes a line of its own.
    expect(await row(replayed).innerText()).toMatch(new RegExp(`^${shownTime(Date.parse(alertOf(replayed).lastSeen))} · \\d+d ago\\nreceived ${shownTime(Date.parse(alertOf(replayed).receivedAt!))}$`));
    expect(await row(live).innerText()).not.toContain('received');
    expect(await row(live).locator('.received').count()).toBe(0);
    // The longer time cell still fits the page at 1280 px.
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
    await page.screenshot({ path: `${SCREENSHOTS}alerts-received.png`, fullPage: true });

    // The alert's page.
    await page.goto(`${conduct.api}/alerts/${encodeURIComponent(alertOf(replayed).id)}`);
    await expect.poll(() => page.locator('main .received').first().innerText().catch(() => '')).toContain(`received ${shownTime(Date.parse(alertOf(replayed).receivedAt!))}`);
    await page.goto(`${conduct.api}/alerts/${encodeURIComponent(alertOf(live).id)}`);
    await page.getByTestId('chain').first().waitFor();
    expect(await page.locator('main .received').count()).toBe(0);

    // The trace page: the trace's start and its chains.
    await page.goto(`${conduct.api}/traces/${replayed}`);
    await page.getByTestId('chain').first().waitFor();
    expect(await page.locator('dl.facts .received').innerText()).toContain(`received ${shownTime(receivedMs)}`);
    expect(await page.getByTestId('chain').first().locator('.received').innerText()).toContain(`received ${shownTime(receivedMs)}`);
    await page.goto(`${conduct.api}/traces/${live}`);
    await page.getByTestId('chain').first().waitFor();
    expect(await page.locator('main .received').count()).toBe(0);

    // The identity's chains: the replayed ones say when they were received, the live one does not.
    await page.goto(`${conduct.api}/identities/${encodeURIComponent(PRINCIPAL)}`);
    const chainHead = (traceId: string) => page.getByTestId('chain').filter({ hasText: traceId });
    await chainHead(replayed).waitFor();
    expect(await chainHead(replayed).locator('.received').innerText()).toContain('received ');
    expect(await chainHead(live).locator('.received').count()).toBe(0);
    expect(w.pageErrors).toEqual([]);
    await page.close();
  });
});
